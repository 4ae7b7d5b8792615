"""Info and result pickles loaded without running code from them.

Python's ``pickle`` calls any function a file names, so a planted info file runs code as soon as a dataset
reads it. :func:`load_pickle` resolves only the globals the info converters and mmdet3d-style infos need
(containers and scalars of ``builtins``, numpy arrays, dtypes and scalars) and refuses every other one with
:class:`UnsafePickleError`, naming the file and the global. Importing :mod:`perception.fileio` makes it
mmengine's handler of ``.pkl`` / ``.pickle`` files, so ``mmengine.load`` (what ``BaseDataset`` reads its
``ann_file`` with) goes through it as well.
"""
import _compat_pickle
import io
import os
import pickle
import sys
from typing import Any, Union

import numpy as np
from mmengine.fileio import register_handler
from mmengine.fileio.handlers import PickleHandler

from .errors import InvalidInputError

PathLike = Union[str, os.PathLike]


class UnsafePickleError(InvalidInputError, pickle.UnpicklingError):
    """A pickle names a global outside the allow-list: loading it could run code."""


def _numpy_globals() -> set:
    """``(module, name)`` of what a pickled ndarray, dtype or numpy scalar refers to, in numpy 1 and 2 spelling."""
    names = {('numpy', 'ndarray'), ('numpy', 'dtype')}
    for core in ('numpy.core', 'numpy._core'):
        names |= {(f'{core}.multiarray', '_reconstruct'), (f'{core}.multiarray', 'scalar'),
                  (f'{core}.numeric', '_frombuffer')}
    names |= {('numpy.dtypes', type(np.dtype(t)).__name__) for t in np.typecodes['All'] if t != 'V'}
    return names


# Containers and scalars pickle natively except under old protocols, which name these; ``_codecs.encode``
# is how protocol 2 (mmengine's default) spells ``bytes``.
SAFE_GLOBALS = frozenset({
    ('builtins', 'set'), ('builtins', 'frozenset'), ('builtins', 'complex'), ('builtins', 'bytearray'),
    ('builtins', 'slice'), ('collections', 'OrderedDict'), ('_codecs', 'encode'), *_numpy_globals()
})


class _SafeUnpickler(pickle.Unpickler):

    def __init__(self, file, source: str):
        super().__init__(file)
        self.source = source

    def find_class(self, module: str, name: str) -> Any:
        # Protocols < 3 spell some globals the Python 2 way (__builtin__.set); judge them by the name they load.
        if (module, name) in _compat_pickle.NAME_MAPPING:
            module, name = _compat_pickle.NAME_MAPPING[(module, name)]
        module = _compat_pickle.IMPORT_MAPPING.get(module, module)
        if (module, name) not in SAFE_GLOBALS:
            raise UnsafePickleError(
                f'refused to load {self.source}: it names the global {module}.{name}, which an info or result '
                'file never holds (only builtins containers and numpy arrays, dtypes and scalars are allowed); '
                'unpickling it could run code')
        return super().find_class(module, name)

    def persistent_load(self, pid: Any) -> Any:
        raise UnsafePickleError(f'refused to load {self.source}: it holds a persistent id, which an info or '
                                'result file never does')


def loads_pickle(data: bytes, source: str = '<bytes>') -> Any:
    """Unpickle ``data`` with the allow-list; ``source`` is what errors name.

    Raises:
        UnsafePickleError: a global outside the allow-list.
        InvalidInputError: anything else that stops unpickling (empty, truncated or corrupt data).
    """
    if not data:
        raise InvalidInputError(f'{source}: empty file, expected a pickle')
    try:
        return _SafeUnpickler(io.BytesIO(data), source).load()
    except UnsafePickleError:
        raise
    except Exception as e:  # a corrupt pickle can fail in any constructor it reaches
        raise InvalidInputError(f'{source}: not a readable pickle (truncated or corrupt): '
                                f'{type(e).__name__}: {e}') from e


def load_pickle(path: PathLike) -> Any:
    """Load an info or result pickle with the allow-list (see the module docstring).

    Raises:
        FileNotFoundError: ``path`` does not exist.
        UnsafePickleError, InvalidInputError: as :func:`loads_pickle`, naming ``path``.
    """
    with open(path, 'rb') as f:
        data = f.read()
    return loads_pickle(data, os.fspath(path))


def _mmengine_load_path(default: str) -> str:
    """The path ``mmengine.load`` was called with: it hands handlers an anonymous ``BytesIO``."""
    frame = sys._getframe(2)
    if frame.f_code.co_name == 'load' and frame.f_globals.get('__name__') == 'mmengine.fileio.io':
        return str(frame.f_locals.get('file', default))
    return default


class SafePickleHandler(PickleHandler):
    """mmengine's pickle handler, loading through the allow-list of :func:`loads_pickle`."""

    def load_from_fileobj(self, file, **kwargs) -> Any:
        return loads_pickle(file.read(), getattr(file, 'name', None) or _mmengine_load_path('<pickle>'))

    def load_from_path(self, filepath, **kwargs) -> Any:
        return load_pickle(filepath)


register_handler(['pkl', 'pickle'])(SafePickleHandler)
