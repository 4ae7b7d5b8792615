"""Photometric losses of self-supervised depth: SSIM + L1 reconstruction and edge-aware smoothness.

- Reconstruction (Godard et al., "Unsupervised Monocular Depth Estimation with Left-Right Consistency",
  CVPR 2017, eq. 2; monodepth2's form): ``e = a (1 - SSIM(I, I')) / 2 + (1 - a) |I - I'|`` per pixel,
  averaged over channels, SSIM over 3x3 windows with reflection padding.
- Edge-aware smoothness (same paper, eq. 3): ``|d_x D| exp(-g |d_x I|) + |d_y D| exp(-g |d_y I|)``, here
  with the options of TiO-Depth's and EPCDepth's variant: grey image, ``g``, and an extra term with the
  forward differences of the disparity and second-order image differences.

Images are expected in [0, 1] (the SSIM constants ``(0.01)^2``, ``(0.03)^2`` assume a unit range).
"""
from typing import Optional

import torch
import torch.nn.functional as F
from mmdet.models.losses.utils import weighted_loss
from torch import Tensor, nn

from perception.registry import MODELS

SSIM_C1 = 0.01**2
SSIM_C2 = 0.03**2


def ssim_dissimilarity(x: Tensor, y: Tensor) -> Tensor:
    """``(1 - SSIM) / 2`` of each pixel and channel, clamped to [0, 1].

    Args:
        x, y: (B, C, H, W) images in [0, 1].

    Returns:
        (B, C, H, W) dissimilarities.
    """
    x = F.pad(x, (1, 1, 1, 1), mode='reflect')
    y = F.pad(y, (1, 1, 1, 1), mode='reflect')
    mu_x = F.avg_pool2d(x, 3, 1)
    mu_y = F.avg_pool2d(y, 3, 1)
    sigma_x = F.avg_pool2d(x * x, 3, 1) - mu_x * mu_x
    sigma_y = F.avg_pool2d(y * y, 3, 1) - mu_y * mu_y
    sigma_xy = F.avg_pool2d(x * y, 3, 1) - mu_x * mu_y
    numerator = (2 * mu_x * mu_y + SSIM_C1) * (2 * sigma_xy + SSIM_C2)
    denominator = (mu_x * mu_x + mu_y * mu_y + SSIM_C1) * (sigma_x + sigma_y + SSIM_C2)
    return ((1 - numerator / denominator) / 2).clamp(0, 1)


@weighted_loss
def photometric_loss(pred: Tensor, target: Tensor, ssim_weight: float = 0.85,
                     l1_weight: float = 0.15) -> Tensor:
    """Per-pixel ``ssim_weight (1 - SSIM) / 2 + l1_weight |pred - target|``, mean over channels.

    Args:
        pred: (B, C, H, W) reconstructed image.
        target: (B, C, H, W) observed image.

    Returns:
        (B, 1, H, W) errors.
    """
    error = l1_weight * (pred - target).abs().mean(1, keepdim=True)
    if ssim_weight:
        error = error + ssim_weight * ssim_dissimilarity(pred, target).mean(1, keepdim=True)
    return error


@MODELS.register_module()
class PhotometricLoss(nn.Module):
    """SSIM + L1 reconstruction loss of a synthesised view.

    Args:
        ssim_weight, l1_weight: mix of the two terms (0.85 / 0.15 in monodepth2 and TiO-Depth's stereo
            stage; 0 / 1 for a plain L1).
        reduction: 'none', 'mean' or 'sum'.
        loss_weight: multiplier of the loss.
    """

    def __init__(self, ssim_weight: float = 0.85, l1_weight: float = 0.15, reduction: str = 'mean',
                 loss_weight: float = 1.0) -> None:
        super().__init__()
        self.ssim_weight = ssim_weight
        self.l1_weight = l1_weight
        self.reduction = reduction
        self.loss_weight = loss_weight

    def forward(self, pred: Tensor, target: Tensor, weight: Optional[Tensor] = None,
                avg_factor: Optional[float] = None, reduction_override: Optional[str] = None) -> Tensor:
        """
        Args:
            pred: (B, C, H, W) reconstructed image in [0, 1].
            target: (B, C, H, W) observed image in [0, 1].
            weight: (B, 1, H, W) pixel weights, e.g. a validity mask (the 'mean' reduction still divides
                by the number of pixels unless ``avg_factor`` is given).
            avg_factor: divisor of the sum with the 'mean' reduction.
            reduction_override: replaces ``reduction`` for this call.
        """
        reduction = reduction_override or self.reduction
        return self.loss_weight * photometric_loss(
            pred, target, weight, reduction=reduction, avg_factor=avg_factor,
            ssim_weight=self.ssim_weight, l1_weight=self.l1_weight)


def _grey(image: Tensor) -> Tensor:
    r, g, b = image.unbind(1)
    return (0.299 * r + 0.587 * g + 0.114 * b).unsqueeze(1)


@weighted_loss
def edge_aware_smoothness(disp: Tensor, image: Tensor, gamma: float = 1.0, grey: bool = False,
                          second_order: bool = False) -> Tensor:
    """Per-pixel edge-aware smoothness of a disparity map (replicate-padded, so the map keeps its size).

    The disparity term is ``|D(x) - D(x-1)|`` (plus ``|D(x+1) - D(x)|`` with ``second_order``) along
    each axis; the image weight is ``exp(-gamma |I(x) - I(x-1)|)``, or with ``second_order``
    ``exp(-gamma |2 I(x) - I(x-1) - I(x+1)|)``, averaged over channels (one with ``grey``).

    Args:
        disp: (B, 1, H, W) disparity (any unit: the loss scales with it).
        image: (B, 3, H, W) image of the same view in [0, 1].

    Returns:
        (B, 1, H, W) smoothness costs.
    """
    if grey:
        image = _grey(image)
    d = F.pad(disp, (1, 1, 1, 1), mode='replicate')
    i = F.pad(image, (1, 1, 1, 1), mode='replicate')
    centre_d, centre_i = d[..., 1:-1, 1:-1], i[..., 1:-1, 1:-1]
    grad_d_x = (centre_d - d[..., 1:-1, :-2]).abs()
    grad_d_y = (centre_d - d[..., :-2, 1:-1]).abs()
    if second_order:
        grad_d_x = grad_d_x + (d[..., 1:-1, 2:] - centre_d).abs()
        grad_d_y = grad_d_y + (d[..., 2:, 1:-1] - centre_d).abs()
        grad_i_x = 2 * centre_i - i[..., 1:-1, :-2] - i[..., 1:-1, 2:]
        grad_i_y = 2 * centre_i - i[..., :-2, 1:-1] - i[..., 2:, 1:-1]
    else:
        grad_i_x = centre_i - i[..., 1:-1, :-2]
        grad_i_y = centre_i - i[..., :-2, 1:-1]
    weight_x = torch.exp(-gamma * grad_i_x.abs().mean(1, keepdim=True))
    weight_y = torch.exp(-gamma * grad_i_y.abs().mean(1, keepdim=True))
    return grad_d_x.mean(1, keepdim=True) * weight_x + grad_d_y.mean(1, keepdim=True) * weight_y


@MODELS.register_module()
class EdgeAwareSmoothnessLoss(nn.Module):
    """Edge-aware disparity smoothness.

    Args:
        gamma: sharpness of the image-edge weight (1 in monodepth2, 2 in TiO-Depth).
        grey: weigh by the edges of the grey image instead of the mean over colour channels.
        second_order: TiO-Depth's variant (``more_kernel``): both one-sided disparity differences and
            second-order image differences.
        reduction: 'none', 'mean' or 'sum'.
        loss_weight: multiplier of the loss.
    """

    def __init__(self, gamma: float = 1.0, grey: bool = False, second_order: bool = False,
                 reduction: str = 'mean', loss_weight: float = 1.0) -> None:
        super().__init__()
        self.gamma = gamma
        self.grey = grey
        self.second_order = second_order
        self.reduction = reduction
        self.loss_weight = loss_weight

    def forward(self, disp: Tensor, image: Tensor, weight: Optional[Tensor] = None,
                avg_factor: Optional[float] = None, reduction_override: Optional[str] = None) -> Tensor:
        """
        Args:
            disp: (B, 1, H, W) disparity.
            image: (B, 3, H, W) image in [0, 1].
            weight: (B, 1, H, W) pixel weights.
            avg_factor: divisor of the sum with the 'mean' reduction.
            reduction_override: replaces ``reduction`` for this call.
        """
        reduction = reduction_override or self.reduction
        return self.loss_weight * edge_aware_smoothness(
            disp, image, weight, reduction=reduction, avg_factor=avg_factor, gamma=self.gamma,
            grey=self.grey, second_order=self.second_order)
