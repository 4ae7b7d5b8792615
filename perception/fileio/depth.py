"""KITTI depth PNGs: uint16, depth in metres times 256, 0 where there is no depth.

This is the format of the KITTI depth benchmark (``proj_depth/groundtruth`` and ``velodyne_raw``),
so 1/256 m is the resolution and 255.996 m the largest storable depth.
"""
import os
from typing import Union

import cv2
import numpy as np

from .errors import InvalidInputError

PathLike = Union[str, os.PathLike]

DEPTH_SCALE = 256.0
MAX_PNG_DEPTH = np.iinfo(np.uint16).max / DEPTH_SCALE


def write_depth_png(path: PathLike, depth: np.ndarray) -> None:
    """Write a depth map as a KITTI uint16 PNG.

    Args:
        path: the ``.png`` file to write.
        depth: (H, W) float depth in metres. Values <= 0, NaN or inf mean "no data" and are stored
            as 0; values are rounded to the nearest 1/256 m.

    Raises:
        ValueError: ``depth`` is not 2-D, or holds a finite depth above 255.996 m (it would wrap).
    """
    depth = np.asarray(depth, dtype=np.float64)
    if depth.ndim != 2:
        raise ValueError(f'{path}: depth must be (H, W), got shape {depth.shape}')
    valid = np.isfinite(depth) & (depth > 0)
    if valid.any() and depth[valid].max() > MAX_PNG_DEPTH:
        raise ValueError(f'{path}: depth {depth[valid].max():.3f} m exceeds the {MAX_PNG_DEPTH:.3f} m '
                         'a uint16 PNG at 1/256 m can hold')
    # A positive depth below 1/512 m would round to 0 and silently become "no data".
    encoded = np.where(valid, np.maximum(np.rint(depth * DEPTH_SCALE), 1), 0).astype(np.uint16)
    if not cv2.imwrite(os.fspath(path), encoded):
        raise OSError(f'{path}: could not write the depth PNG')


def read_depth_png(path: PathLike) -> np.ndarray:
    """Read a KITTI depth PNG.

    Returns:
        (H, W) float32 depth in metres; 0 where the file has no depth.

    Raises:
        FileNotFoundError: the file does not exist.
        InvalidInputError: the file cannot be decoded (not an image, truncated, a checksum of the PNG
            fails), or is not single-channel uint16 (e.g. an 8-bit PNG), so it is not a KITTI depth map.
    """
    if not os.path.isfile(path):
        raise FileNotFoundError(f'{path}: no such depth PNG')
    encoded = cv2.imread(os.fspath(path), cv2.IMREAD_UNCHANGED)
    if encoded is None:
        raise InvalidInputError(f'{path}: not a readable image (truncated or corrupt PNG?)')
    if encoded.dtype != np.uint16 or encoded.ndim != 2:
        raise InvalidInputError(f'{path}: a KITTI depth PNG is single-channel uint16, got '
                                f'{encoded.dtype} with shape {encoded.shape}')
    return encoded.astype(np.float32) / DEPTH_SCALE
