"""Checkpoint policy: loading with ``torch.load(weights_only=True)`` only (atomic writes:
:func:`perception.fileio.atomic_write`, used by the Runner).

mmengine's checkpoints carry a few non-tensor objects (the message hub's ``HistoryBuffer`` and the
numpy arrays and scalars inside it, numpy RNG states). torch >= 2.6 refuses them under
``weights_only=True``; we allow-list exactly those types instead of turning the check off, and
every other global is refused with an error that says why.

``HistoryBuffer`` also pickles its statistics methods as ``getattr(HistoryBuffer, 'mean')``.
Allowing ``getattr`` itself would let a checkpoint reach any attribute of any allowed object (and
from there arbitrary code), so the unpickler gets a stand-in that resolves exactly those four
names and refuses everything else.
"""
import os.path as osp
import pickle

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


def load_from_local(filename: str, map_location=None) -> dict:
    """``torch.load`` with ``weights_only=True``; a refused global raises
    :class:`UnsafeCheckpointError` naming the file and the object."""
    filename = osp.expanduser(filename)
    if not osp.isfile(filename):
        raise FileNotFoundError(f'{filename} can not be found.')
    try:
        with torch.serialization.safe_globals(SAFE_GLOBALS):
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


def register_checkpoint_loader() -> None:
    """Make every local checkpoint mmengine loads (``load_from``, ``resume``, ``init_cfg=dict(type='Pretrained')``,
    ``load_checkpoint``) go through :func:`load_from_local`.

    mmengine keeps one loader per path prefix; this replaces the one of local paths (prefix ``''``), so
    calling it again changes nothing. The Runner and :func:`perception.apis.init_model` call it.
    """
    CheckpointLoader.register_scheme(prefixes='', loader=load_from_local, force=True)
