"""Multi-scale deformable attention (Deformable DETR, Zhu et al., ICLR 2021, eq. 3).

Each query attends to ``P`` sampled points on each of ``L`` feature levels per head; the sampled values
(bilinear, zero padding, half-pixel centres) are summed with learned weights. This module holds

- :func:`multi_scale_deformable_attn_pytorch`: the pure-PyTorch reference (``grid_sample``);
- :class:`MultiScaleDeformableAttnFunction`: the autograd Function over the ``perception._ext``
  kernels (C++ on the CPU, CUDA on the GPU);
- :func:`multi_scale_deformable_attn`: the dispatcher every layer calls;
- :class:`MultiScaleDeformableAttention`: the attention layer (projections, offsets, weights).
"""
import math
from typing import Optional

import torch
import torch.nn.functional as F
from mmengine.model import BaseModule, constant_init, xavier_init
from torch import Tensor, nn
from torch.autograd import Function
from torch.autograd.function import once_differentiable

from perception.registry import MODELS


def _ext():
    from perception import _ext
    return _ext


def multi_scale_deformable_attn_pytorch(value: Tensor, spatial_shapes: Tensor,
                                        level_start_index: Optional[Tensor],
                                        sampling_locations: Tensor,
                                        attention_weights: Tensor) -> Tensor:
    """Reference implementation with ``F.grid_sample``.

    Args:
        value: (B, S, M, D), S = sum of H_l * W_l over the levels, M heads, D channels per head.
        spatial_shapes: (L, 2) int64, (H_l, W_l) of each level.
        level_start_index: (L,) offsets of the levels in S (unused: derived from the shapes).
        sampling_locations: (B, Q, M, L, P, 2) normalised (x, y), (0, 0) the top-left corner of
            the map and (1, 1) the bottom-right one.
        attention_weights: (B, Q, M, L, P).

    Returns:
        (B, Q, M * D).
    """
    bs, _, num_heads, head_dims = value.shape
    _, num_queries, _, num_levels, num_points, _ = sampling_locations.shape
    sizes = [int(h) * int(w) for h, w in spatial_shapes.tolist()]
    value_list = value.split(sizes, dim=1)
    grids = 2 * sampling_locations - 1
    sampled = []
    for level, (h, w) in enumerate(spatial_shapes.tolist()):
        # (B, H*W, M, D) -> (B*M, D, H, W)
        value_l = value_list[level].flatten(2).transpose(1, 2).reshape(bs * num_heads, head_dims,
                                                                       int(h), int(w))
        # (B, Q, M, P, 2) -> (B*M, Q, P, 2)
        grid_l = grids[:, :, :, level].transpose(1, 2).flatten(0, 1)
        sampled.append(
            F.grid_sample(value_l, grid_l, mode='bilinear', padding_mode='zeros',
                          align_corners=False))
    # (B, Q, M, L, P) -> (B*M, 1, Q, L*P)
    weights = attention_weights.transpose(1, 2).reshape(bs * num_heads, 1, num_queries,
                                                        num_levels * num_points)
    output = (torch.stack(sampled, dim=-2).flatten(-2) * weights).sum(-1)
    return output.view(bs, num_heads * head_dims, num_queries).transpose(1, 2).contiguous()


class MultiScaleDeformableAttnFunction(Function):
    """Autograd Function over the compiled kernels; same signature as mmcv's, minus im2col_step
    (the kernels need no batch chunking)."""

    @staticmethod
    def forward(ctx, value: Tensor, spatial_shapes: Tensor, level_start_index: Tensor,
                sampling_locations: Tensor, attention_weights: Tensor) -> Tensor:
        output = _ext().ms_deform_attn_forward(value, spatial_shapes, level_start_index,
                                               sampling_locations, attention_weights)
        ctx.save_for_backward(value, spatial_shapes, level_start_index, sampling_locations,
                              attention_weights)
        return output

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_output: Tensor):
        value, spatial_shapes, level_start_index, sampling_locations, attention_weights = \
            ctx.saved_tensors
        grad_value, grad_loc, grad_attn = _ext().ms_deform_attn_backward(
            value, spatial_shapes, level_start_index, sampling_locations, attention_weights,
            grad_output)
        return grad_value, None, None, grad_loc, grad_attn


def multi_scale_deformable_attn(value: Tensor, spatial_shapes: Tensor,
                                level_start_index: Tensor, sampling_locations: Tensor,
                                attention_weights: Tensor, use_kernel: bool = True) -> Tensor:
    """Multi-scale deformable attention; shapes as in :func:`multi_scale_deformable_attn_pytorch`.

    Runs the compiled kernel of the tensors' device, or the ``grid_sample`` reference when
    ``use_kernel=False`` (kept for comparisons and benchmarks).
    """
    if not use_kernel:
        return multi_scale_deformable_attn_pytorch(value, spatial_shapes, level_start_index,
                                                   sampling_locations, attention_weights)
    dtype = value.dtype
    if dtype in (torch.float16, torch.bfloat16):
        # The kernels accumulate in the input type: half precision would lose the sums.
        value, sampling_locations, attention_weights = (
            value.float(), sampling_locations.float(), attention_weights.float())
    output = MultiScaleDeformableAttnFunction.apply(value, spatial_shapes, level_start_index,
                                                    sampling_locations.to(value.dtype),
                                                    attention_weights.to(value.dtype))
    return output.to(dtype)


def ray_offsets(num_heads: int, num_levels: int, num_points: int) -> Tensor:
    """The Deformable DETR initial sampling offsets, (num_heads, num_levels, num_points, 2) in
    pixels: head h looks along the direction of angle 2 pi h / num_heads (scaled so that its larger
    component is 1), point i at i + 1 steps, the same on every level."""
    thetas = torch.arange(num_heads, dtype=torch.float32) * (2.0 * math.pi / num_heads)
    grid = torch.stack([thetas.cos(), thetas.sin()], -1)
    grid = (grid / grid.abs().max(-1, keepdim=True)[0]).view(num_heads, 1, 1, 2)
    steps = torch.arange(1, num_points + 1, dtype=torch.float32).view(1, 1, -1, 1)
    return grid.repeat(1, num_levels, num_points, 1) * steps


@MODELS.register_module()
class MultiScaleDeformableAttention(BaseModule):
    """The deformable attention layer of Deformable DETR on the compiled kernels.

    It takes the constructor arguments, parameter names, initialisation and ``forward`` of mmcv's
    ``MultiScaleDeformableAttention``, so a config switches to it with
    ``type='perception.MultiScaleDeformableAttention'`` and an mmcv checkpoint loads unchanged.
    Unlike mmcv's layer, it runs a compiled kernel on the CPU as well (mmcv falls back to
    ``grid_sample`` there), and also accepts MonoDETR's 6-D reference boxes.

    Args:
        embed_dims: Channels of queries and values.
        num_heads: Attention heads; ``embed_dims * value_proj_ratio`` must divide by it.
        num_levels: Feature levels sampled.
        num_points: Points sampled per head and level.
        im2col_step: Accepted for mmcv compatibility; the kernels need no batch chunking.
        dropout: Dropout on the output, before the residual.
        batch_first: Whether tensors are (B, N, C) rather than (N, B, C).
        norm_cfg: Accepted for mmcv compatibility (unused there too).
        value_proj_ratio: Width of the value projection relative to ``embed_dims``.
        use_kernel: False runs the ``grid_sample`` reference instead of the kernel.
    """

    def __init__(self,
                 embed_dims: int = 256,
                 num_heads: int = 8,
                 num_levels: int = 4,
                 num_points: int = 4,
                 im2col_step: int = 64,
                 dropout: float = 0.1,
                 batch_first: bool = False,
                 norm_cfg: Optional[dict] = None,
                 init_cfg: Optional[dict] = None,
                 value_proj_ratio: float = 1.0,
                 use_kernel: bool = True):
        super().__init__(init_cfg)
        value_proj_size = int(embed_dims * value_proj_ratio)
        if embed_dims % num_heads != 0 or value_proj_size % num_heads != 0:
            raise ValueError(f'embed_dims ({embed_dims}) and the value projection '
                             f'({value_proj_size}) must be divisible by num_heads ({num_heads})')
        self.embed_dims = embed_dims
        self.num_heads = num_heads
        self.num_levels = num_levels
        self.num_points = num_points
        self.im2col_step = im2col_step
        self.batch_first = batch_first
        self.norm_cfg = norm_cfg
        self.use_kernel = use_kernel
        self.dropout = nn.Dropout(dropout)
        self.sampling_offsets = nn.Linear(embed_dims, num_heads * num_levels * num_points * 2)
        self.attention_weights = nn.Linear(embed_dims, num_heads * num_levels * num_points)
        self.value_proj = nn.Linear(embed_dims, value_proj_size)
        self.output_proj = nn.Linear(value_proj_size, embed_dims)
        self.init_weights()

    def init_weights(self) -> None:
        """Offsets start on rays in ``num_heads`` directions, point i at distance i + 1 (the
        Deformable DETR initialisation); attention starts uniform."""
        constant_init(self.sampling_offsets, 0.)
        self.sampling_offsets.bias.data = ray_offsets(self.num_heads, self.num_levels,
                                                      self.num_points).view(-1).to(
                                                          self.sampling_offsets.bias)
        constant_init(self.attention_weights, val=0., bias=0.)
        xavier_init(self.value_proj, distribution='uniform', bias=0.)
        xavier_init(self.output_proj, distribution='uniform', bias=0.)
        self._is_init = True

    def forward(self,
                query: Tensor,
                key: Optional[Tensor] = None,
                value: Optional[Tensor] = None,
                identity: Optional[Tensor] = None,
                query_pos: Optional[Tensor] = None,
                key_padding_mask: Optional[Tensor] = None,
                reference_points: Optional[Tensor] = None,
                spatial_shapes: Optional[Tensor] = None,
                level_start_index: Optional[Tensor] = None,
                **kwargs) -> Tensor:
        """
        Args:
            query: (Q, B, C), or (B, Q, C) when ``batch_first``.
            key: Unused (the keys are the sampled values).
            value: (S, B, C) or (B, S, C); the query when None.
            identity: Added to the output; the query when None.
            query_pos: Added to the query before offsets and weights are predicted.
            key_padding_mask: (B, S), True where a value is padding.
            reference_points: (B, Q, L, 2) normalised (x, y); (B, Q, L, 4) boxes (x, y, w, h);
                or (B, Q, L, 6) MonoDETR boxes (x, y, l, r, t, b) whose width is l + r and
                height t + b. Offsets are scaled by the level size, or by half the box size.
            spatial_shapes: (L, 2) int64 (H, W) of each level.
            level_start_index: (L,) offsets of the levels in S.

        Returns:
            Tensor shaped like ``query``.
        """
        if value is None:
            value = query
        if identity is None:
            identity = query
        if query_pos is not None:
            query = query + query_pos
        if not self.batch_first:
            query = query.permute(1, 0, 2)
            value = value.permute(1, 0, 2)
        bs, num_query, _ = query.shape
        _, num_value, _ = value.shape
        if level_start_index is None:
            level_start_index = torch.cat([
                spatial_shapes.new_zeros(1),
                (spatial_shapes[:, 0] * spatial_shapes[:, 1]).cumsum(0)[:-1]
            ])

        value = self.value_proj(value)
        if key_padding_mask is not None:
            value = value.masked_fill(key_padding_mask[..., None], 0.0)
        value = value.view(bs, num_value, self.num_heads, -1)
        offsets = self.sampling_offsets(query).view(bs, num_query, self.num_heads, self.num_levels,
                                                    self.num_points, 2)
        weights = self.attention_weights(query).view(bs, num_query, self.num_heads,
                                                     self.num_levels * self.num_points)
        weights = weights.softmax(-1).view(bs, num_query, self.num_heads, self.num_levels,
                                           self.num_points)
        ref = reference_points[:, :, None, :, None, :]
        if reference_points.shape[-1] == 2:
            normalizer = torch.stack([spatial_shapes[..., 1], spatial_shapes[..., 0]], -1)
            locations = ref + offsets / normalizer[None, None, None, :, None, :]
        elif reference_points.shape[-1] == 4:
            locations = ref[..., :2] + offsets / self.num_points * ref[..., 2:] * 0.5
        elif reference_points.shape[-1] == 6:
            box_size = ref[..., 2::2] + ref[..., 3::2]
            locations = ref[..., :2] + offsets / self.num_points * box_size * 0.5
        else:
            raise ValueError('reference_points must end in 2, 4 or 6 values, got '
                             f'{tuple(reference_points.shape)}')
        output = multi_scale_deformable_attn(value, spatial_shapes, level_start_index, locations,
                                             weights, use_kernel=self.use_kernel)
        output = self.output_proj(output)
        if not self.batch_first:
            output = output.permute(1, 0, 2)
        return self.dropout(output) + identity
