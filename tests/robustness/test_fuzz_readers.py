"""Seeded, bounded fuzzing of every reader of the project's input files (issue 21).

Each reader gets a few hundred random mutations of a valid file. A mutation either parses to exactly the values
of the valid file or raises :class:`~perception.fileio.InvalidInputError`: never another exception type, never a
hang (a SIGALRM bounds each call). Which mutations can keep a file valid decides what each format gets:

- KITTI text (label, result, calib): any byte from ``POISON`` (no digit, sign, point, exponent letter) inserted
  or substituted, whitespace inserted or deleted, a line cut before its last field, a byte-order mark, CRLF
  line ends; never inside a label's class name, which is free text in the format.
- Depth PNG and checkpoint: any byte anywhere flipped, inserted or deleted, or the file cut: the PNG chunks'
  CRCs and the checkpoint's SHA-256 cover every byte.
- Depth ``.npy``: bytes inserted into or deleted from the header (magic, length, dict), the file cut or
  extended. Its data bytes carry no checksum (any value there is a valid prediction), and a substituted header
  byte can name another valid dtype of the same size (``<f4`` -> ``<i4``).
- Info pickle: the file cut or extended, and payloads naming a forbidden global. Pickles carry no checksum
  either: a flipped byte can give another valid pickle (``True`` for ``False``), so under random flips the
  property checked is the weaker one: InvalidInputError, or a value made of builtins and numpy types only.
"""
import importlib.util
import os
import pickle
import signal
import string
import subprocess
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
import torch

from perception.engine.checkpoint import load_from_local, write_checksum
from perception.evaluation.kitti import read_result_file
from perception.fileio import InvalidInputError, load_pickle
from perception.fileio.depth import read_depth_png, write_depth_png
from perception.fileio.kitti import read_calib_file, read_label_file

MUTATIONS = 300
SEED = 21
TIME_LIMIT_S = 5

WHITESPACE = b' \t\n\r\x0b\x0c\x1c\x1d\x1e\x1f'
POISON = bytes(b for b in range(256)
               if chr(b) not in string.digits + '.+-eE' and b not in WHITESPACE)


@contextmanager
def _time_limit(seconds: int):

    def _raise(signum, frame):
        raise TimeoutError(f'a reader ran over {seconds} s')

    previous = signal.signal(signal.SIGALRM, _raise)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def _same(a, b) -> bool:
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return type(a) is type(b) and len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, (np.ndarray, torch.Tensor)):
        a, b = np.asarray(a), np.asarray(b)
        return a.dtype == b.dtype and a.shape == b.shape and np.array_equal(a, b)
    return type(a) is type(b) and a == b


def _only_safe_types(value) -> bool:
    if isinstance(value, dict):
        return all(_only_safe_types(k) and _only_safe_types(v) for k, v in value.items())
    if isinstance(value, (list, tuple, set, frozenset)):
        return all(_only_safe_types(v) for v in value)
    return isinstance(value, (str, bytes, bytearray, int, float, complex, bool, type(None), slice, np.ndarray,
                              np.generic, np.dtype))


def _check(reader, path: Path, data: bytes, expected, weak: bool = False) -> str:
    """Write ``data`` to ``path`` and read it: 'same', 'error' or (``weak``) 'other'; fails otherwise."""
    path.write_bytes(data)
    try:
        with _time_limit(TIME_LIMIT_S):
            got = reader(path)
    except InvalidInputError as e:
        assert str(path) in str(e), f'the error does not name the file: {e}'
        return 'error'
    except Exception as e:  # noqa: B902 -- the point of the test
        pytest.fail(f'{type(e).__name__} instead of InvalidInputError for {data[:200]!r}...: {e}')
    if _same(expected, got):
        return 'same'
    assert weak and _only_safe_types(got), f'parsed to other values: {data[:300]!r}'
    return 'other'


def _text_mutation(rng: np.random.Generator, data: bytes, frozen: np.ndarray) -> bytes:
    """One mutation of a KITTI text file; bytes where ``frozen`` is True (class names) are left alone, and
    nothing is inserted right after them."""
    free = np.flatnonzero(~frozen)
    op = rng.integers(7)
    at = int(rng.choice(free))
    insert_at = int(rng.choice([i for i in free if i == 0 or not frozen[i - 1]] + [len(data)]))
    if op == 0:  # a foreign byte inserted
        return data[:insert_at] + bytes([rng.choice(list(POISON))]) + data[insert_at:]
    if op == 1:  # a byte replaced by a foreign one
        return data[:at] + bytes([rng.choice(list(POISON))]) + data[at + 1:]
    if op == 2:  # whitespace inserted
        return data[:insert_at] + bytes([rng.choice(list(WHITESPACE))]) + data[insert_at:]
    if op == 3:  # whitespace deleted
        spaces = [i for i in free if data[i] in WHITESPACE]
        at = int(rng.choice(spaces))
        return data[:at] + data[at + 1:]
    if op == 4:  # a line cut before its last field
        lines = data.split(b'\n')
        i = int(rng.integers(len(lines)))
        fields = lines[i].split(b' ')
        if len(fields) > 2:
            lines[i] = b' '.join(fields[:int(rng.integers(1, len(fields) - 1))])
        return b'\n'.join(lines)
    if op == 5:
        return b'\xef\xbb\xbf' + data
    return data.replace(b'\n', b'\r\n')


def _class_name_bytes(data: bytes, label: bool) -> np.ndarray:
    frozen = np.zeros(len(data), bool)
    if label:
        start = 0
        for line in data.split(b'\n'):
            frozen[start:start + len(line.split(b' ')[0])] = True
            start += len(line) + 1
    return frozen


def _binary_mutation(rng: np.random.Generator, data: bytes) -> bytes:
    op = rng.integers(5)
    at = int(rng.integers(len(data)))
    if op == 0:
        return data[:at] + bytes([data[at] ^ int(rng.integers(1, 256))]) + data[at + 1:]
    if op == 1:
        return data[:at] + bytes([int(rng.integers(256))]) + data[at:]
    if op == 2:
        return data[:at] + data[at + 1:]
    if op == 3:
        return data[:int(rng.integers(len(data)))]
    return data + bytes(rng.integers(0, 256, int(rng.integers(1, 64)), dtype=np.uint8))


def _largest(folder: Path) -> Path:
    return max(sorted(folder.glob('*.txt')), key=lambda p: p.stat().st_size)


@pytest.mark.parametrize('kind', ['label', 'result', 'calib'])
def test_kitti_text_readers(shared_dir, tmp_path, kind):
    source = {
        'label': lambda: _largest(shared_dir / 'oracles' / 'kitti' / 'real3' / 'label_2'),
        'result': lambda: _largest(shared_dir / 'oracles' / 'kitti' / 'edge' / 'results'),
        'calib': lambda: shared_dir / 'oracles' / 'parity' / 'public' / 'frame' / '000008_calib_kitti.txt',
    }[kind]()
    reader = {
        'label': lambda p: read_label_file(p, with_score=False),
        'result': read_result_file,
        'calib': read_calib_file,
    }[kind]
    data = source.read_bytes()
    path = tmp_path / source.name
    expected = reader(source)
    rng = np.random.default_rng(SEED)
    outcomes = []
    for _ in range(MUTATIONS):
        mutated = _text_mutation(rng, data, _class_name_bytes(data, kind != 'calib'))
        outcomes.append(_check(reader, path, mutated, expected))
    assert {'same', 'error'} <= set(outcomes)  # the mutations reach both outcomes


def test_depth_png_reader(tmp_path):
    rng = np.random.default_rng(SEED)
    depth = rng.uniform(0, 80, (6, 9))
    depth[depth < 10] = 0
    path = tmp_path / 'gt.png'
    write_depth_png(path, depth)
    data = path.read_bytes()
    expected = read_depth_png(path)
    outcomes = [_check(read_depth_png, path, _binary_mutation(rng, data), expected) for _ in range(MUTATIONS)]
    assert 'error' in outcomes


def test_depth_npy_reader(tmp_path):
    spec = importlib.util.spec_from_file_location(
        'depth_eval', Path(__file__).resolve().parents[2] / 'tools' / 'analysis' / 'depth_eval.py')
    depth_eval = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(depth_eval)
    load_prediction = depth_eval.load_prediction
    rng = np.random.default_rng(SEED)
    path = tmp_path / 'pred.npy'
    np.save(path, rng.uniform(1, 80, (6, 9)).astype(np.float32))
    data = path.read_bytes()
    header = data.index(b'\n') + 1
    expected = load_prediction(str(path), (6, 9))

    def reader(p):
        return load_prediction(str(p), (6, 9))

    outcomes = []
    for _ in range(MUTATIONS):
        op = rng.integers(4)
        at = int(rng.integers(header))
        if op == 0:
            mutated = data[:at] + bytes([int(rng.integers(256))]) + data[at:]
        elif op == 1:
            mutated = data[:at] + data[at + 1:]
        elif op == 2:
            mutated = data[:int(rng.integers(len(data)))]
        else:
            mutated = data + bytes(rng.integers(0, 256, int(rng.integers(1, 64)), dtype=np.uint8))
        outcomes.append(_check(reader, path, mutated, expected))
    assert 'error' in outcomes


def _info():
    return dict(metainfo=dict(categories={'Car': 0, 'DontCare': -1}, dataset='kitti'),
                data_list=[dict(sample_idx=i, plane=np.arange(4.) + i, depth=np.float32(i), valid=bool(i % 2),
                                instances=[dict(bbox=[1., 2., 3., 4.], bbox_label=0)]) for i in range(3)])


class _Global:
    """Pickles as a call of ``func(*args)``: what a planted info file holds."""

    def __init__(self, func, *args):
        self.call = func, args

    def __reduce__(self):
        return self.call


@pytest.mark.parametrize('protocol', [2, 4])
def test_info_pickle_reader(tmp_path, protocol):
    rng = np.random.default_rng(SEED)
    path = tmp_path / 'kitti_infos_val.pkl'
    data = pickle.dumps(_info(), protocol=protocol)
    expected = _info()
    marker = tmp_path / 'ran'
    payloads = [(os.system, f'touch {marker}'), (eval, f'open({str(marker)!r}, "w")'),
                (subprocess.call, ['touch', str(marker)]), (getattr, np.ndarray, 'tofile'), (np.load, str(marker)),
                (np.core.multiarray._reconstruct, _Global(os.system, 'true'), (0, ), b'b')]
    for payload in payloads:
        info = _info()
        info['data_list'][1]['depth'] = _Global(*payload)
        assert _check(load_pickle, path, pickle.dumps(info, protocol=protocol), expected) == 'error'
    outcomes = []
    for _ in range(MUTATIONS):
        op = rng.integers(3)
        if op == 0:
            mutated = data[:int(rng.integers(len(data)))]
        elif op == 1:
            mutated = data + bytes(rng.integers(0, 256, 8, dtype=np.uint8))
        else:
            mutated = _binary_mutation(rng, data)
        outcomes.append(_check(load_pickle, path, mutated, expected, weak=op == 2))
    assert not marker.exists()
    assert {'same', 'error'} <= set(outcomes)


def test_checkpoint_reader(tmp_path):
    rng = np.random.default_rng(SEED)
    source = tmp_path / 'source.pth'
    torch.save({'state_dict': {'w': torch.arange(12.).reshape(3, 4), 'b': torch.zeros(3)},
                'meta': {'epoch': 3, 'seed': 0}}, source)
    path = tmp_path / 'epoch_3.pth'
    path.write_bytes(source.read_bytes())
    write_checksum(str(path))
    data = path.read_bytes()
    expected = load_from_local(str(path))
    outcomes = [
        _check(load_from_local, path, _binary_mutation(rng, data), expected) for _ in range(MUTATIONS)
    ]
    assert set(outcomes) == {'error'}  # every changed byte breaks the SHA-256
