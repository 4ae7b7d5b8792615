"""Overlaps of KITTI boxes in float64, as the official devkit defines them.

- 2D: IoU of ``[x1, y1, x2, y2]`` pixel boxes, without the +1 pixel of some other benchmarks.
- BEV: exact IoU of the rotated footprints in the camera (x, z) plane. A box's corner is
  ``(x + cos(ry) * a + sin(ry) * b, z - sin(ry) * a + cos(ry) * b)`` with ``a = +-l/2``, ``b = +-w/2``,
  so ``l`` lies along x when ``ry = 0``.
- 3D: BEV intersection area times the overlap of the vertical extents ``[y - h, y]`` (y points down and
  ``y`` is the bottom of the box), over ``V_a + V_b - intersection`` with ``V = h * l * w``.

``mode='iou'`` gives intersection over union; ``mode='iof'`` gives intersection over the area (volume)
of the first box, which the devkit uses to decide whether a detection lies in a DontCare area.

The footprint intersection clips one rectangle against the other in the second one's own frame.
There the clipping lines are axis-parallel, so for axis-aligned boxes given with binary-exact numbers
every vertex and area is exact and an IoU of exactly 0.7 stays 0.7: the devkit's matches need an
overlap strictly above the threshold, and such boxes sit exactly on it.
"""
import math

import numpy as np

from .jit import njit


@njit
def _clip(src_a, src_b, n, sign, limit, dst_a, dst_b):
    """Clip the convex polygon ``(src_a, src_b)[:n]`` to ``sign * a <= limit``; returns the new length.

    Called with the coordinate arrays swapped to clip along the other axis. The intersection point of
    an edge gets ``a`` set exactly to the line, and an edge parallel to ``a`` keeps its ``b`` exactly.
    """
    bound = sign * limit
    m = 0
    for k in range(n):
        a0 = src_a[k]
        b0 = src_b[k]
        k1 = k + 1 if k + 1 < n else 0
        a1 = src_a[k1]
        b1 = src_b[k1]
        inside0 = sign * a0 <= limit
        inside1 = sign * a1 <= limit
        if inside0:
            dst_a[m] = a0
            dst_b[m] = b0
            m += 1
        if inside0 != inside1:
            dst_a[m] = bound
            dst_b[m] = b0 + (b1 - b0) * ((bound - a0) / (a1 - a0))
            m += 1
    return m


@njit
def bev_intersection(xa, za, la, wa, rya, xb, zb, lb, wb, ryb):
    """Area (m^2) of the intersection of two rotated BEV rectangles (x, z, l, w, ry)."""
    # Circles around the footprints that do not touch: no clipping needed.
    ra = 0.5 * math.sqrt(la * la + wa * wa)
    rb = 0.5 * math.sqrt(lb * lb + wb * wb)
    dx = xa - xb
    dz = za - zb
    if dx * dx + dz * dz > (ra + rb) * (ra + rb):
        return 0.0
    ca = math.cos(rya)
    sa = math.sin(rya)
    cb = math.cos(ryb)
    sb = math.sin(ryb)
    u = np.empty(16)
    v = np.empty(16)
    u2 = np.empty(16)
    v2 = np.empty(16)
    half_a = (0.5 * la, 0.5 * la, -0.5 * la, -0.5 * la)
    half_b = (0.5 * wa, -0.5 * wa, -0.5 * wa, 0.5 * wa)
    for k in range(4):
        # Corners of box a as the devkit computes them, then moved into the frame of box b.
        px = (ca * half_a[k] + sa * half_b[k]) + xa - xb
        pz = (-sa * half_a[k] + ca * half_b[k]) + za - zb
        u[k] = cb * px - sb * pz
        v[k] = sb * px + cb * pz
    hl = 0.5 * abs(lb)
    hw = 0.5 * abs(wb)
    n = _clip(u, v, 4, 1.0, hl, u2, v2)
    n = _clip(u2, v2, n, -1.0, hl, u, v)
    n = _clip(v, u, n, 1.0, hw, v2, u2)
    n = _clip(v2, u2, n, -1.0, hw, v, u)
    if n < 3:
        return 0.0
    twice_area = 0.0
    for k in range(n):
        k1 = k + 1 if k + 1 < n else 0
        twice_area += u[k] * v[k1] - u[k1] * v[k]
    return 0.5 * abs(twice_area)


@njit
def image_overlap(a, b, iof):
    """2D overlap of pixel boxes ``a`` and ``b`` (4,), in the devkit's order of operations."""
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    if w <= 0 or h <= 0:
        return 0.0
    inter = w * h
    area_a = (a[2] - a[0]) * (a[3] - a[1])
    if iof:
        return inter / area_a if area_a != 0 else 0.0
    union = area_a + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union != 0 else 0.0


@njit
def bev_overlap(a, b, iof):
    """BEV overlap of camera boxes ``a`` and ``b`` (7,) = (x, y, z, l, h, w, ry)."""
    inter = bev_intersection(a[0], a[2], a[3], a[5], a[6], b[0], b[2], b[3], b[5], b[6])
    if inter == 0.0:
        return 0.0
    area_a = abs(a[3] * a[5])
    if iof:
        return inter / area_a
    return inter / (area_a + abs(b[3] * b[5]) - inter)


@njit
def box3d_overlap(a, b, iof):
    """3D overlap of camera boxes ``a`` and ``b`` (7,) = (x, y, z, l, h, w, ry), bottom centre."""
    height = min(a[1], b[1]) - max(a[1] - a[4], b[1] - b[4])
    if height <= 0:
        return 0.0
    inter = bev_intersection(a[0], a[2], a[3], a[5], a[6], b[0], b[2], b[3], b[5], b[6]) * height
    if inter == 0.0:
        return 0.0
    vol_a = a[4] * a[3] * a[5]
    if iof:
        return inter / vol_a if vol_a != 0 else 0.0
    union = vol_a + b[4] * b[3] * b[5] - inter
    return inter / union if union != 0 else 0.0


@njit
def _pairwise(kind, boxes_a, boxes_b, iof):
    out = np.zeros((boxes_a.shape[0], boxes_b.shape[0]))
    for i in range(boxes_a.shape[0]):
        for j in range(boxes_b.shape[0]):
            if kind == 0:
                out[i, j] = image_overlap(boxes_a[i], boxes_b[j], iof)
            elif kind == 1:
                out[i, j] = bev_overlap(boxes_a[i], boxes_b[j], iof)
            else:
                out[i, j] = box3d_overlap(boxes_a[i], boxes_b[j], iof)
    return out


def _check(boxes, width, name):
    boxes = np.ascontiguousarray(boxes, dtype=np.float64)
    if boxes.ndim != 2 or boxes.shape[1] != width:
        raise ValueError(f'{name} must have shape (N, {width}), got {boxes.shape}')
    return boxes


def _iof(mode):
    if mode not in ('iou', 'iof'):
        raise ValueError(f"mode must be 'iou' or 'iof', got {mode!r}")
    return mode == 'iof'


def image_box_overlaps(boxes_a: np.ndarray, boxes_b: np.ndarray, mode: str = 'iou') -> np.ndarray:
    """Pairwise 2D overlaps.

    Args:
        boxes_a: (N, 4) pixel boxes x1, y1, x2, y2.
        boxes_b: (M, 4) pixel boxes.
        mode: ``'iou'`` or ``'iof'`` (intersection over the area of ``boxes_a``).

    Returns:
        (N, M) float64 overlaps in [0, 1].
    """
    return _pairwise(0, _check(boxes_a, 4, 'boxes_a'), _check(boxes_b, 4, 'boxes_b'), _iof(mode))


def bev_box_overlaps(boxes_a: np.ndarray, boxes_b: np.ndarray, mode: str = 'iou') -> np.ndarray:
    """Pairwise exact BEV overlaps of camera-frame boxes.

    Args:
        boxes_a: (N, 7) boxes x, y, z, l, h, w, ry (metres, radians; the layout of mmdet3d's
            ``CameraInstance3DBoxes``); y and h are not used.
        boxes_b: (M, 7) boxes.
        mode: ``'iou'`` or ``'iof'`` (intersection over the footprint area of ``boxes_a``).

    Returns:
        (N, M) float64 overlaps in [0, 1].
    """
    return _pairwise(1, _check(boxes_a, 7, 'boxes_a'), _check(boxes_b, 7, 'boxes_b'), _iof(mode))


def box3d_overlaps(boxes_a: np.ndarray, boxes_b: np.ndarray, mode: str = 'iou') -> np.ndarray:
    """Pairwise exact 3D overlaps of camera-frame boxes with their origin at the bottom centre.

    Args:
        boxes_a: (N, 7) boxes x, y, z, l, h, w, ry; the box spans ``[y - h, y]`` vertically.
        boxes_b: (M, 7) boxes.
        mode: ``'iou'`` or ``'iof'`` (intersection over the volume of ``boxes_a``).

    Returns:
        (N, M) float64 overlaps in [0, 1].
    """
    return _pairwise(2, _check(boxes_a, 7, 'boxes_a'), _check(boxes_b, 7, 'boxes_b'), _iof(mode))
