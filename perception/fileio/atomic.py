"""Atomic file writes: a file appears under its final name complete or not at all."""
import os
import os.path as osp
import re
import tempfile
from typing import Callable, List, Union

PathLike = Union[str, os.PathLike]

# mkstemp's name: '.<final name>.' + 8 characters of its alphabet + '.tmp'.
_TMP_NAME = re.compile(r'^\.(?P<name>.+)\.[a-z0-9_]{8}\.tmp$')


def _default_file_mode() -> int:
    """What ``open(path, 'w')`` would give a new file: 0o666 less the umask (mkstemp makes it 0o600)."""
    umask = os.umask(0o022)
    os.umask(umask)
    return 0o666 & ~umask


def atomic_write(path: PathLike, write: Callable[[str], None]) -> None:
    """Call ``write(tmp_path)`` and move the result onto ``path`` only once it is complete.

    The temporary file sits in the target's folder (created if missing), so the final ``os.replace`` is a
    rename on one file system. A process killed mid-write leaves at most a hidden ``.<name>.*.tmp`` file
    (:func:`remove_stale_temporaries` clears those), never a truncated file under the final name; an
    existing file at ``path`` stays intact until the rename. The file gets the mode of any other new file
    (0o666 less the umask), and it and the folder are synced, so the rename survives a power cut.
    """
    path = os.fspath(path)
    directory = osp.dirname(osp.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f'.{osp.basename(path)}.', suffix='.tmp', dir=directory)
    os.close(fd)
    try:
        write(tmp)
        os.chmod(tmp, _default_file_mode())
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


def remove_stale_temporaries(directory: PathLike, name_pattern: str, older_than: float) -> List[str]:
    """Delete the temporary files :func:`atomic_write` left in ``directory`` when a process was killed.

    Only files named as :func:`atomic_write` names them, for a final name matching the regular expression
    ``name_pattern`` (whole name), and last modified before the time ``older_than`` (``time.time()`` seconds)
    are removed: a write in progress in another process keeps its file.

    Returns:
        the removed paths.
    """
    final_name = re.compile(name_pattern)
    removed = []
    for entry in os.scandir(directory):
        match = _TMP_NAME.match(entry.name)
        if not (match and final_name.fullmatch(match['name']) and entry.is_file(follow_symlinks=False)):
            continue
        if entry.stat(follow_symlinks=False).st_mtime < older_than:
            os.remove(entry.path)
            removed.append(entry.path)
    return removed
