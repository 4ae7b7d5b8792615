"""tools/analysis/kitti_eval.py and the bad-input rules of the KITTI evaluator."""
import json
import os
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

from perception.evaluation.kitti import kitti_eval, load_kitti_folders, read_result_file, read_split_file
from perception.fileio import InvalidInputError

REPO_ROOT = Path(__file__).resolve().parents[3]

DET_ROW = ('Car -1 -1 -1.5094 419.0603 172.5338 440.8812 192.1503 1.5630 1.7272 3.8176 -15.7659 1.5603 63.4601 '
           '-1.7529 0.2100\n')


def run_cli(*args):
    return subprocess.run([sys.executable, 'tools/analysis/kitti_eval.py', *map(str, args)], cwd=REPO_ROOT,
                          capture_output=True, text=True, env={**os.environ, 'PYTHONPATH': str(REPO_ROOT)})


def test_cli_reproduces_oracle_set(shared_dir, tmp_path):
    set_dir = shared_dir / 'oracles' / 'kitti' / 'real3'
    proc = run_cli('--gt-dir', set_dir / 'label_2', '--result-dir', set_dir / 'results', '--out',
                   tmp_path / 'ap.json')
    assert proc.returncode == 0, proc.stderr
    assert 'Car        3d' in proc.stdout and 'R40 moderate' in proc.stdout
    ours = json.loads((tmp_path / 'ap.json').read_text())
    expected = json.loads((set_dir / 'expected.json').read_text())
    for key in ('num_frames', 'evaluated', 'compute_aos', 'difficulty'):
        assert ours[key] == expected[key], key
    for cls, per_metric in expected['results'].items():
        for metric, entry in per_metric.items():
            for recall, values in entry.items():
                for difficulty, value in values.items():
                    assert ours['results'][cls][metric][recall][difficulty] == pytest.approx(value, abs=1e-3)


@pytest.mark.slow
def test_cli_split_file_loose_and_bad_row(shared_dir, tmp_path):
    set_dir = shared_dir / 'oracles' / 'kitti' / 'edge'
    (tmp_path / 'split.txt').write_text('000003\n000008\n')
    proc = run_cli('--gt-dir', set_dir / 'label_2', '--result-dir', set_dir / 'results', '--split-file',
                   tmp_path / 'split.txt', '--iou-set', 'loose', '--out', tmp_path / 'ap.json')
    assert proc.returncode == 0, proc.stderr
    ours = json.loads((tmp_path / 'ap.json').read_text())
    assert ours['num_frames'] == 2 and ours['min_overlap']['Car'] == 0.5

    results = tmp_path / 'results'
    shutil.copytree(set_dir / 'results', results)
    bad = results / '000004.txt'
    bad.write_text(bad.read_text().replace(' 0.', ' O.', 1))
    proc = run_cli('--gt-dir', set_dir / 'label_2', '--result-dir', results)
    assert proc.returncode != 0
    assert f'{bad}:1: field' in proc.stderr and 'must be a number' in proc.stderr


def test_missing_result_files_warn_once(shared_dir, tmp_path):
    set_dir = shared_dir / 'oracles' / 'kitti' / 'edge'
    results = tmp_path / 'results'
    shutil.copytree(set_dir / 'results', results)
    (results / '000003.txt').unlink()
    (results / '000008.txt').unlink()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        ids, gt, dt = load_kitti_folders(str(set_dir / 'label_2'), str(results))
    assert len(caught) == 1
    assert '2 of 11 frames have no result file' in str(caught[0].message)
    assert len(dt[3]['name']) == 0 and len(dt[8]['name']) == 0 and len(dt[10]['name']) == 5

    # Same as evaluating empty result files.
    for i in (3, 8):
        (results / f'{i:06d}.txt').write_text('')
    _, _, dt_empty = load_kitti_folders(str(set_dir / 'label_2'), str(results))
    assert kitti_eval(gt, dt)['results'] == kitti_eval(gt, dt_empty)['results']


def test_missing_ground_truth_and_result_folder(tmp_path):
    (tmp_path / 'gt').mkdir()
    (tmp_path / 'res').mkdir()
    with pytest.raises(FileNotFoundError, match='no ground-truth'):
        load_kitti_folders(str(tmp_path / 'gt'), str(tmp_path / 'res'))
    with pytest.raises(FileNotFoundError, match='missing ground truth .*000007.txt'):
        load_kitti_folders(str(tmp_path / 'gt'), str(tmp_path / 'res'), ['000007'])
    with pytest.raises(FileNotFoundError, match='result folder'):
        load_kitti_folders(str(tmp_path / 'gt'), str(tmp_path / 'nope'), ['000007'])


@pytest.mark.parametrize('row,message', [
    (DET_ROW.replace('1.5630', 'nan'), r':2: field "h" must be finite'),
    (DET_ROW.replace('1.7272', '-1.7272'), r':2: dimensions \(h, w, l\) must be >= 0'),
    (DET_ROW.replace(' 0.2100', ''), r':2: expected 16 columns'),
])
def test_bad_predictions_name_file_and_line(tmp_path, row, message):
    path = tmp_path / '000000.txt'
    path.write_text(DET_ROW + row)
    with pytest.raises(ValueError, match=str(path) + message):
        read_result_file(str(path))


def test_2d_only_detections_are_accepted(tmp_path):
    path = tmp_path / '000000.txt'
    path.write_text('Car -1 -1 -10 100.00 150.00 200.00 220.00 -1 -1 -1 -1000 -1000 -1000 -10 0.8\n')
    dets = read_result_file(str(path))
    gt = {
        'name': np.array(['Car']), 'truncated': np.zeros(1), 'occluded': np.zeros(1, int),
        'alpha': np.zeros(1), 'bbox': np.array([[100., 150., 200., 220.]]),
        'dimensions': np.array([[1.5, 1.6, 3.9]]), 'location': np.array([[0., 1.6, 20.]]),
        'rotation_y': np.zeros(1)
    }
    results = kitti_eval([gt], [dets], classes=['Car'])
    # The devkit's rules: 2D only, and no AOS when a detection has alpha = -10.
    assert results['evaluated']['Car'] == {'bbox': True, 'aos': False, 'bev': False, '3d': False}
    # One GT found: p[0] = 1 and the rest 0 (quirk 1 of the oracle README).
    assert results['results']['Car']['bbox']['R11']['easy'] == pytest.approx(100 / 11)


def _edge_copy(shared_dir, tmp_path):
    set_dir = shared_dir / 'oracles' / 'kitti' / 'edge'
    gt, results = tmp_path / 'label_2', tmp_path / 'results'
    shutil.copytree(set_dir / 'label_2', gt)
    shutil.copytree(set_dir / 'results', results)
    return gt, results


def test_duplicate_ids_in_the_split_file_are_refused(shared_dir, tmp_path):
    """Issue 21 defect 5: a frame listed twice was evaluated twice (Car bbox R40 moderate 10.0 instead of 7.5)."""
    gt, results = _edge_copy(shared_dir, tmp_path)
    split = tmp_path / 'val.txt'
    split.write_text('000003\n000008\n\n000003\n')
    with pytest.raises(InvalidInputError, match=rf'{split}:4: frame 000003 is listed again \(first on line 1\)'):
        read_split_file(str(split))
    split.write_text('000003\n000008\n')
    assert read_split_file(str(split)) == ['000003', '000008']


def test_unknown_classes_warn_once_per_file(shared_dir, tmp_path):
    """Issue 21 defect 5: rows of class Vehicle or Cars were dropped without a word."""
    gt, results = _edge_copy(shared_dir, tmp_path)
    ids = sorted(p.stem for p in gt.glob('*.txt'))
    (results / f'{ids[0]}.txt').write_text(DET_ROW.replace('Car ', 'Vehicle ') * 2 + DET_ROW.replace('Car ', 'Cars '))
    (results / f'{ids[1]}.txt').write_text(DET_ROW.replace('Car ', 'Misc ') + DET_ROW.replace('Car ', 'car '))
    row = (gt / f'{ids[2]}.txt').read_text().splitlines()[0].split(' ', 1)[1]
    (gt / f'{ids[2]}.txt').write_text(f'Tram {row}\nDontCare {row}\nTruck {row}\nBus {row}\n')
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        load_kitti_folders(str(gt), str(results))
    messages = sorted(str(w.message) for w in caught)
    assert len(messages) == 2, messages
    assert f'{ids[0]}.txt: 3 rows of classes KITTI does not define (Cars x1, Vehicle x2)' in messages[0] + messages[1]
    assert f'{ids[2]}.txt: 1 rows of classes KITTI does not define (Bus x1)' in messages[0] + messages[1]


def test_byte_order_mark_does_not_hide_the_first_row(tmp_path):
    """Issue 21 defect 5: a UTF-8 byte-order mark hid the first row of every file."""
    path = tmp_path / '000000.txt'
    path.write_bytes(b'\xef\xbb\xbf' + DET_ROW.encode() * 2)
    dets = read_result_file(str(path))
    assert dets['name'].tolist() == ['Car', 'Car']
    split = tmp_path / 'val.txt'
    split.write_bytes(b'\xef\xbb\xbf000000\r\n000001\r\n')
    assert read_split_file(str(split)) == ['000000', '000001']


def test_result_files_without_ground_truth_warn_with_their_count(shared_dir, tmp_path):
    gt, results = _edge_copy(shared_dir, tmp_path)
    for frame in ('900000', '900001'):
        (results / f'{frame}.txt').write_text(DET_ROW)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        load_kitti_folders(str(gt), str(results))
    assert [str(w.message).split(' result files')[0] for w in caught] == ['2']
