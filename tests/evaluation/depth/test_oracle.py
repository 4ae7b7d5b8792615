"""The depth oracle of tests/data/oracles/depth (real KITTI ground truth, monodepth2 protocol)."""
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from perception.evaluation.depth.functional import METRIC_KEYS, average_metrics, evaluate_depth
from perception.fileio import InvalidInputError
from perception.fileio.depth import read_depth_png, write_depth_png

REPO = Path(__file__).resolve().parents[3]
CLI = REPO / 'tools' / 'analysis' / 'depth_eval.py'
PROTOCOLS = {'garg_median': ('garg', 'median'), 'none_none': ('none', 'none')}


def _load_cli():
    spec = importlib.util.spec_from_file_location('depth_eval', CLI)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope='module')
def oracle(shared_dir):
    return shared_dir / 'oracles' / 'depth'


@pytest.mark.parametrize('pred_set', ['pred_full', 'pred_low'])
@pytest.mark.parametrize('protocol', sorted(PROTOCOLS))
def test_functional_reproduces_oracle(oracle, pred_set, protocol):
    crop, scaling = PROTOCOLS[protocol]
    expected = json.loads((oracle / f'expected_{pred_set}.json').read_text())[protocol]
    stems = sorted(p.stem for p in (oracle / 'gt').glob('*.png'))
    assert len(stems) == 3
    metrics = average_metrics(
        evaluate_depth(
            np.load(oracle / pred_set / f'{s}.npy'),
            read_depth_png(oracle / 'gt' / f'{s}.png'),
            crop=crop,
            scaling=scaling,
            min_depth=1e-3,
            max_depth=80.) for s in stems)
    # pred_low goes through a float32 resize, whose rounding differs from the oracle's by ~1e-8.
    assert metrics == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize('pred_set,protocol', [('pred_full', 'garg_median'), ('pred_low', 'none_none')])
def test_cli_reproduces_oracle(oracle, tmp_path, pred_set, protocol):
    crop, scaling = PROTOCOLS[protocol]
    out = tmp_path / 'metrics.json'
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get('PYTHONPATH', '')]))
    args = [
        '--gt-dir', str(oracle / 'gt'), '--pred-dir', str(oracle / pred_set), '--crop', crop,
        '--scaling', scaling, '--min-depth', '1e-3', '--max-depth', '80', '--out', str(out)
    ]
    proc = subprocess.run(
        [sys.executable, str(CLI), *args], capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert 'abs_rel' in proc.stdout
    metrics = json.loads(out.read_text())
    assert sorted(metrics) == sorted(METRIC_KEYS)
    expected = json.loads((oracle / f'expected_{pred_set}.json').read_text())[protocol]
    assert metrics == pytest.approx(expected, rel=1e-6)


@pytest.fixture
def small_case(tmp_path):
    gt_dir, pred_dir = tmp_path / 'gt', tmp_path / 'pred'
    gt_dir.mkdir()
    pred_dir.mkdir()
    gt = np.full((6, 20), 10.)
    write_depth_png(gt_dir / 'a.png', gt)
    write_depth_png(gt_dir / 'b.png', gt)
    np.save(pred_dir / 'a.npy', np.full((3, 10), 8., dtype=np.float32))
    return gt_dir, pred_dir


def test_cli_errors_name_the_file(small_case, tmp_path):
    cli = _load_cli()
    gt_dir, pred_dir = small_case
    args = ['--gt-dir', str(gt_dir), '--pred-dir', str(pred_dir), '--crop', 'none', '--scaling', 'none']
    with pytest.raises(FileNotFoundError, match='b.npy'):
        cli.main(args)
    np.save(pred_dir / 'b.npy', np.full((20, 6), 8.))  # transposed
    with pytest.raises(ValueError, match=r'b\.npy.*shape'):
        cli.main(args)
    nan = np.full((6, 20), 8.)
    nan[2, 3] = np.nan
    np.save(pred_dir / 'b.npy', nan)
    with pytest.raises(ValueError, match=r'b\.npy.*NaN'):
        cli.main(args)
    np.save(pred_dir / 'b.npy', np.full((1, 6, 20), 8.))
    out = tmp_path / 'sub' / 'm.json'
    metrics = cli.main(args + ['--out', str(out)])
    assert metrics['abs_rel'] == pytest.approx(0.2)
    assert json.loads(out.read_text()) == pytest.approx(metrics)


def test_cli_refuses_impossible_predictions(oracle, tmp_path):
    """Issue 21 defect 4: an all-zero map printed NaN errors beside a plausible a1 (and NaN in the JSON); a
    sign-flipped map scored exactly like the right one under median scaling."""
    cli = _load_cli()
    stem = sorted(p.stem for p in (oracle / 'gt').glob('*.png'))[0]
    gt_dir, pred_dir = tmp_path / 'gt', tmp_path / 'pred'
    gt_dir.mkdir()
    pred_dir.mkdir()
    (gt_dir / f'{stem}.png').write_bytes((oracle / 'gt' / f'{stem}.png').read_bytes())
    pred = np.load(oracle / 'pred_full' / f'{stem}.npy')
    out = tmp_path / 'm.json'
    args = ['--gt-dir', str(gt_dir), '--pred-dir', str(pred_dir), '--crop', 'garg', '--scaling', 'median',
            '--out', str(out)]
    for bad, count in ((np.zeros_like(pred), r'\d+ of \d+'), (-pred, r'\d+ of \d+')):
        np.save(pred_dir / f'{stem}.npy', bad)
        with pytest.raises(InvalidInputError, match=rf'{stem}\.npy: {count} evaluated pixels .* <= 0'):
            cli.main(args)
        assert not out.exists()
    np.save(pred_dir / f'{stem}.npy', pred)
    right = cli.main(args)
    text = out.read_text()
    assert 'NaN' not in text and 'Infinity' not in text and json.loads(text) == pytest.approx(right)


def test_object_npy_names_the_file(small_case):
    """Issue 21 defect 7: an object-dtype .npy prediction raised an error that named no file."""
    cli = _load_cli()
    gt_dir, pred_dir = small_case
    np.save(pred_dir / 'b.npy', np.array([{'depth': 8.}, None], dtype=object), allow_pickle=True)
    with pytest.raises(InvalidInputError, match=r'b\.npy: not a readable \.npy'):
        cli.main(['--gt-dir', str(gt_dir), '--pred-dir', str(pred_dir), '--crop', 'none', '--scaling', 'none'])
