"""The monocular dataset on info files converted from the real KITTI frames of mmdet3d's fixtures."""
from pathlib import Path

import numpy as np
import pytest
from mmdet3d.structures import CameraInstance3DBoxes
from mmengine.config import Config
from mmengine.registry import init_default_scope

from perception.datasets import KittiMono3DDataset
from perception.datasets.kitti_mono3d import ANN_KEYS
from perception.datasets.converters import create_kitti_infos
from perception.registry import DATASETS
from perception.structures.camera import project_points
from perception.testing import make_kitti_root

REPO_ROOT = Path(__file__).resolve().parents[2]

CLASSES = ['Pedestrian', 'Cyclist', 'Car']


@pytest.fixture(scope='module')
def kitti_root(shared_dir, tmp_path_factory):
    root = make_kitti_root(shared_dir, tmp_path_factory.mktemp('kitti'))
    create_kitti_infos(str(root))
    return root


def build(kitti_root, split, classes=CLASSES, pipeline='train_pipeline', test_mode=False):
    init_default_scope('perception')  # as a config's default_scope does: pipelines name perception's transforms
    cfg = Config.fromfile(str(REPO_ROOT / 'configs/_base_/datasets/kitti-mono3d.py'))
    folder = 'testing' if split == 'test' else 'training'
    return DATASETS.build(
        dict(type='KittiMono3DDataset', data_root=str(kitti_root), ann_file=f'kitti_infos_{split}.pkl',
             data_prefix=dict(img=f'{folder}/image_2'), pipeline=cfg[pipeline], metainfo=dict(classes=classes),
             test_mode=test_mode))


def test_annotations_are_the_chosen_classes_without_dontcare(kitti_root):
    dataset = build(kitti_root, 'val')
    assert isinstance(dataset, KittiMono3DDataset) and len(dataset) == 1
    ann = dataset.get_data_info(0)['ann_info']
    assert isinstance(ann['gt_bboxes_3d'], CameraInstance3DBoxes) and len(ann['gt_bboxes_3d']) == 6
    assert ann['gt_labels_3d'].tolist() == [2] * 6 and ann['gt_bboxes_labels'].tolist() == [2] * 6
    # of the 10 label rows (6 cars, 4 DontCare) only what the pipeline reads, of the cars
    assert set(ann) == set(ANN_KEYS) and len(dataset.get_data_info(0)['instances']) == 10
    # the boxes are bottom-centred: the gravity centre is half a height above the label's location
    bottom = ann['gt_bboxes_3d'].bottom_center.numpy()
    np.testing.assert_allclose(bottom[1], [-1.17, 1.65, 7.86], atol=1e-6)
    np.testing.assert_allclose(ann['gt_bboxes_3d'].gravity_center.numpy()[1], [-1.17, 1.65 - 1.57 / 2, 7.86],
                               atol=1e-6)
    cam2img = dataset.get_data_info(0)['cam2img']
    np.testing.assert_allclose(project_points(ann['gt_bboxes_3d'].gravity_center.double().numpy(), cam2img),
                               ann['centers_2d'], atol=1e-3)


def test_classes_are_configurable(kitti_root):
    cars = build(kitti_root, 'val', classes=['Car']).get_data_info(0)['ann_info']
    assert cars['gt_labels_3d'].tolist() == [0] * 6
    pedestrians = build(kitti_root, 'train', classes=['Pedestrian', 'Car']).get_data_info(0)['ann_info']
    assert pedestrians['gt_labels_3d'].tolist() == [0]
    assert len(build(kitti_root, 'train', classes=['Car']).get_data_info(0)['ann_info']['gt_bboxes_3d']) == 0


def test_train_pipeline_packs_a_consistent_sample(kitti_root):
    dataset = build(kitti_root, 'val')
    for seed in range(3):
        np.random.seed(seed)
        item = dataset[0]
        sample = item['data_samples']
        assert item['inputs']['img'].shape == (3, 384, 1280)
        boxes = sample.gt_instances_3d.bboxes_3d
        assert isinstance(boxes, CameraInstance3DBoxes) and len(boxes) >= 4
        centres = project_points(boxes.gravity_center.double().numpy(), sample.metainfo['cam2img'],
                                 with_depth=True)
        np.testing.assert_allclose(sample.gt_instances_3d.centers_2d.numpy(), centres[:, :2], atol=0.5)
        np.testing.assert_allclose(sample.gt_instances_3d.depths.numpy(), centres[:, 2], atol=1e-3)
        assert sample.gt_instances.bboxes.shape == (len(boxes), 4)


def test_test_mode_keeps_the_annotations(kitti_root):
    dataset = build(kitti_root, 'val', pipeline='test_pipeline', test_mode=True)
    sample = dataset[0]['data_samples']
    assert len(sample.eval_ann_info['gt_bboxes_3d']) == 6 and set(sample.eval_ann_info) == set(ANN_KEYS)
    assert sample.metainfo['ori_cam2img'].shape == (4, 4)
    test = build(kitti_root, 'test', pipeline='test_pipeline', test_mode=True)
    assert len(test[0]['data_samples'].eval_ann_info['gt_bboxes_3d']) == 0


def test_lidar_boxes_are_refused(kitti_root):
    with pytest.raises(ValueError, match='camera-frame boxes'):
        KittiMono3DDataset(data_root=str(kitti_root), ann_file='kitti_infos_val.pkl', box_type_3d='LiDAR')


def test_frame_id_is_the_kitti_frame(kitti_root):
    """mmengine's BaseDataset puts the dataset position in ``sample_idx``; the val split here is frame
    000008 alone, so position 0 would name training frame 000000 in KittiMetric and the result files."""
    dataset = build(kitti_root, 'val', pipeline='test_pipeline', test_mode=True)
    assert len(dataset) == 1
    info = dataset.get_data_info(0)
    assert info['frame_id'] == 8 and info['sample_idx'] == 0
    sample = dataset[0]['data_samples']
    assert sample.frame_id == 8
