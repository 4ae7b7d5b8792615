"""MixUp3D on the real KITTI frame 000008 (6 labelled cars): blending, label union, refusals."""
import copy

import cv2
import numpy as np
import pytest
from mmdet3d.structures import CameraInstance3DBoxes

from perception.datasets.converters import create_kitti_infos
from perception.datasets.transforms import (LoadAnnotationsMono3D, LoadImageMono3D, MixUp3D, RandomCropScaleMono3D,
                                            RandomFlipMono3D)
from perception.registry import DATASETS, TRANSFORMS
from perception.structures.camera import project_points
from perception.testing import make_kitti_root


class InfoList:
    """The two calls MixUp3D makes of a dataset."""

    def __init__(self, infos):
        self.infos = infos
        self.calls = 0

    def __len__(self):
        return len(self.infos)

    def get_data_info(self, index):
        self.calls += 1
        return copy.deepcopy(self.infos[index])


def make_info(img_path, cam2img, cars, size=(375, 1242)):
    """A data info of ``cars`` as :class:`KittiMono3DDataset` gives it (``size`` None: no size fields)."""
    info = dict(img_path=img_path, cam2img=cam2img, ann_info=dict(
        gt_bboxes_3d=CameraInstance3DBoxes(np.array([c['bbox_3d'] for c in cars], dtype=np.float32).reshape(-1, 7)),
        gt_labels_3d=np.full(len(cars), 2, dtype=np.int64),
        gt_bboxes=np.array([c['bbox'] for c in cars], dtype=np.float32).reshape(-1, 4),
        gt_bboxes_labels=np.full(len(cars), 2, dtype=np.int64),
        centers_2d=np.array([c['center_2d'] for c in cars], dtype=np.float32).reshape(-1, 2),
        depths=np.array([c['depth'] for c in cars], dtype=np.float32)))
    if size is not None:
        info['images'] = dict(CAM2=dict(height=size[0], width=size[1]))
    return info


def load(info, flip=False):
    results = LoadAnnotationsMono3D()(LoadImageMono3D()(copy.deepcopy(info)))
    return RandomFlipMono3D(prob=1.0)(results) if flip else results


@pytest.fixture
def grey(tmp_path):
    """Writes a constant grey image of a given size and returns its path."""

    def write(size=(375, 1242), value=100):
        path = tmp_path / f'grey_{size[0]}x{size[1]}.png'
        cv2.imwrite(str(path), np.full(size + (3, ), value, dtype=np.uint8))
        return str(path)

    return write


@pytest.mark.parametrize('flip', [False, True])
def test_blend_and_label_union(kitti_000008, grey, flip):
    img_path, cam2img, cars = kitti_000008
    main = load(make_info(img_path, cam2img, cars), flip=flip)
    # the partner: a grey image of the same camera, labelled with the first two cars
    mixup = MixUp3D(dataset=InfoList([make_info(grey(), cam2img, cars[:2])]), prob=1.0)
    out = mixup(copy.deepcopy(main))

    assert out['mixup3d_index'] == 0
    expected = np.clip(np.rint(0.5 * main['img'].astype(np.float32) + 50), 0, 255).astype(np.uint8)
    np.testing.assert_array_equal(out['img'], expected)
    for key in ('gt_bboxes', 'gt_bboxes_labels', 'gt_labels_3d', 'centers_2d', 'depths'):
        assert len(out[key]) == 8, key
        np.testing.assert_array_equal(out[key][:6], main[key])
        # the partner's objects come last, flipped like the image: here the same cars again
        np.testing.assert_allclose(out[key][6:], main[key][:2], atol=1e-4)
    assert len(out['gt_bboxes_3d']) == 8
    np.testing.assert_allclose(out['gt_bboxes_3d'].tensor[6:].numpy(), main['gt_bboxes_3d'].tensor[:2].numpy(),
                               atol=1e-5)
    # every box still projects onto its centre with the sample's camera
    centres = project_points(out['gt_bboxes_3d'].gravity_center.double().numpy(), out['cam2img'])
    np.testing.assert_allclose(centres, out['centers_2d'], atol=1e-2)


@pytest.mark.parametrize('element', [(0, 0), (1, 1), (0, 2), (1, 2)])
def test_refuses_other_intrinsics(kitti_000008, grey, element):
    img_path, cam2img, cars = kitti_000008
    main = load(make_info(img_path, cam2img, cars))
    other = cam2img.copy()
    other[element] += 0.5
    dataset = InfoList([make_info(grey(), other, cars[:2])])
    out = MixUp3D(dataset=dataset, prob=1.0, max_tries=3)(copy.deepcopy(main))
    assert out['mixup3d_index'] is None and dataset.calls == 3
    np.testing.assert_array_equal(out['img'], main['img'])
    assert len(out['gt_bboxes_3d']) == 6 and len(out['depths']) == 6


def test_refuses_another_size(kitti_000008, grey):
    img_path, cam2img, cars = kitti_000008
    main = load(make_info(img_path, cam2img, cars))
    # with the size in the data info the image is not even read (the path does not exist)
    stated = make_info('/nonexistent.png', cam2img, cars[:2], size=(370, 1224))
    out = MixUp3D(dataset=InfoList([stated]), prob=1.0, max_tries=2)(copy.deepcopy(main))
    assert out['mixup3d_index'] is None and len(out['depths']) == 6
    # without it, the loaded image is measured
    unstated = make_info(grey(size=(370, 1224)), cam2img, cars[:2], size=None)
    out = MixUp3D(dataset=InfoList([unstated]), prob=1.0, max_tries=2)(copy.deepcopy(main))
    assert out['mixup3d_index'] is None and len(out['depths']) == 6
    np.testing.assert_array_equal(out['img'], main['img'])


def test_object_limit(kitti_000008, grey):
    img_path, cam2img, cars = kitti_000008
    main = load(make_info(img_path, cam2img, cars))
    dataset = InfoList([make_info(grey(), cam2img, cars[:2])])
    # 6 + 2 objects must stay under the limit
    assert MixUp3D(dataset=dataset, prob=1.0, max_objects=8, max_tries=2)(copy.deepcopy(main))['mixup3d_index'] is None
    assert len(MixUp3D(dataset=dataset, prob=1.0, max_objects=9)(copy.deepcopy(main))['depths']) == 8


def test_probability_and_pipeline_order(kitti_000008, grey):
    img_path, cam2img, cars = kitti_000008
    main = load(make_info(img_path, cam2img, cars))
    # prob 0 never reads the dataset, which is therefore never built
    out = MixUp3D(dataset=dict(type='KittiMono3DDataset', data_root='/nonexistent', ann_file='x.pkl'),
                  prob=0.0)(copy.deepcopy(main))
    assert out['mixup3d_index'] is None and len(out['depths']) == 6
    # after a crop the partner's labels would be in another pixel frame
    np.random.seed(0)
    cropped = RandomCropScaleMono3D(out_size=(1280, 384), prob=1.0)(copy.deepcopy(main))
    with pytest.raises(ValueError, match='before any transform that moves pixels'):
        MixUp3D(dataset=InfoList([make_info(grey(), cam2img, cars[:2])]), prob=0.0)(cropped)
    with pytest.raises(ValueError, match='prob'):
        MixUp3D(dataset=InfoList([]), prob=1.5)


def test_draws_from_a_dataset_config(shared_dir, tmp_path):
    """From a config, as the training configs give it: the dataset is built at the first call."""
    root = make_kitti_root(shared_dir, tmp_path / 'kitti')
    create_kitti_infos(str(root))
    dataset = dict(type='KittiMono3DDataset', data_root=str(root), ann_file='kitti_infos_val.pkl',
                   metainfo=dict(classes=['Pedestrian', 'Cyclist', 'Car']))
    mixup = TRANSFORMS.build(dict(type='MixUp3D', dataset=dataset, prob=1.0))
    assert isinstance(mixup.dataset, dict)
    main = load(DATASETS.build(dataset).get_data_info(0))
    assert len(main['gt_bboxes_3d']) == 6
    out = mixup(copy.deepcopy(main))
    # the val split is frame 8 alone: it mixes with itself
    assert out['mixup3d_index'] == 0 and len(out['gt_bboxes_3d']) == 12
    np.testing.assert_array_equal(out['img'], main['img'])
