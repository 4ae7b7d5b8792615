"""``njit`` for the evaluator's loops: numba when present, else the same code as plain Python.

numba is installed with mmdet3d, so the compiled path is the normal one; the fallback keeps the
evaluator importable and exact (only slower) in an environment with numpy alone.
"""
try:
    from numba import njit as _numba_njit
except ImportError:
    _numba_njit = None


def njit(func):
    """Compile ``func`` in nopython mode, cached on disk, with numpy's division semantics."""
    if _numba_njit is None:
        return func
    return _numba_njit(cache=True, error_model='numpy')(func)
