"""The picture of one multi-view 3D detection sample: every camera with the projected boxes, and the bird's-eye
view. What ``tools/test.py --show-dir`` draws for the nuScenes detectors (OPEN, StreamPETR)."""
from typing import List, Optional, Sequence

import cv2
import numpy as np
from mmdet3d.structures import Box3DMode, LiDARInstance3DBoxes

from .bev import draw_bev
from .boxes import draw_camera_boxes3d
from .mono3d import GT_COLOR


def lidar_to_camera_boxes(boxes: LiDARInstance3DBoxes, lidar2cam: np.ndarray) -> np.ndarray:
    """(N, 7) camera boxes (x, y, z, l, h, w, ry), bottom centre, of LiDAR boxes seen by a camera."""
    if len(boxes) == 0:
        return np.zeros((0, 7))
    lidar = LiDARInstance3DBoxes(boxes.tensor[:, :7].double(), box_dim=7)
    return lidar.convert_to(Box3DMode.CAM, rt_mat=np.asarray(lidar2cam, dtype=np.float64)).tensor.numpy()


def draw_multiview_views(images: Sequence[np.ndarray], lidar2cam: np.ndarray, cam2img: np.ndarray,
                         boxes: LiDARInstance3DBoxes, labels: Sequence[str], scores: Optional[np.ndarray] = None,
                         gt_boxes: Optional[LiDARInstance3DBoxes] = None) -> List[np.ndarray]:
    """Each view with the predicted boxes (class colours, class and score) and the ground truth (thin, white).

    Args:
        images: V (H, W, 3) BGR uint8 images, the original camera images.
        lidar2cam, cam2img: (V, 4, 4) matrices of those images (not of the resized network input).
        boxes: LiDAR-frame predicted boxes; labels: their class names; scores: their scores.
        gt_boxes: LiDAR-frame ground truth, or None.

    Returns:
        V annotated copies of the images, at their own size.
    """
    texts = list(labels) if scores is None else [f'{name} {score:.2f}' for name, score in zip(labels, scores)]
    views = []
    for image, to_cam, to_img in zip(images, lidar2cam, cam2img):
        drawn = image
        if gt_boxes is not None:
            drawn = draw_camera_boxes3d(drawn, lidar_to_camera_boxes(gt_boxes, to_cam), to_img,
                                        colors=[GT_COLOR] * len(gt_boxes), thickness=1)
        views.append(draw_camera_boxes3d(drawn, lidar_to_camera_boxes(boxes, to_cam), to_img, labels=list(labels),
                                         texts=texts))
    return views


def draw_multiview_frame(images: Sequence[np.ndarray], lidar2cam: np.ndarray, cam2img: np.ndarray,
                         boxes: LiDARInstance3DBoxes, labels: Sequence[str], scores: Optional[np.ndarray] = None,
                         gt_boxes: Optional[LiDARInstance3DBoxes] = None, bev_range: float = 60.,
                         view_width: int = 640, columns: int = 3) -> np.ndarray:
    """The views of :func:`draw_multiview_views` tiled ``columns`` per row (each scaled to ``view_width``) and the
    bird's-eye view (LiDAR x up, ``bev_range`` metres around the LiDAR) at the mosaic's height on the right.

    Returns:
        one BGR uint8 picture.
    """
    views = draw_multiview_views(images, lidar2cam, cam2img, boxes, labels, scores, gt_boxes)
    scaled = [cv2.resize(v, (view_width, int(round(v.shape[0] * view_width / v.shape[1])))) for v in views]
    height = max(v.shape[0] for v in scaled)
    scaled += [np.zeros_like(scaled[0])] * (-len(scaled) % columns)
    rows = [np.concatenate([np.pad(v, ((0, height - v.shape[0]), (0, 0), (0, 0))) for v in scaled[r:r + columns]],
                           axis=1) for r in range(0, len(scaled), columns)]
    mosaic = np.concatenate(rows, axis=0)
    extent = dict(x_range=(-bev_range, bev_range), y_range=(-bev_range, bev_range),
                  resolution=2 * bev_range / mosaic.shape[0])
    bev = None
    if gt_boxes is not None:
        bev = draw_bev(gt_boxes.tensor[:, [0, 1, 3, 4, 6]].numpy(), colors=[GT_COLOR] * len(gt_boxes), thickness=1,
                       **extent)
    bev = draw_bev(boxes.tensor[:, [0, 1, 3, 4, 6]].numpy(), labels=list(labels), image=bev, **extent)
    bev = cv2.resize(bev, (mosaic.shape[0], mosaic.shape[0]))
    return np.concatenate([mosaic, bev], axis=1)
