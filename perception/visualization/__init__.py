"""The project's visualiser: boxes on images, bird's-eye views and depth colour maps (OpenCV, BGR)."""
from .bev import bev_box_corners, camera_boxes_to_bev, draw_bev
from .boxes import (CLASS_COLORS, box_edges_2d, camera_box_corners, color_of, draw_boxes2d,
                    draw_camera_boxes3d)
from .depth import colorize_depth
from .mono3d import GT_COLOR, draw_mono3d_frame

__all__ = [
    'CLASS_COLORS', 'color_of', 'camera_box_corners', 'box_edges_2d', 'draw_camera_boxes3d', 'draw_boxes2d',
    'draw_bev', 'bev_box_corners', 'camera_boxes_to_bev', 'colorize_depth', 'GT_COLOR', 'draw_mono3d_frame'
]
from .multiview import draw_multiview_frame, draw_multiview_views, lidar_to_camera_boxes  # noqa: E402

__all__ += ['draw_multiview_frame', 'draw_multiview_views', 'lidar_to_camera_boxes']
