"""Mono3D transforms on the real KITTI frame 000008 (full-quality image, 6 labelled cars).

Every geometric transform must keep the camera and the labels consistent: projecting the transformed 3D box
corners with the transformed ``cam2img`` equals transforming the originally projected corners.
"""
import copy

import numpy as np
import pytest
import torch
from mmdet3d.structures import CameraInstance3DBoxes

from perception.datasets.transforms import (FilterMono3DInstances, LoadImageMono3D, PackMono3DInputs,
                                            RandomCropScaleMono3D, RandomFlipMono3D, ResizeMono3D)
from perception.registry import TRANSFORMS
from perception.structures import cam2img_to_4x4, project_points, transform_points_2d, yaw_to_alpha

GEOMETRIC = {
    'flip': lambda: RandomFlipMono3D(prob=1.0),
    'crop_scale': lambda: RandomCropScaleMono3D(out_size=(1280, 384), prob=1.0, scale=0.4, shift=0.1),
    'centre_scale': lambda: RandomCropScaleMono3D(out_size=(1280, 384), prob=0.0),
    'resize': lambda: ResizeMono3D(scale=(640, 192)),
    'resize_keep_ratio': lambda: ResizeMono3D(scale=(1000, 1000), keep_ratio=True),
}


@pytest.fixture(scope='module')
def frame(kitti_000008):
    """Results of loading frame 000008 and its 6 cars, as the dataset and the loaders give them."""
    img_path, cam2img, cars = kitti_000008
    results = LoadImageMono3D()(dict(img_path=img_path, cam2img=cam2img))
    results.update(
        gt_bboxes_3d=CameraInstance3DBoxes(np.array([inst['bbox_3d'] for inst in cars], dtype=np.float32)),
        gt_labels_3d=np.full(len(cars), 2, dtype=np.int64),
        gt_bboxes=np.array([inst['bbox'] for inst in cars], dtype=np.float32),
        gt_bboxes_labels=np.full(len(cars), 2, dtype=np.int64),
        centers_2d=np.array([inst['center_2d'] for inst in cars], dtype=np.float32),
        depths=np.array([inst['depth'] for inst in cars], dtype=np.float32))
    results['frame_id'] = 8
    return results


def run(transform, results, seed=0):
    np.random.seed(seed)
    return transform(copy.deepcopy(results))


def box_corners(boxes):
    return boxes.corners.double().numpy()


def corner_distance(actual, expected):
    """Largest distance from a corner of one box to the nearest corner of the same box in the other set: a flip
    mirrors a box, so its corners come back in another order."""
    dist = np.linalg.norm(actual[:, :, None] - expected[:, None], axis=-1)
    return max(dist.min(axis=1).max(), dist.min(axis=2).max())


@pytest.mark.parametrize('name', list(GEOMETRIC))
def test_projection_commutes_with_transform(frame, name):
    out = run(GEOMETRIC[name](), frame)
    matrix = out['img_aug_matrix']
    assert not np.allclose(matrix, np.eye(3))
    expected = transform_points_2d(project_points(box_corners(frame['gt_bboxes_3d']), frame['cam2img']), matrix)
    actual = project_points(box_corners(out['gt_bboxes_3d']), out['cam2img'])
    assert actual.shape == (6, 8, 2)
    # Far tighter than the 0.5 px asked for: the only error left is the float32 storage of the boxes.
    assert corner_distance(actual, expected) < 1e-2
    # The labels moved with the pixels, and the centres are still the projected gravity centres.
    centres = project_points(out['gt_bboxes_3d'].gravity_center.double().numpy(), out['cam2img'], with_depth=True)
    np.testing.assert_allclose(out['centers_2d'], centres[:, :2], atol=1e-2)
    np.testing.assert_allclose(out['depths'], centres[:, 2], atol=1e-4)
    assert out['img'].shape[:2] == tuple(out['img_shape'])


def ramp(height, width):
    """A float image whose channels hold the pixel's own (u, v): warping it reveals where each pixel came from."""
    v, u = np.mgrid[0:height, 0:width].astype(np.float32)
    return np.stack([u, v, np.zeros_like(u)], axis=-1)


@pytest.mark.parametrize('name', list(GEOMETRIC))
def test_image_follows_the_pixel_convention(frame, name):
    """Output pixel (u', v') holds the value of the source pixel ``img_aug_matrix^-1 (u', v')``: the matrices
    use the same pixel centres as the image operations (exact up to OpenCV's 1/32 px interpolation grid)."""
    height, width = frame['img'].shape[:2]
    out = run(GEOMETRIC[name](), dict(frame, img=ramp(height, width)))
    src = out['img'][..., :2]
    v, u = np.mgrid[0:src.shape[0], 0:src.shape[1]]
    expected = transform_points_2d(np.stack([u, v], -1).astype(np.float64), np.linalg.inv(out['img_aug_matrix']))
    inside = ((expected[..., 0] >= 1) & (expected[..., 0] <= width - 2) & (expected[..., 1] >= 1)
              & (expected[..., 1] <= height - 2))
    assert inside.mean() > 0.5
    np.testing.assert_allclose(src[inside], expected[inside], atol=0.04)


def test_flip_angles_and_involution(frame):
    once = run(RandomFlipMono3D(prob=1.0), frame)
    width = frame['img'].shape[1]
    ry, ry_flipped = frame['gt_bboxes_3d'].yaw.numpy(), once['gt_bboxes_3d'].yaw.numpy()
    np.testing.assert_allclose(np.cos(ry_flipped), -np.cos(ry), atol=1e-6)
    np.testing.assert_allclose(np.sin(ry_flipped), np.sin(ry), atol=1e-6)
    assert (np.abs(ry_flipped) <= np.pi).all()
    # the observation angle, which the heads learn, mirrors too: alpha -> pi - alpha
    alpha = yaw_to_alpha(ry, *frame['gt_bboxes_3d'].gravity_center.numpy()[:, [0, 2]].T)
    alpha_flipped = yaw_to_alpha(ry_flipped, *once['gt_bboxes_3d'].gravity_center.numpy()[:, [0, 2]].T)
    np.testing.assert_allclose(np.cos(alpha_flipped), -np.cos(alpha), atol=1e-6)
    np.testing.assert_allclose(np.sin(alpha_flipped), np.sin(alpha), atol=1e-6)
    np.testing.assert_allclose(once['gt_bboxes'][:, 0], width - 1 - frame['gt_bboxes'][:, 2], atol=1e-3)
    np.testing.assert_array_equal(once['img'][:, ::-1], frame['img'])
    assert once['flip'] and once['cam2img'][0, 3] != frame['cam2img'][0, 3]
    twice = run(RandomFlipMono3D(prob=1.0), once)
    np.testing.assert_allclose(twice['cam2img'], frame['cam2img'], atol=1e-9)
    np.testing.assert_allclose(twice['gt_bboxes_3d'].tensor, frame['gt_bboxes_3d'].tensor, atol=1e-5)
    assert not run(RandomFlipMono3D(prob=0.0), frame)['flip']


def test_crop_scale_draws_monodetr_ranges(frame):
    transform = RandomCropScaleMono3D(out_size=(1280, 384), prob=1.0, scale=0.05, shift=0.05)
    scales = [run(transform, dict(frame, img=frame['img'][:8, :8]), seed)['crop_scale'] for seed in range(20)]
    assert min(scales) >= 0.95 and max(scales) <= 1.05 and len(set(scales)) > 10
    out = run(RandomCropScaleMono3D(out_size=(1280, 384), prob=0.0), frame)
    assert out['img'].shape == (384, 1280, 3) and out['crop_scale'] == 1.0
    assert out['img_aug_matrix'][0, 0] == pytest.approx(1280 / 1242)


def test_filter_keeps_instances_aligned(frame):
    results = copy.deepcopy(frame)
    results['depths'][1] = 70.0  # too far
    results['centers_2d'][3] = results['gt_bboxes'][3, :2] - 1  # outside its 2D box
    out = FilterMono3DInstances(min_depth=2.0, max_depth=65.0)(results)
    keep = [0, 2, 4, 5]
    assert len(out['gt_bboxes_3d']) == 4
    np.testing.assert_array_equal(out['gt_bboxes'], frame['gt_bboxes'][keep])
    np.testing.assert_array_equal(out['depths'], frame['depths'][keep])
    torch.testing.assert_close(out['gt_bboxes_3d'].tensor, frame['gt_bboxes_3d'].tensor[keep])


def test_pack_gives_camera_boxes_centres_depths_and_the_frame_id(frame):
    packed = PackMono3DInputs()(copy.deepcopy(frame))
    sample = packed['data_samples']
    assert packed['inputs']['img'].shape == (3, 375, 1242)
    assert isinstance(sample.gt_instances_3d.bboxes_3d, CameraInstance3DBoxes)
    assert sample.gt_instances_3d.centers_2d.shape == (6, 2) and sample.gt_instances_3d.depths.shape == (6, )
    assert sample.gt_instances.bboxes.shape == (6, 4)
    assert set(sample.gt_instances_3d.keys()) == {'bboxes_3d', 'labels_3d', 'centers_2d', 'depths'}
    np.testing.assert_array_equal(sample.metainfo['cam2img'], frame['cam2img'])
    assert sample.metainfo['frame_id'] == 8 and 'sample_idx' not in sample.metainfo
    assert 'lidar2img' not in sample.metainfo


@pytest.mark.parametrize('shape', [(3, 3), (3, 4), (4, 4)])
def test_load_image_pads_cam2img_to_4x4(frame, shape):
    cam2img = np.arange(16, dtype=np.float64).reshape(4, 4)[:shape[0], :shape[1]]
    out = LoadImageMono3D()(dict(img_path=frame['img_path'], cam2img=cam2img.tolist()))
    np.testing.assert_array_equal(out['cam2img'], cam2img_to_4x4(cam2img))
    assert out['cam2img'].dtype == np.float64 and out['ori_cam2img'] is not out['cam2img']


def test_registered_and_bad_image_named(tmp_path):
    for name in ('LoadImageMono3D', 'LoadAnnotationsMono3D', 'RandomFlipMono3D', 'RandomCropScaleMono3D',
                 'ResizeMono3D', 'FilterMono3DInstances', 'PackMono3DInputs'):
        assert TRANSFORMS.get(name) is not None
    bad = tmp_path / 'broken.png'
    bad.write_bytes(b'not a png')
    with pytest.raises(ValueError, match='broken.png: cannot decode'):
        LoadImageMono3D()(dict(img_path=str(bad), cam2img=np.eye(4)))
    with pytest.raises(FileNotFoundError, match='missing.png'):
        LoadImageMono3D()(dict(img_path=str(tmp_path / 'missing.png'), cam2img=np.eye(4)))
