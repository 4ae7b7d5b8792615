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
# a pedestrian on the left, scored below the threshold
PEDESTRIAN = [-6.0, 1.6, 10.0, 0.8, 1.7, 0.6, 0.0]


@pytest.fixture
def sample(kitti_000008):
    """Frame 000008 predicted as its untruncated car 14 m ahead (x, y, z, l, h, w, ry of its label) and the
    pedestrian above."""
    img_path, P2, cars = kitti_000008
    data_sample = Det3DDataSample(metainfo=dict(
        img_path=img_path, frame_id=123, ori_cam2img=P2,
        # the network input was half the size: drawing with this matrix would put the car elsewhere
        cam2img=transform_cam2img(P2, resize_matrix(0.5, 0.5))))
    data_sample.pred_instances_3d = InstanceData(
        bboxes_3d=CameraInstance3DBoxes(torch.tensor([cars[3]['bbox_3d'], PEDESTRIAN])),
        scores_3d=torch.tensor([0.9, 0.05]), labels_3d=torch.tensor([2, 0]))
    return data_sample


def corners_2d(box, cam2img):
    return project_points(camera_box_corners(np.array([box])).reshape(-1, 3), cam2img)


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


def test_prediction_drawn_with_the_original_camera(tmp_path, sample, kitti_000008):
    img_path, P2, cars = kitti_000008
    car = cars[3]['bbox_3d']
    picture = run_hook(tmp_path, sample, draw_gt=False)
    image = cv2.imread(img_path)
    assert picture.shape == (HEIGHT, WIDTH + HEIGHT, 3)
    car_color = CLASS_COLORS['Car']
    assert all(has_color(picture, uv, car_color) for uv in corners_2d(car, P2))
    assert not any(has_color(picture, uv, car_color) for uv in corners_2d(car, sample.metainfo['cam2img']))
    # the pedestrian scored below score_thr: its corners are left as they were
    for u, v in np.round(corners_2d(PEDESTRIAN, P2)).astype(int):
        assert (picture[v - 2:v + 3, u - 2:u + 3] == image[v - 2:v + 3, u - 2:u + 3]).all()
    # bird's-eye view: 60 m ahead and across in 375 pixels, the camera at the bottom centre; the car's
    # heading line starts at its centre
    bev = picture[:, WIDTH:]
    centre = np.array([(30 + car[0]) / 60 * HEIGHT, (60 - car[2]) / 60 * HEIGHT])
    assert has_color(bev, centre, car_color)
    assert bev[:, :170].max() == 0, 'the view left of the car (where the pedestrian is) is empty'


def test_ground_truth_drawn_as_an_option(tmp_path, sample, kitti_000008):
    _, P2, cars = kitti_000008
    others = np.array([cars[1]['bbox_3d'], cars[4]['bbox_3d']])
    sample.eval_ann_info = dict(gt_bboxes_3d=CameraInstance3DBoxes(others.astype(np.float32)))
    without = run_hook(tmp_path / 'a', sample, draw_gt=False)
    with_gt = run_hook(tmp_path / 'b', sample, draw_gt=True)
    changed = (with_gt != without).any(-1)
    for uv in np.concatenate([corners_2d(box, P2) for box in others]):
        u, v = np.round(uv).astype(int)
        if 0 <= u < WIDTH and 0 <= v < HEIGHT:
            assert changed[max(v - 1, 0):v + 2, max(u - 1, 0):u + 2].any()
    assert with_gt[changed].astype(int).sum() > without[changed].astype(int).sum(), 'drawn in white'


def test_frame_name_falls_back_to_the_image_name():
    assert frame_name(dict(img_path='a/b/000042.png', frame_id=7)) == '000007'
    assert frame_name(dict(img_path='a/b/000042.png')) == '000042'


def test_a_model_without_3d_boxes_is_refused(tmp_path, sample):
    del sample.pred_instances_3d
    with pytest.raises(ValueError, match='000008.png: the model predicted no 3D boxes'):
        run_hook(tmp_path, sample)
