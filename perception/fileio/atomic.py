"""Atomic file writes: a file appears under its final name complete or not at all."""
import os
import os.path as osp
import tempfile
from typing import Callable, Union

PathLike = Union[str, os.PathLike]


def atomic_write(path: PathLike, write: Callable[[str], None]) -> None:
    """Call ``write(tmp_path)`` and move the result onto ``path`` only once it is complete.

    The temporary file sits in the target's folder (created if missing), so the final ``os.replace`` is a
    rename on one file system. A process killed mid-write leaves at most a hidden ``.<name>.*.tmp`` file,
    never a truncated file under the final name; an existing file at ``path`` stays intact until the
    rename. The file and the folder are synced, so the rename survives a power cut.
    """
    path = os.fspath(path)
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
