"""SparseNeRF depth-ranking distillation (Wang, Chen, Loy, Liu: "SparseNeRF: Distilling Depth Ranking for
Few-shot Novel View Synthesis", ICCV 2023).

A coarse teacher depth (a monocular prior, a pseudo-depth map) is trusted for its local *ordering* only:
pixel pairs drawn in a small box must keep the teacher's near/far order in the student's depth (local
depth ranking, Eq. 6), and each pixel must stay close to a neighbour the teacher deems of similar depth
(spatial continuity, Eq. 7). Both are hinge losses with margins of 1e-4, so the scale of the teacher is
never used.
"""
from typing import Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
from mmdet.models.losses.utils import weight_reduce_loss
from torch import Tensor

from perception.registry import MODELS


def _window_offsets(radius: int, device: torch.device) -> Tuple[Tensor, Tensor]:
    # SparseNeRF slices [p - r, p + r): offsets -r .. r - 1, so the window is not centred.
    steps = torch.arange(-radius, radius, device=device)
    dy, dx = torch.meshgrid(steps, steps, indexing='ij')
    return dy.reshape(-1), dx.reshape(-1)


def sample_ranking_groups(prior: Tensor,
                          num_pairs: int,
                          box_size: Union[int, Tuple[int, int]] = (30, 30),
                          radius: int = 3,
                          top_percent: float = 0.3,
                          prior_is_depth: bool = False,
                          generator: Optional[torch.Generator] = None) -> Tensor:
    """Draw the pixel groups of the ranking and continuity losses from a teacher map.

    Per image, ``num_pairs`` pairs are drawn uniformly inside one random ``box_size`` box. Each point
    gets a neighbour drawn uniformly among the ``int(top_percent * n)`` pixels of its window whose
    teacher value is closest to its own. The window holds rows and columns p - radius .. p + radius - 1,
    clipped to the image without its last row and column, as in the official code: n <= (2 radius)^2
    pixels, the point itself included.

    Args:
        prior: (B, H, W) or (B, 1, H, W) teacher map: inverse depth (larger = nearer, as MiDaS), or depth
            when ``prior_is_depth``. Only its order is used; it gets no gradient.
        num_pairs: pairs per image.
        box_size: (h, w) of the local box in pixels, clipped to the image.
        radius: half size of the neighbour window.
        top_percent: fraction of the window's pixels, the most similar to the point, to draw from.
        prior_is_depth: the teacher holds depth rather than inverse depth.
        generator: random generator on ``prior``'s device, for reproducible draws.

    Returns:
        (B, num_pairs, 4) int64 flat pixel indices (row * W + col) ordered [near, far, near's neighbour,
        far's neighbour], near and far according to the teacher.
    """
    if prior.dim() == 4:
        prior = prior.squeeze(1)
    if prior.dim() != 3:
        raise ValueError(f'expected a (B, H, W) or (B, 1, H, W) prior, got shape {tuple(prior.shape)}')
    prior = prior.detach()
    batch, height, width = prior.shape
    if height < 2 or width < 2:
        raise ValueError(f'the prior must be at least 2x2 pixels, got {height}x{width}')
    box_h, box_w = (box_size, box_size) if isinstance(box_size, int) else box_size
    box_h, box_w = min(box_h, height), min(box_w, width)
    device = prior.device

    def randint(high, size):
        return torch.randint(0, high, size, device=device, generator=generator)

    # (B, 2P) points: the first P are the first elements of the pairs, the last P the second ones.
    rows = randint(height - box_h + 1, (batch, 1)) + randint(box_h, (batch, 2 * num_pairs))
    cols = randint(width - box_w + 1, (batch, 1)) + randint(box_w, (batch, 2 * num_pairs))
    flat_prior = prior.reshape(batch, -1)
    point_idx = rows * width + cols

    dy, dx = _window_offsets(radius, device)
    nbr_rows, nbr_cols = rows[..., None] + dy, cols[..., None] + dx
    inside = (nbr_rows >= 0) & (nbr_rows < height - 1) & (nbr_cols >= 0) & (nbr_cols < width - 1)
    nbr_idx = nbr_rows.clamp(0, height - 1) * width + nbr_cols.clamp(0, width - 1)
    point_val = flat_prior.gather(1, point_idx)
    nbr_val = flat_prior.gather(1, nbr_idx.reshape(batch, -1)).reshape(nbr_idx.shape)
    gap = (nbr_val - point_val[..., None]).abs().masked_fill(~inside, float('inf'))
    by_similarity = gap.argsort(dim=-1, stable=True)
    num_candidates = (inside.sum(-1).float() * top_percent).floor().clamp(min=1)
    rank = (torch.rand(rows.shape, device=device, generator=generator) * num_candidates).long()
    nbr_choice = by_similarity.gather(-1, rank[..., None])
    neighbour_idx = nbr_idx.gather(-1, nbr_choice).squeeze(-1)

    first, second = point_idx.split(num_pairs, dim=1)
    first_nbr, second_nbr = neighbour_idx.split(num_pairs, dim=1)
    first_val, second_val = point_val.split(num_pairs, dim=1)
    # Ties count as "second is nearer", as in the official loader.
    swap = first_val >= second_val if prior_is_depth else first_val <= second_val
    near = torch.where(swap, second, first)
    far = torch.where(swap, first, second)
    near_nbr = torch.where(swap, second_nbr, first_nbr)
    far_nbr = torch.where(swap, first_nbr, second_nbr)
    return torch.stack([near, far, near_nbr, far_nbr], dim=-1)


def depth_ranking_loss(distances: Tensor,
                       rank_margin: float = 1e-4,
                       continuity_margin: float = 1e-4,
                       continuity_weight: float = 0.01) -> Tensor:
    """Element-wise ranking + continuity loss of grouped student depths.

    Args:
        distances: (..., 4) student depths (or ray distances) of the groups [near, far, near's neighbour,
            far's neighbour] given by :func:`sample_ranking_groups`.
        rank_margin: the near point must be nearer than the far one by this margin (same unit as depth).
        continuity_margin: neighbours may differ by this much at no cost.
        continuity_weight: weight of the continuity term (0.01 for LLFF, 1.0 for DTU in the paper).

    Returns:
        (...) ``max(d_near - d_far + m1, 0)
        + w * (max(|d_near - d_near'| - m2, 0) + max(|d_far - d_far'| - m2, 0))``;
        its mean over groups is the paper's L_rank + w * L_cont.
    """
    near, far, near_nbr, far_nbr = distances.unbind(-1)
    ranking = (near - far + rank_margin).clamp(min=0)
    continuity = ((near - near_nbr).abs() - continuity_margin).clamp(min=0) + \
        ((far - far_nbr).abs() - continuity_margin).clamp(min=0)
    return ranking + continuity_weight * continuity


@MODELS.register_module()
class DepthRankingLoss(nn.Module):
    """Distil the local depth ordering of a teacher map into a dense student depth (SparseNeRF).

    Args:
        num_pairs: pairs drawn per image.
        box_size: (h, w) of the local box the pairs are drawn in (30x30 for LLFF).
        radius: half size of the neighbour window (3).
        top_percent: the neighbour is drawn among this fraction of the window, the most similar in the
            teacher (0.3).
        rank_margin: margin of the ranking hinge (1e-4).
        continuity_margin: margin of the continuity hinge (1e-4).
        continuity_weight: weight of the continuity term relative to the ranking term.
        prior_is_depth: the teacher holds depth; by default inverse depth, as a MiDaS-like prior.
        reduction: ``'none'``, ``'mean'`` or ``'sum'`` over the (B, num_pairs) groups.
        loss_weight: multiplier of the loss.
    """

    def __init__(self,
                 num_pairs: int = 256,
                 box_size: Sequence[int] = (30, 30),
                 radius: int = 3,
                 top_percent: float = 0.3,
                 rank_margin: float = 1e-4,
                 continuity_margin: float = 1e-4,
                 continuity_weight: float = 0.01,
                 prior_is_depth: bool = False,
                 reduction: str = 'mean',
                 loss_weight: float = 1.0) -> None:
        super().__init__()
        self.num_pairs = num_pairs
        self.box_size = tuple(box_size)
        self.radius = radius
        self.top_percent = top_percent
        self.rank_margin = rank_margin
        self.continuity_margin = continuity_margin
        self.continuity_weight = continuity_weight
        self.prior_is_depth = prior_is_depth
        self.reduction = reduction
        self.loss_weight = loss_weight

    def forward(self,
                pred: Tensor,
                prior: Tensor,
                weight: Optional[Tensor] = None,
                avg_factor: Optional[float] = None,
                reduction_override: Optional[str] = None,
                generator: Optional[torch.Generator] = None,
                prior_valid: Optional[Tensor] = None) -> Tensor:
        """Sample groups from ``prior`` and score the student's depths on them.

        Args:
            pred: (B, H, W) or (B, 1, H, W) student depth (any quantity growing with distance).
            prior: teacher map of the same spatial size, see :func:`sample_ranking_groups`.
            weight: (B,) per-image or (B, num_pairs) per-group weights.
            avg_factor: divisor of the summed loss instead of the number of groups.
            reduction_override: replaces ``reduction`` for this call.
            generator: random generator for the sampler.
            prior_valid: (B, H, W) or (B, 1, H, W) bool, where the teacher has a value (a sparse or holed
                teacher): groups touching an invalid pixel get weight 0 and, for the mean, do not count.

        Returns:
            The scalar loss, or the (B, num_pairs) group losses when the reduction is ``'none'``.
        """
        if pred.dim() == 4:
            pred = pred.squeeze(1)
        prior_hw = prior.shape[-2:]
        if pred.dim() != 3 or pred.shape[-2:] != prior_hw:
            raise ValueError(f'pred of shape {tuple(pred.shape)} does not match the prior of shape '
                             f'{tuple(prior.shape)}')
        groups = sample_ranking_groups(prior, self.num_pairs, self.box_size, self.radius,
                                       self.top_percent, self.prior_is_depth, generator)
        flat = pred.reshape(pred.shape[0], -1)
        index = groups.reshape(pred.shape[0], -1)
        distances = flat.gather(1, index).reshape(groups.shape)
        loss = depth_ranking_loss(distances, self.rank_margin, self.continuity_margin,
                                  self.continuity_weight)
        if weight is not None and weight.dim() == 1:
            weight = weight[:, None].expand_as(loss)
        reduction = reduction_override if reduction_override else self.reduction
        if prior_valid is not None:
            flat_valid = prior_valid.reshape(pred.shape[0], -1)
            if flat_valid.shape != flat.shape:
                raise ValueError(f'prior_valid of shape {tuple(prior_valid.shape)} does not match the prior')
            complete = flat_valid.gather(1, index).reshape(groups.shape).all(-1)
            complete = complete.to(loss.dtype)
            weight = complete if weight is None else weight * complete
            if reduction == 'mean' and avg_factor is None:
                avg_factor = (weight > 0).sum().clamp(min=1).item()
        return self.loss_weight * weight_reduce_loss(loss, weight, reduction, avg_factor)
