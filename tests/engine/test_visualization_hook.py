"""Mono3DVisualizationHook on the real KITTI frame 000008: the boxes land on the original image where the
original ``P2`` projects them, whatever ``cam2img`` the network input was packed with."""
from types import SimpleNamespace

import cv2
import numpy as np
import pytest
import torch
from mmdet3d.structures import CameraInstance3DBoxes, Det3DDataSample
from mmengine.structures import InstanceData

from perception.engine import Mono3DVisualizationHook
from perception.engine.visualization_hook import frame_name
from perception.structures.camera import project_points, resize_matrix, transform_cam2img
from perception.visualization import CLASS_COLORS, camera_box_corners

CLASSES = ('Pedestrian', 'Cyclist', 'Car')
HEIGHT, WIDTH = 375, 1242
# x, y, z, l, h, w, ry: the untruncated car 14 m ahead in the labels of frame 000008
CAR = [1.07, 1.55, 14.44, 3.66, 1.47, 1.6, -1.25]
# a pedestrian on the left, scored below the threshold
PEDESTRIAN = [-6.0, 1.6, 10.0, 0.8, 1.7, 0.6, 0.0]
P2 = np.array([[721.5377, 0.0, 609.5593, 44.85728], [0.0, 721.5377, 172.854, 0.2163791],
               [0.0, 0.0, 1.0, 0.002745884], [0.0, 0.0, 0.0, 1.0]])


@pytest.fixture
def sample(shared_dir):
    data_sample = Det3DDataSample(metainfo=dict(
        img_path=str(shared_dir / 'data/mmdet3d_demo/kitti/000008.png'), frame_id=123, ori_cam2img=P2,
        # the network input was half the size: drawing with this matrix would put the car elsewhere
        cam2img=transform_cam2img(P2, resize_matrix(0.5, 0.5))))
    data_sample.pred_instances_3d = InstanceData(
        bboxes_3d=CameraInstance3DBoxes(torch.tensor([CAR, PEDESTRIAN])), scores_3d=torch.tensor([0.9, 0.05]),
        labels_3d=torch.tensor([2, 0]))
    return data_sample


def run_hook(tmp_path, sample, **kwargs):
    runner = SimpleNamespace(work_dir=str(tmp_path), timestamp='20261202_120000',
                             test_dataloader=SimpleNamespace(dataset=SimpleNamespace(metainfo=dict(classes=CLASSES))))
    hook = Mono3DVisualizationHook(draw=True, score_thr=0.1, test_out_dir='vis', **kwargs)
    hook.before_test(runner)
    hook.after_test_iter(runner, 0, {}, [sample])
    path = tmp_path / '20261202_120000' / 'vis' / '000123.png'
    assert path.is_file()
    return cv2.imread(str(path))


def has_color(picture, uv, color, radius=3):
    u, v = np.round(uv).astype(int)
    window = picture[max(v - radius, 0):v + radius + 1, max(u - radius, 0):u + radius + 1].astype(int)
    return bool((np.abs(window - color) <= 10).all(-1).any())


def test_prediction_drawn_with_the_original_camera(tmp_path, sample, shared_dir):
    picture = run_hook(tmp_path, sample, draw_gt=False)
    image = cv2.imread(str(shared_dir / 'data/mmdet3d_demo/kitti/000008.png'))
    assert picture.shape == (HEIGHT, WIDTH + HEIGHT, 3)
    car_color = CLASS_COLORS['Car']
    corners = project_points(camera_box_corners(np.array([CAR]))[0], P2)
    assert all(has_color(picture, uv, car_color) for uv in corners)
    packed = project_points(camera_box_corners(np.array([CAR]))[0], sample.metainfo['cam2img'])
    assert not any(has_color(picture, uv, car_color) for uv in packed)
    # the pedestrian scored below score_thr: its corners are left as they were
    for u, v in np.round(project_points(camera_box_corners(np.array([PEDESTRIAN]))[0], P2)).astype(int):
        assert (picture[v - 2:v + 3, u - 2:u + 3] == image[v - 2:v + 3, u - 2:u + 3]).all()
    # bird's-eye view: 60 m ahead and across in 375 pixels, the camera at the bottom centre; the car's
    # heading line starts at its centre
    bev = picture[:, WIDTH:]
    centre = np.array([(30 + CAR[0]) / 60 * HEIGHT, (60 - CAR[2]) / 60 * HEIGHT])
    assert has_color(bev, centre, car_color)
    assert bev[:, :170].max() == 0, 'the view left of the car (where the pedestrian is) is empty'


def test_ground_truth_drawn_as_an_option(tmp_path, sample):
    others = [[-1.17, 1.65, 7.86, 3.68, 1.57, 1.5, 1.9], [7.24, 1.55, 33.2, 4.08, 1.7, 1.63, 1.95]]
    sample.eval_ann_info = dict(gt_bboxes_3d=CameraInstance3DBoxes(np.array(others, dtype=np.float32)))
    without = run_hook(tmp_path / 'a', sample, draw_gt=False)
    with_gt = run_hook(tmp_path / 'b', sample, draw_gt=True)
    changed = (with_gt != without).any(-1)
    for uv in project_points(camera_box_corners(np.array(others)).reshape(-1, 3), P2):
        u, v = np.round(uv).astype(int)
        if 0 <= u < WIDTH and 0 <= v < HEIGHT:
            assert changed[max(v - 1, 0):v + 2, max(u - 1, 0):u + 2].any()
    assert with_gt[changed].astype(int).sum() > without[changed].astype(int).sum(), 'drawn in white'


def test_frame_name_falls_back_to_the_image_name():
    assert frame_name(dict(img_path='a/b/000042.png', frame_id=7)) == '000007'
    assert frame_name(dict(img_path='a/b/000042.png')) == '000042'
