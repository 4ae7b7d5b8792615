"""Readers and writers of dataset text formats shared by datasets, evaluators and tools."""
from .kitti import (read_calib_file, read_label_file, read_label_rows, write_calib_file,
                    write_label_file)

__all__ = [
    'read_label_file', 'read_label_rows', 'write_label_file', 'read_calib_file', 'write_calib_file'
]
