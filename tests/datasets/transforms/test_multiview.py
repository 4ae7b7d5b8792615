"""Multi-view transforms on the real nuScenes keyframe: every matrix stays exact through resize, crop, flip and the
BEV augmentation.

The images are replaced by Gaussian spots painted where the 3D box centres project in the ORIGINAL views; after
the augmentation the spots are found again in the warped images and must lie within 0.5 px of the augmented boxes
projected with the augmented ``lidar2img``: the image warping and the matrices are checked against each other,
not the matrices against themselves.
"""
import copy
import pickle

import numpy as np
import pytest
import torch
from mmdet3d.structures import LiDARInstance3DBoxes

from perception.datasets import NuScenesMultiViewDataset
from perception.datasets.transforms import (LoadMultiViewImages, MultiViewBEVAug, MultiViewResizeCropFlip,
                                            PackMultiViewInputs)
from perception.fileio import InvalidInputError

CAMERAS = ('CAM_FRONT', 'CAM_FRONT_RIGHT', 'CAM_FRONT_LEFT', 'CAM_BACK', 'CAM_BACK_LEFT', 'CAM_BACK_RIGHT')
SIGMA = 4.0


@pytest.fixture(scope='module')
def keyframe(shared_dir, tmp_path_factory):
    """The demo keyframe's info file, with the scene token the dataset needs, and its folder."""
    folder = shared_dir / 'data/mmdet3d_demo/nuscenes'
    with open(folder / 'n015-2018-07-24-11-22-45+0800.pkl', 'rb') as f:
        infos = pickle.load(f)
    infos['data_list'][0]['scene_token'] = 'scene'
    path = tmp_path_factory.mktemp('info') / 'info.pkl'
    with open(path, 'wb') as f:
        pickle.dump(infos, f)
    return folder, path


def make_dataset(keyframe, pipeline=(), **kwargs):
    folder, path = keyframe
    return NuScenesMultiViewDataset(str(folder), str(path), pipeline=list(pipeline),
                                    data_prefix={cam: '' for cam in CAMERAS}, **kwargs)


class FixedImageAug(MultiViewResizeCropFlip):
    """The image augmentation with chosen parameters."""

    def __init__(self, params, **kwargs):
        super().__init__(**kwargs)
        self.params = params

    def _sample(self, width, height):
        return self.params


class FixedBEVAug(MultiViewBEVAug):

    def __init__(self, params):
        super().__init__()
        self.params = params

    def _sample(self):
        return self.params


def project(lidar2img, points):
    uvw = points @ lidar2img[:3, :3].T + lidar2img[:3, 3]
    return uvw[:, :2] / uvw[:, 2:3], uvw[:, 2]


def spots_image(shape, centres):
    """Float image with a Gaussian spot (sigma ``SIGMA`` px) at each (u, v) (pixel-centre coordinates)."""
    img = np.zeros(shape[:2])
    radius = int(6 * SIGMA)
    for cu, cv in centres:
        u0, v0 = int(cu) - radius, int(cv) - radius
        v, u = np.mgrid[v0:v0 + 2 * radius + 1, u0:u0 + 2 * radius + 1]
        img[v, u] += np.exp(-((u - cu)**2 + (v - cv)**2) / (2 * SIGMA**2))
    return np.repeat(img[..., None], 3, axis=2).astype(np.float32) * 255


def spot_centre(img, guess, radius):
    """Intensity-weighted centroid of the image within ``radius`` px of ``guess``."""
    gray = img[..., 0].astype(np.float64)
    u0, v0 = int(round(guess[0])), int(round(guess[1]))
    v, u = np.mgrid[v0 - radius:v0 + radius + 1, u0 - radius:u0 + radius + 1]
    window = gray[v, u]
    return np.array([(window * u).sum(), (window * v).sum()]) / window.sum()


def separated_spots(uv, depth, shape, min_gap=60, margin=40):
    """Indices of projections in front of the camera, inside the image and far from each other."""
    chosen = []
    for i in np.argsort(depth):
        if depth[i] < 2 or not (margin <= uv[i, 0] < shape[1] - margin and margin <= uv[i, 1] < shape[0] - margin):
            continue
        if all(np.linalg.norm(uv[i] - uv[j]) > min_gap for j in chosen):
            chosen.append(i)
    return chosen


# (image augmentation: (new W, new H), crop x0, crop y0, flip) and (BEV: angle, scale, flip x, flip y).
CASES = [
    (((704, 396), 0, 140, False), (0.0, 1.0, False, False)),
    (((787, 442), 41, 186, True), (0.31, 1.04, True, False)),
    (((880, 495), 88, 239, True), (-0.37, 0.96, False, True)),
    (((1600, 900), -30, 380, True), (2.5, 1.0, True, True)),
]


@pytest.mark.parametrize('image_params, bev_params', CASES)
def test_projections_land_on_the_warped_spots_within_half_a_pixel(keyframe, image_params, bev_params):
    dataset = make_dataset(keyframe)
    results = copy.deepcopy(dataset.get_data_info(0))
    results = LoadMultiViewImages().transform(results)
    boxes = results['ann_info']['gt_bboxes_3d']
    results['gt_bboxes_3d'] = copy.deepcopy(boxes)
    centres = boxes.gravity_center.numpy().astype(np.float64)
    corners = boxes.corners.numpy().reshape(-1, 3).astype(np.float64)
    original = {key: results[key].copy() for key in ('lidar2img', 'lidar2global')}
    chosen = []
    for v, img in enumerate(results['img']):
        uv, depth = project(results['lidar2img'][v], centres)
        chosen.append(separated_spots(uv, depth, img.shape))
        results['img'][v] = spots_image(img.shape, uv[chosen[v]])
    assert sum(map(len, chosen)) >= 10

    results = FixedImageAug(image_params, final_size=(704, 256)).transform(results)
    results = FixedBEVAug(bev_params).transform(results)

    aug_boxes = results['gt_bboxes_3d']
    aug_centres = aug_boxes.gravity_center.numpy().astype(np.float64)
    checked, worst = 0, 0.0
    for v, img in enumerate(results['img']):
        assert img.shape[:2] == (256, 704) and results['img_shape'][v] == (256, 704)
        uv, _ = project(results['lidar2img'][v], aug_centres)
        for i in chosen[v]:
            if not (12 <= uv[i, 0] < 704 - 12 and 12 <= uv[i, 1] < 256 - 12):
                continue
            scale = abs(results['img_aug_matrix'][v][0, 0])
            found = spot_centre(img, uv[i], int(np.ceil(4 * SIGMA * scale)) + 1)
            worst = max(worst, np.abs(found - uv[i]).max())
            checked += 1
        # The corners too: original projections moved by the image transform (a flip reorders a box's corners;
        # the boxes are float32, as mmdet3d stores them, hence hundredths of a pixel).
        A = results['img_aug_matrix'][v]
        uv0, depth0 = project(original['lidar2img'][v], corners)
        uv1, _ = project(results['lidar2img'][v], aug_boxes.corners.numpy().reshape(-1, 3).astype(np.float64))
        moved = (uv0 @ A[:2, :2].T + A[:2, 2]).reshape(-1, 8, 2)
        front = (depth0.reshape(-1, 8) > 0.5).all(axis=1)
        gaps = np.linalg.norm(uv1.reshape(-1, 8, 1, 2)[front] - moved[front][:, None], axis=-1).min(axis=2)
        assert gaps.max() < 0.05
    assert checked >= 5 and worst < 0.5, (checked, worst)
    # The global frame is untouched: augmented boxes map to where the original ones were.
    np.testing.assert_allclose(aug_centres @ results['lidar2global'][:3, :3].T + results['lidar2global'][:3, 3],
                               centres @ original['lidar2global'][:3, :3].T + original['lidar2global'][:3, 3],
                               atol=1e-4)
    np.testing.assert_allclose(results['ego2global'] @ results['lidar2ego'], results['lidar2global'], atol=1e-9)
    np.testing.assert_allclose(results['cam2img'] @ results['lidar2cam'], results['lidar2img'], atol=1e-6)


def test_bev_aug_moves_velocities_and_points_with_the_boxes(keyframe):
    from mmdet3d.structures import LiDARPoints
    dataset = make_dataset(keyframe)
    results = copy.deepcopy(dataset.get_data_info(0))
    results['img'] = [np.zeros((900, 1600, 3), np.uint8)] * 6
    results['bda_matrix'] = np.eye(4)
    boxes = results['ann_info']['gt_bboxes_3d']
    results['gt_bboxes_3d'] = copy.deepcopy(boxes)
    results['points'] = LiDARPoints(boxes.gravity_center.clone(), points_dim=3)
    matrix = MultiViewBEVAug.bev_matrix(0.4, 1.05, True, False)
    results = FixedBEVAug((0.4, 1.05, True, False)).transform(results)
    aug = results['gt_bboxes_3d']
    expected = boxes.gravity_center.numpy() @ matrix[:3, :3].T
    np.testing.assert_allclose(aug.gravity_center.numpy(), expected, atol=1e-4)
    np.testing.assert_allclose(results['points'].tensor.numpy(), expected, atol=1e-4)
    velocity = np.concatenate([boxes.tensor[:, 7:9].numpy(), np.zeros((len(boxes), 1))], axis=1)
    np.testing.assert_allclose(aug.tensor[:, 7:9].numpy(), (velocity @ matrix[:3, :3].T)[:, :2], atol=1e-4)
    np.testing.assert_allclose(results['bda_matrix'], matrix)


def test_test_mode_aug_is_centred_and_deterministic(keyframe):
    aug = MultiViewResizeCropFlip(final_size=(704, 256), resize_lim=(0.38, 0.55), rand_flip=True, training=False)
    assert aug._sample(1600, 900) == ((704, 396), 0, 140, False)
    dataset = make_dataset(keyframe, [
        dict(type='LoadMultiViewImages'),
        dict(type='mmdet3d.LoadAnnotations3D', with_bbox_3d=True, with_label_3d=True),
        dict(type='MultiViewResizeCropFlip', final_size=(704, 256), training=False),
        dict(type='MultiViewBEVAug', training=False),
        dict(type='PackMultiViewInputs', keys=('img', 'gt_bboxes_3d', 'gt_labels_3d'))], test_mode=False)
    packed = dataset[0]
    assert packed['inputs']['img'].shape == (6, 3, 256, 704)
    sample = packed['data_samples']
    assert np.asarray(sample.lidar2img).shape == (6, 4, 4) and sample.prev_exists is False
    boxes = sample.gt_instances_3d.bboxes_3d
    assert isinstance(boxes, LiDARInstance3DBoxes) and boxes.tensor.shape[1] == 9
    gt_2d = sample.gt_instances
    assert len(gt_2d) > 20 and set(gt_2d.view_idx.tolist()) <= set(range(6))
    # The 2D labels moved with the image: projected centres equal the moved mmdet3d centres, boxes inside.
    assert gt_2d.bboxes[:, [0, 2]].max() <= 704 and gt_2d.bboxes[:, [1, 3]].max() <= 256
    A = sample.img_aug_matrix
    folder, path = keyframe
    with open(path, 'rb') as f:
        cam_instances = pickle.load(f)['data_list'][0]['cam_instances']
    front = np.array([inst['center_2d'] for inst in cam_instances['CAM_FRONT']])
    moved = front @ A[0][:2, :2].T + A[0][:2, 2]
    ours = gt_2d.centers_2d[gt_2d.view_idx == 0].numpy()
    assert all(np.abs(moved - c).sum(axis=1).min() < 1e-3 for c in ours)


def test_undecodable_image_is_named(keyframe, tmp_path):
    dataset = make_dataset(keyframe)
    results = copy.deepcopy(dataset.get_data_info(0))
    bad = tmp_path / 'broken.jpg'
    bad.write_bytes(b'not a jpeg')
    results['img_path'][2] = str(bad)
    with pytest.raises(InvalidInputError, match='broken.jpg: not a decodable image'):
        LoadMultiViewImages().transform(results)


def test_views_of_different_sizes_are_not_stacked(keyframe):
    dataset = make_dataset(keyframe)
    results = copy.deepcopy(dataset.get_data_info(0))
    results['img'] = [np.zeros((90, 160, 3), np.uint8)] * 5 + [np.zeros((80, 160, 3), np.uint8)]
    with pytest.raises(ValueError, match='views of different shapes'):
        PackMultiViewInputs().transform(results)
    results['img'] = [np.zeros((90, 160, 3), np.uint8)] * 6
    assert PackMultiViewInputs().transform(results)['inputs']['img'].dtype == torch.uint8
