"""The synthetic driving world: street scenes ray cast on the CPU, written in real dataset formats.

* :func:`generate_kitti_object`: KITTI object detection (``training/``, ``ImageSets``).
* :func:`generate_kitti_raw`: KITTI raw drives with KITTI depth ground truth and Eigen/Zhou lists.
* :func:`generate_nuscenes`: a nuScenes v1.0 database that ``nuscenes-devkit`` loads and evaluates.

The modules split the work: ``scene`` samples streets and objects, ``render`` ray casts them with
open3d, ``labels`` derives KITTI labels, and one module per format writes files.
"""
from .geometry import KittiRig
from .kitti_object import generate_kitti_object, render_kitti_frame
from .kitti_raw import generate_kitti_raw
from .nuscenes import generate_nuscenes

__all__ = ['KittiRig', 'generate_kitti_object', 'render_kitti_frame', 'generate_kitti_raw', 'generate_nuscenes']
