"""Depth maps as colour images (near = bright), with "no data" pixels in a fixed colour."""
from typing import Optional, Tuple

import cv2
import numpy as np


def colorize_depth(depth: np.ndarray, min_depth: Optional[float] = None, max_depth: Optional[float] = None,
                   colormap: int = cv2.COLORMAP_MAGMA, invalid_color: Tuple[int, int, int] = (0, 0, 0),
                   dilate: int = 0) -> np.ndarray:
    """Colour a depth map through inverse depth, which spreads near and far structure evenly.

    Args:
        depth: (H, W) metres; <= 0 or non-finite means no data.
        min_depth / max_depth: the range mapped to the colour map (default: the valid 2nd / 98th
            percentiles), so that maps of one sequence can share a scale.
        colormap: an OpenCV colour map.
        invalid_color: BGR colour of pixels without depth.
        dilate: grow valid pixels by this many pixels (makes sparse LiDAR depth readable).

    Returns:
        (H, W, 3) BGR uint8.
    """
    depth = np.asarray(depth, dtype=np.float32)
    valid = np.isfinite(depth) & (depth > 0)
    if dilate > 0 and valid.any():
        # Grey dilation of inverse depth keeps the nearest value where points spread into each other.
        kernel = np.ones((2 * dilate + 1, 2 * dilate + 1), np.uint8)
        inv = cv2.dilate(np.where(valid, 1.0 / np.where(valid, depth, 1), 0).astype(np.float32), kernel)
        valid = inv > 0
        depth = np.where(valid, 1.0 / np.where(valid, inv, 1), 0).astype(np.float32)
    out = np.empty(depth.shape + (3, ), np.uint8)
    out[:] = invalid_color
    if not valid.any():
        return out
    lo = np.percentile(depth[valid], 2) if min_depth is None else min_depth
    hi = np.percentile(depth[valid], 98) if max_depth is None else max_depth
    lo, hi = max(float(lo), 1e-3), max(float(hi), float(lo) + 1e-3)
    inv = 1.0 / np.clip(depth[valid], lo, hi)
    scaled = (inv - 1.0 / hi) / (1.0 / lo - 1.0 / hi)
    colored = cv2.applyColorMap(np.round(scaled * 255).astype(np.uint8).reshape(-1, 1), colormap)
    out[valid] = colored[:, 0]
    return out
