"""Converters from dataset releases to mmdet3d 1.x info files (used by ``tools/create_data.py``)."""
from .kitti_converter import create_kitti_infos, get_frame_info
from .nuscenes_converter import create_nuscenes_infos

__all__ = ['create_kitti_infos', 'get_frame_info', 'create_nuscenes_infos']
