"""KITTI text formats: ``label_2`` rows (ground truth and detections) and ``calib`` files of the object
benchmark, and the calibration files of the raw recordings.

Every number is parsed as float64, as the official devkit reads them with ``fscanf("%lf")``: several
official decisions sit exactly on a threshold (truncation 0.15, a box 25.0 px high), and a float32 parser
can decide them differently.

Unlike the devkit, which reads tokens and silently shifts data after a malformed row, these readers work
line by line and raise :class:`~perception.fileio.InvalidInputError` (a ``ValueError``) naming the file, the
line and what was expected. Files are UTF-8 (a leading byte-order mark is skipped: editors on Windows add
one, and it would otherwise hide the first row); numbers are decimal as C's ``strtod`` reads them, so
Python-only spellings (``1_000``, non-ASCII digits, ``infinity``) are refused rather than read differently
from the devkit.

Label row (15 fields, a 16th ``score`` for detections)::

    type truncated occluded alpha x1 y1 x2 y2 h w l x y z ry [score]

``x1 y1 x2 y2`` is the 2D box in pixels, ``h w l`` the 3D size in metres, ``x y z`` the bottom centre of
the 3D box in the rectified camera frame (x right, y down, z forward) and ``ry`` the yaw about the camera
y axis in radians.
"""
import math
import os
import os.path as osp
import re
from typing import Dict, Iterator, List, Optional, Sequence, Tuple, Union

import numpy as np

from .errors import InvalidInputError

PathLike = Union[str, os.PathLike]

LABEL_FIELDS = ('type', 'truncated', 'occluded', 'alpha', 'x1', 'y1', 'x2', 'y2', 'h', 'w', 'l', 'x',
                'y', 'z', 'ry', 'score')
LABEL_KEYS = ('name', 'truncated', 'occluded', 'alpha', 'bbox', 'dimensions', 'location',
              'rotation_y')

# Shapes of the matrices of a KITTI object ``calib/*.txt`` file, in the order they are written.
CALIB_SHAPES = {
    'P0': (3, 4),
    'P1': (3, 4),
    'P2': (3, 4),
    'P3': (3, 4),
    'R0_rect': (3, 3),
    'Tr_velo_to_cam': (3, 4),
    'Tr_imu_to_velo': (3, 4),
}
# The KITTI tracking benchmark spells three of the keys differently.
_CALIB_ALIASES = {'R_rect': 'R0_rect', 'Tr_velo_cam': 'Tr_velo_to_cam', 'Tr_imu_velo': 'Tr_imu_to_velo'}


_NUMBER = re.compile(r'[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?', re.ASCII)


def read_text_lines(path: PathLike) -> Iterator[Tuple[int, str]]:
    """``(line number, line)`` of a UTF-8 text file, 1-based, without line ends and without a leading
    byte-order mark; bytes that are not UTF-8 raise :class:`InvalidInputError` naming the line."""
    with open(path, 'rb') as f:
        data = f.read()
    if data.startswith(b'\xef\xbb\xbf'):
        data = data[3:]
    try:
        text = data.decode('utf-8')
    except UnicodeDecodeError as e:
        lineno = data.count(b'\n', 0, e.start) + 1
        raise InvalidInputError(f'{path}:{lineno}: not UTF-8 text (byte {data[e.start]:#04x}); is it a '
                                'text file of this format?') from None
    lines = text.replace('\r\n', '\n').replace('\r', '\n').split('\n')
    return enumerate(lines, start=1)


def _parse_float(token: str, path: PathLike, lineno: int, field: str) -> float:
    if not _NUMBER.fullmatch(token):
        if token.lower().lstrip('+-') in ('nan', 'inf', 'infinity'):
            raise InvalidInputError(f'{path}:{lineno}: field "{field}" must be finite, got {token!r}')
        raise InvalidInputError(f'{path}:{lineno}: field "{field}" must be a number, got {token!r}')
    value = float(token)
    if not math.isfinite(value):
        raise InvalidInputError(f'{path}:{lineno}: field "{field}" must be finite, got {token!r}')
    return value


def read_label_rows(path: PathLike,
                    with_score: Optional[bool] = None) -> Tuple[Dict[str, np.ndarray], List[int]]:
    """Read a KITTI label file and also return the line number (1-based) of each row.

    The line numbers let callers that check values (e.g. sizes of detections) name the offending
    line. See :func:`read_label_file` for the arguments and the returned dict.
    """
    if with_score is None:
        allowed = (15, 16)
    else:
        allowed = (16, ) if with_score else (15, )
    expected = ' or '.join(str(n) for n in allowed)
    names, values, linenos = [], [], []
    ncols = None
    for lineno, line in read_text_lines(path):
        tokens = line.split()
        if not tokens:
            continue
        if len(tokens) not in allowed:
            raise InvalidInputError(
                f'{path}:{lineno}: expected {expected} columns '
                f'({" ".join(LABEL_FIELDS[:max(allowed)])}), got {len(tokens)}')
        if ncols is not None and len(tokens) != ncols:
            raise InvalidInputError(f'{path}:{lineno}: expected {ncols} columns like the rows above, '
                                    f'got {len(tokens)}')
        ncols = len(tokens)
        row = [
            _parse_float(tok, path, lineno, field)
            for tok, field in zip(tokens[1:], LABEL_FIELDS[1:])
        ]
        if row[1] != int(row[1]):
            raise InvalidInputError(
                f'{path}:{lineno}: field "occluded" must be an integer, got {tokens[2]!r}')
        names.append(tokens[0])
        values.append(row)
        linenos.append(lineno)
    if ncols is None:
        ncols = 16 if with_score else 15
    table = np.array(values, dtype=np.float64).reshape(len(values), ncols - 1)
    labels = {
        'name': np.array(names, dtype=str),
        'truncated': table[:, 0].copy(),
        'occluded': table[:, 1].astype(np.int64),
        'alpha': table[:, 2].copy(),
        'bbox': table[:, 3:7].copy(),
        'dimensions': table[:, 7:10].copy(),
        'location': table[:, 10:13].copy(),
        'rotation_y': table[:, 13].copy(),
    }
    if ncols == 16:
        labels['score'] = table[:, 14].copy()
    return labels, linenos


def read_label_file(path: PathLike, with_score: Optional[bool] = None) -> Dict[str, np.ndarray]:
    """Read a KITTI ``label_2`` file (ground truth) or result file (detections).

    Args:
        path: the text file. An empty file gives arrays of length 0.
        with_score: ``None`` accepts 15 or 16 columns (every row alike), ``True`` demands 16 and
            ``False`` 15. An empty file has a ``score`` key only when ``with_score`` is True.

    Returns:
        dict of numpy arrays with N rows: ``name`` (N,) str, ``truncated`` (N,) float64,
        ``occluded`` (N,) int64, ``alpha`` (N,) rad, ``bbox`` (N, 4) pixels x1, y1, x2, y2,
        ``dimensions`` (N, 3) metres in the file's order h, w, l, ``location`` (N, 3) metres
        x, y, z (bottom centre, camera frame), ``rotation_y`` (N,) rad, and ``score`` (N,) when the
        file has 16 columns.

    Raises:
        InvalidInputError: a row with a wrong column count, a non-numeric or non-finite number, or a
            non-integer ``occluded``; the message names the file and the line.
    """
    return read_label_rows(path, with_score)[0]


def _format_value(value: float, fmt: str) -> str:
    return '-1' if value == -1 else fmt.format(value)


def write_label_file(path: PathLike, labels: Dict[str, np.ndarray], with_score: bool = False) -> None:
    """Write rows in the official format, readable by :func:`read_label_file`.

    Ground truth is written with 2 decimals, like the KITTI release. Detections (``with_score=True``)
    are written with 4 decimals and ``-1 -1`` for truncated and occluded, as submissions to the KITTI
    server are: the evaluator does not read those two fields. A truncation or size of exactly -1, the
    format's "no value" (DontCare rows, 2D-only detections), is written as ``-1``. No rows writes an
    empty file.

    Args:
        path: the text file to write.
        labels: dict with the keys and shapes returned by :func:`read_label_file`; ``truncated`` and
            ``occluded`` are needed for ground truth only, ``score`` for detections only.
        with_score: write detections (16 columns) instead of ground truth (15 columns).
    """
    names = np.asarray(labels['name'])
    n = len(names)
    bbox = np.asarray(labels['bbox'], dtype=np.float64).reshape(n, 4)
    dims = np.asarray(labels['dimensions'], dtype=np.float64).reshape(n, 3)
    loc = np.asarray(labels['location'], dtype=np.float64).reshape(n, 3)
    alpha = np.asarray(labels['alpha'], dtype=np.float64).reshape(n)
    ry = np.asarray(labels['rotation_y'], dtype=np.float64).reshape(n)
    if with_score:
        score = np.asarray(labels['score'], dtype=np.float64).reshape(n)
        head = ['-1 -1'] * n
        fmt = '{:.4f}'
    else:
        truncated = np.asarray(labels['truncated'], dtype=np.float64).reshape(n)
        occluded = np.asarray(labels['occluded']).reshape(n)
        head = [f'{_format_value(t, "{:.2f}")} {int(o)}' for t, o in zip(truncated, occluded)]
        fmt = '{:.2f}'
    lines = []
    for i in range(n):
        fields = [str(names[i]), head[i], fmt.format(alpha[i])]
        fields += [fmt.format(v) for v in bbox[i]]
        fields += [_format_value(v, fmt) for v in dims[i]]
        fields += [fmt.format(v) for v in (*loc[i], ry[i])]
        if with_score:
            fields.append(fmt.format(score[i]))
        lines.append(' '.join(fields) + '\n')
    with open(path, 'w') as f:
        f.writelines(lines)


def read_calib_file(path: PathLike, required: Sequence[str] = ()) -> Dict[str, np.ndarray]:
    """Read a KITTI object ``calib/*.txt`` file.

    Args:
        path: the text file.
        required: keys the file must hold (object names, e.g. ``('P2', 'R0_rect')``).

    Returns:
        dict of float64 matrices: ``P0`` .. ``P3`` (3, 4) camera projections of the rectified
        cameras, ``R0_rect`` (3, 3) rectifying rotation, ``Tr_velo_to_cam`` and ``Tr_imu_to_velo``
        (3, 4) rigid transforms. Keys missing from the file are absent. The tracking spellings
        ``R_rect``, ``Tr_velo_cam`` and ``Tr_imu_velo`` are returned under the object names.

    Raises:
        InvalidInputError: a line without ``key:``, an unknown key, a repeated key, a non-numeric or
            non-finite number or a wrong count of numbers (naming the file and the line), a file
            without any entry, or one without a ``required`` key.
    """
    calib = {}
    for lineno, line in read_text_lines(path):
        if not line.strip():
            continue
        key, sep, rest = line.partition(':')
        key = key.strip()
        if not sep:
            raise InvalidInputError(f'{path}:{lineno}: expected "<key>: <numbers>", got {line.strip()!r}')
        key = _CALIB_ALIASES.get(key, key)
        if key not in CALIB_SHAPES:
            raise InvalidInputError(f'{path}:{lineno}: unknown key {key!r}, expected one of '
                                    f'{", ".join(CALIB_SHAPES)}')
        if key in calib:
            raise InvalidInputError(f'{path}:{lineno}: key {key!r} appears twice')
        shape = CALIB_SHAPES[key]
        tokens = rest.split()
        if len(tokens) != shape[0] * shape[1]:
            raise InvalidInputError(f'{path}:{lineno}: {key} needs {shape[0] * shape[1]} numbers '
                                    f'({shape[0]}x{shape[1]}), got {len(tokens)}')
        values = [_parse_float(tok, path, lineno, key) for tok in tokens]
        calib[key] = np.array(values, dtype=np.float64).reshape(shape)
    if not calib:
        raise InvalidInputError(f'{path}: no calibration entry found')
    missing = [key for key in required if key not in calib]
    if missing:
        raise InvalidInputError(f'{path}: calibration lacks {", ".join(missing)}')
    return calib


def write_calib_file(path: PathLike, calib: Dict[str, np.ndarray]) -> None:
    """Write a KITTI object ``calib/*.txt`` file, readable by :func:`read_calib_file`.

    Args:
        path: the text file to write.
        calib: matrices keyed as :func:`read_calib_file` returns them (any subset); each is written in
            row-major order with ``%.12e``, in the order P0, P1, P2, P3, R0_rect, Tr_velo_to_cam,
            Tr_imu_to_velo.
    """
    unknown = set(calib) - set(CALIB_SHAPES)
    if unknown:
        raise ValueError(f'unknown calibration keys {sorted(unknown)}, expected {list(CALIB_SHAPES)}')
    lines = []
    for key, shape in CALIB_SHAPES.items():
        if key not in calib:
            continue
        matrix = np.asarray(calib[key], dtype=np.float64)
        if matrix.size != shape[0] * shape[1]:
            raise ValueError(f'{key} must have {shape[0]}x{shape[1]} values, got shape {matrix.shape}')
        lines.append(f'{key}: ' + ' '.join(f'{v:.12e}' for v in matrix.reshape(-1)) + '\n')
    with open(path, 'w') as f:
        f.writelines(lines)


def read_raw_calib_file(path: PathLike) -> Dict[str, np.ndarray]:
    """Numeric entries of a KITTI raw calibration file (``calib_cam_to_cam.txt``, ``calib_velo_to_cam.txt``,
    ``calib_imu_to_velo.txt``: ``key: v1 v2 ...`` lines) as flat float64 arrays.

    ``calib_time`` is the one non-numeric entry of these files and is skipped; any other value that does
    not parse, or is not finite, raises an error naming the file and the line.
    """
    if not osp.isfile(path):
        raise FileNotFoundError(f'calibration file {path} does not exist')
    calib = {}
    for lineno, line in read_text_lines(path):
        if not line.strip():
            continue
        key, sep, value = line.partition(':')
        if not sep:
            raise InvalidInputError(f'{path}:{lineno}: expected "key: values", got {line.strip()!r}')
        key = key.strip()
        if key == 'calib_time':
            continue
        tokens = value.split()
        if any(t.lower().lstrip('+-') in ('nan', 'inf', 'infinity') for t in tokens):
            raise InvalidInputError(f'{path}:{lineno}: {key} holds NaN or infinite values')
        if not all(_NUMBER.fullmatch(t) for t in tokens):
            raise InvalidInputError(f'{path}:{lineno}: {key} holds a non-numeric value: {value.strip()!r}')
        array = np.array([float(t) for t in tokens], dtype=np.float64)
        if not np.isfinite(array).all():
            raise InvalidInputError(f'{path}:{lineno}: {key} holds values too large for float64')
        calib[key] = array
    return calib
