"""NuScenesMetric (tools/test.py's evaluator): LiDAR- or ego-frame predictions of a custom version through the
submission format and the devkit. The oracle's "perfect" boxes, moved into each sample's LiDAR frame with the info
file's matrices, must come back as mAP 1 with zero translation, scale, orientation and velocity errors."""
import json
import pickle
import shutil

import numpy as np
import pytest
import torch
from mmdet3d.structures import LiDARInstance3DBoxes
from pyquaternion import Quaternion

from perception.datasets.converters import create_nuscenes_infos
from perception.evaluation.metrics import NuScenesMetric
from perception.fileio import InvalidInputError

CLASSES = ('car', 'truck', 'trailer', 'bus', 'construction_vehicle', 'bicycle', 'motorcycle', 'pedestrian',
           'traffic_cone', 'barrier')


@pytest.fixture(scope='module')
def oracle_infos(shared_dir, tmp_path_factory):
    """The oracle's database (with empty camera files, which it does not ship) and its val info file."""
    root = tmp_path_factory.mktemp('nus') / 'nus-synth-mini'
    shutil.copytree(shared_dir / 'oracles/nuscenes/nus-synth-mini', root)
    for row in json.loads((root / 'v1.0-synth-mini/sample_data.json').read_text()):
        (root / row['filename']).parent.mkdir(parents=True, exist_ok=True)
        (root / row['filename']).touch()
    return root, create_nuscenes_infos(str(root), 'v1.0-synth-mini')['val']


def predictions(shared_dir, ann_file, frame='lidar'):
    """The oracle's perfect boxes as mmdet3d predictions in each sample's LiDAR (or ego) frame."""
    with open(shared_dir / 'oracles/nuscenes/predictions/results_perfect.json') as f:
        submission = json.load(f)['results']
    with open(ann_file, 'rb') as f:
        infos = pickle.load(f)['data_list']
    results = []
    for info in infos:
        to_global = np.asarray(info['ego2global'], np.float64)
        if frame == 'lidar':
            to_global = to_global @ np.asarray(info['lidar_points']['lidar2ego'], np.float64)
        rotation = Quaternion(matrix=to_global[:3, :3], rtol=1e-5, atol=1e-6)
        boxes, scores, labels = [], [], []
        for box in submission[info['token']]:
            centre = np.linalg.solve(to_global[:3, :3], np.asarray(box['translation']) - to_global[:3, 3])
            yaw = (rotation.inverse * Quaternion(box['rotation'])).yaw_pitch_roll[0]
            w, l, h = box['size']
            velocity = np.linalg.solve(to_global[:3, :3], [*box['velocity'], 0.0])
            boxes.append([centre[0], centre[1], centre[2] - h / 2, l, w, h, yaw, velocity[0], velocity[1]])
            scores.append(box['detection_score'])
            labels.append(CLASSES.index(box['detection_name']))
        results.append(dict(pred_instances_3d=dict(
            bboxes_3d=LiDARInstance3DBoxes(torch.tensor(boxes, dtype=torch.float64).reshape(-1, 9), box_dim=9),
            scores_3d=torch.tensor(scores), labels_3d=torch.tensor(labels, dtype=torch.long)),
            sample_idx=info['sample_idx']))
    return results


@pytest.mark.parametrize('frame', ['lidar', 'ego'])
def test_perfect_predictions_score_one_on_a_custom_version(shared_dir, oracle_infos, frame, tmp_path):
    root, ann_file = oracle_infos
    metric = NuScenesMetric(str(root), ann_file, box_frame=frame, outfile_prefix=str(tmp_path))
    metric.dataset_meta = dict(classes=CLASSES)
    metrics = metric.compute_metrics(predictions(shared_dir, ann_file, frame))
    assert metric.version == 'v1.0-synth-mini' and metric.resolved_eval_set == 'synth_val'
    prefix = 'pred_instances_3d_NuScenes'
    assert metrics[f'{prefix}/mAP'] == pytest.approx(1.0, abs=1e-9)
    for name in ('mATE', 'mASE', 'mAOE', 'mAVE'):
        assert metrics[f'{prefix}/{name}'] < 1e-4, name
    # Attributes come from class and speed (mmdet3d's rule), not from the ground truth.
    assert 0 < metrics[f'{prefix}/mAAE'] < 1
    assert metrics[f'{prefix}/car_AP_dist_0.5'] == pytest.approx(1.0)
    assert np.isnan(metrics[f'{prefix}/traffic_cone_attr_err'])
    assert (tmp_path / 'results_nusc.json').is_file() and (tmp_path / 'metrics_summary.json').is_file()


def test_format_only_writes_the_submission(shared_dir, oracle_infos, tmp_path):
    root, ann_file = oracle_infos
    metric = NuScenesMetric(str(root), ann_file, format_only=True, outfile_prefix=str(tmp_path / 'sub'))
    metric.dataset_meta = dict(classes=CLASSES)
    assert metric.compute_metrics(predictions(shared_dir, ann_file)) == {}
    submission = json.loads((tmp_path / 'sub' / 'results_nusc.json').read_text())
    assert len(submission['results']) == 20 and submission['meta']['use_camera'] is True
    assert not (tmp_path / 'sub' / 'metrics_summary.json').exists()
    with pytest.raises(ValueError, match='format_only needs outfile_prefix'):
        NuScenesMetric(str(root), ann_file, format_only=True)


def test_eval_set_must_be_covered(shared_dir, oracle_infos):
    root, ann_file = oracle_infos
    metric = NuScenesMetric(str(root), ann_file)
    metric.dataset_meta = dict(classes=CLASSES)
    with pytest.raises(InvalidInputError, match='no results for sample'):
        metric.compute_metrics(predictions(shared_dir, ann_file)[:-1])
    # On split synth_val_a (scene-9001) the other samples' predictions are ignored, as by the devkit.
    metric = NuScenesMetric(str(root), ann_file, eval_set='synth_val_a')
    metric.dataset_meta = dict(classes=CLASSES)
    assert metric.compute_metrics(predictions(shared_dir, ann_file))['pred_instances_3d_NuScenes/mAP'] == \
        pytest.approx(1.0)


def test_configs_get_this_metric_not_mmdet3ds(oracle_infos):
    from perception.registry import METRICS
    root, ann_file = oracle_infos
    metric = METRICS.build(dict(type='NuScenesMetric', data_root=str(root), ann_file=ann_file))
    assert type(metric) is NuScenesMetric
