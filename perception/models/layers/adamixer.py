"""AdaMixer decoder pieces (Gao et al., CVPR 2022) as used by StageInteractor (Teng et al., ICCV 2023).

A query is a content vector plus a box ``xyzr``: centre (x, y) in pixels, ``z = log2(sqrt(w h))`` and
``r = log2(h / w)``. Each stage samples points around the box in the 3-D (x, y, scale) space of the
feature pyramid and mixes them with channel and spatial filters generated from the query itself.
StageInteractor adds the reuse of the channel filters of earlier stages through light adapters
(:mod:`.cross_stage_filter`).
"""
import math
from typing import Sequence, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmcv.cnn.bricks.transformer import FFN
from torch import Tensor

from .cross_stage_filter import CrossStageFilterAdapters


def xyxy_to_xyzr(boxes: Tensor) -> Tensor:
    """(..., 4) corner boxes in pixels -> (..., 4) ``xyzr``."""
    wh = (boxes[..., 2:] - boxes[..., :2]).clamp(min=1e-6)
    xy = (boxes[..., :2] + boxes[..., 2:]) / 2
    z = 0.5 * torch.log2(wh[..., 0] * wh[..., 1])
    r = torch.log2(wh[..., 1] / wh[..., 0])
    return torch.cat([xy, z[..., None], r[..., None]], dim=-1)


def xyzr_to_xyxy(xyzr: Tensor) -> Tensor:
    """(..., 4) ``xyzr`` -> (..., 4) corner boxes in pixels."""
    xy, z, r = xyzr[..., :2], xyzr[..., 2:3], xyzr[..., 3:4]
    wh = torch.cat([2 ** (z - r / 2), 2 ** (z + r / 2)], dim=-1)
    return torch.cat([xy - wh / 2, xy + wh / 2], dim=-1)


def xyzr_embedding(xyzr: Tensor, dim: int, temperature: float = 10000.) -> Tensor:
    """Sine embedding of each of the 4 box coordinates into ``dim // 4`` channels: (..., 4) -> (..., dim)."""
    num_feats = dim // 4
    dim_t = torch.arange(num_feats, dtype=xyzr.dtype, device=xyzr.device)
    dim_t = temperature ** (2 * (dim_t // 2) / num_feats)
    pos = xyzr[..., None] / dim_t
    pos = torch.stack([pos[..., 0::2].sin(), pos[..., 1::2].cos()], dim=-1)
    return pos.flatten(-3)


def scale_level_weights(z: Tensor, num_levels: int = 4, tau: float = 2.0) -> Tensor:
    """Weights of the pyramid levels for points at scale ``z``: ``softmax_l(-((z - 3) - l)^2 / tau)``.

    Level ``l`` has stride ``2^(l + 2)`` (4 ... 32), so a point of scale ``z`` reads most from the level
    of stride ``2^(z - 1)``, as in the official ``SubqueryFeatureSampler``.

    Args:
        z: (...) log2 scales of the points.
    Returns:
        (..., num_levels) weights summing to 1.
    """
    levels = torch.arange(num_levels, dtype=z.dtype, device=z.device)
    return torch.softmax(-((z[..., None] - 3) - levels) ** 2 / tau, dim=-1)


def sample_3d(feats: Sequence[Tensor], strides: Sequence[int], points: Tensor, num_groups: int,
              tau: float = 2.0) -> Tensor:
    """Bilinear sampling of points in (x, y, scale) space of a feature pyramid, channels split in groups.

    Args:
        feats: L maps (B, C, H_l, W_l) with strides ``strides``.
        points: (B, N, G, P, 3) points (x, y in pixels of the padded input, z = log2 scale); group g
            samples channels ``[g C/G, (g + 1) C/G)``.
        num_groups: G.
    Returns:
        (B, N, G, P, C / G) features, each the level-weighted sum of the per-level samples.
    """
    b, n, g, p, _ = points.shape
    weights = scale_level_weights(points[..., 2], len(feats), tau)  # B, N, G, P, L
    weights = weights.permute(0, 2, 4, 1, 3).reshape(b * g, len(feats), 1, n, p)
    out = 0
    for level, (feat, stride) in enumerate(zip(feats, strides)):
        h, w = feat.shape[-2:]
        # grid_sample's [-1, 1] spans the outer edges of the map (align_corners=False).
        scale = points.new_tensor([stride * w, stride * h])
        grid = 2 * points[..., :2] / scale - 1
        grid = grid.permute(0, 2, 1, 3, 4).reshape(b * g, n, p, 2)
        value = feat.reshape(b * g, feat.shape[1] // g, h, w)
        sampled = F.grid_sample(value, grid, mode='bilinear', padding_mode='zeros', align_corners=False)
        out = out + sampled * weights[:, level]
    return out.reshape(b, g, -1, n, p).permute(0, 3, 1, 4, 2)


class SubqueryPointSampler(nn.Module):
    """Sampling points of a query: ``in_points`` sub-queries x ``subbox_points`` points, per group.

    ``x = x_q + 2^(z_q - r_q/2) (dx0 + 2^dz0 dx1)``, ``y = y_q + 2^(z_q + r_q/2) (dy0 + 2^dz0 dy1)``,
    ``z = z_q + dz0 + dz1``: (dx0, dy0, dz0) place each sub-query, (dx1, dy1, dz1), shared by the
    sub-queries of a group, spread the points of a sub-box around it.

    Args:
        dim: query channels.
        num_groups: G.
        in_points: sub-queries per group.
        subbox_points: points per sub-query.
    """

    def __init__(self, dim: int = 256, num_groups: int = 4, in_points: int = 8,
                 subbox_points: int = 8) -> None:
        super().__init__()
        self.num_groups, self.in_points, self.subbox_points = num_groups, in_points, subbox_points
        self.subquery_offset = nn.Linear(dim, num_groups * in_points * 3)
        self.subbox_offset = nn.Linear(dim, num_groups * subbox_points * 3)
        self.init_weights()

    @torch.no_grad()
    def init_weights(self) -> None:
        # Points start spread uniformly inside the box (|dx0 + dx1| <= 1/2) at the box's own scale.
        for linear, count in ((self.subquery_offset, self.in_points),
                              (self.subbox_offset, self.subbox_points)):
            nn.init.zeros_(linear.weight)
            bias = linear.bias.view(self.num_groups, count, 3)
            nn.init.uniform_(bias[..., :2], -0.25, 0.25)
            nn.init.zeros_(bias[..., 2])

    def forward(self, query: Tensor, xyzr: Tensor) -> Tensor:
        """(B, N, C) queries and (B, N, 4) boxes -> (B, N, G, in_points * subbox_points, 3) points."""
        b, n = query.shape[:2]
        g = self.num_groups
        off0 = self.subquery_offset(query).view(b, n, g, self.in_points, 1, 3)
        off1 = self.subbox_offset(query).view(b, n, g, 1, self.subbox_points, 3)
        xyzr = xyzr.view(b, n, 1, 1, 1, 4)
        z, r = xyzr[..., 2:3], xyzr[..., 3:4]
        half_scale = torch.cat([2 ** (z - r / 2), 2 ** (z + r / 2)], dim=-1)
        xy = xyzr[..., :2] + half_scale * (off0[..., :2] + 2 ** off0[..., 2:3] * off1[..., :2])
        pz = z + off0[..., 2:3] + off1[..., 2:3]
        return torch.cat([xy, pz], dim=-1).reshape(b, n, g, -1, 3)


class AdaptiveMixing(nn.Module):
    """Adaptive channel mixing then adaptive spatial mixing, with query-generated filters.

    Per group: ``X (P, C/G) <- ReLU(LN(X M))`` with ``M (C/G, C/G)``, then ``X <- ReLU(LN(S^T X))`` with
    ``S (P, P_out)``; the G x P_out x C/G result is projected to C. With ``num_reused``, StageInteractor's
    reuse (:class:`~.cross_stage_filter.CrossStageFilterAdapters`) first applies the channel filters of
    earlier stages (``prev_filters``).

    Args:
        dim: query and feature channels C.
        num_groups: G.
        in_points: sampled points P per group.
        out_points: P_out.
        num_reused: how many earlier channel filters this stage reuses (0 for plain AdaMixer).
    """

    def __init__(self, dim: int = 256, num_groups: int = 4, in_points: int = 64, out_points: int = 128,
                 num_reused: int = 0) -> None:
        super().__init__()
        self.dim, self.num_groups, self.in_points, self.out_points = dim, num_groups, in_points, out_points
        self.group_dim = dim // num_groups
        self.channel_params = num_groups * self.group_dim ** 2
        self.spatial_params = num_groups * in_points * out_points
        self.filter_generator = nn.Linear(dim, self.channel_params + self.spatial_params)
        self.out_proj = nn.Linear(num_groups * out_points * self.group_dim, dim)
        self.adapters = CrossStageFilterAdapters(self.group_dim, num_reused)
        self.init_weights()

    @torch.no_grad()
    def init_weights(self) -> None:
        # Filters start query-independent (the bias), as in AdaMixer.
        nn.init.zeros_(self.filter_generator.weight)
        bound = math.sqrt(6 / (self.dim + self.channel_params + self.spatial_params))
        nn.init.uniform_(self.filter_generator.bias, -bound, bound)

    @staticmethod
    def _mix(x: Tensor, weight: Tensor) -> Tensor:
        x = torch.matmul(x, weight)
        return F.relu(F.layer_norm(x, x.shape[-2:]))

    def forward(self, feats: Tensor, query: Tensor,
                prev_filters: Sequence[Tensor] = ()) -> Tuple[Tensor, Tensor]:
        """Args:
            feats: (B, N, G, P, C/G) sampled features.
            query: (B, N, C).
            prev_filters: channel filters (B, N, G, C/G, C/G) of earlier stages, oldest first; only the
                last ``num_reused`` are used.
        Returns:
            (B, N, C) mixed features and this stage's channel filter (B, N, G, C/G, C/G).
        """
        b, n, g = feats.shape[:3]
        params = self.filter_generator(query)
        channel_filter = params[..., :self.channel_params].view(b, n, g, self.group_dim, self.group_dim)
        spatial_filter = params[..., self.channel_params:].view(b, n, g, self.in_points, self.out_points)
        x = self.adapters(feats, prev_filters, self._mix)
        x = self._mix(x, channel_filter)
        x = self._mix(x.transpose(-1, -2), spatial_filter)  # B, N, G, C/G, P_out
        return self.out_proj(x.reshape(b, n, -1)), channel_filter


class AdaMixerStage(nn.Module):
    """One decoder stage: self-attention, 3-D sampling, adaptive mixing, FFN, cls / box branches.

    Args:
        num_classes: foreground classes (sigmoid scores).
        dim: query and feature channels.
        num_groups: mixing groups G.
        in_points: sub-queries per group.
        subbox_points: points per sub-query.
        out_points: P_out of spatial mixing.
        ffn_channels: hidden channels of the FFN.
        num_heads: heads of the self-attention.
        num_reused: earlier channel filters this stage reuses.
        featmap_strides: strides of the 4 pyramid levels.
        tau: temperature of the scale weights.
    """

    def __init__(self, num_classes: int, dim: int = 256, num_groups: int = 4, in_points: int = 8,
                 subbox_points: int = 8, out_points: int = 128, ffn_channels: int = 2048,
                 num_heads: int = 8, num_reused: int = 0,
                 featmap_strides: Sequence[int] = (4, 8, 16, 32), tau: float = 2.0) -> None:
        super().__init__()
        self.featmap_strides = tuple(featmap_strides)
        self.num_groups, self.tau = num_groups, tau
        self.attention = nn.MultiheadAttention(dim, num_heads, batch_first=True)
        self.attention_norm = nn.LayerNorm(dim)
        self.sampler = SubqueryPointSampler(dim, num_groups, in_points, subbox_points)
        self.mixing = AdaptiveMixing(dim, num_groups, in_points * subbox_points, out_points, num_reused)
        self.mixing_norm = nn.LayerNorm(dim)
        self.ffn = FFN(dim, ffn_channels, num_fcs=2, ffn_drop=0.)
        self.ffn_norm = nn.LayerNorm(dim)
        self.cls_branch = nn.Sequential(
            nn.Linear(dim, dim, bias=False), nn.LayerNorm(dim), nn.ReLU(inplace=True),
            nn.Linear(dim, num_classes))
        self.reg_branch = nn.Sequential(
            nn.Linear(dim, dim, bias=False), nn.LayerNorm(dim), nn.ReLU(inplace=True),
            nn.Linear(dim, 4))
        self.init_weights()

    @torch.no_grad()
    def init_weights(self) -> None:
        nn.init.constant_(self.cls_branch[-1].bias, -math.log((1 - 0.01) / 0.01))
        nn.init.zeros_(self.reg_branch[-1].weight)
        nn.init.zeros_(self.reg_branch[-1].bias)

    def forward(self, feats: Sequence[Tensor], query: Tensor, xyzr: Tensor,
                prev_filters: Sequence[Tensor] = ()) -> Tuple[Tensor, Tensor, Tensor, Tensor]:
        """Args:
            feats: 4 maps (B, C, H_l, W_l).
            query: (B, N, C) content.
            xyzr: (B, N, 4) boxes, without gradient.
            prev_filters: channel filters of the earlier stages.
        Returns:
            class logits (B, N, K), refined boxes xyzr (B, N, 4), the new content (B, N, C) and this
            stage's channel filter.
        """
        pos = xyzr_embedding(xyzr, query.shape[-1])
        q = query + pos
        query = self.attention_norm(query + self.attention(q, q, query, need_weights=False)[0])
        points = self.sampler(query, xyzr)
        sampled = sample_3d(feats, self.featmap_strides, points, self.num_groups, self.tau)
        mixed, channel_filter = self.mixing(sampled, query, prev_filters)
        query = self.mixing_norm(query + mixed)
        query = self.ffn_norm(self.ffn(query))
        cls_logits = self.cls_branch(query)
        xyzr = refine_xyzr(xyzr, self.reg_branch(query))
        return cls_logits, xyzr, query, channel_filter


def refine_xyzr(xyzr: Tensor, delta: Tensor) -> Tensor:
    """Apply (dx, dy, dz, dr) to boxes (..., 4): the centre moves in units of the box's width and height."""
    z, r = xyzr[..., 2:3], xyzr[..., 3:4]
    wh = torch.cat([2 ** (z - r / 2), 2 ** (z + r / 2)], dim=-1)
    return torch.cat([xyzr[..., :2] + delta[..., :2] * wh, xyzr[..., 2:] + delta[..., 2:]], dim=-1)
