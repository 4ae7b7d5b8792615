"""Bird's-eye-view raster of boxes and points: forward is up, left is left.

The BEV frame is the LiDAR/ego convention (x forward, y left, yaw counter-clockwise from x). Camera
boxes convert with :func:`camera_boxes_to_bev` (x_bev = z_cam, y_bev = -x_cam, yaw = -ry - pi/2).
"""
from typing import Optional, Sequence, Tuple

import cv2
import numpy as np

from .boxes import Color, color_of


def camera_boxes_to_bev(boxes: np.ndarray) -> np.ndarray:
    """(N, 7) camera boxes (x, y, z, l, h, w, ry) -> (N, 5) BEV boxes (x, y, l, w, yaw)."""
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 7)
    return np.stack([boxes[:, 2], -boxes[:, 0], boxes[:, 3], boxes[:, 5], -boxes[:, 6] - np.pi / 2], axis=1)


def bev_box_corners(boxes: np.ndarray) -> np.ndarray:
    """(N, 5) BEV boxes (x, y, l, w, yaw) -> (N, 4, 2) corners, front-left first, counter-clockwise."""
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 5)
    local = np.array([[0.5, 0.5], [-0.5, 0.5], [-0.5, -0.5], [0.5, -0.5]])
    c, s = np.cos(boxes[:, 4]), np.sin(boxes[:, 4])
    xy = local[None] * boxes[:, None, 2:4]
    x = xy[..., 0] * c[:, None] - xy[..., 1] * s[:, None]
    y = xy[..., 0] * s[:, None] + xy[..., 1] * c[:, None]
    return np.stack([x, y], axis=-1) + boxes[:, None, :2]


def draw_bev(boxes: Optional[np.ndarray] = None, points: Optional[np.ndarray] = None,
             labels: Optional[Sequence] = None, colors: Optional[Sequence[Color]] = None,
             x_range: Tuple[float, float] = (0.0, 70.0), y_range: Tuple[float, float] = (-35.0, 35.0),
             resolution: float = 0.1, image: Optional[np.ndarray] = None, thickness: int = 2) -> np.ndarray:
    """Draw points and boxes in a BEV image.

    Args:
        boxes: (N, 5) BEV boxes (x, y, l, w, yaw) in metres / radians; the heading edge gets a line to
            the centre.
        points: (M, 2+) points (x, y, ...), drawn as grey pixels brightened by height when given (M, 3+).
        labels / colors: class names (or ids) choosing colours, or explicit BGR colours.
        x_range / y_range: metres covered (x up the image, y to the left).
        resolution: metres per pixel.
        image: draw onto this (H, W, 3) BGR image of the same extent (e.g. to overlay predictions on
            ground truth) instead of a new black one.

    Returns:
        (H, W, 3) BGR uint8 with H = (x_range span) / resolution and W = (y_range span) / resolution.
    """
    height = int(round((x_range[1] - x_range[0]) / resolution))
    width = int(round((y_range[1] - y_range[0]) / resolution))
    out = np.zeros((height, width, 3), np.uint8) if image is None else image.copy()

    def to_px(xy):
        return np.stack([(y_range[1] - xy[..., 1]) / resolution, (x_range[1] - xy[..., 0]) / resolution], -1)

    if points is not None and len(points):
        points = np.asarray(points)
        px = np.floor(to_px(points[:, :2])).astype(np.int64)
        keep = (px[:, 0] >= 0) & (px[:, 0] < width) & (px[:, 1] >= 0) & (px[:, 1] < height)
        shade = np.full(len(points), 150.0)
        if points.shape[1] >= 3:
            shade = np.clip(110 + 60 * (points[:, 2] - points[:, 2].min()), 110, 255)
        out[px[keep, 1], px[keep, 0]] = shade[keep, None].astype(np.uint8)
    if boxes is not None:
        for i, corners in enumerate(bev_box_corners(boxes)):
            color = colors[i] if colors is not None else color_of(labels[i] if labels is not None else None, i)
            poly = np.round(to_px(corners)).astype(np.int32)
            cv2.polylines(out, [poly], True, color, thickness, cv2.LINE_AA)
            front = np.round(to_px(corners[[0, 3]].mean(0))).astype(np.int32)
            centre = np.round(to_px(corners.mean(0))).astype(np.int32)
            cv2.line(out, tuple(int(v) for v in centre), tuple(int(v) for v in front), color, thickness, cv2.LINE_AA)
    return out
