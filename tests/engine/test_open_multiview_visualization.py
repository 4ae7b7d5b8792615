"""``tools/test.py --show-dir`` for the multi-view detectors: boxes drawn on the ORIGINAL camera images of the real
nuScenes keyframe, at the pixels where the original matrices project their corners."""
import pickle

import numpy as np
import torch
from mmdet3d.structures import LiDARInstance3DBoxes
from mmengine.structures import InstanceData

from perception.datasets import NuScenesMultiViewDataset
from perception.engine import MultiViewVisualizationHook
from perception.visualization import draw_multiview_views

CAMERAS = ('CAM_FRONT', 'CAM_FRONT_RIGHT', 'CAM_FRONT_LEFT', 'CAM_BACK', 'CAM_BACK_LEFT', 'CAM_BACK_RIGHT')


def keyframe_sample(shared_dir, tmp_path):
    """The keyframe through a test pipeline that resizes the views to 192x96, as OPEN's synthetic config."""
    folder = shared_dir / 'data/mmdet3d_demo/nuscenes'
    with open(folder / 'n015-2018-07-24-11-22-45+0800.pkl', 'rb') as f:
        infos = pickle.load(f)
    infos['data_list'][0]['scene_token'] = 'scene'
    with open(tmp_path / 'info.pkl', 'wb') as f:
        pickle.dump(infos, f)
    pipeline = [dict(type='LoadMultiViewImages', to_float32=True),
                dict(type='MultiViewResizeCropFlip', final_size=(192, 96), training=False),
                dict(type='PackMultiViewInputs', keys=('img', ))]
    dataset = NuScenesMultiViewDataset(str(folder), str(tmp_path / 'info.pkl'), pipeline=pipeline, test_mode=True,
                                       data_prefix={cam: '' for cam in CAMERAS})
    return dataset[0]['data_samples'], infos['data_list'][0]


def test_boxes_land_on_the_original_pixels(shared_dir, tmp_path):
    sample, info = keyframe_sample(shared_dir, tmp_path)
    meta = sample.metainfo
    box = LiDARInstance3DBoxes(torch.tensor([info['instances'][0]['bbox_3d']]))
    black = [np.zeros((900, 1600, 3), np.uint8) for _ in CAMERAS]
    views = draw_multiview_views(black, meta['lidar2cam'], meta['ori_cam2img'], box, ['car'])
    # the corners through the info file's own matrices (cam2img @ lidar2cam), independent of the pipeline
    corners = np.concatenate([box.corners[0].numpy().astype(np.float64), np.ones((8, 1))], axis=1)
    checked, missed_resized = 0, 0
    for view, cam in zip(views, CAMERAS):
        cam2img = np.eye(4)
        cam2img[:3, :3] = info['images'][cam]['cam2img']
        uvd = corners @ (cam2img @ np.asarray(info['images'][cam]['lidar2cam'])).T
        if (uvd[:, 2] < 0.5).any():
            continue
        uv = uvd[:, :2] / uvd[:, 2:3]
        for u, v in uv:
            if 2 <= u < 1598 and 2 <= v < 898:
                assert view[int(round(v)) - 1:int(round(v)) + 2, int(round(u)) - 1:int(round(u)) + 2].any()
                checked += 1
        # the resized input's lidar2img would put the corners elsewhere, where nothing is drawn
        index = CAMERAS.index(cam)
        uvd_small = corners @ np.asarray(meta['lidar2img'][index]).T
        for u, v in uvd_small[:, :2] / uvd_small[:, 2:3]:
            if 2 <= u < 1598 and 2 <= v < 898:
                missed_resized += not view[int(round(v)) - 1:int(round(v)) + 2,
                                           int(round(u)) - 1:int(round(u)) + 2].any()
    assert checked >= 4 and missed_resized >= 4


def test_hook_draws_one_picture_per_sample(shared_dir, tmp_path):
    sample, info = keyframe_sample(shared_dir, tmp_path)
    boxes = LiDARInstance3DBoxes(torch.tensor([inst['bbox_3d'] for inst in info['instances'][:3]]))
    sample.pred_instances_3d = InstanceData(bboxes_3d=boxes, scores_3d=torch.tensor([0.9, 0.5, 0.05]),
                                            labels_3d=torch.tensor([0, 8, 8]))
    picture = MultiViewVisualizationHook(draw=True, score_thr=0.1).draw_sample(sample, ['car'] * 8 + ['ped', 'cone'])
    # 2 rows of 3 views 640 wide (900x1600 -> 640x360) and the square bird's-eye view
    assert picture.shape == (720, 3 * 640 + 720, 3) and picture.dtype == np.uint8 and picture.any()
