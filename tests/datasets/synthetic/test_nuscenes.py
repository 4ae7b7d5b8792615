import json

import numpy as np
import pytest

from perception.datasets.synthetic import generate_nuscenes

VERSION = 'v1.0-synth'


@pytest.fixture(scope='module')
def nus_root(tmp_path_factory):
    out = tmp_path_factory.mktemp('synthnus')
    generate_nuscenes(out, num_scenes=2, num_val_scenes=1, samples_per_scene=3, seed=0, version=VERSION,
                      image_scale=0.1, workers=1, progress=False)
    return out


@pytest.fixture(scope='module')
def nusc(nus_root):
    from nuscenes import NuScenes
    return NuScenes(version=VERSION, dataroot=str(nus_root), verbose=False)


def test_devkit_loads_all_tables_and_linked_samples(nus_root, nusc):
    assert len(list((nus_root / VERSION).glob('*.json'))) == 14  # 13 tables + splits.json
    assert len(nusc.scene) == 2 and len(nusc.sample) == 6
    for scene in nusc.scene:
        sample = nusc.get('sample', scene['first_sample_token'])
        count = 1
        while sample['next']:
            nxt = nusc.get('sample', sample['next'])
            assert nxt['prev'] == sample['token']
            assert nxt['timestamp'] - sample['timestamp'] == pytest.approx(5e5, abs=5e3)
            sample, count = nxt, count + 1
        assert count == scene['nbr_samples'] == 3
    sample = nusc.sample[0]
    assert len(sample['data']) == 7 and len(sample['anns']) > 10
    cam = nusc.get('sample_data', sample['data']['CAM_FRONT'])
    assert (nus_root / cam['filename']).is_file() and cam['width'] == 160 and cam['height'] == 90
    # Instances form tracks, so the devkit derives velocities.
    moving = [a for a in nusc.sample_annotation if a['prev'] and a['next'] and a['attribute_tokens']
              and nusc.get('attribute', a['attribute_tokens'][0])['name'] == 'vehicle.moving']
    assert moving and np.linalg.norm(nusc.box_velocity(moving[0]['token'])[:2]) > 1


def test_num_lidar_pts_equals_the_devkit_count(nus_root, nusc):
    from nuscenes.utils.data_classes import LidarPointCloud
    from nuscenes.utils.geometry_utils import points_in_box
    from pyquaternion import Quaternion
    checked = 0
    for sample in nusc.sample[:3]:
        sd = nusc.get('sample_data', sample['data']['LIDAR_TOP'])
        pc = LidarPointCloud.from_file(str(nus_root / sd['filename']))
        cs = nusc.get('calibrated_sensor', sd['calibrated_sensor_token'])
        pose = nusc.get('ego_pose', sd['ego_pose_token'])
        pc.rotate(Quaternion(cs['rotation']).rotation_matrix)
        pc.translate(np.array(cs['translation']))
        pc.rotate(Quaternion(pose['rotation']).rotation_matrix)
        pc.translate(np.array(pose['translation']))
        for token in sample['anns']:
            ann = nusc.get('sample_annotation', token)
            box = nusc.get_box(token)
            assert points_in_box(box, pc.points[:3]).sum() == ann['num_lidar_pts']
            checked += ann['num_lidar_pts'] > 0
    assert checked > 20


def test_detection_eval_of_ground_truth_gives_map_one(nus_root, nusc, tmp_path):
    from nuscenes.eval.common.loaders import (add_center_dist, filter_eval_boxes, get_samples_of_custom_split,
                                              load_gt_of_sample_tokens)
    from nuscenes.eval.detection.config import config_factory
    from nuscenes.eval.detection.data_classes import DetectionBox
    from nuscenes.eval.detection.evaluate import DetectionEval
    cfg = config_factory('detection_cvpr_2019')
    tokens = get_samples_of_custom_split('synth_val', nusc)
    assert len(tokens) == 3
    gt = load_gt_of_sample_tokens(nusc, tokens, DetectionBox)
    gt = filter_eval_boxes(nusc, add_center_dist(nusc, gt), cfg.class_range)
    assert {b.detection_name for b in gt.all} == set(cfg.class_names), 'every class must be evaluable'
    rng = np.random.default_rng(0)
    scores = iter(rng.permutation(len(gt.all)) / len(gt.all) + 0.01)
    results = {}
    for token in gt.sample_tokens:
        results[token] = [{
            'sample_token': token, 'translation': list(b.translation), 'size': list(b.size),
            'rotation': list(b.rotation), 'velocity': [0.0, 0.0] if np.isnan(b.velocity).any() else list(b.velocity),
            'detection_name': b.detection_name, 'detection_score': float(next(scores)),
            'attribute_name': b.attribute_name} for b in gt.boxes[token]]
    path = tmp_path / 'results.json'
    path.write_text(json.dumps({'meta': {'use_camera': True, 'use_lidar': False, 'use_radar': False,
                                         'use_map': False, 'use_external': False}, 'results': results}))
    ev = DetectionEval(nusc, cfg, str(path), eval_set='synth_val', output_dir=str(tmp_path / 'eval'),
                       verbose=False)
    summary = ev.main(plot_examples=0, render_curves=False)
    assert summary['mean_ap'] == pytest.approx(1.0)
    assert summary['nd_score'] == pytest.approx(1.0, abs=1e-6)
