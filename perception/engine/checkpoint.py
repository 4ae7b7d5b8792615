"""Checkpoint policy: atomic writes, and loading with ``torch.load(weights_only=True)`` only.

mmengine's checkpoints carry a few non-tensor objects (the message hub's ``HistoryBuffer`` and the
numpy arrays and scalars inside it, numpy RNG states). torch >= 2.6 refuses them under
``weights_only=True``; we allow-list exactly those types instead of turning the check off, and
every other global is refused with an error that says why.

``HistoryBuffer`` also pickles its statistics methods as ``getattr(HistoryBuffer, 'mean')``.
Allowing ``getattr`` itself would let a checkpoint reach any attribute of any allowed object (and
from there arbitrary code), so the unpickler gets a stand-in that resolves exactly those four
names and refuses everything else.
"""
import os
import os.path as osp
import pickle
import tempfile
from typing import Callable

import numpy as np
import torch
from mmengine.logging.history_buffer import HistoryBuffer
from mmengine.runner.checkpoint import CheckpointLoader


class UnsafeCheckpointError(pickle.UnpicklingError):
    """A checkpoint holds pickled objects outside the allow-list (possibly code)."""


def _numpy_types() -> list:
    """The numpy globals a pickled ndarray, dtype or scalar refers to."""
    from numpy.core.multiarray import _reconstruct, scalar
    dtype_classes = [type(np.dtype(t)) for t in np.typecodes['All'] if t not in 'V']
    return [np.ndarray, np.dtype, _reconstruct, scalar, *dtype_classes]


_HISTORY_BUFFER_METHODS = ('min', 'max', 'current', 'mean')


def _history_buffer_getattr(obj, name: str):
    """What ``getattr`` means inside a checkpoint: ``HistoryBuffer``'s statistics methods only."""
    if obj is HistoryBuffer and name in _HISTORY_BUFFER_METHODS:
        return getattr(obj, name)
    raise UnsafeCheckpointError(
        f'refused getattr({getattr(obj, "__name__", type(obj).__name__)}, {name!r}) while '
        'unpickling: only HistoryBuffer statistics methods may be looked up')


SAFE_GLOBALS = [HistoryBuffer, *_numpy_types(), (_history_buffer_getattr, 'builtins.getattr')]
torch.serialization.add_safe_globals(SAFE_GLOBALS)


def load_from_local(filename: str, map_location=None) -> dict:
    """``torch.load`` with ``weights_only=True``; a refused global raises
    :class:`UnsafeCheckpointError` naming the file and the object."""
    filename = osp.expanduser(filename)
    if not osp.isfile(filename):
        raise FileNotFoundError(f'{filename} can not be found.')
    try:
        return torch.load(filename, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as e:
        raise UnsafeCheckpointError(
            f'refused to load {filename}: it holds a pickled object that is not plain weights '
            f'({_refusal_reason(str(e))}). Unpickling it could run arbitrary code. If you trust '
            'the file, re-save its state dicts only, or allow-list that exact type with '
            'torch.serialization.add_safe_globals.') from e


def _refusal_reason(message: str) -> str:
    """The sentence of torch's weights_only error that names the refused object."""
    for line in message.splitlines():
        if 'Unsupported global' in line:
            return line.split('WeightsUnpickler error:')[-1].strip()
    paragraphs = [p.strip() for p in message.split('\n\n') if p.strip()]
    middle = paragraphs[1:-1] if len(paragraphs) > 2 else paragraphs
    return ' '.join(middle)


# Every local checkpoint mmengine loads (load_from, resume, init_cfg) goes through the policy.
CheckpointLoader.register_scheme(prefixes='', loader=load_from_local, force=True)


def atomic_write(path: str, write: Callable[[str], None]) -> None:
    """Call ``write(tmp_path)`` and move the result onto ``path`` only once it is complete.

    A process killed mid-write leaves at most a hidden temporary file, never a truncated file
    under the final name; an existing file at ``path`` stays intact until the rename.
    """
    directory = osp.dirname(osp.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f'.{osp.basename(path)}.', suffix='.tmp', dir=directory)
    os.close(fd)
    try:
        write(tmp)
        with open(tmp, 'rb') as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if osp.exists(tmp):
            os.remove(tmp)
        raise
    dir_fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
