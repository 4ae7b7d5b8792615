"""BEVFormer's detection head (Li et al.: "BEVFormer: Learning Bird's-Eye-View Representation from Multi-Camera
Images via Spatiotemporal Transformers", ECCV 2022): a Deformable-DETR decoder over the BEV features with
iterative box refinement.

``num_query`` learned (content, position) pairs; each query's 3D reference point is ``sigmoid(Linear(pos))``
in the ``pc_range`` cube. Each decoder layer (mmdet's ``DeformableDetrTransformerDecoderLayer``: self-attention,
deformable cross-attention to the single-level BEV map at the reference's (x, y), FFN, post-norm) is followed by
its own classification and regression branches; the regressed centre offset refines the reference (detached)
for the next layer. Box codes, assignment, losses and decoding are those of the project's 3D DETR heads
(:class:`~perception.models.task_modules.NMSFreeBBoxCoder`, :class:`DETR3DLossMixin`'s Hungarian matching and
focal + L1 losses with hard targets).

Departures (choices): the box codes are ``(cx, cy, cz, log dx, log dy, log dz, sin, cos, vx, vy)`` in metres
(BEVFormer: ``(cx, cy, w, l, cz, h, ...)`` with the centre in the normalised cube); the L1 matching cost covers
all 10 codes (BEVFormer: the first 8).
"""
from typing import Dict, List, Optional, Sequence

import torch
from mmdet.models.layers import DeformableDetrTransformerDecoderLayer
from mmdet.models.layers.transformer import inverse_sigmoid
from mmengine.model import BaseModule, bias_init_with_prob
from mmengine.structures import InstanceData
from torch import Tensor, nn

from perception.models.dense_heads.detr3d_losses import DETR3DLossMixin
from perception.ops import MultiScaleDeformableAttention
from perception.registry import MODELS, TASK_UTILS


class BEVDecoderLayer(DeformableDetrTransformerDecoderLayer):
    """mmdet's Deformable DETR decoder layer with the project's MSDA layer (same arguments and parameter names,
    a compiled kernel on the CPU too) as cross-attention."""

    def _init_layers(self) -> None:
        super()._init_layers()
        self.cross_attn = MultiScaleDeformableAttention(**self.cross_attn_cfg)


@MODELS.register_module()
class BEVFormerHead(DETR3DLossMixin, BaseModule):
    """DETR head over a BEV map (see the module docstring); matching, losses and decoding from
    :class:`DETR3DLossMixin`.

    Args:
        num_classes: classes.
        embed_dims: channels of the BEV map and the queries.
        num_query: queries (900).
        num_layers: decoder layers (6).
        num_heads, num_points, feedforward_channels, dropout: the decoder layers (8, 4, 512, 0.1).
        pc_range: (x_min, y_min, z_min, x_max, y_max, z_max) of the reference points and of the BEV map, metres.
        code_weights: weights of the 10 box codes in the L1 loss.
        bbox_coder, assigner, loss_cls, loss_bbox: as :class:`StreamPETRHead`.
    """
    def __init__(self,
                 num_classes: int = 10,
                 embed_dims: int = 256,
                 num_query: int = 900,
                 num_layers: int = 6,
                 num_heads: int = 8,
                 num_points: int = 4,
                 feedforward_channels: int = 512,
                 dropout: float = 0.1,
                 pc_range: Sequence[float] = (-51.2, -51.2, -5.0, 51.2, 51.2, 3.0),
                 code_weights: Sequence[float] = (1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 0.2, 0.2),
                 bbox_coder: dict = dict(type='NMSFreeBBoxCoder', post_center_range=(-61.2, -61.2, -10.0, 61.2,
                                                                                     61.2, 10.0), max_num=300),
                 assigner: dict = dict(type='GroupHungarianAssigner', match_costs=[
                     dict(type='mmdet.FocalLossCost', weight=2.0),
                     dict(type='InstanceL1Cost', key='codes', weight=0.25)]),
                 loss_cls: dict = dict(type='mmdet.FocalLoss', use_sigmoid=True, gamma=2.0, alpha=0.25,
                                       loss_weight=2.0),
                 loss_bbox: dict = dict(type='mmdet.L1Loss', loss_weight=0.25),
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        self.num_classes, self.embed_dims, self.num_query = num_classes, embed_dims, num_query
        self.pc_range = tuple(pc_range)
        self.soft_targets = False
        self.query_embedding = nn.Embedding(num_query, 2 * embed_dims)
        self.reference_points = nn.Linear(embed_dims, 3)
        layer = dict(self_attn_cfg=dict(embed_dims=embed_dims, num_heads=num_heads, attn_drop=dropout,
                                        dropout_layer=dict(type='Dropout', drop_prob=dropout), batch_first=True),
                     cross_attn_cfg=dict(embed_dims=embed_dims, num_heads=num_heads, num_levels=1,
                                         num_points=num_points, dropout=dropout, batch_first=True),
                     ffn_cfg=dict(embed_dims=embed_dims, feedforward_channels=feedforward_channels, ffn_drop=dropout))
        self.layers = nn.ModuleList(BEVDecoderLayer(**layer) for _ in range(num_layers))
        self.cls_branches = nn.ModuleList(
            nn.Sequential(nn.Linear(embed_dims, embed_dims), nn.LayerNorm(embed_dims), nn.ReLU(inplace=True),
                          nn.Linear(embed_dims, embed_dims), nn.LayerNorm(embed_dims), nn.ReLU(inplace=True),
                          nn.Linear(embed_dims, num_classes)) for _ in range(num_layers))
        self.reg_branches = nn.ModuleList(
            nn.Sequential(nn.Linear(embed_dims, embed_dims), nn.ReLU(), nn.Linear(embed_dims, embed_dims), nn.ReLU(),
                          nn.Linear(embed_dims, 10)) for _ in range(num_layers))
        self.register_buffer('code_weights', torch.tensor(code_weights, dtype=torch.float32), persistent=False)
        self.bbox_coder = TASK_UTILS.build(dict(num_classes=num_classes, **bbox_coder))
        self.assigner = TASK_UTILS.build(assigner)
        self.loss_cls = MODELS.build(loss_cls)
        self.loss_bbox = MODELS.build(loss_bbox)
        for branch in self.cls_branches:
            nn.init.constant_(branch[-1].bias, bias_init_with_prob(0.01))

    def forward(self, bev: Tensor, bev_size: Sequence[int]) -> Dict[str, Tensor]:
        """
        Args:
            bev: (B, bev_h * bev_w, C) BEV features, row r and column c at index ``r * bev_w + c`` (y, x).
            bev_size: (bev_h, bev_w).

        Returns:
            ``all_cls_scores`` (L, B, Q, K) logits and ``all_bbox_preds`` (L, B, Q, 10) codes with metric centres.
        """
        batch = len(bev)
        query_pos, query = self.query_embedding.weight.split(self.embed_dims, dim=1)
        query_pos, query = query_pos[None].expand(batch, -1, -1), query[None].expand(batch, -1, -1)
        reference = self.reference_points(query_pos).sigmoid()
        spatial_shapes = torch.tensor([list(bev_size)], device=bev.device)
        level_start_index = spatial_shapes.new_zeros(1)
        limits = bev.new_tensor(self.pc_range)
        all_cls, all_bbox = [], []
        for layer, cls_branch, reg_branch in zip(self.layers, self.cls_branches, self.reg_branches):
            query = layer(query, query_pos=query_pos, value=bev, reference_points=reference[:, :, None, :2],
                          spatial_shapes=spatial_shapes, level_start_index=level_start_index)
            deltas = reg_branch(query)
            refined = (deltas[..., :3] + inverse_sigmoid(reference)).sigmoid()
            all_cls.append(cls_branch(query))
            all_bbox.append(torch.cat([refined * (limits[3:] - limits[:3]) + limits[:3], deltas[..., 3:]], -1))
            reference = refined.detach()
        return dict(all_cls_scores=torch.stack(all_cls), all_bbox_preds=torch.stack(all_bbox))

    def predict(self, bev: Tensor, bev_size: Sequence[int]) -> List[InstanceData]:
        return self.predict_by_feat(self(bev, bev_size))
