"""Read a KITTI ground-truth folder and a folder of results for the evaluator.

Differences from the official devkit, which aborts on a missing result file (and deletes the result
folder) and reads tokens rather than lines:

- a frame without a result file counts as a frame without detections, and one warning says how many;
  result files of frames without ground truth are counted in a warning too;
- a malformed row raises :class:`~perception.fileio.InvalidInputError` naming the file and the line (see
  :mod:`perception.fileio.kitti`);
- a detection with a negative size raises too, except the devkit's "no 3D box" row of a 2D-only
  detector (``h = w = l = -1``), which the devkit then leaves out of BEV and 3D;
- rows of a class KITTI does not define (``Vehicle``, ``Cars``) are not evaluated, as by the devkit, but
  each file holding some warns once with the names and counts (KITTI's own classes that are not
  evaluated, such as ``Tram``, ``Misc`` and ``DontCare``, stay silent);
- a split file that lists a frame twice is refused (the devkit would count it twice).
"""
import os
import os.path as osp
import warnings
from collections import Counter
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from perception.fileio import InvalidInputError
from perception.fileio.kitti import read_label_rows, read_text_lines

# Every type of the KITTI object benchmark; the devkit compares names case-insensitively.
KITTI_TYPES = ('Car', 'Van', 'Truck', 'Pedestrian', 'Person_sitting', 'Cyclist', 'Tram', 'Misc', 'DontCare')
_KNOWN_TYPES = frozenset(t.lower() for t in KITTI_TYPES)


def warn_unknown_classes(names: Sequence[str], source: str) -> None:
    """One warning if ``names`` hold a type KITTI does not define (such rows are never evaluated)."""
    unknown = Counter(str(n) for n in names if str(n).lower() not in _KNOWN_TYPES)
    if unknown:
        counts = ', '.join(f'{name} x{n}' for name, n in sorted(unknown.items()))
        warnings.warn(f'{source}: {sum(unknown.values())} rows of classes KITTI does not define ({counts}) are '
                      f'not evaluated; KITTI types: {", ".join(KITTI_TYPES)}')


def read_ground_truth_file(path: str) -> Dict[str, np.ndarray]:
    """Read a 15-column ``label_2`` file, warning about classes KITTI does not define."""
    labels, _ = read_label_rows(path, with_score=False)
    warn_unknown_classes(labels['name'], path)
    return labels


def check_detections(dets: Dict[str, np.ndarray], source: str, rows: Sequence) -> None:
    """Raise :class:`~perception.fileio.InvalidInputError` for NaN/infinite values or negative sizes in
    detections.

    Args:
        dets: label dict with ``score`` (see :func:`perception.fileio.read_label_file`); keys it lacks
            among ``alpha`` and ``bbox`` are not checked.
        source: what to name in the message (a file path, a sample).
        rows: one name per row for the message (line numbers, indices).
    """
    widths = {'alpha': 1, 'bbox': 4, 'dimensions': 3, 'location': 3, 'rotation_y': 1, 'score': 1}
    for key, width in widths.items():
        if key not in dets and key in ('alpha', 'bbox'):
            continue
        values = np.asarray(dets[key], dtype=np.float64).reshape(len(rows), width)
        bad = ~np.isfinite(values).all(axis=1)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise InvalidInputError(f'{source}:{rows[i]}: {key} must be finite, got {values[i].tolist()}')
    dims = np.asarray(dets['dimensions'], dtype=np.float64).reshape(len(rows), 3)
    bad = (dims < 0).any(axis=1) & ~(dims == -1).all(axis=1)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise InvalidInputError(f'{source}:{rows[i]}: dimensions (h, w, l) must be >= 0 (or all -1 for a '
                                f'detection without 3D box), got {dims[i].tolist()}')


def read_result_file(path: str) -> Dict[str, np.ndarray]:
    """Read a 16-column KITTI result file, check its values with :func:`check_detections` and warn about
    classes KITTI does not define."""
    dets, linenos = read_label_rows(path, with_score=True)
    check_detections(dets, path, linenos)
    warn_unknown_classes(dets['name'], path)
    return dets


def read_split_file(path: str) -> List[str]:
    """Frame ids (``000123``), one per non-empty line of an ``ImageSets`` file.

    Raises:
        InvalidInputError: a line with more than one token, or an id listed twice (naming both lines).
    """
    ids, first_line = [], {}
    for lineno, line in read_text_lines(path):
        tokens = line.split()
        if not tokens:
            continue
        if len(tokens) > 1:
            raise InvalidInputError(f'{path}:{lineno}: expected one frame id per line, got {line.strip()!r}')
        if tokens[0] in first_line:
            raise InvalidInputError(f'{path}:{lineno}: frame {tokens[0]} is listed again (first on line '
                                    f'{first_line[tokens[0]]}); it would be evaluated twice')
        first_line[tokens[0]] = lineno
        ids.append(tokens[0])
    return ids


def load_kitti_folders(gt_dir: str,
                       result_dir: str,
                       frame_ids: Optional[Sequence[str]] = None
                       ) -> Tuple[List[str], List[Dict[str, np.ndarray]], List[Dict[str, np.ndarray]]]:
    """Read ``gt_dir/<id>.txt`` and ``result_dir/<id>.txt`` for every frame.

    Args:
        gt_dir: a ``label_2`` folder (15-column rows).
        result_dir: a folder of 16-column result files.
        frame_ids: the frames to evaluate; default every ``*.txt`` of ``gt_dir``, sorted.

    Returns:
        frame ids, ground-truth dicts and detection dicts, in the same order.
    """
    if frame_ids is None:
        frame_ids = sorted(osp.splitext(f)[0] for f in os.listdir(gt_dir) if f.endswith('.txt'))
        if not frame_ids:
            raise FileNotFoundError(f'no ground-truth *.txt file in {gt_dir}')
    if not osp.isdir(result_dir):
        raise FileNotFoundError(f'result folder {result_dir} does not exist')
    gt_annos, dt_annos, missing = [], [], []
    for frame_id in frame_ids:
        gt_path = osp.join(gt_dir, f'{frame_id}.txt')
        if not osp.isfile(gt_path):
            raise FileNotFoundError(f'missing ground truth {gt_path} for frame {frame_id}')
        gt_annos.append(read_ground_truth_file(gt_path))
        result_path = osp.join(result_dir, f'{frame_id}.txt')
        if osp.isfile(result_path):
            dt_annos.append(read_result_file(result_path))
        else:
            missing.append(frame_id)
            dt_annos.append(empty_detections())
    if missing:
        warnings.warn(f'{len(missing)} of {len(frame_ids)} frames have no result file in {result_dir} '
                      f'(first: {missing[0]}.txt); they count as frames without detections')
    with_gt = set(os.listdir(gt_dir))
    extra = sorted(n for n in os.listdir(result_dir) if n.endswith('.txt') and n not in with_gt)
    if extra:
        warnings.warn(f'{len(extra)} result files in {result_dir} are for frames without ground truth in {gt_dir} '
                      f'(first: {extra[0]}); they are not evaluated')
    return list(frame_ids), gt_annos, dt_annos


def empty_detections() -> Dict[str, np.ndarray]:
    """A detection dict with no rows."""
    return {
        'name': np.zeros(0, dtype=str),
        'alpha': np.zeros(0),
        'bbox': np.zeros((0, 4)),
        'dimensions': np.zeros((0, 3)),
        'location': np.zeros((0, 3)),
        'rotation_y': np.zeros(0),
        'score': np.zeros(0),
    }
