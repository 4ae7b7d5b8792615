"""MonoDETR's depth predictor (Zhang et al., "MonoDETR: Depth-guided Transformer for Monocular 3D Object
Detection", ICCV 2023).

The three finest feature levels are fused at stride 16 and classified per pixel into ``N + 1`` LID depth
bins (the extra class is "no object"); the expected depth over the bins is the *weighted depth* map. A
one-layer transformer encoder turns the fused features into the *depth embeddings* that the decoder's
depth cross-attention reads, to which a learnable depth positional embedding, linearly interpolated at
the weighted depth of each pixel, is added.
"""
from typing import List, Optional, Sequence, Tuple

import torch.nn.functional as F
from mmcv.cnn import build_norm_layer
from mmcv.cnn.bricks.transformer import FFN
from mmdet.models.layers.transformer import DetrTransformerEncoderLayer
from mmengine.model import BaseModule, ModuleList
from torch import Tensor, nn

from perception.registry import MODELS
from .depth_bins import lid_bin_centers
from .fused_attention import FusedMultiheadAttention


def interpolate_embedding(coord: Tensor, embedding: nn.Embedding) -> Tensor:
    """Embed a continuous coordinate by linear interpolation between integer rows of a table.

    Args:
        coord: (...) values in ``[0, num_embeddings - 1]`` (clamped to it).
        embedding: table of ``num_embeddings`` rows of C values.

    Returns:
        (..., C): ``(1 - a) E[floor(x)] + a E[floor(x) + 1]`` with ``a = x - floor(x)``.
    """
    coord = coord.clamp(0, embedding.num_embeddings - 1)
    floor = coord.floor()
    weight = (coord - floor).unsqueeze(-1)
    floor = floor.long()
    ceil = (floor + 1).clamp(max=embedding.num_embeddings - 1)
    return embedding(floor) * (1 - weight) + embedding(ceil) * weight


class DepthEncoderLayer(DetrTransformerEncoderLayer):
    """DETR encoder layer (self-attention, FFN, post-norms) on :class:`FusedMultiheadAttention`."""

    def _init_layers(self) -> None:
        self.self_attn = FusedMultiheadAttention(**self.self_attn_cfg)
        self.embed_dims = self.self_attn.embed_dims
        self.ffn = FFN(**self.ffn_cfg)
        self.norms = ModuleList([build_norm_layer(self.norm_cfg, self.embed_dims)[1] for _ in range(2)])


@MODELS.register_module()
class DepthPredictor(BaseModule):
    """Foreground depth map and depth embeddings from the multi-scale features.

    Args:
        embed_dims: channels of the input levels and of the depth embeddings.
        num_depth_bins: LID bins ``N`` (the classifier has ``N + 1`` outputs).
        depth_min: start of the bins, metres.
        depth_max: end of the bins, metres; also the size of the depth positional embedding table
            (``int(depth_max) + 1`` rows, one per metre).
        num_heads: heads of the depth encoder.
        feedforward_channels: hidden width of the depth encoder's FFN.
        dropout: dropout of the depth encoder.
        num_norm_groups: groups of the GroupNorms.
        with_depth_pos_embed: add the interpolated depth positional embedding to the depth embeddings
            (MonoDETR does; MonoDGP drops it, and the table is then not built).
        init_cfg: mmengine initialisation config.
    """

    def __init__(self,
                 embed_dims: int = 256,
                 num_depth_bins: int = 80,
                 depth_min: float = 1e-3,
                 depth_max: float = 60.,
                 num_heads: int = 8,
                 feedforward_channels: int = 256,
                 dropout: float = 0.1,
                 num_norm_groups: int = 32,
                 with_depth_pos_embed: bool = True,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg)
        self.num_depth_bins = num_depth_bins
        self.depth_min = depth_min
        self.depth_max = depth_max
        self.with_depth_pos_embed = with_depth_pos_embed
        self.register_buffer('bin_centers', lid_bin_centers(num_depth_bins, depth_min, depth_max),
                             persistent=False)

        def conv_gn(kernel_size: int, stride: int = 1) -> List[nn.Module]:
            return [
                nn.Conv2d(embed_dims, embed_dims, kernel_size, stride, padding=kernel_size // 2),
                nn.GroupNorm(num_norm_groups, embed_dims)
            ]

        self.downsample = nn.Sequential(*conv_gn(3, stride=2))
        self.proj = nn.Sequential(*conv_gn(1))
        self.upsample = nn.Sequential(*conv_gn(1))
        self.depth_head = nn.Sequential(*conv_gn(3), nn.ReLU(), *conv_gn(3), nn.ReLU())
        self.depth_classifier = nn.Conv2d(embed_dims, num_depth_bins + 1, kernel_size=1)
        self.depth_encoder = DepthEncoderLayer(
            self_attn_cfg=dict(embed_dims=embed_dims, num_heads=num_heads, attn_drop=dropout, proj_drop=dropout,
                               batch_first=True),
            ffn_cfg=dict(embed_dims=embed_dims, feedforward_channels=feedforward_channels, num_fcs=2,
                         ffn_drop=dropout, act_cfg=dict(type='ReLU', inplace=True)))
        # only built when used: a parameter without gradient stalls DistributedDataParallel
        if with_depth_pos_embed:
            self.depth_pos_embed = nn.Embedding(int(depth_max) + 1, embed_dims)

    def interpolate_depth_embed(self, depth: Tensor) -> Tensor:
        """Depth positional embedding at a depth map.

        Args:
            depth: (B, H, W) metres, clamped to ``[0, depth_max]``.

        Returns:
            (B, C, H, W).
        """
        depth = depth.clamp(0, self.depth_max)
        return interpolate_embedding(depth, self.depth_pos_embed).permute(0, 3, 1, 2)

    def forward(self, mlvl_feats: Sequence[Tensor], pos_embed: Tensor,
                key_padding_mask: Optional[Tensor] = None) -> Tuple[Tensor, Tensor, Tensor]:
        """
        Args:
            mlvl_feats: at least 3 levels (B, C, H_l, W_l) at strides 8, 16, 32 first.
            pos_embed: (B, C, H_1, W_1) positional encoding of the stride-16 level.
            key_padding_mask: (B, H_1, W_1), True on padding; None when nothing is padded.

        Returns:
            - depth_logits: (B, N + 1, H_1, W_1) bin logits.
            - depth_embed: (B, C, H_1, W_1) depth embeddings (with the positional embedding when
              ``with_depth_pos_embed``).
            - weighted_depth: (B, H_1, W_1) expected depth over the bins, metres.
        """
        feat_8, feat_16, feat_32 = mlvl_feats[:3]
        size = feat_16.shape[-2:]
        src_16 = self.proj(feat_16)
        src_32 = self.upsample(F.interpolate(feat_32, size=size, mode='bilinear'))
        src_8 = self.downsample(feat_8)
        if src_8.shape[-2:] != size:
            # stride-2 convolutions round up as ResNet does; this only triggers on odd paddings.
            src_8 = F.interpolate(src_8, size=size, mode='bilinear')
        src = self.depth_head((src_8 + src_16 + src_32) / 3)
        depth_logits = self.depth_classifier(src)
        weighted_depth = (depth_logits.softmax(dim=1) * self.bin_centers.view(1, -1, 1, 1)).sum(dim=1)

        batch_size, channels, height, width = src.shape
        depth_embed = self.depth_encoder(
            query=src.flatten(2).transpose(1, 2),
            query_pos=pos_embed.flatten(2).transpose(1, 2),
            key_padding_mask=None if key_padding_mask is None else key_padding_mask.flatten(1))
        depth_embed = depth_embed.transpose(1, 2).reshape(batch_size, channels, height, width)
        if self.with_depth_pos_embed:
            depth_embed = depth_embed + self.interpolate_depth_embed(weighted_depth)
        return depth_logits, depth_embed, weighted_depth
