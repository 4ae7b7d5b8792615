"""Sine embeddings of 3D points, depths and times, and the camera/ego-motion conditioned layer norm of
PETR-family detectors (PETR, StreamPETR, OPEN).

``pos2posemb3d`` embeds each coordinate ``p`` (normalised, typically ``inverse_sigmoid`` of a [0, 1] position)
with ``F`` frequencies ``p * 2*pi / T^(2*floor(i/2)/F)``, sine on the even and cosine on the odd features
(interleaved) and concatenates the axes in the order (y, x, z), as the official code does.
"""
import math
from typing import Sequence

import torch
from torch import Tensor, nn


def sine_embedding(values: Tensor, num_feats: int = 128, temperature: float = 10000.) -> Tensor:
    """Interleaved sine/cosine embedding of each value: (...,) -> (..., num_feats), feature ``i`` is
    ``sin`` (even ``i``) or ``cos`` (odd ``i``) of ``values * 2*pi / temperature^(2*floor(i/2)/num_feats)``."""
    dim_t = torch.arange(num_feats, dtype=torch.float32, device=values.device)
    dim_t = temperature ** (2 * torch.div(dim_t, 2, rounding_mode='floor') / num_feats)
    angles = values[..., None] * (2 * math.pi) / dim_t
    return torch.stack((angles[..., 0::2].sin(), angles[..., 1::2].cos()), dim=-1).flatten(-2)


def pos2posemb3d(pos: Tensor, num_feats: int = 128, temperature: float = 10000.) -> Tensor:
    """(..., 3) points (x, y, z) -> (..., 3 * num_feats) embedding, axes concatenated as (y, x, z)."""
    emb = [sine_embedding(pos[..., axis], num_feats, temperature) for axis in (1, 0, 2)]
    return torch.cat(emb, dim=-1)


def pos2posemb1d(pos: Tensor, num_feats: int = 256, temperature: float = 10000.) -> Tensor:
    """(..., 1) values (depths, times) -> (..., num_feats) embedding."""
    return sine_embedding(pos[..., 0], num_feats, temperature)


def nerf_positional_encoding(values: Tensor, num_frequencies: int = 6) -> Tensor:
    """NeRF encoding of each value with log-spaced frequencies 2^0..2^(F-1): (..., C) -> (..., 2 * F * C),
    ordered [sin(f_0 v), cos(f_0 v), sin(f_1 v), ...] (each block C wide), without the input itself."""
    freqs = 2.0 ** torch.arange(num_frequencies, dtype=values.dtype, device=values.device)
    angles = values[..., None, :] * freqs[:, None]
    return torch.stack((angles.sin(), angles.cos()), dim=-2).flatten(-3)


class MLN(nn.Module):
    """Motion-aware layer normalisation (StreamPETR): the affine parameters of a LayerNorm predicted from a
    condition vector (ego motion, time, velocity), initialised to the identity.

    Args:
        cond_dims: size of the condition vector.
        embed_dims: size of the normalised features.
    """

    def __init__(self, cond_dims: int, embed_dims: int = 256) -> None:
        super().__init__()
        self.reduce = nn.Sequential(nn.Linear(cond_dims, embed_dims), nn.ReLU())
        self.gamma = nn.Linear(embed_dims, embed_dims)
        self.beta = nn.Linear(embed_dims, embed_dims)
        self.norm = nn.LayerNorm(embed_dims, elementwise_affine=False)
        nn.init.zeros_(self.gamma.weight)
        nn.init.ones_(self.gamma.bias)
        nn.init.zeros_(self.beta.weight)
        nn.init.zeros_(self.beta.bias)

    def forward(self, x: Tensor, cond: Tensor) -> Tensor:
        cond = self.reduce(cond)
        return self.gamma(cond) * self.norm(x) + self.beta(cond)


def mlp(in_dims: int, hidden_dims: int, out_dims: int) -> nn.Sequential:
    """Linear -> ReLU -> Linear, the position encoders of the PETR family."""
    return nn.Sequential(nn.Linear(in_dims, hidden_dims), nn.ReLU(inplace=True), nn.Linear(hidden_dims, out_dims))


def lift_points(uv: Tensor, depth: Tensor, img2world: Tensor) -> Tensor:
    """Lift pixels with depth to 3D: ``img2world @ [u d, v d, d, 1]``.

    Args:
        uv: (N, K, 2) pixel coordinates.
        depth: (N, K) projective depth, metres.
        img2world: (N, 4, 4) inverse of the 4x4 projection (``inv(cam2img)`` gives camera-frame points,
            ``inv(lidar2img)`` LiDAR-frame ones).

    Returns:
        (N, K, 3) points.
    """
    homogeneous = torch.cat([uv * depth[..., None], depth[..., None], torch.ones_like(depth[..., None])], dim=-1)
    return (homogeneous @ img2world.transpose(1, 2))[..., :3]


def normalize_points(points: Tensor, position_range: Sequence[float]) -> Tensor:
    """(..., 3) points to [0, 1] over ``position_range`` (x_min, y_min, z_min, x_max, y_max, z_max)."""
    limits = points.new_tensor(position_range)
    return (points - limits[:3]) / (limits[3:] - limits[:3])
