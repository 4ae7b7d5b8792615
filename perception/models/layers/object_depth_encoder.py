"""OPEN's object-wise depth encoder (Hou et al., ECCV 2024, Sec. 3.2 "ODE"): one deformable encoder layer that
refines the pixel depth into the depth of the object a pixel belongs to.

Each stride-16 token is lifted to the camera-frame point ``P = inv(K) [u d, v d, d, 1]`` with its pixel depth
``d``; its position embedding is an MLP of ``pos2posemb3d`` of ``P`` (normalised, detached). The attention
(:class:`DeformableFeatureAggregation3D`) samples 7 points at learned 3D offsets around ``P``, projected with the
intrinsics, on two "levels": the current features and the previous frame's. The object depth is the pixel depth
plus a residual regressed from the encoded token.
"""
from typing import Sequence, Tuple

import torch
from mmcv.cnn.bricks.transformer import FFN
from mmdet.models.layers.transformer import inverse_sigmoid
from torch import Tensor, nn

from perception.models.layers.position_embedding_3d import lift_points, mlp, normalize_points, pos2posemb3d
from perception.ops import multi_scale_deformable_attn


def pixel_centres(height: int, width: int, stride_h: float, stride_w: float, device=None) -> Tensor:
    """(H * W, 2) pixel coordinates (u, v) of the centres of a stride-``(stride_h, stride_w)`` grid, row-major;
    input pixel centres are at integer coordinates."""
    v = (torch.arange(height, device=device, dtype=torch.float32) + 0.5) * stride_h - 0.5
    u = (torch.arange(width, device=device, dtype=torch.float32) + 0.5) * stride_w - 0.5
    return torch.stack(torch.meshgrid(u, v, indexing='xy'), dim=-1).flatten(0, 1)


class DeformableFeatureAggregation3D(nn.Module):
    """Deformable attention whose sampling points are 3D offsets around each token's point, projected by the
    camera, over several feature maps of the same view ("levels": current and previous frame).

    Args:
        embed_dims: channels.
        num_heads: heads.
        num_levels: feature maps sampled (2: current, previous).
        num_points: 3D sampling points per token (7).
        offset_init: the offsets' biases start uniform in [-offset_init, offset_init] metres.
        dropout: dropout on the output.
    """

    def __init__(self, embed_dims: int = 256, num_heads: int = 8, num_levels: int = 2, num_points: int = 7,
                 offset_init: float = 2.0, dropout: float = 0.1) -> None:
        super().__init__()
        self.num_heads, self.num_levels, self.num_points = num_heads, num_levels, num_points
        self.offsets = nn.Linear(embed_dims, num_points * 3)
        self.weights = nn.Linear(embed_dims, num_heads * num_levels * num_points)
        self.camera_encoder = mlp(12, embed_dims, embed_dims)
        self.value_proj = nn.Linear(embed_dims, embed_dims)
        self.output_proj = nn.Linear(embed_dims, embed_dims)
        self.dropout = nn.Dropout(dropout)
        nn.init.zeros_(self.offsets.weight)
        nn.init.uniform_(self.offsets.bias, -offset_init, offset_init)
        nn.init.zeros_(self.weights.weight)
        nn.init.zeros_(self.weights.bias)

    def forward(self, query: Tensor, query_pos: Tensor, values: Sequence[Tensor], points: Tensor, cam2img: Tensor,
                image_size: Tuple[int, int]) -> Tensor:
        """
        Args:
            query: (N, Q, C) tokens of N views; query_pos: (N, Q, C) their position embedding.
            values: ``num_levels`` (N, C, h, w) feature maps.
            points: (N, Q, 3) camera-frame points of the tokens, metres.
            cam2img: (N, 4, 4) intrinsics of the input pixels.
            image_size: (H, W) of the input (the normalisation of the sampling locations).

        Returns:
            (N, Q, C), the query added (residual).
        """
        n, q, c = query.shape
        x = query + query_pos
        samples = points[:, :, None] + self.offsets(x).view(n, q, self.num_points, 3)
        uvw = samples @ cam2img[:, None, :3, :3].transpose(-1, -2) + cam2img[:, None, None, :3, 3]
        uv = uvw[..., :2] / uvw[..., 2:3].clamp(min=1e-5)
        locations = (uv + 0.5) / uv.new_tensor([image_size[1], image_size[0]])
        locations = locations[:, :, None, None].expand(-1, -1, self.num_heads, self.num_levels, -1, -1)
        weights = self.weights(x + self.camera_encoder(cam2img[:, :3].flatten(1) / 1e3)[:, None])
        weights = weights.view(n, q, self.num_heads, -1).softmax(-1)
        weights = weights.view(n, q, self.num_heads, self.num_levels, self.num_points)
        shapes = torch.tensor([v.shape[-2:] for v in values], device=query.device, dtype=torch.long)
        starts = torch.cat([shapes.new_zeros(1), (shapes[:, 0] * shapes[:, 1]).cumsum(0)[:-1]])
        value = self.value_proj(torch.cat([v.flatten(2).transpose(1, 2) for v in values], dim=1))
        out = multi_scale_deformable_attn(value.view(n, -1, self.num_heads, c // self.num_heads), shapes, starts,
                                          locations.contiguous(), weights.contiguous())
        return query + self.dropout(self.output_proj(out))


class ObjectDepthEncoder(nn.Module):
    """One encoder layer (3D deformable aggregation, norm, FFN, norm) and the residual object-depth regressor.

    Args:
        embed_dims: channels.
        position_range: (x_min, y_min, z_min, x_max, y_max, z_max) normalising the points, metres.
        feedforward_channels: FFN hidden size.
        dropout: dropout of the attention and FFN.
        **attn_cfg: keyword arguments of :class:`DeformableFeatureAggregation3D`.
    """

    def __init__(self, embed_dims: int = 256, position_range: Sequence[float] = (-61.2, -61.2, -10., 61.2, 61.2, 10.),
                 feedforward_channels: int = 2048, dropout: float = 0.1, **attn_cfg) -> None:
        super().__init__()
        self.position_range = tuple(position_range)
        self.position_encoder = mlp(3 * (embed_dims // 2), embed_dims, embed_dims)
        self.attn = DeformableFeatureAggregation3D(embed_dims, dropout=dropout, **attn_cfg)
        self.ffn = FFN(embed_dims, feedforward_channels, ffn_drop=dropout)
        self.norms = nn.ModuleList([nn.LayerNorm(embed_dims), nn.LayerNorm(embed_dims)])
        self.depth_residual = nn.Sequential(nn.Linear(embed_dims, embed_dims), nn.LayerNorm(embed_dims), nn.ReLU(),
                                            nn.Linear(embed_dims, embed_dims), nn.LayerNorm(embed_dims), nn.ReLU(),
                                            nn.Linear(embed_dims, 1))

    def forward(self, feats: Tensor, prev_feats: Tensor, pixel_depth: Tensor, cam2img: Tensor,
                image_size: Tuple[int, int]) -> Tuple[Tensor, Tensor]:
        """
        Args:
            feats, prev_feats: (N, C, h, w) current and previous-frame features of N views.
            pixel_depth: (N, 1, h, w) pixel depth, metres.
            cam2img: (N, 4, 4) intrinsics of the input pixels.
            image_size: (H, W) of the input.

        Returns:
            encoded tokens (N, h * w, C) and the object depth (N, 1, h, w), metres.
        """
        n, c, h, w = feats.shape
        uv = pixel_centres(h, w, image_size[0] / h, image_size[1] / w, feats.device)[None].expand(n, -1, -1)
        points = lift_points(uv, pixel_depth.flatten(1), torch.linalg.inv(cam2img))
        query_pos = self.position_encoder(
            pos2posemb3d(inverse_sigmoid(normalize_points(points.detach(), self.position_range)), c // 2))
        query = feats.flatten(2).transpose(1, 2)
        query = self.norms[0](self.attn(query, query_pos, [feats, prev_feats], points, cam2img, image_size))
        query = self.norms[1](self.ffn(query))
        depth = pixel_depth + self.depth_residual(query).transpose(1, 2).view(n, 1, h, w)
        return query, depth
