"""Helpers that build inputs for tests and benchmarks (as ``mmdet.testing``)."""
from .kitti import make_kitti_root
from .mono3d import (SCENES, TINY_CAM2IMG, TINY_IMG_SIZE, build_from_config, mono3d_sample, overfit, overfit_two_scenes,
                     paint_boxes, tiny_mono3d_detector_cfg, two_scene_batch)

__all__ = [
    'SCENES', 'TINY_CAM2IMG', 'TINY_IMG_SIZE', 'build_from_config', 'make_kitti_root', 'mono3d_sample', 'overfit',
    'overfit_two_scenes', 'paint_boxes', 'tiny_mono3d_detector_cfg', 'two_scene_batch'
]
