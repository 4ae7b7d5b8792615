"""Laplacian aleatoric depth loss (Chen et al., "MonoPair", CVPR 2020; used by MonoDLE, MonoDETR
and MonoDGP).

The network predicts a depth ``d`` and a log-variance ``s`` per object; the negative log-likelihood of a
Laplace distribution, up to constants, is ``sqrt(2) exp(-s) |d - d*| + s``: confident (small ``s``)
objects pay more for their error, uncertain ones pay ``s`` for their doubt.
"""
import math
from typing import Optional

from mmdet.models.losses.utils import weighted_loss
from torch import Tensor, nn

from perception.registry import MODELS


@weighted_loss
def laplacian_depth_loss(pred: Tensor, target: Tensor, log_variance: Tensor, scale: float = math.sqrt(2)) -> Tensor:
    """Element-wise ``sqrt(2) exp(-s) |d - d*| + s``.

    Args:
        pred: (N,) predicted depths ``d``, metres.
        target: (N,) true depths ``d*``, metres.
        log_variance: (N,) predicted log-variances ``s``.
        scale: the factor ``sqrt(2)``.

    Returns:
        (N,) losses.
    """
    return scale * (-log_variance).exp() * (pred - target).abs() + log_variance


@MODELS.register_module()
class LaplacianDepthLoss(nn.Module):
    """Laplacian aleatoric depth loss.

    Args:
        scale: the factor ``sqrt(2)`` of the error (the official code writes 1.4142, 1.5e-5 smaller).
        reduction: 'none', 'mean' or 'sum'.
        loss_weight: multiplier of the loss.
    """

    def __init__(self, scale: float = math.sqrt(2), reduction: str = 'mean', loss_weight: float = 1.0) -> None:
        super().__init__()
        self.scale = scale
        self.reduction = reduction
        self.loss_weight = loss_weight

    def forward(self, pred: Tensor, target: Tensor, log_variance: Tensor, weight: Optional[Tensor] = None,
                avg_factor: Optional[float] = None, reduction_override: Optional[str] = None) -> Tensor:
        """
        Args:
            pred: (N,) depths, metres.
            target: (N,) true depths, metres.
            log_variance: (N,) log-variances.
            weight: (N,) element weights.
            avg_factor: divisor of the sum with the 'mean' reduction (DETR heads pass the number of
                matched objects).
            reduction_override: replaces ``reduction`` for this call.
        """
        reduction = reduction_override or self.reduction
        return self.loss_weight * laplacian_depth_loss(pred, target, weight, reduction=reduction, avg_factor=avg_factor,
                                                       log_variance=log_variance, scale=self.scale)
