"""MonoDETR's depth-aware transformer (Zhang et al., "MonoDETR: Depth-guided Transformer for Monocular 3D
Object Detection", ICCV 2023).

- :class:`VisualEncoder`: Deformable DETR's encoder (multi-scale deformable self-attention) on the
  project's deformable-attention op.
- :class:`DepthAwareDecoderLayer`: each object query first reads the depth embeddings (depth
  cross-attention), then the other queries of its group (self-attention), then the visual memory
  (deformable cross-attention around its reference box), then an FFN; post-norm after each step.
- :class:`DepthAwareDecoder`: the layers with iterative box refinement of 6-D reference boxes
  ``(x, y, l, r, t, b)``: the projected 3D centre and the distances to the 2D box sides, normalised by
  the input size.
- :class:`DepthAwareTransformer`: flattening of the levels, the learned queries (Group DETR: ``G``
  groups of ``Q`` queries in training, the first group at inference), encoder and decoder, as the steps
  of mmdet's ``DetectionTransformer`` (``pre_transformer``, ``forward_encoder``, ``pre_decoder``,
  ``forward_decoder``) that hand dicts to each other; a variant overrides one step (MonoDGP's
  ``forward_decoder``).

Inputs are assumed unpadded (all images of a batch share one size, as the KITTI pipelines produce),
as in the official code whose masks are all False: the encoder and decoder take no padding masks.
"""
from typing import Dict, List, Optional, Tuple, Union

import torch
from mmcv.cnn import build_norm_layer
from mmcv.cnn.bricks.transformer import FFN
from mmdet.models.layers.transformer import (DeformableDetrTransformerEncoder,
                                             DeformableDetrTransformerEncoderLayer, inverse_sigmoid)
from mmengine.model import BaseModule, ModuleList
from torch import Tensor, nn

from perception.ops import MultiScaleDeformableAttention
from perception.registry import MODELS
from .fused_attention import FusedMultiheadAttention

# The official decoder layers' settings, the defaults of MonoDETR's and MonoDGP's decoder layers.
ATTN_CFG = dict(embed_dims=256, num_heads=8, attn_drop=0.1, proj_drop=0.1)
MSDA_CFG = dict(embed_dims=256, num_heads=8, num_levels=4, num_points=4, dropout=0.1)
FFN_CFG = dict(embed_dims=256, feedforward_channels=256, num_fcs=2, ffn_drop=0.1,
               act_cfg=dict(type='ReLU', inplace=True))


class VisualEncoderLayer(DeformableDetrTransformerEncoderLayer):
    """Deformable DETR encoder layer on :class:`perception.ops.MultiScaleDeformableAttention`."""

    def _init_layers(self) -> None:
        self.self_attn = MultiScaleDeformableAttention(**self.self_attn_cfg)
        self.embed_dims = self.self_attn.embed_dims
        self.ffn = FFN(**self.ffn_cfg)
        self.norms = ModuleList([build_norm_layer(self.norm_cfg, self.embed_dims)[1] for _ in range(2)])


@MODELS.register_module()
class VisualEncoder(DeformableDetrTransformerEncoder):
    """Deformable DETR encoder on :class:`perception.ops.MultiScaleDeformableAttention`.

    Args:
        num_layers: encoder layers.
        layer_cfg: keyword arguments of :class:`VisualEncoderLayer` (``self_attn_cfg``, ``ffn_cfg``).
    """

    def _init_layers(self) -> None:
        self.layers = ModuleList([VisualEncoderLayer(**self.layer_cfg) for _ in range(self.num_layers)])
        self.embed_dims = self.layers[0].embed_dims


def refine_reference_boxes(reference_points: Tensor, offsets: Tensor) -> Tensor:
    """One step of iterative box refinement in logit space.

    Args:
        reference_points: (..., 2 | 6) normalised reference points or boxes ``(x, y, l, r, t, b)``.
        offsets: (..., 6) predicted offsets.

    Returns:
        (..., 6) ``sigmoid(offsets + logit(reference))``; a 2-D reference gives x, y only, the sides
        come from the offsets alone.
    """
    if reference_points.shape[-1] == 6:
        refined = offsets + inverse_sigmoid(reference_points)
    else:
        refined = torch.cat([offsets[..., :2] + inverse_sigmoid(reference_points), offsets[..., 2:]], dim=-1)
    return refined.sigmoid()


class DepthAwareDecoderLayer(BaseModule):
    """Depth cross-attention, group self-attention, deformable cross-attention, FFN.

    The official layer passes ``q = k = t + p`` through two extra pairs of linear maps,
    ``q <- W_qc q + W_qp q`` and ``k <- W_kc k + W_kp k``, before the attention's own input projection;
    each pair is again one linear map, which that projection already provides, so they are left out
    unless ``qk_proj`` (which the official checkpoints need: their trained maps are not the identity).

    Args:
        depth_cross_attn_cfg: :class:`FusedMultiheadAttention` keywords.
        self_attn_cfg: :class:`FusedMultiheadAttention` keywords.
        cross_attn_cfg: :class:`perception.ops.MultiScaleDeformableAttention` keywords.
        ffn_cfg: :class:`mmcv.cnn.bricks.transformer.FFN` keywords.
        norm_cfg: the four post-norms.
        qk_proj: build the official extra query and key maps of the self-attention.
    """

    def __init__(self,
                 depth_cross_attn_cfg: dict = ATTN_CFG,
                 self_attn_cfg: dict = ATTN_CFG,
                 cross_attn_cfg: dict = MSDA_CFG,
                 ffn_cfg: dict = FFN_CFG,
                 norm_cfg: dict = dict(type='LN'),
                 qk_proj: bool = False,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg)
        self.depth_cross_attn = FusedMultiheadAttention(**{**depth_cross_attn_cfg, 'batch_first': True})
        self.self_attn = FusedMultiheadAttention(**{**self_attn_cfg, 'batch_first': True})
        self.cross_attn = MultiScaleDeformableAttention(**{**cross_attn_cfg, 'batch_first': True})
        self.ffn = FFN(**ffn_cfg)
        self.embed_dims = self.self_attn.embed_dims
        self.norms = ModuleList([build_norm_layer(norm_cfg, self.embed_dims)[1] for _ in range(4)])
        self.qk_proj = qk_proj
        if qk_proj:
            self.q_content_proj, self.q_pos_proj, self.k_content_proj, self.k_pos_proj = (
                nn.Linear(self.embed_dims, self.embed_dims) for _ in range(4))

    def forward(self, query: Tensor, query_pos: Optional[Tensor], value: Tensor, reference_points: Tensor,
                spatial_shapes: Tensor, level_start_index: Tensor, depth_embed: Tensor,
                num_groups: int = 1) -> Tensor:
        """
        Args:
            query: (B, G * Q, C) content queries.
            query_pos: (B, G * Q, C) query positions, or None.
            value: (B, S, C) visual memory, S = sum of H_l W_l.
            reference_points: (B, G * Q, L, 2 | 6) normalised reference points or boxes per level.
            spatial_shapes: (L, 2) int64 (H_l, W_l).
            level_start_index: (L,).
            depth_embed: (B, H_d W_d, C) depth embeddings.
            num_groups: G; self-attention stays within each group of Q consecutive queries.

        Returns:
            (B, G * Q, C).
        """
        query = self.norms[0](self.depth_cross_attn(query=query, key=depth_embed, value=depth_embed))
        if self.qk_proj:
            q = k = query if query_pos is None else query + query_pos
            query = self.self_attn(query=self.q_content_proj(q) + self.q_pos_proj(q),
                                   key=self.k_content_proj(k) + self.k_pos_proj(k), value=query,
                                   identity=query, num_groups=num_groups)
        else:
            query = self.self_attn(query=query, key=query, value=query, query_pos=query_pos, key_pos=query_pos,
                                   num_groups=num_groups)
        query = self.norms[1](query)

        query = self.cross_attn(query=query, value=value, query_pos=query_pos,
                                reference_points=reference_points, spatial_shapes=spatial_shapes,
                                level_start_index=level_start_index)
        query = self.norms[2](query)
        return self.norms[3](self.ffn(query))


@MODELS.register_module()
class DepthAwareDecoder(BaseModule):
    """Depth-aware decoder with iterative refinement of 6-D reference boxes.

    Args:
        num_layers: decoder layers.
        layer_cfg: keyword arguments of :attr:`layer_type` (:class:`DepthAwareDecoderLayer`).
    """

    # subclasses swap the layer and keep the refinement (MonoDGP's 2D decoder)
    layer_type = DepthAwareDecoderLayer

    def __init__(self, num_layers: int = 3, layer_cfg: dict = dict(), init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg)
        self.num_layers = num_layers
        self.layers = ModuleList([self.layer_type(**layer_cfg) for _ in range(num_layers)])
        self.embed_dims = self.layers[0].embed_dims

    def forward(self, query: Tensor, query_pos: Optional[Tensor], value: Tensor, reference_points: Tensor,
                spatial_shapes: Tensor, level_start_index: Tensor, depth_embed: Tensor, num_groups: int = 1,
                reg_branches: Optional[nn.ModuleList] = None) -> Tuple[Tensor, List[Tensor]]:
        """
        Args:
            query, query_pos, value, spatial_shapes, level_start_index, depth_embed, num_groups: as
                :meth:`DepthAwareDecoderLayer.forward`.
            reference_points: (B, G * Q, 2 | 6) initial normalised reference points or boxes.
            reg_branches: one module per layer mapping (..., C) to 6 box offsets in logit space; the
                refined boxes (:func:`refine_reference_boxes`) become the next layer's references,
                detached. None keeps the references fixed.

        Returns:
            - hidden_states: (num_layers, B, G * Q, C).
            - references: num_layers tensors (B, G * Q, 2 | 6): the reference each layer attended
              around, whose logit the head adds to that layer's box offsets.
        """
        num_levels = spatial_shapes.shape[0]
        hidden_states, references = [], []
        for layer_id, layer in enumerate(self.layers):
            references.append(reference_points)
            query = layer(query, query_pos, value,
                          reference_points[:, :, None].expand(-1, -1, num_levels, -1),
                          spatial_shapes, level_start_index, depth_embed, num_groups=num_groups)
            hidden_states.append(query)
            if reg_branches is not None:
                reference_points = refine_reference_boxes(reference_points, reg_branches[layer_id](query)).detach()
        return torch.stack(hidden_states), references


@MODELS.register_module()
class DepthAwareTransformer(BaseModule):
    """Level flattening, Group-DETR queries, visual encoder and depth-aware decoder.

    Args:
        encoder: :class:`VisualEncoder` config.
        decoder: :class:`DepthAwareDecoder` config.
        num_feature_levels: levels of the visual memory.
        num_queries: queries per group ``Q``.
        num_groups: query groups ``G`` used in training (inference uses the first group).
        init_cfg: mmengine initialisation config.
    """

    def __init__(self,
                 encoder: dict,
                 decoder: dict,
                 num_feature_levels: int = 4,
                 num_queries: int = 50,
                 num_groups: int = 11,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg)
        self.encoder = MODELS.build(encoder)
        self.decoder = MODELS.build(decoder)
        self.embed_dims = self.encoder.embed_dims
        self.num_feature_levels = num_feature_levels
        self.num_queries = num_queries
        self.num_groups = num_groups
        # N(0, 1) at construction too, so that a model built without init_weights() holds no garbage
        self.level_embed = nn.Parameter(torch.randn(num_feature_levels, self.embed_dims))
        self.query_embedding = nn.Embedding(num_queries * num_groups, 2 * self.embed_dims)
        self.reference_points = nn.Linear(self.embed_dims, 2)

    def init_weights(self) -> None:
        """Xavier for every matrix but the query embedding and Deformable DETR's init of the deformable
        attention, as the official transformer."""
        super().init_weights()
        for name, p in self.named_parameters():
            # the official query embedding lives outside its transformer and keeps nn.Embedding's N(0, 1)
            if p.dim() > 1 and not name.startswith('query_embedding'):
                nn.init.xavier_uniform_(p)
        for m in self.modules():
            if isinstance(m, MultiScaleDeformableAttention):
                m.init_weights()
        nn.init.xavier_uniform_(self.reference_points.weight, gain=1.0)
        nn.init.constant_(self.reference_points.bias, 0.)
        nn.init.normal_(self.level_embed)

    def pre_transformer(self, mlvl_feats: List[Tensor],
                        mlvl_pos_embeds: List[Tensor]) -> Tuple[Dict[str, Tensor], Dict[str, Tensor]]:
        """Flatten the levels for the encoder and the decoder.

        Args:
            mlvl_feats: L levels (B, C, H_l, W_l).
            mlvl_pos_embeds: L positional encodings shaped like the levels.

        Returns:
            - encoder_inputs_dict: ``feat`` (B, S, C) with S = sum of H_l W_l, ``feat_pos`` (B, S, C) (the
              positional encodings plus the level embeddings), ``spatial_shapes`` (L, 2) int64 (H_l, W_l),
              ``level_start_index`` (L,) and ``valid_ratios`` (B, L, 2), all 1 (nothing is padded).
            - decoder_inputs_dict: ``spatial_shapes`` and ``level_start_index``.
        """
        batch_size = mlvl_feats[0].shape[0]
        spatial_shapes = torch.as_tensor([feat.shape[-2:] for feat in mlvl_feats], dtype=torch.long,
                                         device=mlvl_feats[0].device)
        level_start_index = torch.cat([spatial_shapes.new_zeros(1), spatial_shapes.prod(1).cumsum(0)[:-1]])
        feat_flatten = torch.cat([feat.flatten(2).transpose(1, 2) for feat in mlvl_feats], dim=1)
        pos_flatten = torch.cat([
            pos.flatten(2).transpose(1, 2) + self.level_embed[lvl].view(1, 1, -1)
            for lvl, pos in enumerate(mlvl_pos_embeds)
        ], dim=1)
        encoder_inputs_dict = dict(feat=feat_flatten, feat_pos=pos_flatten, spatial_shapes=spatial_shapes,
                                   level_start_index=level_start_index,
                                   valid_ratios=feat_flatten.new_ones(batch_size, len(mlvl_feats), 2))
        decoder_inputs_dict = dict(spatial_shapes=spatial_shapes, level_start_index=level_start_index)
        return encoder_inputs_dict, decoder_inputs_dict

    def forward_encoder(self, feat: Tensor, feat_pos: Tensor, spatial_shapes: Tensor, level_start_index: Tensor,
                        valid_ratios: Tensor) -> Dict[str, Tensor]:
        """The visual encoder on the flattened levels (arguments as :meth:`pre_transformer` returns them).

        Returns:
            ``memory`` (B, S, C).
        """
        memory = self.encoder(query=feat, query_pos=feat_pos, key_padding_mask=None, spatial_shapes=spatial_shapes,
                              level_start_index=level_start_index, valid_ratios=valid_ratios)
        return dict(memory=memory)

    def pre_decoder(self, batch_size: int, num_groups: int) -> Dict[str, Tensor]:
        """The learned queries of the first ``num_groups`` groups.

        Returns:
            ``query`` (B, G * Q, C), ``query_pos`` (B, G * Q, C) and ``reference_points`` (B, G * Q, 2).
        """
        if num_groups > self.num_groups:
            raise ValueError(f'{num_groups} query groups asked, {self.num_groups} built')
        query_embed = self.query_embedding.weight[:self.num_queries * num_groups]
        query_pos, query = query_embed.unsqueeze(0).expand(batch_size, -1, -1).split(self.embed_dims, dim=-1)
        return dict(query=query, query_pos=query_pos, reference_points=self.reference_points(query_pos).sigmoid())

    def forward_decoder(self, query: Tensor, query_pos: Optional[Tensor], memory: Tensor, reference_points: Tensor,
                        spatial_shapes: Tensor, level_start_index: Tensor, depth_embed: Tensor, num_groups: int,
                        reg_branches: Optional[nn.ModuleList]) -> Dict[str, Union[Tensor, List[Tensor]]]:
        """The depth-aware decoder.

        Args:
            query, query_pos, reference_points: as :meth:`pre_decoder` returns them.
            memory: (B, S, C) as :meth:`forward_encoder` returns it.
            spatial_shapes, level_start_index: as :meth:`pre_transformer` returns them.
            depth_embed: (B, C, H_d, W_d) depth embeddings of the depth predictor.
            num_groups: query groups G.
            reg_branches: box refinement branches, see :meth:`DepthAwareDecoder.forward`.

        Returns:
            ``hidden_states`` (num_layers, B, G * Q, C) and ``references``, the reference of each layer.
        """
        hidden_states, references = self.decoder(
            query=query, query_pos=query_pos, value=memory, reference_points=reference_points,
            spatial_shapes=spatial_shapes, level_start_index=level_start_index,
            depth_embed=depth_embed.flatten(2).transpose(1, 2), num_groups=num_groups, reg_branches=reg_branches)
        return dict(hidden_states=hidden_states, references=references)

    def forward(self, mlvl_feats: List[Tensor], mlvl_pos_embeds: List[Tensor], depth_embed: Tensor,
                num_groups: int = 1,
                reg_branches: Optional[nn.ModuleList] = None) -> Dict[str, Union[Tensor, List[Tensor]]]:
        """:meth:`pre_transformer`, :meth:`forward_encoder`, :meth:`pre_decoder`, :meth:`forward_decoder`.

        Args:
            mlvl_feats: L levels (B, C, H_l, W_l).
            mlvl_pos_embeds: L positional encodings shaped like the levels.
            depth_embed: (B, C, H_d, W_d) depth embeddings of the depth predictor.
            num_groups: query groups to run (``self.num_groups`` in training, 1 at inference).
            reg_branches: box refinement branches, see :meth:`DepthAwareDecoder.forward`.

        Returns:
            What :meth:`forward_decoder` returns: the head's inputs.
        """
        encoder_inputs_dict, decoder_inputs_dict = self.pre_transformer(mlvl_feats, mlvl_pos_embeds)
        decoder_inputs_dict.update(self.forward_encoder(**encoder_inputs_dict))
        decoder_inputs_dict.update(self.pre_decoder(mlvl_feats[0].shape[0], num_groups))
        return self.forward_decoder(**decoder_inputs_dict, depth_embed=depth_embed, num_groups=num_groups,
                                    reg_branches=reg_branches)
