"""Readers and writers of dataset text formats shared by datasets, evaluators and tools, atomic writes, and
the restricted loader of info and result pickles."""
from .atomic import atomic_write
from .errors import InvalidInputError
from .kitti import (read_calib_file, read_label_file, read_label_rows, read_raw_calib_file, write_calib_file,
                    write_label_file)
from .safe_pickle import UnsafePickleError, load_pickle, loads_pickle

__all__ = [
    'atomic_write', 'InvalidInputError', 'read_label_file', 'read_label_rows', 'write_label_file', 'read_calib_file',
    'read_raw_calib_file', 'write_calib_file', 'UnsafePickleError', 'load_pickle', 'loads_pickle'
]
