"""DepthFocalLoss of OPEN (Hou et al., "OPEN: Object-wise Position Embedding for Multi-view 3D Object
Detection", ECCV 2024): a focal loss on soft classification targets.

The target of a matched query at its object's class is a quality score ``s`` in (0, 1] (OPEN: how close its
predicted centre is to the object's, see ``OPENHead``), 0 elsewhere. With logit ``x``:
``l = BCE(x, s) * ((1 - alpha) + (2 alpha - 1) s) * |s - sigmoid(x)|^gamma``: the usual alpha weighting, linear
in ``s`` between ``1 - alpha`` (s = 0) and ``alpha`` (s = 1), and a focal modulation by the distance to the soft
target (as the quality focal loss).
"""
from typing import Optional

import torch.nn.functional as F
from mmdet.models.losses.utils import weighted_loss
from torch import Tensor, nn

from perception.registry import MODELS


@weighted_loss
def depth_focal_loss(pred: Tensor, target: Tensor, gamma: float = 2.0, alpha: float = 0.25) -> Tensor:
    """Element-wise loss: ``pred`` (N, C) logits, ``target`` (N, C) soft targets in [0, 1]."""
    modulation = (target - pred.sigmoid()).abs().pow(gamma)
    alpha_weight = (1 - alpha) + (2 * alpha - 1) * target
    return F.binary_cross_entropy_with_logits(pred, target, reduction='none') * alpha_weight * modulation


@MODELS.register_module()
class DepthFocalLoss(nn.Module):
    """Soft-target focal loss of OPEN's 3D classification.

    Args:
        gamma: focusing exponent.
        alpha: weight of the positive targets (``1 - alpha`` for the negatives).
        reduction: 'none', 'mean' or 'sum'.
        loss_weight: multiplier of the loss.
    """

    def __init__(self, gamma: float = 2.0, alpha: float = 0.25, reduction: str = 'mean',
                 loss_weight: float = 1.0) -> None:
        super().__init__()
        self.gamma = gamma
        self.alpha = alpha
        self.reduction = reduction
        self.loss_weight = loss_weight

    def forward(self, pred: Tensor, target: Tensor, weight: Optional[Tensor] = None,
                avg_factor: Optional[float] = None, reduction_override: Optional[str] = None) -> Tensor:
        """``pred`` (N, C) logits; ``target`` (N, C) soft targets; ``weight`` (N,) or (N, C) element weights;
        ``avg_factor`` the divisor of the 'mean' reduction (matched objects)."""
        reduction = reduction_override or self.reduction
        if weight is not None and weight.dim() == 1:
            weight = weight[:, None]
        return self.loss_weight * depth_focal_loss(pred, target, weight, gamma=self.gamma, alpha=self.alpha,
                                                   reduction=reduction, avg_factor=avg_factor)
