"""Boxes drawn on camera images: 2D boxes and projected 3D boxes (clipped at a near plane).

Images are BGR ``uint8`` arrays as OpenCV reads them; every function draws on a copy and returns it.
3D boxes follow mmdet3d's ``CameraInstance3DBoxes``: (x, y, z, l, h, w, ry) with the bottom-centre
origin, in the frame of the projection ``cam2img`` (for KITTI: the rectified camera-0 frame with
``cam2img = P2``).
"""
from typing import List, Optional, Sequence, Tuple, Union

import cv2
import numpy as np

from perception.structures.camera import project_points

Color = Tuple[int, int, int]
NEAR = 0.1
# A colour per class (BGR), for KITTI and nuScenes names; others cycle through ``PALETTE``.
CLASS_COLORS = {
    'Car': (0, 200, 255), 'Van': (0, 140, 255), 'Truck': (0, 60, 255), 'Pedestrian': (80, 255, 80),
    'Person_sitting': (160, 255, 0), 'Cyclist': (255, 200, 0), 'DontCare': (160, 160, 160),
    'car': (0, 200, 255), 'truck': (0, 60, 255), 'bus': (60, 0, 255), 'trailer': (120, 60, 200),
    'construction_vehicle': (0, 120, 180), 'pedestrian': (80, 255, 80), 'motorcycle': (255, 120, 0),
    'bicycle': (255, 200, 0), 'traffic_cone': (0, 100, 240), 'barrier': (200, 200, 200),
}
PALETTE = [(0, 200, 255), (80, 255, 80), (255, 200, 0), (255, 80, 200), (0, 60, 255), (200, 200, 200)]
# Edges of mmdet3d's corner order (as its ``plot_rect3d_on_img``); corners 4..7 are the front face.
BOX_EDGES = ((0, 1), (0, 3), (0, 4), (1, 2), (1, 5), (3, 2), (3, 7), (4, 5), (4, 7), (2, 6), (5, 6), (6, 7))
FRONT_FACE = (4, 5, 6, 7)


def color_of(label: Union[str, int, None], index: int = 0) -> Color:
    """The drawing colour of a class name (or integer label), else a palette entry by ``index``."""
    if isinstance(label, str) and label in CLASS_COLORS:
        return CLASS_COLORS[label]
    return PALETTE[(label if isinstance(label, (int, np.integer)) else index) % len(PALETTE)]


def camera_box_corners(boxes) -> np.ndarray:
    """(N, 8, 3) corners of camera boxes, in mmdet3d's order.

    Args:
        boxes: ``CameraInstance3DBoxes`` or an (N, 7+) array (x, y, z, l, h, w, ry), bottom centre.
    """
    if hasattr(boxes, 'corners'):
        return boxes.corners.detach().cpu().numpy().astype(np.float64)
    from mmdet3d.structures import CameraInstance3DBoxes
    boxes = np.asarray(boxes, dtype=np.float32)
    return CameraInstance3DBoxes(boxes).corners.numpy().astype(np.float64)


def _clip_segment(a: np.ndarray, b: np.ndarray) -> Optional[Tuple[np.ndarray, np.ndarray]]:
    """The part of segment a-b (camera frame) in front of the near plane, or None."""
    if a[2] < NEAR and b[2] < NEAR:
        return None
    if a[2] < NEAR:
        a = a + (NEAR - a[2]) / (b[2] - a[2]) * (b - a)
    elif b[2] < NEAR:
        b = b + (NEAR - b[2]) / (a[2] - b[2]) * (a - b)
    return a, b


def box_edges_2d(boxes, cam2img: np.ndarray) -> List[np.ndarray]:
    """The pixel segments that :func:`draw_camera_boxes3d` draws for each box.

    Each box gives its 12 edges (in ``BOX_EDGES`` order) and the two diagonals of its front face, clipped at
    z = 0.1 m before projection; segments wholly behind that plane, or projecting to non-finite pixels, are left
    out.

    Args:
        boxes: ``CameraInstance3DBoxes`` or (N, 7) camera boxes, or (N, 8, 3) corners.
        cam2img: (3, 3), (3, 4) or (4, 4) projection, e.g. KITTI ``P2``.

    Returns:
        per box, a (K, 2, 2) float64 array of K <= 14 segments ((u, v) of both ends, pixels).
    """
    corners = np.asarray(boxes, dtype=np.float64) if np.ndim(boxes) == 3 else camera_box_corners(boxes)
    cam2img = np.asarray(cam2img, dtype=np.float64)
    edges = BOX_EDGES + ((FRONT_FACE[0], FRONT_FACE[2]), (FRONT_FACE[1], FRONT_FACE[3]))
    out = []
    for box in corners:
        segments = []
        for a, b in edges:
            clipped = _clip_segment(box[a], box[b])
            if clipped is None:
                continue
            uv = project_points(np.stack(clipped), cam2img)
            if np.isfinite(uv).all():
                segments.append(uv)
        out.append(np.array(segments, dtype=np.float64).reshape(-1, 2, 2))
    return out


def draw_camera_boxes3d(image: np.ndarray, boxes, cam2img: np.ndarray, labels: Optional[Sequence] = None,
                        colors: Optional[Sequence[Color]] = None, texts: Optional[Sequence[str]] = None,
                        thickness: int = 2) -> np.ndarray:
    """Draw 3D boxes projected with ``cam2img``; the front face gets a cross.

    Edges are clipped at z = 0.1 m before projection (see :func:`box_edges_2d`), so boxes that reach behind the
    camera (close, truncated objects) are drawn correctly instead of exploding across the image.

    Args:
        image: (H, W, 3) BGR uint8.
        boxes: ``CameraInstance3DBoxes`` or (N, 7) camera boxes, or (N, 8, 3) corners.
        cam2img: (3, 3), (3, 4) or (4, 4) projection, e.g. KITTI ``P2``.
        labels: N class names or ids, choosing the colours (unless ``colors``).
        colors: N BGR colours.
        texts: N strings written above each box (e.g. scores).

    Returns:
        the annotated copy of ``image``.
    """
    out = image.copy()
    for i, segments in enumerate(box_edges_2d(boxes, cam2img)):
        color = colors[i] if colors is not None else color_of(labels[i] if labels is not None else None, i)
        for uv in segments:
            p, q = (tuple(int(round(c)) for c in np.clip(pt, -1e5, 1e5)) for pt in uv)
            cv2.line(out, p, q, color, thickness, cv2.LINE_AA)
        if texts is not None and len(segments):
            ends = segments.reshape(-1, 2)
            top = ends[np.argmin(ends[:, 1])]
            cv2.putText(out, str(texts[i]), (int(top[0]), int(top[1]) - 4), cv2.FONT_HERSHEY_SIMPLEX, 0.45,
                        color, 1, cv2.LINE_AA)
    return out


def draw_boxes2d(image: np.ndarray, bboxes: np.ndarray, labels: Optional[Sequence] = None,
                 colors: Optional[Sequence[Color]] = None, texts: Optional[Sequence[str]] = None,
                 thickness: int = 1) -> np.ndarray:
    """Draw (N, 4) ``x1, y1, x2, y2`` pixel boxes on a copy of a BGR image."""
    out = image.copy()
    for i, (x1, y1, x2, y2) in enumerate(np.asarray(bboxes, dtype=np.float64).reshape(-1, 4)):
        color = colors[i] if colors is not None else color_of(labels[i] if labels is not None else None, i)
        cv2.rectangle(out, (int(round(x1)), int(round(y1))), (int(round(x2)), int(round(y2))), color, thickness)
        if texts is not None:
            cv2.putText(out, str(texts[i]), (int(x1), max(int(y1) - 3, 10)), cv2.FONT_HERSHEY_SIMPLEX, 0.4, color,
                        1, cv2.LINE_AA)
    return out
