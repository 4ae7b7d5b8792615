"""MultiBin heading (Mousavian et al., "3D Bounding Box Estimation Using Deep Learning and Geometry",
CVPR 2017, in the form of MonoDLE / MonoDETR).

The observation angle is classified into ``K`` bins of width ``2 pi / K`` centred on ``k 2 pi / K`` and
regressed as a residual from the centre of its bin. The head predicts ``2K`` values: ``K`` bin logits,
then ``K`` residuals of which only the true bin's is supervised.
"""
import math
from typing import Optional, Tuple

import torch
import torch.nn.functional as F
from mmdet.models.losses.utils import weighted_loss
from torch import Tensor, nn

from perception.registry import MODELS
from perception.structures import wrap_angle


def encode_heading(angle: Tensor, num_bins: int = 12) -> Tuple[Tensor, Tensor]:
    """Bin and residual of each angle.

    Args:
        angle: (N,) radians, any range.
        num_bins: K.

    Returns:
        (N,) int64 bins in ``[0, K)`` and (N,) residuals in ``[-pi / K, pi / K)``, radians.
    """
    bin_width = 2 * math.pi / num_bins
    shifted = torch.remainder(angle + bin_width / 2, 2 * math.pi)
    bins = (shifted / bin_width).long().clamp(max=num_bins - 1)
    residual = shifted - (bins.to(angle.dtype) * bin_width + bin_width / 2)
    return bins, residual


def decode_heading(pred: Tensor, num_bins: int = 12) -> Tensor:
    """Angle of the most likely bin plus its residual.

    Args:
        pred: (..., 2K) bin logits then residuals.

    Returns:
        (...) radians in ``[-pi, pi)``.
    """
    bins = pred[..., :num_bins].argmax(dim=-1, keepdim=True)
    residual = pred[..., num_bins:].gather(-1, bins).squeeze(-1)
    return wrap_angle(bins.squeeze(-1).to(pred.dtype) * (2 * math.pi / num_bins) + residual)


@weighted_loss
def multibin_loss(pred: Tensor, target: Tensor, num_bins: int = 12) -> Tensor:
    """Per object, the cross-entropy over the heading bins plus the L1 error of the true bin's residual.

    Args:
        pred: (N, 2K) bin logits then residuals.
        target: (N,) true angles, radians.
        num_bins: K.

    Returns:
        (N,) losses (a zero scalar without objects, as mmdet's losses).
    """
    if target.numel() == 0:
        return pred.sum() * 0
    bins, residual = encode_heading(target, num_bins)
    cls_loss = F.cross_entropy(pred[:, :num_bins], bins, reduction='none')
    pred_residual = pred[:, num_bins:].gather(1, bins[:, None]).squeeze(1)
    return cls_loss + (pred_residual - residual).abs()


@MODELS.register_module()
class MultiBinLoss(nn.Module):
    """Cross-entropy over the heading bins plus L1 on the true bin's residual, per object.

    Args:
        num_bins: K.
        reduction: 'none', 'mean' or 'sum'.
        loss_weight: multiplier of the loss.
    """

    def __init__(self, num_bins: int = 12, reduction: str = 'mean', loss_weight: float = 1.0) -> None:
        super().__init__()
        self.num_bins = num_bins
        self.reduction = reduction
        self.loss_weight = loss_weight

    def forward(self, pred: Tensor, target: Tensor, weight: Optional[Tensor] = None, avg_factor: Optional[float] = None,
                reduction_override: Optional[str] = None) -> Tensor:
        """
        Args:
            pred: (N, 2K) bin logits then residuals.
            target: (N,) true angles, radians.
            weight: (N,) object weights.
            avg_factor: divisor of the sum with the 'mean' reduction.
            reduction_override: replaces ``reduction`` for this call.

        Returns:
            The reduced loss, or (N,) with 'none'.
        """
        reduction = reduction_override or self.reduction
        return self.loss_weight * multibin_loss(pred, target, weight, reduction=reduction, avg_factor=avg_factor,
                                                num_bins=self.num_bins)
