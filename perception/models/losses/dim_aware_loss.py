"""Dimension-aware L1 loss of the 3D size (Ma et al., "Delving into Localization Errors for Monocular 3D
Object Detection" (MonoDLE), CVPR 2021; used by MonoDETR and MonoDGP).

Each size error is divided by the true size, ``|s - s*| / s*``, so that small objects count as much as
large ones; a constant compensation weight, the batch's plain L1 mean over its relative mean (no
gradient), brings the loss back to the scale of a plain L1 loss.
"""
from typing import Optional

import torch
from mmdet.models.losses.utils import weighted_loss
from torch import Tensor, nn

from perception.registry import MODELS


@weighted_loss
def dim_aware_l1_loss(pred: Tensor, target: Tensor) -> Tensor:
    """Element-wise ``|s - s*| / s*`` times the batch's compensation weight.

    Args:
        pred: (N, 3) predicted sizes, metres.
        target: (N, 3) true sizes, metres (positive).

    Returns:
        (N, 3) losses (a zero scalar without objects, as mmdet's losses).
    """
    if target.numel() == 0:
        return pred.sum() * 0
    error = (pred - target).abs()
    relative = error / target
    with torch.no_grad():
        compensation = error.mean() / relative.mean().clamp(min=1e-12)
    return relative * compensation


@MODELS.register_module()
class DimAwareL1Loss(nn.Module):
    """Dimension-aware L1 loss.

    Args:
        reduction: 'none', 'mean' or 'sum'.
        loss_weight: multiplier of the loss.
    """

    def __init__(self, reduction: str = 'mean', loss_weight: float = 1.0) -> None:
        super().__init__()
        self.reduction = reduction
        self.loss_weight = loss_weight

    def forward(self, pred: Tensor, target: Tensor, weight: Optional[Tensor] = None, avg_factor: Optional[float] = None,
                reduction_override: Optional[str] = None) -> Tensor:
        """
        Args:
            pred: (N, 3) predicted sizes, metres.
            target: (N, 3) true sizes, metres (positive).
            weight: (N, 3) element weights.
            avg_factor: divisor of the sum with the 'mean' reduction.
            reduction_override: replaces ``reduction`` for this call.

        Returns:
            The reduced loss, or (N, 3) with 'none'.
        """
        reduction = reduction_override or self.reduction
        return self.loss_weight * dim_aware_l1_loss(pred, target, weight, reduction=reduction, avg_factor=avg_factor)
