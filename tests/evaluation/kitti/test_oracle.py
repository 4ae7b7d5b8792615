"""The evaluator against the official C++ devkit's outputs stored in tests/data/oracles/kitti."""
import json

import numpy as np
import pytest

from perception.evaluation.kitti import kitti_eval
from perception.fileio import read_label_file

ORACLE_SETS = ('real3', 'synthetic200', 'edge')


def load_set(set_dir):
    n = json.loads((set_dir / 'expected.json').read_text())['num_frames']
    gt = [read_label_file(set_dir / 'label_2' / f'{i:06d}.txt', with_score=False) for i in range(n)]
    dt = [read_label_file(set_dir / 'results' / f'{i:06d}.txt', with_score=True) for i in range(n)]
    return gt, dt


@pytest.fixture(scope='module')
def evaluated(shared_dir):
    """{set: (expected.json, our results)}, each set evaluated once."""
    out = {}
    for name in ORACLE_SETS:
        set_dir = shared_dir / 'oracles' / 'kitti' / name
        out[name] = json.loads((set_dir / 'expected.json').read_text()), kitti_eval(*load_set(set_dir))
    return out


def test_every_oracle_set_is_tested(shared_dir):
    found = sorted(p.parent.name for p in (shared_dir / 'oracles' / 'kitti').glob('*/expected.json'))
    assert found == sorted(ORACLE_SETS)


@pytest.mark.parametrize('name', ORACLE_SETS)
def test_ap_matches_official(evaluated, name):
    expected, results = evaluated[name]
    assert results['num_frames'] == expected['num_frames']
    assert results['evaluated'] == expected['evaluated']
    assert results['compute_aos'] == expected['compute_aos']
    checked = 0
    for cls, per_metric in expected['results'].items():
        for metric, entry in per_metric.items():
            ours = results['results'][cls][metric]
            if entry is None:  # the devkit writes no stats file: not evaluated, not 0
                assert ours is None, (cls, metric)
                continue
            for recall in ('R40', 'R11'):
                for difficulty, value in entry[recall].items():
                    assert ours[recall][difficulty] == pytest.approx(value, abs=1e-3), \
                        (cls, metric, recall, difficulty)
                    checked += 1
    assert checked > 0


@pytest.mark.parametrize('name', ORACLE_SETS)
def test_precision_curves_match_official(evaluated, name):
    expected, results = evaluated[name]
    assert sorted(results['precision']) == sorted(expected['precision'])
    for cls, per_metric in expected['precision'].items():
        assert sorted(results['precision'][cls]) == sorted(per_metric)
        for metric, per_difficulty in per_metric.items():
            for difficulty, values in per_difficulty.items():
                # The devkit prints them with %f.
                np.testing.assert_allclose(
                    results['precision'][cls][metric][difficulty], values, atol=5.1e-7, rtol=0,
                    err_msg=f'{name} {cls} {metric} {difficulty}')


def test_loose_iou_set(shared_dir, evaluated):
    gt, dt = load_set(shared_dir / 'oracles' / 'kitti' / 'synthetic200')
    loose = kitti_eval(gt, dt, iou_set='loose')
    strict = evaluated['synthetic200'][1]
    assert loose['min_overlap'] == {'Car': 0.5, 'Pedestrian': 0.25, 'Cyclist': 0.25}
    for cls in ('Car', 'Pedestrian', 'Cyclist'):
        assert loose['results'][cls]['3d']['R40']['moderate'] > \
            strict['results'][cls]['3d']['R40']['moderate'] + 5, cls


def test_exact_threshold_cases_move_with_a_tiny_shift(shared_dir, evaluated):
    """Edge frame 3: a 2D IoU of exactly 0.7 does not match; 0.01 px more overlap does."""
    gt, dt = load_set(shared_dir / 'oracles' / 'kitti' / 'edge')
    frame = 3
    i = int(np.flatnonzero(gt[frame]['name'] == 'Car')[0])
    gt_box = gt[frame]['bbox'][i]
    ious = [_iou2d(gt_box, b) for b in dt[frame]['bbox']]
    j = int(np.argmin(np.abs(np.array(ious) - 0.7)))
    assert ious[j] == 0.7
    before = evaluated['edge'][1]['results']['Car']['bbox']['R40']['moderate']
    dt[frame]['bbox'][j] = gt_box
    after = kitti_eval(gt, dt, classes=['Car'])['results']['Car']['bbox']['R40']['moderate']
    assert after > before + 1


def _iou2d(a, b):
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    if w <= 0 or h <= 0:
        return 0.0
    inter = w * h
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)
