"""MonoDGP (Pu, Wang, Deng, Yang: "MonoDGP: Monocular 3D Object Detection with Decoupled-Query and
Geometry-Error Priors", CVPR 2025).

Idea: MonoDETR with three changes. Depth is the pinhole estimate ``f * H_3D / h_2D`` corrected by a
learned geometry error, instead of an average of three estimates. The queries are decoupled: a visual-only
2D decoder finds the objects first, and its last hidden states and refined boxes start the depth-aware 3D
decoder. A region segmentation head predicts a foreground probability per feature level, which weights
the features and marks the foreground for the depth predictor.

This file holds the novelty; everything else is MonoDETR's
(:mod:`perception.models.detectors.monodetr` and the modules it names):

- :func:`geometry_error_depth`: ``d = f * H_3D / h_2D + delta``, with ``h_2D`` and ``H_3D`` not detached;
  :class:`MonoDGPHead` uses it in place of MonoDETR's fusion, with its log-variance ``s`` in the same
  Laplacian loss ``sqrt(2) exp(-s) |d - d*| + s``.
- :class:`RegionSegHead`: top-down FPN over the 4 levels, SE block and foreground probability ``P_l``
  per level; ``f_l <- f_l * P_l``; the segment embedding ``1[P_l > 0.5]`` is added to the positional
  encoding that the depth predictor reads; Dice loss per level against the union of the GT 2D boxes
  (:func:`region_targets`).
- :class:`Det2DDecoder` and :class:`MonoDGPTransformer`: the 2D decoder (self-attention + deformable
  cross-attention), then the hand-off to MonoDETR's :class:`DepthAwareDecoder` (no query position).
  Both decoders share the per-layer class and box branches of the head; the 2D decoder's layers get
  their own classification, projected-centre, box-side and GIoU losses.
"""
from typing import Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from mmcv.cnn import build_norm_layer
from mmcv.cnn.bricks.transformer import FFN, MultiheadAttention
from mmdet.models.layers.transformer import DeformableDetrTransformerDecoderLayer
from mmdet.utils import reduce_mean
from mmdet3d.structures import Det3DDataSample
from mmengine.model import BaseModule, ModuleList
from torch import Tensor, nn

from perception.models.dense_heads.monodetr_head import MonoDETRHead, geometric_depth
from perception.models.layers.depthaware_transformer import (DepthAwareDecoder, DepthAwareTransformer,
                                                             refine_reference_boxes)
from perception.ops import MultiScaleDeformableAttention
from perception.registry import MODELS
from .monodetr import MonoDETR


def geometry_error_depth(height_3d: Tensor, box_height: Tensor, focal: Tensor, depth_error: Tensor,
                         min_box_height: float = 1.) -> Tensor:
    """MonoDGP's depth: the pinhole depth plus a learned geometry error, ``f * H_3D / h_2D + delta``.

    Gradients reach both heights (detaching them costs the official model over 3 AP, PuFanqi23/MonoDGP#12).

    Args:
        height_3d: (...) predicted 3D heights, metres.
        box_height: (...) predicted 2D box heights, pixels (clamped to at least ``min_box_height``).
        focal: (...) vertical focal lengths, pixels (broadcast).
        depth_error: (...) predicted geometry errors ``delta``, metres.

    Returns:
        (...) depths, metres.
    """
    return geometric_depth(height_3d, box_height, focal, min_box_height) + depth_error


def object_region_mask(bboxes: Tensor, img_size: Tuple[int, int]) -> Tensor:
    """Union of 2D boxes as an image mask.

    Args:
        bboxes: (N, 4) boxes x1, y1, x2, y2 in input pixels (pixel centres at integers).
        img_size: (H, W) of the input.

    Returns:
        (H, W) float mask, 1 at the pixels whose centre lies in a box (edges included).
    """
    height, width = img_size
    bboxes = bboxes.float()
    cols = torch.arange(width, dtype=torch.float32, device=bboxes.device)
    rows = torch.arange(height, dtype=torch.float32, device=bboxes.device)
    inside_x = ((cols >= bboxes[:, 0:1]) & (cols <= bboxes[:, 2:3])).float()  # (N, W)
    inside_y = ((rows >= bboxes[:, 1:2]) & (rows <= bboxes[:, 3:4])).float()  # (N, H)
    return (inside_y.t() @ inside_x > 0).float()


def region_targets(batch_bboxes: Sequence[Tensor], img_size: Tuple[int, int],
                   level_sizes: Sequence[Tuple[int, int]]) -> List[Tensor]:
    """Foreground targets of the region segmentation head.

    The union of each image's boxes at input resolution, bilinearly resized to every level with
    ``align_corners=True`` as the official code does (values between 0 and 1 on box edges).

    Args:
        batch_bboxes: B tensors (N_i, 4) of 2D boxes in input pixels.
        img_size: (H, W) of the input.
        level_sizes: (H_l, W_l) of each level.

    Returns:
        One (B, 1, H_l, W_l) tensor per level.
    """
    masks = torch.stack([object_region_mask(b.reshape(-1, 4), img_size) for b in batch_bboxes])[:, None]
    return [F.interpolate(masks, size=tuple(size), mode='bilinear', align_corners=True) for size in level_sizes]


class SEBlock(BaseModule):
    """Squeeze-and-excitation channel attention (Hu et al., CVPR 2018).

    Args:
        channels: input and output channels.
        reduction: channel reduction of the bottleneck.
    """

    def __init__(self, channels: int, reduction: int = 16, init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg)
        hidden = max(channels // reduction, 1)
        self.fc1 = nn.Conv2d(channels, hidden, kernel_size=1)
        self.fc2 = nn.Conv2d(hidden, channels, kernel_size=1)

    def forward(self, x: Tensor) -> Tensor:
        """(B, C, H, W) -> (B, C, H, W) reweighted channels."""
        weight = self.fc2(F.relu(self.fc1(F.adaptive_avg_pool2d(x, 1))))
        return x * weight.sigmoid()


@MODELS.register_module()
class RegionSegHead(BaseModule):
    """MonoDGP's region segmentation head: a foreground probability per feature level.

    Args:
        embed_dims: channels of the levels.
        num_levels: feature levels L (finest first, each at most twice the size of the next).
        num_norm_groups: groups of the GroupNorms of the lateral projections.
        se_reduction: channel reduction of the SE blocks.
        prob_eps: the probabilities are clamped to ``[eps, 1 - eps]``.
        loss_region: Dice loss config, called on the batch of one level flattened into one row
            (the official sums over the whole batch, smoothed by 1).
        init_cfg: mmengine initialisation config.
    """

    def __init__(self,
                 embed_dims: int = 256,
                 num_levels: int = 4,
                 num_norm_groups: int = 32,
                 se_reduction: int = 16,
                 prob_eps: float = 1e-5,
                 loss_region: dict = dict(type='mmdet.DiceLoss', use_sigmoid=True, activate=False,
                                          naive_dice=True, eps=1.0, loss_weight=1.0),
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg)
        self.num_levels = num_levels
        self.prob_eps = prob_eps
        self.lateral_convs = nn.ModuleList([
            nn.Sequential(nn.Conv2d(embed_dims, embed_dims, kernel_size=1), nn.GroupNorm(num_norm_groups, embed_dims))
            for _ in range(num_levels)
        ])
        self.attentions = nn.ModuleList([SEBlock(embed_dims, se_reduction) for _ in range(num_levels)])
        self.predictors = nn.ModuleList([
            nn.Sequential(
                nn.Conv2d(embed_dims, embed_dims, 3, padding=1), nn.ReLU(inplace=True),
                nn.Conv2d(embed_dims, 1, 3, padding=1)) for _ in range(num_levels)
        ])
        self.loss_region = MODELS.build(loss_region)

    def forward(self, mlvl_feats: Sequence[Tensor]) -> Tuple[List[Tensor], List[Tensor], List[Tensor]]:
        """
        Args:
            mlvl_feats: L levels (B, C, H_l, W_l).

        Returns:
            - enhanced features: L levels ``f_l * P_l`` (B, C, H_l, W_l);
            - region probabilities ``P_l``: L maps (B, 1, H_l, W_l);
            - segment embeddings ``1[P_l > 0.5]``: L maps (B, 1, H_l, W_l), no gradient.
        """
        if len(mlvl_feats) != self.num_levels:
            raise ValueError(f'{len(mlvl_feats)} feature levels given, {self.num_levels} built')
        pyramid = [None] * self.num_levels
        pyramid[-1] = self.lateral_convs[-1](mlvl_feats[-1])
        for lvl in range(self.num_levels - 2, -1, -1):
            coarser = F.interpolate(pyramid[lvl + 1], size=mlvl_feats[lvl].shape[-2:], mode='bilinear',
                                    align_corners=True)
            pyramid[lvl] = self.lateral_convs[lvl](mlvl_feats[lvl]) + coarser
        probs = [
            self.predictors[lvl](self.attentions[lvl](p)).sigmoid().clamp(self.prob_eps, 1 - self.prob_eps)
            for lvl, p in enumerate(pyramid)
        ]
        enhanced = [feat * prob for feat, prob in zip(mlvl_feats, probs)]
        seg_embeds = [(prob > 0.5).to(prob.dtype) for prob in probs]
        return enhanced, probs, seg_embeds

    def loss(self, region_probs: Sequence[Tensor], batch_bboxes: Sequence[Tensor],
             img_size: Tuple[int, int]) -> Dict[str, Tensor]:
        """Sum over the levels of the Dice loss against :func:`region_targets`.

        Args:
            region_probs: L maps (B, 1, H_l, W_l).
            batch_bboxes: B tensors (N_i, 4) of GT 2D boxes in input pixels.
            img_size: (H, W) of the input.
        """
        targets = region_targets([b.to(region_probs[0].device) for b in batch_bboxes], img_size,
                                 [prob.shape[-2:] for prob in region_probs])
        loss = sum(self.loss_region(prob.reshape(1, -1), target.reshape(1, -1))
                   for prob, target in zip(region_probs, targets))
        return dict(loss_region=loss)


class Det2DDecoderLayer(DeformableDetrTransformerDecoderLayer):
    """Deformable DETR decoder layer (self-attention, deformable cross-attention, FFN, post-norms) on
    :class:`perception.ops.MultiScaleDeformableAttention`, with the call of :class:`DepthAwareDecoderLayer`.

    Args:
        self_attn_cfg: :class:`mmcv.cnn.bricks.transformer.MultiheadAttention` keywords.
        cross_attn_cfg: :class:`perception.ops.MultiScaleDeformableAttention` keywords.
        ffn_cfg: :class:`mmcv.cnn.bricks.transformer.FFN` keywords.
        norm_cfg: the three post-norms.
    """

    def __init__(self,
                 self_attn_cfg: dict = dict(embed_dims=256, num_heads=8, attn_drop=0.1, proj_drop=0.1),
                 cross_attn_cfg: dict = dict(embed_dims=256, num_heads=8, num_levels=4, num_points=4,
                                             dropout=0.1),
                 ffn_cfg: dict = dict(embed_dims=256, feedforward_channels=256, num_fcs=2, ffn_drop=0.1,
                                      act_cfg=dict(type='ReLU', inplace=True)),
                 norm_cfg: dict = dict(type='LN'),
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(self_attn_cfg=dict(self_attn_cfg), cross_attn_cfg=dict(cross_attn_cfg),
                         ffn_cfg=ffn_cfg, norm_cfg=norm_cfg, init_cfg=init_cfg)

    def _init_layers(self) -> None:
        self.self_attn = MultiheadAttention(**self.self_attn_cfg)
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
        self_attn_mask = None
        if num_groups > 1:
            num_queries = query.shape[1]
            if num_queries % num_groups:
                raise ValueError(f'{num_queries} queries do not split into {num_groups} groups')
            group = torch.arange(num_queries, device=query.device) // (num_queries // num_groups)
            self_attn_mask = group[:, None] != group[None, :]  # True: not attended
        return super().forward(query, value=value, query_pos=query_pos, self_attn_mask=self_attn_mask,
                               reference_points=reference_points, spatial_shapes=spatial_shapes,
                               level_start_index=level_start_index)


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

    def forward(self, mlvl_feats: List[Tensor], mlvl_pos_embeds: List[Tensor], depth_embed: Tensor,
                num_groups: int = 1,
                reg_branches: Optional[nn.ModuleList] = None) -> Tuple[Tensor, List[Tensor], Tensor, List[Tensor]]:
        """
        Args:
            mlvl_feats: L levels (B, C, H_l, W_l).
            mlvl_pos_embeds: L positional encodings shaped like the levels.
            depth_embed: (B, C, H_d, W_d) depth embeddings of the depth predictor.
            num_groups: query groups to run (``self.num_groups`` in training, 1 at inference).
            reg_branches: the head's box branches, shared by both decoders for their refinement; required
                (the 2D decoder's refined boxes are the 3D decoder's references).

        Returns:
            - hidden_states: (L3, B, G * Q, C) of the 3D decoder.
            - references: L3 tensors (B, G * Q, 6), the reference of each 3D layer.
            - hidden_states_2d: (L2, B, G * Q, C) of the 2D decoder.
            - references_2d: L2 tensors (B, G * Q, 2 | 6), the reference of each 2D layer.
        """
        if reg_branches is None:
            raise ValueError('MonoDGPTransformer needs the box branches: they refine the 2D boxes that '
                             'start the 3D decoder')
        query, query_pos, reference_points = self.initial_queries(mlvl_feats[0].shape[0], num_groups)
        memory, spatial_shapes, level_start_index = self.encode(mlvl_feats, mlvl_pos_embeds)
        attn_groups = num_groups if self.group_self_attn else 1
        hidden_states_2d, references_2d = self.decoder_2d(
            query=query, query_pos=query_pos, value=memory, reference_points=reference_points,
            spatial_shapes=spatial_shapes, level_start_index=level_start_index, depth_embed=None,
            num_groups=attn_groups, reg_branches=reg_branches)
        last_2d = self.decoder_2d.num_layers - 1
        reference_3d = refine_reference_boxes(references_2d[-1], reg_branches[last_2d](hidden_states_2d[-1]))
        hidden_states, references = self.decoder(
            query=hidden_states_2d[-1], query_pos=None, value=memory, reference_points=reference_3d.detach(),
            spatial_shapes=spatial_shapes, level_start_index=level_start_index,
            depth_embed=depth_embed.flatten(2).transpose(1, 2), num_groups=attn_groups, reg_branches=reg_branches)
        return hidden_states, references, hidden_states_2d, references_2d


@MODELS.register_module()
class MonoDGPHead(MonoDETRHead):
    """MonoDETR's head with the geometry-error depth and the 2D decoder's losses.

    Each branch set serves layer ``l`` of both decoders. The 2D decoder's layers get classification,
    centre, box-side and IoU losses prefixed ``d2d{l}.``. Arguments as :class:`MonoDETRHead`.
    """

    def predict_depth(self, layer: int, hidden: Tensor, boxes: Tensor, dims: Tensor, weighted_depth: Tensor,
                      focal: Tensor, img_height: int) -> Tensor:
        """Depth ``f * H_3D / h_2D + delta`` and log-variance; the depth map is not used.

        Args:
            layer, hidden, boxes, dims, weighted_depth, focal, img_height: as
                :meth:`MonoDETRHead.predict_depth`.

        Returns:
            (B, Q, 2): depth (metres) and log-variance.
        """
        out = self.depth_branches[layer](hidden)
        depth = geometry_error_depth(dims[..., 1], (boxes[..., 4] + boxes[..., 5]) * img_height, focal[:, None],
                                     out[..., 0])
        return torch.stack([depth, out[..., 1]], dim=-1)

    def forward_2d(self, hidden_states: Tensor, references: Sequence[Tensor]) -> Dict[str, Tensor]:
        """Class logits and boxes of the 2D decoder's layers.

        Args:
            hidden_states: (L2, B, Q, C).
            references: L2 tensors (B, Q, 2 | 6).

        Returns:
            ``cls_scores`` (L2, B, Q, num_classes) and ``boxes`` (L2, B, Q, 6) normalised.
        """
        cls_scores, boxes = [], []
        for layer, (hidden, reference) in enumerate(zip(hidden_states, references)):
            cls_scores.append(self.cls_branches[layer](hidden))
            boxes.append(refine_reference_boxes(reference, self.reg_branches[layer](hidden)))
        return dict(cls_scores=torch.stack(cls_scores), boxes=torch.stack(boxes))

    def loss(self, hidden_states: Tensor, references: Sequence[Tensor], weighted_depth: Tensor,
             depth_logits: Tensor, batch_data_samples: Sequence, img_size: Tuple[int, int], num_groups: int = 1,
             hidden_states_2d: Optional[Tensor] = None,
             references_2d: Optional[Sequence[Tensor]] = None) -> Dict[str, Tensor]:
        """Forward and losses; arguments as :meth:`MonoDETRHead.loss`, plus the 2D decoder's outputs."""
        batch_img_metas = [sample.metainfo for sample in batch_data_samples]
        outputs = self(hidden_states, references, weighted_depth, self.focal_lengths(batch_img_metas, weighted_depth),
                       img_size)
        outputs_2d = None if hidden_states_2d is None else self.forward_2d(hidden_states_2d, references_2d)
        batch_gt = [
            self.get_gt_instances(sample.gt_instances_3d, sample.gt_instances, img_size)
            for sample in batch_data_samples
        ]
        return self.loss_by_feat(outputs, depth_logits, batch_gt, img_size, num_groups, outputs_2d=outputs_2d)

    def loss_by_feat(self, outputs: Dict[str, Tensor], depth_logits: Tensor, batch_gt: List,
                     img_size: Tuple[int, int], num_groups: int = 1,
                     outputs_2d: Optional[Dict[str, Tensor]] = None) -> Dict[str, Tensor]:
        """:meth:`MonoDETRHead.loss_by_feat` plus the losses of each 2D decoder layer (``outputs_2d`` as
        :meth:`forward_2d` returns them), matched on their own."""
        losses = super().loss_by_feat(outputs, depth_logits, batch_gt, img_size, num_groups)
        if outputs_2d is None:
            return losses
        num_objects = sum(len(gt) for gt in batch_gt) * num_groups
        avg_factor = reduce_mean(depth_logits.new_tensor(num_objects)).clamp(min=1).item()
        for layer in range(outputs_2d['boxes'].shape[0]):
            layer_outputs = {key: value[layer] for key, value in outputs_2d.items()}
            for name, value in self.loss_by_layer(layer_outputs, batch_gt, avg_factor, num_groups).items():
                losses[f'd2d{layer}.{name}'] = value
        return losses


@MODELS.register_module()
class MonoDGP(MonoDETR):
    """Monocular 3D detector: backbone, neck to 4 levels, region segmentation head, depth predictor,
    2D then 3D decoder, head.

    Args:
        region_head: :class:`RegionSegHead` config.
        **kwargs: as :class:`MonoDETR` (``transformer`` a :class:`MonoDGPTransformer`, ``bbox_head`` a
            :class:`MonoDGPHead`, ``depth_predictor`` without the depth positional embedding).
    """

    def __init__(self, region_head: dict, **kwargs) -> None:
        super().__init__(**kwargs)
        self.region_head = MODELS.build(region_head)
        num_branches = self.bbox_head.num_pred_layers
        if self.transformer.decoder.num_layers != num_branches or self.transformer.decoder_2d.num_layers > num_branches:
            raise ValueError(f'the head has {num_branches} branch sets: the 3D decoder needs as many layers and the '
                             f'2D decoder at most as many (got {self.transformer.decoder.num_layers} and '
                             f'{self.transformer.decoder_2d.num_layers})')

    def forward_features(self, batch_inputs_dict: Dict[str, Tensor], num_groups: int) -> Dict[str, object]:
        """Features, region head, depth predictor and both decoders.

        Returns:
            ``hidden_states`` (L3, B, G * Q, C) and ``references`` of the 3D decoder,
            ``hidden_states_2d`` (L2, B, G * Q, C) and ``references_2d`` of the 2D decoder,
            ``region_probs`` (L maps (B, 1, H_l, W_l)), ``depth_logits`` (B, N + 1, H_d, W_d),
            ``weighted_depth`` (B, H_d, W_d) and ``img_size`` (H, W).
        """
        img_size = tuple(batch_inputs_dict['imgs'].shape[-2:])
        mlvl_feats, region_probs, seg_embeds = self.region_head(self.extract_feat(batch_inputs_dict))
        mlvl_pos = [
            self.positional_encoding(feat.new_zeros((feat.shape[0], ) + feat.shape[-2:], dtype=torch.bool))
            for feat in mlvl_feats
        ]
        depth_logits, depth_embed, weighted_depth = self.depth_predictor(mlvl_feats, mlvl_pos[1] + seg_embeds[1])
        hidden_states, references, hidden_states_2d, references_2d = self.transformer(
            mlvl_feats, mlvl_pos, depth_embed, num_groups=num_groups, reg_branches=self.bbox_head.reg_branches)
        return dict(hidden_states=hidden_states, references=references, hidden_states_2d=hidden_states_2d,
                    references_2d=references_2d, region_probs=region_probs, depth_logits=depth_logits,
                    weighted_depth=weighted_depth, img_size=img_size)

    def _forward_transformer(self, batch_inputs_dict: Dict[str, Tensor],
                             num_groups: int) -> Tuple[Tensor, List[Tensor], Tensor, Tensor, Tuple[int, int]]:
        """The 3D decoder's outputs as :meth:`MonoDETR._forward_transformer` gives them (prediction and
        the tensor mode use those alone)."""
        out = self.forward_features(batch_inputs_dict, num_groups)
        return out['hidden_states'], out['references'], out['depth_logits'], out['weighted_depth'], out['img_size']

    def loss(self, batch_inputs_dict: Dict[str, Tensor], batch_data_samples: List[Det3DDataSample],
             **kwargs) -> Dict[str, Tensor]:
        """Losses of a training batch, with all ``num_groups`` query groups: the 3D decoder's, the 2D
        decoder's (``d2d{l}.``), the depth map's and the region head's."""
        out = self.forward_features(batch_inputs_dict, self.num_groups)
        losses = self.bbox_head.loss(out['hidden_states'], out['references'], out['weighted_depth'],
                                     out['depth_logits'], batch_data_samples, out['img_size'],
                                     num_groups=self.num_groups, hidden_states_2d=out['hidden_states_2d'],
                                     references_2d=out['references_2d'])
        losses.update(self.region_head.loss(out['region_probs'],
                                            [sample.gt_instances.bboxes for sample in batch_data_samples],
                                            out['img_size']))
        return losses
