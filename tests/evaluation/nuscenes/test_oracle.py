"""The nuScenes evaluation against the public oracle (tests/data/oracles/nuscenes): every expected_*.json to 1e-6,
through ``tools/analysis/nuscenes_eval.py``, and the refusal of malformed result files."""
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

from perception.evaluation.metrics.nuscenes_metric import check_results, eval_set_sample_tokens, nuscenes_evaluate
from perception.fileio import InvalidInputError

REPO_ROOT = Path(__file__).resolve().parents[3]
VERSION = 'v1.0-synth-mini'
# (results file, eval set, expected file) of every case of the oracle.
CASES = [('results_perfect.json', 'synth_val', 'expected_perfect.json'),
         ('results_noisy.json', 'synth_val', 'expected_noisy.json'),
         ('results_emptyish.json', 'synth_val', 'expected_emptyish.json'),
         ('results_gtcopy_unfiltered.json', 'synth_val', 'expected_gtcopy_unfiltered.json'),
         ('results_noisy.json', 'synth_val_a', 'expected_noisy__synth_val_a.json')]


@pytest.fixture(scope='module')
def oracle(shared_dir):
    return shared_dir / 'oracles' / 'nuscenes'


@pytest.fixture(scope='module')
def nusc(oracle):
    from nuscenes import NuScenes
    return NuScenes(version=VERSION, dataroot=str(oracle / 'nus-synth-mini'), verbose=False)


def max_difference(ours, expected, path='') -> float:
    """Largest absolute difference between two metric summaries (NaN == NaN); raises on a structural mismatch."""
    if isinstance(expected, dict):
        assert isinstance(ours, dict) and set(ours) == set(expected), f'{path}: keys {set(ours) ^ set(expected)}'
        return max([max_difference(ours[k], v, f'{path}/{k}') for k, v in expected.items()], default=0.0)
    if isinstance(expected, (int, float)) and not isinstance(expected, bool):
        if math.isnan(expected):
            assert math.isnan(ours), f'{path}: {ours} instead of NaN'
            return 0.0
        assert not math.isnan(ours), f'{path}: NaN instead of {expected}'
        return abs(ours - expected)
    assert ours == expected, f'{path}: {ours!r} != {expected!r}'
    return 0.0


def without_run_keys(summary: dict) -> dict:
    return {k: v for k, v in summary.items() if k not in ('eval_time', 'meta')}


def run_cli(*args):
    return subprocess.run([sys.executable, 'tools/analysis/nuscenes_eval.py', *map(str, args)], cwd=REPO_ROOT,
                          capture_output=True, text=True, env={**os.environ, 'PYTHONPATH': str(REPO_ROOT)})


@pytest.mark.parametrize('result, eval_set, expected', CASES, ids=[c[2][9:-5] for c in CASES])
def test_every_oracle_case_to_1e6(oracle, nusc, tmp_path, result, eval_set, expected):
    summary = nuscenes_evaluate(str(oracle / 'predictions' / result), nusc, eval_set, str(tmp_path))
    reference = json.loads((oracle / 'expected' / expected).read_text())
    assert max_difference(without_run_keys(summary), without_run_keys(reference)) <= 1e-6
    assert summary['meta'] == reference['meta']


@pytest.mark.slow
def test_cli_writes_the_devkit_summary_and_prints_its_table(oracle, tmp_path):
    out = tmp_path / 'metrics.json'
    proc = run_cli('--dataroot', oracle / 'nus-synth-mini', '--version', VERSION, '--eval-set', 'synth_val',
                   '--result', oracle / 'predictions' / 'results_noisy.json', '--out', out)
    assert proc.returncode == 0, proc.stderr
    assert 'mAP: 0.2824' in proc.stdout and 'NDS: 0.4147' in proc.stdout and 'Per-class results:' in proc.stdout
    ours = json.loads(out.read_text())
    assert {'mean_ap', 'nd_score', 'tp_errors', 'label_aps'} <= set(ours)
    reference = json.loads((oracle / 'expected' / 'expected_noisy.json').read_text())
    assert max_difference(without_run_keys(ours), without_run_keys(reference)) <= 1e-6


def test_split_file_elsewhere_gives_the_custom_split(oracle, nusc, tmp_path):
    split_file = tmp_path / 'my_splits.json'
    split_file.write_text(json.dumps({'first_scene': ['scene-9001']}))
    summary = nuscenes_evaluate(str(oracle / 'predictions' / 'results_noisy.json'), nusc, 'first_scene',
                                str(tmp_path / 'out'), split_file=str(split_file))
    reference = json.loads((oracle / 'expected' / 'expected_noisy__synth_val_a.json').read_text())
    assert max_difference(without_run_keys(summary), without_run_keys(reference)) <= 1e-6


def test_predefined_split_on_a_custom_version_is_refused(nusc):
    with pytest.raises(ValueError, match="'val' is a predefined nuScenes split"):
        eval_set_sample_tokens(nusc, 'val')


@pytest.fixture()
def noisy(oracle):
    return json.loads((oracle / 'predictions' / 'results_noisy.json').read_text())


def first_box(submission):
    token = next(t for t, boxes in submission['results'].items() if boxes)
    return token, submission['results'][token][0]


def test_malformed_results_name_sample_and_field(nusc, noisy):
    eval_tokens = eval_set_sample_tokens(nusc, 'synth_val')
    known = {s['token'] for s in nusc.sample}
    check_results(noisy, 'r.json', eval_tokens, known)

    token = eval_tokens[3]
    del noisy['results'][token]
    with pytest.raises(InvalidInputError, match=f'r.json: no results for sample {token}'):
        check_results(noisy, 'r.json', eval_tokens, known)


@pytest.mark.parametrize('field, value, problem', [
    ('translation', [1.0, float('nan'), 0.0], 'must be finite'),
    ('velocity', [float('nan'), 0.0], 'must be finite'),
    ('size', [1.0, 2.0], 'list of 3 numbers'),
    ('size', [1.0, 0.0, 2.0], 'must be positive'),
    ('rotation', [1.0, 0.0, 0.0], 'list of 4 numbers'),
    ('detection_name', 'van', 'must be one of'),
    ('detection_score', float('nan'), 'finite number'),
    ('attribute_name', 'vehicle.flying', 'must be one of'),
    ('sample_token', 'abc', 'must be'),
])
def test_bad_box_field_names_sample_and_field(nusc, noisy, field, value, problem):
    eval_tokens = eval_set_sample_tokens(nusc, 'synth_val')
    token, box = first_box(noisy)
    box[field] = value
    with pytest.raises(InvalidInputError, match=f'sample {token}, box 0: field .{field}. .*{problem}'):
        check_results(noisy, 'r.json', eval_tokens)


def test_missing_field_and_unknown_sample_are_refused(nusc, noisy):
    eval_tokens = eval_set_sample_tokens(nusc, 'synth_val')
    token, box = first_box(noisy)
    del box['velocity']
    with pytest.raises(InvalidInputError, match=f'sample {token}, box 0: field .velocity.'):
        check_results(noisy, 'r.json', eval_tokens)
    box['velocity'] = [0.0, 0.0]
    noisy['results']['f' * 32] = []
    with pytest.raises(InvalidInputError, match=f'sample {"f" * 32} is not a sample of the database'):
        check_results(noisy, 'r.json', eval_tokens, {s['token'] for s in nusc.sample})


@pytest.mark.slow
def test_cli_refuses_a_nan_before_the_devkit(oracle, noisy, tmp_path):
    token, box = first_box(noisy)
    box['translation'][2] = float('nan')
    path = tmp_path / 'nan.json'
    path.write_text(json.dumps(noisy))
    proc = run_cli('--dataroot', oracle / 'nus-synth-mini', '--version', VERSION, '--eval-set', 'synth_val',
                   '--result', path)
    assert proc.returncode != 0
    assert f'sample {token}, box 0: field \'translation\' must be finite' in proc.stderr
