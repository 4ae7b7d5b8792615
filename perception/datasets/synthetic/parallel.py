"""Output-folder checks and the process pool shared by the dataset writers."""
import fnmatch
import multiprocessing
import os
import shutil
from pathlib import Path
from typing import Callable, List, Optional, Sequence, TypeVar, Union

import numpy as np
from threadpoolctl import threadpool_limits
from tqdm import tqdm

T = TypeVar('T')


def prepare_output_dir(out_dir: Union[str, os.PathLike], force: bool, owned: Sequence[str]) -> Path:
    """Create ``out_dir``; refuse a non-empty one unless ``force``, which removes the generator's own entries.

    Removing them (rather than writing over) keeps runs byte-identical: no file of an earlier, larger run
    survives. ``force`` never removes anything else: a folder holding an entry that the generator does not
    write is refused, so a mistyped ``--out`` cannot delete a user's files.

    Args:
        out_dir: the output folder.
        force: replace an earlier output of the same generator.
        owned: ``fnmatch`` patterns of the top-level names the generator writes (and of files derived from
            them in place, such as info files).
    """
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise NotADirectoryError(f'{out} is a file, not an output folder')
    entries = sorted(out.iterdir()) if out.exists() else []
    if entries:
        foreign = [p.name for p in entries if not any(fnmatch.fnmatchcase(p.name, pat) for pat in owned)]
        if foreign:
            raise FileExistsError(
                f'{out} holds {", ".join(foreign[:5])}{" ..." if len(foreign) > 5 else ""}, which this generator '
                f'does not write ({", ".join(owned)}): it is not one of its outputs, and --force replaces only '
                'those. Choose another --out, or remove the folder yourself')
        if not force:
            raise FileExistsError(f'{out} holds an earlier output ({", ".join(p.name for p in entries)}); '
                                  'pass --force to replace it')
        for child in entries:
            if child.is_dir() and not child.is_symlink():
                shutil.rmtree(child)
            else:
                child.unlink()
    out.mkdir(parents=True, exist_ok=True)
    return out


def run_parallel(fn: Callable[..., T], tasks: Sequence, workers: int, desc: str, progress: bool = True,
                 sizes: Optional[Sequence[int]] = None) -> List[T]:
    """``[fn(task) for task in tasks]`` on ``workers`` processes, in task order, with a progress bar.

    Every task carries its own seed, so the results do not depend on which worker ran it. ``sizes``
    gives the number of frames of each task for the progress bar (1 each by default).
    """
    sizes = list(sizes) if sizes is not None else [1] * len(tasks)
    results: List[T] = []
    if workers <= 1:
        with tqdm(total=sum(sizes), desc=desc, unit='frame', disable=not progress, dynamic_ncols=True) as bar:
            for task, size in zip(tasks, sizes):
                results.append(fn(task))
                bar.update(size)
        return results
    # fork (before the progress bar starts its monitor thread) avoids re-importing the caller's __main__
    # in every worker, as spawn does.
    with _context().Pool(workers, initializer=_one_thread) as pool, \
            tqdm(total=sum(sizes), desc=desc, unit='frame', disable=not progress, dynamic_ncols=True) as bar:
        for result, size in zip(pool.imap(fn, tasks, chunksize=1), sizes):
            results.append(result)
            bar.update(size)
    return results


def _one_thread() -> None:
    # Each worker is one process on one core: BLAS thread pools on top oversubscribe the cores, and
    # their spinning threads slow rendering down many times (seen: 20x on 2 busy cores).
    threadpool_limits(1)


def _context():
    methods = multiprocessing.get_all_start_methods()
    return multiprocessing.get_context('fork' if 'fork' in methods else 'spawn')


def frame_rng(seed: int, *keys: int) -> np.random.Generator:
    """The random generator of one unit of work (frame, drive, scene), independent of the others."""
    return np.random.default_rng(np.random.SeedSequence([seed, *keys]))
