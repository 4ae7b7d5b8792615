from .angles import alpha_to_yaw, wrap_angle, yaw_to_alpha
from .camera import (cam2img_to_4x4, crop_scale_matrix, flip_cam2img, flip_matrix, project_points, projected_boxes_2d,
                     resize_matrix, stereo_direction, transform_boxes_2d, transform_cam2img, transform_points_2d,
                     unproject_points)

__all__ = [
    'alpha_to_yaw', 'wrap_angle', 'yaw_to_alpha', 'cam2img_to_4x4', 'crop_scale_matrix', 'flip_cam2img', 'flip_matrix',
    'project_points', 'projected_boxes_2d', 'resize_matrix', 'stereo_direction', 'transform_boxes_2d',
    'transform_cam2img', 'transform_points_2d', 'unproject_points'
]
