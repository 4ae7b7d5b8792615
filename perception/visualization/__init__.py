"""The project's visualiser: boxes on images, bird's-eye views and depth colour maps (OpenCV, BGR)."""
from .bev import bev_box_corners, camera_boxes_to_bev, draw_bev
from .boxes import (CLASS_COLORS, camera_box_corners, color_of, draw_boxes2d,
                    draw_camera_boxes3d)
from .depth import colorize_depth

__all__ = [
    'CLASS_COLORS', 'color_of', 'camera_box_corners', 'draw_camera_boxes3d', 'draw_boxes2d', 'draw_bev',
    'bev_box_corners', 'camera_boxes_to_bev', 'colorize_depth'
]
