"""KITTI object evaluation reproducing the official C++ devkit, on the CPU in float64.

The protocol imports numpy only (numba, when present, compiles the loops); the readers use perception.fileio.
"""
from .evaluate import (CLASSES, DIFFICULTIES, DIFFICULTY_LIMITS, METRICS, MIN_OVERLAPS,
                       NEIGHBOUR_CLASSES, ap_from_precision, kitti_eval, resolve_min_overlap)
from .loading import (KITTI_TYPES, check_detections, empty_detections, load_kitti_folders, read_ground_truth_file,
                      read_result_file, read_split_file, warn_unknown_classes)
from .overlaps import bev_box_overlaps, box3d_overlaps, image_box_overlaps
from .report import dump_results, flat_results, format_table

__all__ = [
    'CLASSES', 'DIFFICULTIES', 'DIFFICULTY_LIMITS', 'METRICS', 'MIN_OVERLAPS', 'NEIGHBOUR_CLASSES',
    'ap_from_precision', 'kitti_eval', 'resolve_min_overlap', 'KITTI_TYPES', 'check_detections', 'empty_detections',
    'load_kitti_folders', 'read_ground_truth_file', 'read_result_file', 'read_split_file', 'warn_unknown_classes',
    'bev_box_overlaps', 'box3d_overlaps', 'image_box_overlaps', 'dump_results', 'flat_results', 'format_table'
]
