"""DFA3D in BEVFormer's spatial cross-attention (Li, Zhang et al.: "DFA3D: 3D Deformable Attention for
2D-to-3D Feature Lifting", ICCV 2023, Sec. 3-4; official code IDEA-Research/3D-deformable-attention,
``BEVFormer_DFA3D``).

Idea: BEVFormer lifts image features to a BEV query by projecting the query's pillar points into every
camera and sampling the 2D features around them, so every point of a camera ray gets the same feature
(depth ambiguity). DFA3D samples the expanded volume ``F(u, v) ⊗ D(u, v, d)`` instead, at the projected
``(u, v, d)`` plus learned offsets in all three coordinates (eq. 4-6): a point gets the feature only where
the predicted depth distribution of the pixel puts mass near its depth.

Here:
- :func:`pillar_points` and :func:`project_pillars`: BEVFormer's pillar reference points and their
  projection ``lidar2img @ [x, y, z, 1]`` to normalised ``(u, v, d)``, ``d = (depth - d_min) / (d_max -
  d_min)``, with the camera mask (``bev_mask``: in front of the camera and inside the image);
- :class:`PillarDeformableAttention`: BEVFormer's 2D sampling (``MSDeformableAttention3D``), the baseline;
  the DFA3D one is :class:`perception.ops.MultiScale3DDeformableAttention` (depth offsets with the official
  initialisation);
- :class:`SpatialCrossAttention`: each BEV query attends in the cameras that see at least one of its pillar
  points, the results averaged over those cameras (``use_dfa3d`` switches the sampling);
- :class:`DFA3DDepthHead`: the official grouped-bin depth head (``DepthHead_MLVGDpt``), its decoding to the
  depth bins and its LiDAR supervision (:func:`depth_bin_index`, :func:`one_hot_depth`).

Departures (choices): the official ``weight_update`` (for ``use_empty=True``; its configs set False) is not
computed; u and v are normalised by the padded input size (the official code divides by the unpadded image size
while the features cover the padded input).
"""
from typing import Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from mmcv.cnn import ConvModule
from mmcv.ops import DeformConv2dPack
from mmdet.models.backbones.resnet import BasicBlock
from mmengine.model import BaseModule, constant_init, xavier_init
from torch import Tensor, nn

from perception.models.layers.camera_aware_depth_net import ASPP
from perception.ops import MultiScale3DDeformableAttention, multi_scale_deformable_attn, ray_offsets
from perception.registry import MODELS


def pillar_points(bev_h: int, bev_w: int, pc_range: Sequence[float], num_points_in_pillar: int = 4,
                  device=None) -> Tensor:
    """LiDAR-frame pillar points of the BEV cells, (bev_h * bev_w, Z, 3) metres: cell (row r, column c) is query
    ``r * bev_w + c`` at x = x_min + (c + 0.5) / bev_w * (x_max - x_min), y likewise from r, and Z heights at
    the centres of Z equal slices of [z_min, z_max] (BEVFormer's ``get_reference_points('3d')``)."""
    x_min, y_min, z_min, x_max, y_max, z_max = pc_range
    xs = (torch.arange(bev_w, device=device, dtype=torch.float32) + 0.5) / bev_w * (x_max - x_min) + x_min
    ys = (torch.arange(bev_h, device=device, dtype=torch.float32) + 0.5) / bev_h * (y_max - y_min) + y_min
    zs = ((torch.arange(num_points_in_pillar, device=device, dtype=torch.float32) + 0.5) / num_points_in_pillar *
          (z_max - z_min) + z_min)
    y, x = torch.meshgrid(ys, xs, indexing='ij')
    xy = torch.stack([x, y], -1).view(-1, 1, 2).expand(-1, num_points_in_pillar, -1)
    return torch.cat([xy, zs.view(1, -1, 1).expand(len(xy), -1, -1)], -1)


def project_pillars(points: Tensor, lidar2img: Tensor, image_size: Tuple[int, int],
                    depth_range: Tuple[float, float] = (2.0, 58.0), eps: float = 1e-5) -> Tuple[Tensor, Tensor]:
    """Pillar points in each camera as normalised ``(u, v, d)`` and the cameras that see them.

    Args:
        points: (Q, Z, 3) LiDAR-frame points, metres.
        lidar2img: (B, V, 4, 4) projections to the input pixels.
        image_size: (H, W) of the input, pixels.
        depth_range: (d_min, d_max) mapped to d = 0 and 1 (the depth bins' outer edges), metres.

    Returns:
        ``uvd`` (B, V, Q, Z, 3): u = pixel x / W, v = pixel y / H,
        d = (depth - d_min) / (d_max - d_min); ``bev_mask`` (B, V, Q, Z) bool: depth > eps and 0 < u, v < 1.
    """
    homogeneous = torch.cat([points, points.new_ones(*points.shape[:-1], 1)], -1)
    cam = torch.einsum('bvij,qzj->bvqzi', lidar2img, homogeneous)
    depth = cam[..., 2]
    uv = cam[..., :2] / depth.clamp(min=eps)[..., None]
    uv = uv / uv.new_tensor([image_size[1], image_size[0]])
    d = (depth - depth_range[0]) / (depth_range[1] - depth_range[0])
    mask = (depth > eps) & (uv > 0).all(-1) & (uv < 1).all(-1)
    return torch.cat([uv, d[..., None]], -1), mask


def depth_bin_index(depth: Tensor, depth_range: Tuple[float, float] = (2.0, 58.0), bin_size: float = 0.5) -> Tensor:
    """``floor((depth - d_min) / bin_size)``, -1 where the depth is 0 (no point) or outside the range."""
    num_bins = round((depth_range[1] - depth_range[0]) / bin_size)
    index = torch.floor((depth - depth_range[0]) / bin_size).long()
    valid = (depth > 0) & (index >= 0) & (index < num_bins)
    return torch.where(valid, index, torch.full_like(index, -1))


def one_hot_depth(depth: Tensor, depth_range: Tuple[float, float] = (2.0, 58.0), bin_size: float = 0.5) -> Tensor:
    """(N, h, w) depths (0: none) -> (N, D, h, w) one-hot bins, all zero where there is no valid depth: the
    ground-truth depth distribution (``DepthHead_GTDpt``, the paper's upper bound)."""
    num_bins = round((depth_range[1] - depth_range[0]) / bin_size)
    index = depth_bin_index(depth, depth_range, bin_size)
    one_hot = F.one_hot(index.clamp(min=0), num_bins).to(depth.dtype) * (index >= 0)[..., None]
    return one_hot.permute(0, 3, 1, 2)


@MODELS.register_module()
class DFA3DDepthHead(BaseModule):
    """The official depth head (``DepthHead_MLVGDpt``): 3x3 reduce conv, 3 BasicBlocks, ASPP (without dropout,
    branches of ``mid_channels``), a deformable 3x3 conv in 4 groups and a 1x1 conv to grouped depth codes,
    softmax over the codes.

    The bins (``bin_size`` wide over ``depth_range``) are split into consecutive groups of ``group_sizes`` bins
    per code: with 112 bins and group sizes (2, 4, 8), 112 / 14 = 8 codes per group, codes 0-7 cover 2 bins
    each (2-10 m), 8-15 4 bins (10-26 m), 16-23 8 bins (26-58 m). A code's probability is *copied* to each of
    its bins (not divided), as officially.

    Args:
        in_channels: feature channels; mid_channels: channels of the stem.
        depth_range, bin_size: the bins, metres.
        group_sizes: bins per code in each group (the official ``levels``).
        loss_weight: weight of the BCE loss.
    """

    def __init__(self, in_channels: int = 256, mid_channels: int = 256, depth_range: Tuple[float, float] = (2.0, 58.0),
                 bin_size: float = 0.5, group_sizes: Sequence[int] = (2, 4, 8), loss_weight: float = 0.5,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg)
        self.depth_range, self.bin_size, self.loss_weight = tuple(depth_range), bin_size, loss_weight
        self.num_bins = round((depth_range[1] - depth_range[0]) / bin_size)
        codes_per_group, rest = divmod(self.num_bins, sum(group_sizes))
        if rest:
            raise ValueError(f'{self.num_bins} bins do not split into groups of sizes {tuple(group_sizes)}')
        code_of_bin = torch.cat([torch.arange(codes_per_group).repeat_interleave(size) + g * codes_per_group
                                 for g, size in enumerate(group_sizes)])
        self.num_codes = codes_per_group * len(group_sizes)
        self.register_buffer('code_of_bin', code_of_bin, persistent=False)
        self.reduce_conv = ConvModule(in_channels, mid_channels, 3, padding=1, norm_cfg=dict(type='BN'))
        self.stem = nn.Sequential(*[BasicBlock(mid_channels, mid_channels) for _ in range(3)],
                                  ASPP(mid_channels, mid_channels),
                                  DeformConv2dPack(mid_channels, mid_channels, 3, padding=1, groups=4))
        self.code_conv = nn.Conv2d(mid_channels, self.num_codes, 1)

    def forward(self, x: Tensor) -> Tensor:
        """(N, C, h, w) features -> (N, num_codes, h, w) code probabilities."""
        return self.code_conv(self.stem(self.reduce_conv(x))).softmax(1)

    def decode(self, probs: Tensor) -> Tensor:
        """(N, num_codes, h, w) -> (N, num_bins, h, w): each bin gets its code's probability."""
        return probs[:, self.code_of_bin]

    def loss(self, probs: Tensor, depth: Tensor) -> Tensor:
        """BCE of the code probabilities against the one-hot code of the ground-truth depth (N, h, w) (the minimum
        LiDAR depth of each cell, 0 for none), summed over the cells with a valid depth and divided by their
        number, times ``loss_weight``."""
        index = depth_bin_index(depth, self.depth_range, self.bin_size)
        valid = index >= 0
        target = F.one_hot(self.code_of_bin[index[valid]], self.num_codes).to(probs.dtype)
        pred = probs.permute(0, 2, 3, 1)[valid].clamp(1e-6, 1 - 1e-6)
        loss = F.binary_cross_entropy(pred, target, reduction='sum')
        return loss / valid.sum().clamp(min=1) * self.loss_weight


@MODELS.register_module()
class PillarDeformableAttention(BaseModule):
    """BEVFormer's 2D sampling of a pillar (``MSDeformableAttention3D``): as
    :class:`perception.ops.MultiScale3DDeformableAttention` without the depth (its (u, v) part, on the project's
    MSDA op): ``num_points / Z`` offsets per reference point, head and level, in pixels, output before the
    output projection.

    Args:
        embed_dims, num_heads, num_levels, num_points: sizes; use_kernel: False runs the ``grid_sample`` reference.
    """

    def __init__(self, embed_dims: int = 256, num_heads: int = 8, num_levels: int = 4, num_points: int = 8,
                 use_kernel: bool = True, init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg)
        self.num_heads, self.num_levels, self.num_points = num_heads, num_levels, num_points
        self.embed_dims, self.use_kernel = embed_dims, use_kernel
        num_samples = num_heads * num_levels * num_points
        self.sampling_offsets = nn.Linear(embed_dims, num_samples * 2)
        self.attention_weights = nn.Linear(embed_dims, num_samples)
        self.value_proj = nn.Linear(embed_dims, embed_dims)
        self.init_weights()

    def init_weights(self) -> None:
        constant_init(self.sampling_offsets, 0.)
        self.sampling_offsets.bias.data = ray_offsets(self.num_heads, self.num_levels, self.num_points).view(-1)
        constant_init(self.attention_weights, val=0., bias=0.)
        xavier_init(self.value_proj, distribution='uniform', bias=0.)
        self._is_init = True

    def forward(self, query: Tensor, value: Tensor, reference_points: Tensor, spatial_shapes: Tensor,
                level_start_index: Tensor) -> Tensor:
        """query (B, Q, C), value (B, S, C), reference_points (B, Q, Z, 2) normalised (u, v) -> (B, Q, C)."""
        bs, num_query, _ = query.shape
        num_anchors = reference_points.shape[2]
        value = self.value_proj(value).view(bs, value.shape[1], self.num_heads, -1)
        shape = (bs, num_query, self.num_heads, self.num_levels, self.num_points)
        offsets = self.sampling_offsets(query).view(*shape, 2) / spatial_shapes.flip(-1).to(query)[:, None]
        offsets = offsets.view(*shape[:4], self.num_points // num_anchors, num_anchors, 2)
        locations = (reference_points[:, :, None, None, None] + offsets).flatten(4, 5)
        weights = self.attention_weights(query).view(*shape[:3], -1).softmax(-1).view(shape)
        return multi_scale_deformable_attn(value, spatial_shapes, level_start_index, locations, weights,
                                           use_kernel=self.use_kernel)


@MODELS.register_module()
class SpatialCrossAttention(BaseModule):
    """BEVFormer's spatial cross-attention with DFA3D (``use_dfa3d=True``) or the original 2D sampling.

    For each sample and camera the BEV queries with at least one pillar point in the image are gathered (padded
    to the longest such list), sample that camera's features around their projected pillar points, and are
    scattered back; each query's sum over cameras is divided by the number of cameras that see it, projected,
    and added to the input query (dropout before the residual).

    Args:
        embed_dims, num_heads, num_levels, num_points: sizes of the deformable sampling (``num_points`` over all
            Z pillar points of a query; it must divide by Z).
        use_dfa3d: sample ``F ⊗ D`` at (u, v, d) with depth offsets; False: BEVFormer's 2D sampling at (u, v).
        dropout: dropout on the output.
        use_kernel: False runs the pure-PyTorch references of the ops.
    """

    def __init__(self, embed_dims: int = 256, num_heads: int = 8, num_levels: int = 4, num_points: int = 8,
                 use_dfa3d: bool = True, dropout: float = 0.1, use_kernel: bool = True,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg)
        self.use_dfa3d = use_dfa3d
        sampler = MultiScale3DDeformableAttention if use_dfa3d else PillarDeformableAttention
        self.deformable_attention = sampler(embed_dims=embed_dims, num_heads=num_heads, num_levels=num_levels,
                                            num_points=num_points, use_kernel=use_kernel)
        self.output_proj = nn.Linear(embed_dims, embed_dims)
        self.dropout = nn.Dropout(dropout)
        xavier_init(self.output_proj, distribution='uniform', bias=0.)

    def forward(self, query: Tensor, value: Tensor, reference_points_cam: Tensor, bev_mask: Tensor,
                spatial_shapes: Tensor, level_start_index: Tensor, depth_dist: Optional[Tensor] = None,
                query_pos: Optional[Tensor] = None) -> Tensor:
        """
        Args:
            query: (B, Q, C) BEV queries; query_pos: (B, Q, C) added before sampling, not to the residual.
            value: (B, V, S, C) image features of all levels of each camera.
            reference_points_cam: (B, V, Q, Z, 3) normalised (u, v, d) (:func:`project_pillars`).
            bev_mask: (B, V, Q, Z) the points each camera sees.
            spatial_shapes: (L, 2) (h, w) of the levels; level_start_index: (L,).
            depth_dist: (B, V, S, N) depth distribution of each key (DFA3D only).

        Returns:
            (B, Q, C).
        """
        if self.use_dfa3d and depth_dist is None:
            raise ValueError('SpatialCrossAttention with use_dfa3d needs a depth distribution')
        batch, views, num_keys, channels = value.shape
        sampling_query = query if query_pos is None else query + query_pos
        hits = bev_mask.any(-1)  # (B, V, Q)
        indices = [torch.nonzero(hits[b, v])[:, 0] for b in range(batch) for v in range(views)]
        max_len = max(max(len(i) for i in indices), 1)
        num_anchors = reference_points_cam.shape[3]
        queries = query.new_zeros(batch * views, max_len, channels)
        references = reference_points_cam.new_zeros(batch * views, max_len, num_anchors, 3)
        for slot, index in enumerate(indices):
            b, v = divmod(slot, views)
            queries[slot, :len(index)] = sampling_query[b, index]
            references[slot, :len(index)] = reference_points_cam[b, v, index]
        flat_value = value.flatten(0, 1)
        if self.use_dfa3d:
            sampled = self.deformable_attention(queries, flat_value, depth_dist.flatten(0, 1), references,
                                                spatial_shapes, level_start_index)
        else:
            sampled = self.deformable_attention(queries, flat_value, references[..., :2], spatial_shapes,
                                                level_start_index)
        slots = [query.new_zeros(query.shape[1:]) for _ in range(batch)]
        for slot, index in enumerate(indices):
            slots[slot // views] = slots[slot // views].index_add(0, index, sampled[slot, :len(index)])
        slots = torch.stack(slots)
        count = hits.sum(1).clamp(min=1).to(slots.dtype)  # (B, Q)
        return self.dropout(self.output_proj(slots / count[..., None])) + query
