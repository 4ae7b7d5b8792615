"""Angles of camera-frame 3D boxes (KITTI / mmdet3d camera frame: x right, y down, z forward).

The yaw ``ry`` turns a box about the camera's y axis; the observation angle ``alpha`` is the yaw seen from
the camera, relative to the ray through the box centre: ``alpha = ry - atan2(x, z)``. A monocular detector
regresses ``alpha`` (what the image shows) and recovers ``ry`` from the centre it predicts.

Every function takes Python floats, numpy arrays or torch tensors and returns the same kind.
"""
import math
from typing import TypeVar, Union

import numpy as np
import torch

Angle = TypeVar('Angle', float, np.ndarray, torch.Tensor)


def wrap_angle(angle: Angle) -> Angle:
    """Wrap radians to ``[-pi, pi)``."""
    return (angle + math.pi) % (2 * math.pi) - math.pi


def _atan2(y: Union[float, np.ndarray, torch.Tensor], x: Union[float, np.ndarray, torch.Tensor]):
    if isinstance(y, torch.Tensor):
        return torch.atan2(y, x)
    return np.arctan2(y, x)


def yaw_to_alpha(yaw: Angle, x: Angle, z: Angle) -> Angle:
    """Observation angle ``ry - atan2(x, z)`` of boxes centred at camera-frame ``x``, ``z`` (metres), wrapped
    to ``[-pi, pi)``."""
    return wrap_angle(yaw - _atan2(x, z))


def alpha_to_yaw(alpha: Angle, x: Angle, z: Angle) -> Angle:
    """Yaw ``alpha + atan2(x, z)`` of boxes centred at camera-frame ``x``, ``z`` (metres), wrapped to
    ``[-pi, pi)``."""
    return wrap_angle(alpha + _atan2(x, z))
