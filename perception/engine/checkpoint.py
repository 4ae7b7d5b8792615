"""Checkpoint policy: loading with ``torch.load(weights_only=True)`` only, SHA-256 verification, weights that
must fit the model, and resuming from the newest checkpoint that verifies (atomic writes:
:func:`perception.fileio.atomic_write`, used by the Runner).

mmengine's checkpoints carry a few non-tensor objects (the message hub's ``HistoryBuffer`` and the
numpy arrays and scalars inside it, numpy RNG states). torch >= 2.6 refuses them under
``weights_only=True``; we allow-list exactly those types instead of turning the check off, and
every other global is refused with an error that says why.

``HistoryBuffer`` also pickles its statistics methods as ``getattr(HistoryBuffer, 'mean')``.
Allowing ``getattr`` itself would let a checkpoint reach any attribute of any allowed object (and
from there arbitrary code), so the unpickler gets a stand-in that resolves exactly those four
names and refuses everything else.

The Runner writes ``<checkpoint>.sha256`` beside each checkpoint (``sha256sum`` format, so ``sha256sum -c``
checks it too); loading verifies it when it is there, so a checkpoint changed after saving (a flipped
byte, a truncated copy) is refused instead of loading other weights. ``verify_checkpoint=False`` in the
config (``--cfg-options verify_checkpoint=False``) skips the check.
"""
import functools
import logging
import hashlib
import os
import os.path as osp
import pickle
import re
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
from mmengine.logging.history_buffer import HistoryBuffer
from mmengine.logging import print_log
from mmengine.runner.checkpoint import CheckpointLoader, _load_checkpoint_to_model
from torch import nn

from perception.fileio import InvalidInputError, UnsafePickleError, atomic_write

CHECKSUM_SUFFIX = '.sha256'


class UnsafeCheckpointError(UnsafePickleError):
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


def file_sha256(path: str) -> str:
    """Hex SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, 'rb') as f:
        for block in iter(lambda: f.read(1 << 20), b''):
            digest.update(block)
    return digest.hexdigest()


def write_checksum(path: str) -> str:
    """Write ``<path>.sha256`` (``sha256sum`` format) atomically; returns its path."""
    line = f'{file_sha256(path)}  {osp.basename(path)}\n'

    def write(tmp: str) -> None:
        with open(tmp, 'w') as f:
            f.write(line)

    atomic_write(path + CHECKSUM_SUFFIX, write)
    return path + CHECKSUM_SUFFIX


def verify_checksum(path: str) -> bool:
    """Check ``path`` against ``<path>.sha256``.

    Returns:
        True when it matches, False when there is no ``.sha256`` file (a checkpoint from elsewhere).

    Raises:
        InvalidInputError: the digest differs, or the ``.sha256`` file is not one.
    """
    sidecar = path + CHECKSUM_SUFFIX
    if not osp.isfile(sidecar):
        return False
    with open(sidecar, 'rb') as f:
        fields = f.read(1024).split()
    expected = fields[0].decode('ascii', 'replace').lower() if fields else ''
    if not re.fullmatch(r'[0-9a-f]{64}', expected):
        raise InvalidInputError(f'{sidecar}: expected "<64 hex digits>  {osp.basename(path)}", the SHA-256 of '
                                f'{path}; pass verify_checkpoint=False to load the checkpoint without it')
    actual = file_sha256(path)
    if actual != expected:
        raise InvalidInputError(
            f'{path}: SHA-256 {actual} differs from the {expected} written beside it when it was saved '
            f'({sidecar}): the file was truncated or changed since. Pass verify_checkpoint=False (config '
            'key, e.g. --cfg-options verify_checkpoint=False) to load it anyway')
    return True


def load_from_local(filename: str, map_location=None, verify: bool = True) -> dict:
    """``torch.load`` with ``weights_only=True`` after checking the file's ``.sha256`` (when ``verify``).

    Raises:
        FileNotFoundError: no such file.
        UnsafeCheckpointError: a pickled global outside the allow-list, naming the file and the object.
        InvalidInputError: a digest that does not match, or a file that is not a readable checkpoint
            (empty, truncated, text), naming the file.
    """
    filename = osp.expanduser(filename)
    if not osp.isfile(filename):
        raise FileNotFoundError(f'{filename} can not be found.')
    if osp.getsize(filename) == 0:
        raise InvalidInputError(f'{filename}: empty file, expected a checkpoint written by torch.save')
    if verify:
        verify_checksum(filename)
    try:
        with torch.serialization.safe_globals(SAFE_GLOBALS):
            checkpoint = torch.load(filename, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as e:
        if 'GLOBAL' not in str(e) and 'refused getattr' not in str(e):  # a refused type, not a damaged file
            raise _unreadable(filename, e) from e
        raise UnsafeCheckpointError(
            f'refused to load {filename}: it holds a pickled object that is not plain weights '
            f'({_refusal_reason(str(e))}). Unpickling it could run arbitrary code. If you trust '
            'the file, re-save its state dicts only, or allow-list that exact type with '
            'torch.serialization.add_safe_globals.') from e
    except Exception as e:  # torch reports a damaged file with whatever its reader meets first
        raise _unreadable(filename, e) from e
    if not isinstance(checkpoint, dict):
        raise InvalidInputError(f'{filename}: a checkpoint is a dict, got {type(checkpoint).__name__}')
    return checkpoint


def _unreadable(filename: str, error: Exception) -> InvalidInputError:
    reason = str(error).strip().splitlines()
    return InvalidInputError(f'{filename}: not a readable checkpoint (truncated, corrupt or not written by '
                             f'torch.save): {type(error).__name__}: {reason[0] if reason else ""}')


def _refusal_reason(message: str) -> str:
    """The sentence of torch's weights_only error that names the refused object."""
    for line in message.splitlines():
        if 'Unsupported global' in line:
            return line.split('WeightsUnpickler error:')[-1].strip()
    paragraphs = [p.strip() for p in message.split('\n\n') if p.strip()]
    middle = paragraphs[1:-1] if len(paragraphs) > 2 else paragraphs
    return ' '.join(middle)


def register_checkpoint_loader(verify: bool = True) -> None:
    """Make every local checkpoint mmengine loads (``load_from``, ``resume``, ``init_cfg=dict(type='Pretrained')``,
    ``load_checkpoint``) go through :func:`load_from_local`, verifying checksums when ``verify``.

    mmengine keeps one loader per path prefix; this replaces the one of local paths (prefix ``''``), so
    calling it again changes nothing but ``verify``. The Runner and :func:`perception.apis.init_model` call it
    with the config's ``verify_checkpoint``.
    """
    loader = functools.update_wrapper(functools.partial(load_from_local, verify=verify), load_from_local)
    CheckpointLoader.register_scheme(prefixes='', loader=loader, force=True)


def state_dict_mismatch(model: nn.Module,
                        state_dict: Dict[str, torch.Tensor]) -> Tuple[List[str], List[str], List[str]]:
    """Keys of ``model`` absent from ``state_dict`` (BatchNorm's ``num_batches_tracked`` aside, as mmengine),
    keys of ``state_dict`` the model lacks, and shared keys whose shapes differ (``'key: (ckpt) vs (model)'``)."""
    own = model.state_dict()
    missing = [k for k in own if k not in state_dict and not k.endswith('num_batches_tracked')]
    unexpected = [k for k in state_dict if k not in own]
    shapes = [
        f'{k}: {tuple(v.shape)} in the checkpoint, {tuple(own[k].shape)} in the model' for k, v in state_dict.items()
        if k in own and isinstance(v, torch.Tensor) and v.shape != own[k].shape
    ]
    return missing, unexpected, shapes


def _listing(kind: str, keys: Sequence[str], first: int) -> str:
    shown = ', '.join(keys[:first]) + (f', ... ({len(keys) - first} more)' if len(keys) > first else '')
    return f'{len(keys)} {kind}: {shown}'


def describe_mismatch(missing: Sequence[str], unexpected: Sequence[str], shapes: Sequence[str],
                      first: Optional[int] = 5) -> str:
    """One line per non-empty list: its count and its first ``first`` entries (all with ``None``)."""
    lists = (('missing keys', missing), ('unexpected keys', unexpected), ('shape mismatches', shapes))
    return '\n'.join(
        _listing(kind, list(keys), len(keys) if first is None else first) for kind, keys in lists if keys)


def check_state_dict(model: nn.Module, checkpoint: dict, filename: str, strict: bool,
                     revise_keys: Sequence[Tuple[str, str]] = ((r'^module\.', ''), )) -> Optional[str]:
    """Compare a checkpoint's weights with ``model`` before loading them.

    Args:
        model: the (unwrapped) model.
        checkpoint: the loaded checkpoint (its ``state_dict``, or the dict itself).
        filename: what messages name.
        strict: raise on any mismatch; otherwise return its description.
        revise_keys: ``(pattern, replacement)`` applied to the checkpoint's keys, as mmengine does.

    Returns:
        None when everything fits, else the full lists, one line each.

    Raises:
        InvalidInputError: ``strict`` and some key is missing, unexpected or of another shape; the message
            gives the counts and the first few keys and says how to load on purpose.
    """
    state_dict = checkpoint.get('state_dict', checkpoint)
    if not isinstance(state_dict, dict):
        raise InvalidInputError(f'{filename}: state_dict is a {type(state_dict).__name__}, not a dict')
    for pattern, replacement in revise_keys:
        state_dict = {re.sub(pattern, replacement, k): v for k, v in state_dict.items()}
    missing, unexpected, shapes = state_dict_mismatch(model, state_dict)
    if not (missing or unexpected or shapes):
        return None
    if strict:
        raise InvalidInputError(
            f'{filename} does not fit the model {type(model).__name__} (another model\'s checkpoint?):\n'
            f'{describe_mismatch(missing, unexpected, shapes)}\nTo load it anyway (e.g. a backbone into a '
            'detector), set load_strict=False (--cfg-options load_strict=False, or init_model(..., '
            "cfg_options={'load_strict': False})).")
    return describe_mismatch(missing, unexpected, shapes, first=None)


def load_weights(model: nn.Module, checkpoint: dict, filename: str, strict: bool,
                 revise_keys: Sequence[Tuple[str, str]] = ((r'^module\.', ''), )) -> dict:
    """Load a checkpoint's weights into ``model`` after :func:`check_state_dict`: with ``strict`` a mismatch is
    an error, otherwise what fits is loaded and the full lists are logged as a warning. Returns ``checkpoint``."""
    mismatch = check_state_dict(model, checkpoint, filename, strict, revise_keys)
    if mismatch:
        print_log(f'{filename} does not fit the model exactly; loaded what fits:\n{mismatch}', logger='current',
                  level=logging.WARNING)
    return _load_checkpoint_to_model(model, checkpoint, strict=False, revise_keys=list(revise_keys))


def find_resumable_checkpoint(work_dir: str, verify: bool = True) -> Tuple[Optional[str], List[str]]:
    """The newest checkpoint of ``work_dir`` that verifies, for ``--resume`` without a path.

    Candidates are the file of mmengine's ``last_checkpoint`` pointer first, then every ``*.pth`` of
    ``work_dir``, newest first. A candidate verifies when its ``.sha256`` matches (with ``verify``) or, without
    one, when it loads.

    Returns:
        the path (None when there is none) and one line per newer candidate that was skipped, saying why.
    """
    candidates = []
    pointer = osp.join(work_dir, 'last_checkpoint')
    if osp.isfile(pointer):
        with open(pointer) as f:
            candidates.append(f.read().strip())
    if osp.isdir(work_dir):
        paths = [osp.join(work_dir, n) for n in os.listdir(work_dir) if n.endswith('.pth')]
        candidates += sorted(paths, key=lambda p: (osp.getmtime(p), p), reverse=True)
    skipped, seen = [], set()
    for path in candidates:
        if path in seen or not path:
            continue
        seen.add(path)
        try:
            if not (verify and verify_checksum(path)):
                load_from_local(path, map_location='cpu', verify=False)
            return path, skipped
        except (OSError, InvalidInputError) as e:
            skipped.append(str(e) if path in str(e) else f'{path}: {e}')
    return None, skipped
