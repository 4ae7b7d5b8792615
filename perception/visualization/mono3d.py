"""The picture of one monocular 3D detection frame: the camera view and the bird's-eye view beside it.

What ``tools/test.py --show-dir``, ``tools/analysis/draw_kitti_results.py`` and ``tools/demo/mono3d_demo.py`` draw.
"""
from typing import Optional, Sequence

import cv2
import numpy as np

from .bev import camera_boxes_to_bev, draw_bev
from .boxes import draw_camera_boxes3d

GT_COLOR = (255, 255, 255)


def draw_mono3d_frame(image: np.ndarray, cam2img: np.ndarray, boxes: np.ndarray, labels: Sequence[str],
                      scores: Optional[np.ndarray] = None, gt_boxes: Optional[np.ndarray] = None,
                      bev_range: float = 60.) -> np.ndarray:
    """Predicted boxes (class colours, with class and score) and ground truth (thin, white) projected on the
    image, and the bird's-eye view of both beside it at the image's height.

    Args:
        image: (H, W, 3) BGR uint8, the image the boxes' camera frame projects into with ``cam2img``.
        cam2img: (3, 3), (3, 4) or (4, 4) projection of that image (KITTI ``P2``).
        boxes: (N, 7) predicted camera boxes (x, y, z, l, h, w, ry), bottom centre, metres / radians.
        labels: N class names.
        scores: N scores, written after the class name.
        gt_boxes: (M, 7) ground-truth camera boxes, or None.
        bev_range: metres ahead of the camera that the bird's-eye view covers, as wide, centred on it.

    Returns:
        (H, W + H, 3) BGR uint8.
    """
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 7)
    gt_boxes = np.zeros((0, 7)) if gt_boxes is None else np.asarray(gt_boxes, dtype=np.float64).reshape(-1, 7)
    labels = list(labels)
    texts = labels if scores is None else [f'{name} {score:.2f}' for name, score in zip(labels, scores)]
    white = [GT_COLOR] * len(gt_boxes)
    drawn = draw_camera_boxes3d(image, gt_boxes, cam2img, colors=white, thickness=1)
    drawn = draw_camera_boxes3d(drawn, boxes, cam2img, labels=labels, texts=texts)
    bev_extent = dict(x_range=(0., bev_range), y_range=(-bev_range / 2, bev_range / 2),
                      resolution=bev_range / drawn.shape[0])
    bev = draw_bev(camera_boxes_to_bev(gt_boxes), colors=white, thickness=1, **bev_extent)
    bev = draw_bev(camera_boxes_to_bev(boxes), labels=labels, image=bev, **bev_extent)
    bev = cv2.resize(bev, (bev.shape[1], drawn.shape[0]))
    return np.concatenate([drawn, bev], 1)
