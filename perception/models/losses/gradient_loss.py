"""Gradient-difference loss: a predicted map should have the edges of a guide map, whatever their offset
(TiO-Depth's ``GradLoss``, which pulls the stereo disparity's gradients towards the monocular disparity's).
"""
from typing import Tuple

import torch.nn.functional as F
from mmdet.models.losses.utils import weighted_loss
from torch import Tensor


def _abs_gradients(x: Tensor) -> Tuple[Tensor, Tensor]:
    """|backward differences| along x and y of the replicate-padded map: two (B, C, H, W) maps."""
    x = F.pad(x, (1, 1, 1, 1), mode='replicate')
    centre = x[..., 1:-1, 1:-1]
    return (centre - x[..., 1:-1, :-2]).abs(), (centre - x[..., :-2, 1:-1]).abs()


@weighted_loss
def gradient_difference_loss(pred: Tensor, target: Tensor) -> Tensor:
    """Per-pixel ``| |d_x pred| - |d_x target| | + | |d_y pred| - |d_y target| |``; ``target`` gets no gradient.

    Args:
        pred: (B, C, H, W) map.
        target: (B, C, H, W) guide map.

    Returns:
        (B, C, H, W) costs.
    """
    (px, py), (tx, ty) = _abs_gradients(pred), _abs_gradients(target.detach())
    return (px - tx).abs() + (py - ty).abs()
