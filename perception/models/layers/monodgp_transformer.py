"""MonoDGP's decoupled queries (Pu, Wang, Deng, Yang: "MonoDGP: Monocular 3D Object Detection with
Decoupled-Query and Geometry-Error Priors", CVPR 2025).

A visual-only 2D decoder (:class:`Det2DDecoder`: self-attention + deformable cross-attention) finds the
objects first; its last hidden states, without a query position, and its last refined boxes start
MonoDETR's depth-aware 3D decoder (:class:`MonoDGPTransformer`, which overrides
:meth:`DepthAwareTransformer.forward_decoder`). Both decoders share the per-layer class and box branches
of the head.
"""
from typing import Dict, List, Optional, Union

from mmcv.cnn import build_norm_layer
from mmcv.cnn.bricks.transformer import FFN
from mmdet.models.layers.transformer import DeformableDetrTransformerDecoderLayer
from mmengine.model import ModuleList
from torch import Tensor, nn

from perception.ops import MultiScaleDeformableAttention
from perception.registry import MODELS
from .depthaware_transformer import (ATTN_CFG, FFN_CFG, MSDA_CFG, DepthAwareDecoder, DepthAwareTransformer,
                                     refine_reference_boxes)
from .fused_attention import FusedMultiheadAttention


class Det2DDecoderLayer(DeformableDetrTransformerDecoderLayer):
    """Deformable DETR decoder layer (self-attention, deformable cross-attention, FFN, post-norms) on
    :class:`perception.ops.MultiScaleDeformableAttention`, with the call of :class:`DepthAwareDecoderLayer`.

    Arguments as :class:`DepthAwareDecoderLayer`'s, without the depth cross-attention (three post-norms).
    """

    def __init__(self,
                 self_attn_cfg: dict = ATTN_CFG,
                 cross_attn_cfg: dict = MSDA_CFG,
                 ffn_cfg: dict = FFN_CFG,
                 norm_cfg: dict = dict(type='LN'),
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(self_attn_cfg=dict(self_attn_cfg), cross_attn_cfg=dict(cross_attn_cfg),
                         ffn_cfg=ffn_cfg, norm_cfg=norm_cfg, init_cfg=init_cfg)

    def _init_layers(self) -> None:
        self.self_attn = FusedMultiheadAttention(**self.self_attn_cfg)
        self.cross_attn = MultiScaleDeformableAttention(**self.cross_attn_cfg)
        self.embed_dims = self.self_attn.embed_dims
        self.ffn = FFN(**self.ffn_cfg)
        self.norms = ModuleList([build_norm_layer(self.norm_cfg, self.embed_dims)[1] for _ in range(3)])

    def forward(self, query: Tensor, query_pos: Optional[Tensor], value: Tensor, reference_points: Tensor,
                spatial_shapes: Tensor, level_start_index: Tensor, depth_embed: Optional[Tensor] = None,
                num_groups: int = 1) -> Tensor:
        """
        Args:
            query, query_pos, value, reference_points, spatial_shapes, level_start_index: as
                :meth:`DepthAwareDecoderLayer.forward`.
            depth_embed: ignored (the 2D decoder sees the image only).
            num_groups: self-attention stays within each group of consecutive queries.

        Returns:
            (B, G * Q, C).
        """
        query = self.norms[0](self.self_attn(query=query, key=query, value=query, query_pos=query_pos,
                                             key_pos=query_pos, num_groups=num_groups))
        query = self.norms[1](self.cross_attn(query=query, value=value, query_pos=query_pos,
                                              reference_points=reference_points, spatial_shapes=spatial_shapes,
                                              level_start_index=level_start_index))
        return self.norms[2](self.ffn(query))


@MODELS.register_module()
class Det2DDecoder(DepthAwareDecoder):
    """MonoDGP's 2D decoder: :class:`Det2DDecoderLayer` layers with the iterative refinement of 6-D
    reference boxes of :class:`DepthAwareDecoder` (``depth_embed`` may be None).

    Args:
        num_layers: decoder layers.
        layer_cfg: keyword arguments of :class:`Det2DDecoderLayer`.
    """

    layer_type = Det2DDecoderLayer


@MODELS.register_module()
class MonoDGPTransformer(DepthAwareTransformer):
    """Visual encoder, 2D decoder, then the depth-aware 3D decoder initialised by the 2D one.

    The 3D decoder's queries are the 2D decoder's last hidden states, without a query position, and its
    first reference boxes are the 2D decoder's last refined boxes (detached).

    Args:
        encoder: :class:`VisualEncoder` config.
        decoder_2d: :class:`Det2DDecoder` config.
        decoder: :class:`DepthAwareDecoder` config (the 3D decoder).
        num_feature_levels: levels of the visual memory.
        num_queries: queries per group ``Q``.
        num_groups: query groups ``G`` used in training (matching is per group).
        group_self_attn: keep the self-attention of both decoders within each group. The official code
            does not (its decoders are built with ``group_num=1``: all ``G * Q`` training queries attend
            to each other), hence False by default.
        init_cfg: mmengine initialisation config.
    """

    def __init__(self,
                 encoder: dict,
                 decoder_2d: dict,
                 decoder: dict,
                 num_feature_levels: int = 4,
                 num_queries: int = 50,
                 num_groups: int = 11,
                 group_self_attn: bool = False,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(encoder=encoder, decoder=decoder, num_feature_levels=num_feature_levels,
                         num_queries=num_queries, num_groups=num_groups, init_cfg=init_cfg)
        self.decoder_2d = MODELS.build(decoder_2d)
        self.group_self_attn = group_self_attn

    def forward_decoder(self, query: Tensor, query_pos: Optional[Tensor], memory: Tensor, reference_points: Tensor,
                        spatial_shapes: Tensor, level_start_index: Tensor, depth_embed: Tensor, num_groups: int,
                        reg_branches: Optional[nn.ModuleList]) -> Dict[str, Union[Tensor, List[Tensor]]]:
        """The 2D decoder, then the 3D decoder from its last hidden states and refined boxes.

        Args:
            query, query_pos, memory, reference_points, spatial_shapes, level_start_index, depth_embed,
                num_groups: as :meth:`DepthAwareTransformer.forward_decoder`.
            reg_branches: the head's box branches, shared by both decoders for their refinement; required
                (the 2D decoder's refined boxes are the 3D decoder's references).

        Returns:
            ``hidden_states`` (L3, B, G * Q, C) and ``references`` (L3 tensors (B, G * Q, 6)) of the 3D
            decoder, ``hidden_states_2d`` (L2, B, G * Q, C) and ``references_2d`` (L2 tensors
            (B, G * Q, 2 | 6)) of the 2D decoder.
        """
        if reg_branches is None:
            raise ValueError('MonoDGPTransformer needs the box branches: they refine the 2D boxes that '
                             'start the 3D decoder')
        attn_groups = num_groups if self.group_self_attn else 1
        hidden_states_2d, references_2d = self.decoder_2d(
            query=query, query_pos=query_pos, value=memory, reference_points=reference_points,
            spatial_shapes=spatial_shapes, level_start_index=level_start_index, depth_embed=None,
            num_groups=attn_groups, reg_branches=reg_branches)
        last_2d = self.decoder_2d.num_layers - 1
        reference_3d = refine_reference_boxes(references_2d[-1], reg_branches[last_2d](hidden_states_2d[-1]))
        outputs_3d = super().forward_decoder(
            query=hidden_states_2d[-1], query_pos=None, memory=memory, reference_points=reference_3d.detach(),
            spatial_shapes=spatial_shapes, level_start_index=level_start_index, depth_embed=depth_embed,
            num_groups=attn_groups, reg_branches=reg_branches)
        return dict(outputs_3d, hidden_states_2d=hidden_states_2d, references_2d=references_2d)
