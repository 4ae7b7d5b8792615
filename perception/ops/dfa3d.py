"""Multi-scale 3D deformable attention (DFA3D, Li, Zhang et al., ICCV 2023, eq. 4-6).

DFA3D lifts multi-view image features to 3D by sampling the expanded volume ``F(u, v) ⊗ D(u, v, d)``
(each pixel's feature times its depth distribution) trilinearly at 3D points ``(u, v, d)``, which is
computed without building the volume in two steps: the depth distribution is interpolated along ``d``
at each of the four bilinear ``(u, v)`` corners (the corners' depth scores), then the corners'
features are summed with their bilinear weights times their scores. This module holds

- :func:`multi_scale_3d_deformable_attn_materialised`: the definition, a trilinear ``grid_sample``
  of the materialised volume (memory ``B * M * C * N * H * W``: small sizes and benchmarks only);
- :func:`depth_scores` and :func:`multi_scale_3d_deformable_attn_pytorch`: the two-step form in
  pure PyTorch;
- :class:`MultiScale3DDeformableAttnFunction`: the autograd Function over the ``perception._ext``
  kernels (C++ on the CPU, CUDA on the GPU), with the gradients of all four inputs, the ``(u, v)``
  gradient included (the official standalone op loses it);
- :func:`multi_scale_3d_deformable_attn`: the dispatcher every layer calls;
- :class:`MultiScale3DDeformableAttention`: the sampling layer of BEVFormer's spatial
  cross-attention with DFA3D's depth offsets.
"""
import math
from typing import List, Optional, Tuple

import torch
import torch.nn.functional as F
from mmengine.model import BaseModule, constant_init, xavier_init
from torch import Tensor, nn
from torch.autograd import Function
from torch.autograd.function import once_differentiable

from perception.registry import MODELS

from .msda import ray_offsets


def _ext():
    from perception import _ext
    return _ext


def _per_head(x: Tensor) -> Tensor:
    """(B, K, M, ...) -> (B * M, K, ...)."""
    return x.transpose(1, 2).flatten(0, 1)


def _per_sample(x: Tensor) -> Tensor:
    """(B, Q, M, P, ...) -> (B * M, Q * P, ...)."""
    return x.transpose(1, 2).flatten(0, 1).flatten(1, 2)


def _level_slices(spatial_shapes: Tensor) -> List[Tuple[int, int, int]]:
    """(start, H, W) of each level in the key dimension."""
    out, start = [], 0
    for h, w in spatial_shapes.tolist():
        out.append((start, int(h), int(w)))
        start += int(h) * int(w)
    return out


def multi_scale_3d_deformable_attn_materialised(value: Tensor, depth_dist: Tensor,
                                                spatial_shapes: Tensor,
                                                level_start_index: Optional[Tensor],
                                                sampling_locations: Tensor,
                                                attention_weights: Tensor) -> Tensor:
    """Reference by definition: trilinear ``grid_sample`` of the materialised ``F ⊗ D``.

    Shapes as :func:`multi_scale_3d_deformable_attn`; ``level_start_index`` is unused (derived from
    the shapes). Builds a ``(B * M, C, N, H, W)`` volume per level.
    """
    bs, _, num_heads, channels = value.shape
    _, num_queries, _, _, num_points, _ = sampling_locations.shape
    grids = 2 * sampling_locations - 1
    output = value.new_zeros(bs * num_heads, channels, num_queries)
    for level, (start, h, w) in enumerate(_level_slices(spatial_shapes)):
        # (B * M, C, 1, H, W) * (B * M, 1, N, H, W)
        feat = _per_head(value[:, start:start + h * w]).transpose(1, 2).unflatten(2, (1, h, w))
        depth = _per_head(depth_dist[:, start:start + h * w]).transpose(1, 2).unflatten(2, (h, w))
        volume = feat * depth[:, None]
        # (B, Q, M, P, 3) -> (B * M, Q, P, 1, 3), last axis (x, y, z) = (u, v, d)
        grid = _per_head(grids[:, :, :, level])[:, :, :, None]
        sampled = F.grid_sample(volume, grid, mode='bilinear', padding_mode='zeros',
                                align_corners=False)[..., 0]  # (B * M, C, Q, P)
        weights = _per_head(attention_weights[:, :, :, level])  # (B * M, Q, P)
        output = output + (sampled * weights[:, None]).sum(-1)
    return output.unflatten(0, (bs, num_heads)).flatten(1, 2).transpose(1, 2).contiguous()


def _corners(loc: Tensor, h: int, w: int,
             num_bins: int) -> Tuple[Tensor, Tensor, Tensor, Tensor]:
    """The four bilinear (u, v) corners of points (..., 3) on an H x W map, with zero padding.

    Returns their key indices (..., 4) clamped into the map, whether they count (..., 4): on the
    map, of a point inside the (u, v, d) volume, their bilinear weights (..., 4), zero where they do
    not count, and the points' depth pixel coordinates (...,). Corner order: top-left, top-right,
    bottom-left, bottom-right.
    """
    x = loc[..., 0] * w - 0.5
    y = loc[..., 1] * h - 0.5
    z = loc[..., 2] * num_bins - 0.5
    inside = (x > -1) & (x < w) & (y > -1) & (y < h) & (z > -1) & (z < num_bins)
    x0, y0 = x.floor(), y.floor()
    fx, fy = x - x0, y - y0
    index, valid, weight = [], [], []
    for dy, dx in ((0, 0), (0, 1), (1, 0), (1, 1)):
        cx, cy = x0 + dx, y0 + dy
        on_map = inside & (cx >= 0) & (cx <= w - 1) & (cy >= 0) & (cy <= h - 1)
        wx = fx if dx else 1 - fx
        wy = fy if dy else 1 - fy
        weight.append(wx * wy * on_map)
        valid.append(on_map)
        index.append((cy.clamp(0, h - 1) * w + cx.clamp(0, w - 1)).long())
    return torch.stack(index, -1), torch.stack(valid, -1), torch.stack(weight, -1), z


def _level_depth_scores(depth: Tensor, index: Tensor, z: Tensor) -> Tensor:
    """Linear interpolation along d of the depth rows (B * M, K, N) at the corners' key indices
    (B * M, R, 4) and depth pixel coordinates (B * M, R), zero outside the bins."""
    num_bins = depth.shape[-1]
    flat = depth.flatten(1)
    z0 = z.floor()
    fz = (z - z0)[..., None]
    score = 0
    for bin_, weight in ((z0, 1 - fz), (z0 + 1, fz)):
        valid = ((bin_ >= 0) & (bin_ <= num_bins - 1))[..., None]
        at = index * num_bins + bin_.clamp(0, num_bins - 1).long()[..., None]
        score = score + flat.gather(1, at.flatten(1)).view_as(index) * weight * valid
    return score


def depth_scores(depth_dist: Tensor, spatial_shapes: Tensor,
                 sampling_locations: Tensor) -> Tensor:
    """Step 1 of the two-step form: the depth distribution interpolated along d at the four
    bilinear (u, v) corners of each sampling point, (B, Q, M, L, P, 4) in the corner order of
    :func:`_corners` (the official kernel's order swaps the last two).

    Corners off the map and points outside the (u, v, d) volume score 0.
    """
    bs, num_queries, num_heads, num_levels, num_points, _ = sampling_locations.shape
    num_bins = depth_dist.shape[-1]
    scores = []
    for level, (start, h, w) in enumerate(_level_slices(spatial_shapes)):
        loc = _per_sample(sampling_locations[:, :, :, level])  # (B * M, Q * P, 3)
        index, valid, _, z = _corners(loc, h, w, num_bins)
        depth = _per_head(depth_dist[:, start:start + h * w])
        scores.append(_level_depth_scores(depth, index, z) * valid)
    scores = torch.stack(scores, 2)  # (B * M, Q * P, L, 4)
    return scores.view(bs, num_heads, num_queries, num_points, num_levels, 4).permute(
        0, 2, 1, 4, 3, 5)


def multi_scale_3d_deformable_attn_pytorch(value: Tensor, depth_dist: Tensor,
                                           spatial_shapes: Tensor,
                                           level_start_index: Optional[Tensor],
                                           sampling_locations: Tensor,
                                           attention_weights: Tensor) -> Tensor:
    """The two-step form in pure PyTorch: depth scores at the bilinear corners, then
    depth-weighted bilinear deformable attention. Shapes as :func:`multi_scale_3d_deformable_attn`;
    ``level_start_index`` is unused (derived from the shapes). Differentiable in every input."""
    bs, _, num_heads, channels = value.shape
    _, num_queries, _, _, num_points, _ = sampling_locations.shape
    num_bins = depth_dist.shape[-1]
    output = value.new_zeros(bs * num_heads, num_queries * num_points, channels)
    for level, (start, h, w) in enumerate(_level_slices(spatial_shapes)):
        loc = _per_sample(sampling_locations[:, :, :, level])  # (B * M, Q * P, 3)
        index, _, weight, z = _corners(loc, h, w, num_bins)
        depth = _per_head(depth_dist[:, start:start + h * w])
        score = _level_depth_scores(depth, index, z)
        feat = _per_head(value[:, start:start + h * w])  # (B * M, H * W, C)
        corner_feats = feat.gather(1, index.flatten(1)[..., None].expand(-1, -1, channels))
        corner_feats = corner_feats.view(*index.shape, channels)  # (B * M, Q * P, 4, C)
        attn = _per_sample(attention_weights[:, :, :, level])[..., None]
        output = output + ((weight * score)[..., None] * corner_feats).sum(-2) * attn
    output = output.view(bs, num_heads, num_queries, num_points, channels).sum(3)
    return output.transpose(1, 2).flatten(2).contiguous()


class MultiScale3DDeformableAttnFunction(Function):
    """Autograd Function over the compiled kernels: gradients of value, depth distribution, all
    three sampling coordinates and the attention weights."""

    @staticmethod
    def forward(ctx, value: Tensor, depth_dist: Tensor, spatial_shapes: Tensor,
                level_start_index: Tensor, sampling_locations: Tensor,
                attention_weights: Tensor) -> Tensor:
        output = _ext().ms_3d_deform_attn_forward(value, depth_dist, spatial_shapes,
                                                  level_start_index, sampling_locations,
                                                  attention_weights)
        ctx.save_for_backward(value, depth_dist, spatial_shapes, level_start_index,
                              sampling_locations, attention_weights)
        return output

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_output: Tensor):
        grad_value, grad_depth, grad_loc, grad_attn = _ext().ms_3d_deform_attn_backward(
            *ctx.saved_tensors, grad_output)
        return grad_value, grad_depth, None, None, grad_loc, grad_attn


def multi_scale_3d_deformable_attn(value: Tensor, depth_dist: Tensor, spatial_shapes: Tensor,
                                   level_start_index: Tensor, sampling_locations: Tensor,
                                   attention_weights: Tensor, use_kernel: bool = True) -> Tensor:
    """Multi-scale 3D deformable attention (mmcv's MSDA layout plus a depth distribution).

    Args:
        value: (B, S, M, C), S = sum of H_l * W_l over the levels, M heads, C channels per head.
        depth_dist: (B, S, M, N), the depth distribution of each key over N bins; one shared by the
            heads is an ``expand`` of (B, S, 1, N).
        spatial_shapes: (L, 2) int64, (H_l, W_l) of each level.
        level_start_index: (L,) offsets of the levels in S.
        sampling_locations: (B, Q, M, L, P, 3) normalised (u, v, d): (0, 0) the top-left corner of
            the map and (1, 1) the bottom-right one, d from the near edge of the first bin (0) to
            the far edge of the last (1); ``align_corners=False`` semantics in all three.
        attention_weights: (B, Q, M, L, P).
        use_kernel: False runs :func:`multi_scale_3d_deformable_attn_pytorch` instead of the
            compiled kernel of the tensors' device.

    Returns:
        (B, Q, M * C).
    """
    if not use_kernel:
        return multi_scale_3d_deformable_attn_pytorch(value, depth_dist, spatial_shapes,
                                                      level_start_index, sampling_locations,
                                                      attention_weights)
    dtype = value.dtype
    if dtype in (torch.float16, torch.bfloat16):
        # The kernels accumulate in the input type: half precision would lose the sums.
        value = value.float()
    output = MultiScale3DDeformableAttnFunction.apply(value, depth_dist.to(value.dtype),
                                                      spatial_shapes, level_start_index,
                                                      sampling_locations.to(value.dtype),
                                                      attention_weights.to(value.dtype))
    return output.to(dtype)


@MODELS.register_module()
class MultiScale3DDeformableAttention(BaseModule):
    """The deformable sampling of BEVFormer's spatial cross-attention made 3D by DFA3D.

    Each query carries ``Z`` reference points (the pillar points of a BEV query projected into one
    camera as normalised (u, v, d)); each of them gets ``num_points / Z`` offsets per head and level,
    predicted from the query in pixels for (u, v) and in depth bins for d. The layer returns the
    sampled features, (B, Q, embed_dims), before any output projection: the spatial
    cross-attention averages them over the cameras first. Parameter names are those of the
    official ``MSDeformableAttention3D_DFA3D`` (``sampling_offsets_depth`` the depth offsets).

    Args:
        embed_dims: Channels of queries and values.
        num_heads: Attention heads; ``embed_dims`` must divide by it.
        num_levels: Feature levels sampled.
        num_points: Points sampled per head and level, over all reference points of a query.
        use_kernel: False runs the pure-PyTorch two-step form instead of the kernel.
    """

    def __init__(self,
                 embed_dims: int = 256,
                 num_heads: int = 8,
                 num_levels: int = 4,
                 num_points: int = 8,
                 init_cfg: Optional[dict] = None,
                 use_kernel: bool = True):
        super().__init__(init_cfg)
        if embed_dims % num_heads != 0:
            raise ValueError(f'embed_dims ({embed_dims}) must be divisible by num_heads '
                             f'({num_heads})')
        self.embed_dims = embed_dims
        self.num_heads = num_heads
        self.num_levels = num_levels
        self.num_points = num_points
        self.use_kernel = use_kernel
        num_samples = num_heads * num_levels * num_points
        self.sampling_offsets = nn.Linear(embed_dims, num_samples * 2)
        self.sampling_offsets_depth = nn.Linear(embed_dims, num_samples)
        self.attention_weights = nn.Linear(embed_dims, num_samples)
        self.value_proj = nn.Linear(embed_dims, embed_dims)
        self.init_weights()

    def init_weights(self) -> None:
        """(u, v) offsets on the Deformable DETR rays; depth offsets of head h, point i start at
        (cos + sin)(2 pi h / num_heads) / 2 * (i + 1) bins (the official initialisation); attention
        starts uniform."""
        constant_init(self.sampling_offsets, 0.)
        bias = ray_offsets(self.num_heads, self.num_levels, self.num_points)
        self.sampling_offsets.bias.data = bias.view(-1).to(self.sampling_offsets.bias)
        constant_init(self.sampling_offsets_depth, 0.)
        thetas = torch.arange(self.num_heads, dtype=torch.float32) * (2.0 * math.pi / self.num_heads)
        steps = torch.arange(1, self.num_points + 1, dtype=torch.float32)
        depth_bias = ((thetas.cos() + thetas.sin()) / 2)[:, None, None] * steps[None, None, :]
        depth_bias = depth_bias.expand(-1, self.num_levels, -1)
        self.sampling_offsets_depth.bias.data = depth_bias.reshape(-1).to(
            self.sampling_offsets_depth.bias)
        constant_init(self.attention_weights, val=0., bias=0.)
        xavier_init(self.value_proj, distribution='uniform', bias=0.)
        self._is_init = True

    def forward(self,
                query: Tensor,
                value: Tensor,
                depth_dist: Tensor,
                reference_points: Tensor,
                spatial_shapes: Tensor,
                level_start_index: Optional[Tensor] = None,
                query_pos: Optional[Tensor] = None,
                key_padding_mask: Optional[Tensor] = None) -> Tensor:
        """
        Args:
            query: (B, Q, embed_dims).
            value: (B, S, embed_dims), the keys of all levels.
            depth_dist: (B, S, N) depth distribution of each key over N bins, shared by the heads,
                or (B, S, num_heads, N).
            reference_points: (B, Q, Z, 3) normalised (u, v, d), shared by the levels;
                ``num_points`` must divide by Z.
            spatial_shapes: (L, 2) int64 (H, W) of each level.
            level_start_index: (L,) offsets of the levels in S; derived from the shapes when None.
            query_pos: Added to the query before offsets and weights are predicted.
            key_padding_mask: (B, S), True where a value is padding.

        Returns:
            (B, Q, embed_dims).
        """
        if query_pos is not None:
            query = query + query_pos
        bs, num_query, _ = query.shape
        _, num_value, _ = value.shape
        num_anchors = reference_points.shape[2]
        if reference_points.shape[-1] != 3 or self.num_points % num_anchors != 0:
            raise ValueError('reference_points must be (B, Q, Z, 3) with num_points '
                             f'({self.num_points}) divisible by Z, got {tuple(reference_points.shape)}')
        if level_start_index is None:
            level_start_index = torch.cat([
                spatial_shapes.new_zeros(1),
                (spatial_shapes[:, 0] * spatial_shapes[:, 1]).cumsum(0)[:-1]
            ])
        if depth_dist.dim() == 3:
            depth_dist = depth_dist[:, :, None].expand(-1, -1, self.num_heads, -1)
        num_bins = depth_dist.shape[-1]

        value = self.value_proj(value)
        if key_padding_mask is not None:
            value = value.masked_fill(key_padding_mask[..., None], 0.0)
        value = value.view(bs, num_value, self.num_heads, -1)
        shape = (bs, num_query, self.num_heads, self.num_levels, self.num_points)
        offsets = torch.cat([
            self.sampling_offsets(query).view(*shape, 2),
            self.sampling_offsets_depth(query).view(*shape, 1)
        ], -1)
        normalizer = torch.cat([
            spatial_shapes.flip(-1),
            spatial_shapes.new_full((self.num_levels, 1), num_bins)
        ], -1).to(offsets)  # (L, 3): (W, H, N)
        offsets = offsets / normalizer[:, None]
        # Point i of a head and level belongs to reference point i % Z.
        offsets = offsets.view(*shape[:4], self.num_points // num_anchors, num_anchors, 3)
        locations = (reference_points[:, :, None, None, None] + offsets).flatten(4, 5)
        weights = self.attention_weights(query).view(*shape[:3], -1).softmax(-1).view(shape)
        return multi_scale_3d_deformable_attn(value, depth_dist, spatial_shapes,
                                              level_start_index, locations, weights,
                                              use_kernel=self.use_kernel)
