"""BEVFormer with DFA3D's spatial cross-attention (Li, Zhang et al.: "DFA3D: 3D Deformable Attention for 2D-to-3D
Feature Lifting", ICCV 2023; official code IDEA-Research/3D-deformable-attention, ``BEVFormer_DFA3D``), without
BEVFormer's temporal self-attention.

Pipeline: backbone and FPN on the V camera images; the depth head on one FPN level (stride 32) gives a depth
distribution per cell, nearest-resized to every level; the BEV encoder (layers of deformable BEV self-attention,
the spatial cross-attention of :mod:`perception.models.layers.dfa3d_spatial_cross_attention` and an FFN, post-norm)
turns learned BEV queries into a BEV map; :class:`~perception.models.dense_heads.BEVFormerHead` decodes boxes.

Switches: ``use_dfa3d=False`` is BEVFormer's 2D sampling (the baseline; no depth head); ``depth_source='lidar'``
feeds the ground-truth distribution (the one-hot bin of the nearest LiDAR depth of each 32x32 patch, zero where
no point falls) instead of the predicted one, in training and testing (the paper's upper bound, which needs the
points in the test pipeline).

Departures (choices): no temporal self-attention, history BEV or CAN-bus input (the BEV self-attention is plain
deformable attention over the current BEV map); the LiDAR depth maps are built in the model from the packed
points and the augmented ``lidar2img`` (as OPEN here), not loaded from precomputed files.
"""
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn.functional as F
from mmcv.cnn.bricks.transformer import FFN
from mmdet.models.layers import LearnedPositionalEncoding
from mmdet3d.models.detectors import Base3DDetector
from mmdet3d.structures import Det3DDataSample
from mmengine.model import BaseModule
from torch import Tensor, nn

from perception.models.builder import build_backbone
from perception.models.dense_heads.open_object_head import lidar_depth_maps
from perception.models.layers.dfa3d_spatial_cross_attention import (SpatialCrossAttention, one_hot_depth,
                                                                    pillar_points, project_pillars)
from perception.ops import MultiScaleDeformableAttention
from perception.registry import MODELS


class BEVFormerEncoderLayer(nn.Module):
    """BEV self-attention (deformable, one level), spatial cross-attention, FFN; each followed by a LayerNorm."""

    def __init__(self, embed_dims: int, num_heads: int, num_levels: int, feedforward_channels: int, dropout: float,
                 self_attn_points: int, cross_attn_points: int, use_dfa3d: bool, use_kernel: bool) -> None:
        super().__init__()
        self.self_attn = MultiScaleDeformableAttention(embed_dims, num_heads, num_levels=1, num_points=self_attn_points,
                                                       dropout=dropout, batch_first=True, use_kernel=use_kernel)
        self.cross_attn = SpatialCrossAttention(embed_dims, num_heads, num_levels, cross_attn_points,
                                                use_dfa3d=use_dfa3d, dropout=dropout, use_kernel=use_kernel)
        self.ffn = FFN(embed_dims, feedforward_channels, ffn_drop=dropout)
        self.norms = nn.ModuleList(nn.LayerNorm(embed_dims) for _ in range(3))

    def forward(self, query: Tensor, query_pos: Tensor, bev_reference: Tensor, bev_shape: Tensor, value: Tensor,
                reference_points_cam: Tensor, bev_mask: Tensor, spatial_shapes: Tensor, level_start_index: Tensor,
                depth_dist: Optional[Tensor]) -> Tensor:
        query = self.norms[0](self.self_attn(query, query_pos=query_pos, reference_points=bev_reference,
                                             spatial_shapes=bev_shape, level_start_index=bev_shape.new_zeros(1)))
        query = self.norms[1](self.cross_attn(query, value, reference_points_cam, bev_mask, spatial_shapes,
                                              level_start_index, depth_dist, query_pos))
        return self.norms[2](self.ffn(query))


@MODELS.register_module()
class BEVFormerEncoder(BaseModule):
    """Learned BEV queries (with a learned row/column position embedding) lifted from the cameras.

    Args:
        bev_h, bev_w: BEV grid (rows along y, columns along x over ``pc_range``).
        pc_range: (x_min, y_min, z_min, x_max, y_max, z_max), metres.
        embed_dims, num_layers, num_heads, feedforward_channels, dropout: sizes.
        num_levels: image feature levels; num_cams: cameras (their learned embeddings).
        num_points_in_pillar: pillar points per BEV query (4).
        self_attn_points, cross_attn_points: sampling points of the BEV self-attention (4) and of the spatial
            cross-attention over a whole pillar (8).
        depth_range: depths mapped to d = 0 and 1, metres.
        use_dfa3d: DFA3D sampling in the spatial cross-attention.
        use_kernel: False runs the pure-PyTorch references of the ops.
    """

    def __init__(self, bev_h: int = 150, bev_w: int = 150,
                 pc_range: Sequence[float] = (-51.2, -51.2, -5.0, 51.2, 51.2, 3.0), embed_dims: int = 256,
                 num_layers: int = 3, num_heads: int = 8, feedforward_channels: int = 512, dropout: float = 0.1,
                 num_levels: int = 1, num_cams: int = 6, num_points_in_pillar: int = 4, self_attn_points: int = 4,
                 cross_attn_points: int = 8, depth_range: Tuple[float, float] = (2.0, 58.0), use_dfa3d: bool = True,
                 use_kernel: bool = True, init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg)
        self.bev_h, self.bev_w, self.pc_range = bev_h, bev_w, tuple(pc_range)
        self.num_points_in_pillar, self.depth_range = num_points_in_pillar, tuple(depth_range)
        self.bev_embedding = nn.Embedding(bev_h * bev_w, embed_dims)
        self.positional_encoding = LearnedPositionalEncoding(embed_dims // 2, row_num_embed=bev_h, col_num_embed=bev_w)
        self.level_embeds = nn.Parameter(torch.randn(num_levels, embed_dims))
        self.cams_embeds = nn.Parameter(torch.randn(num_cams, embed_dims))
        self.layers = nn.ModuleList(
            BEVFormerEncoderLayer(embed_dims, num_heads, num_levels, feedforward_channels, dropout, self_attn_points,
                                  cross_attn_points, use_dfa3d, use_kernel) for _ in range(num_layers))

    def bev_reference(self, batch: int, device) -> Tensor:
        """(B, Q, 1, 2) normalised (x, y) centres of the BEV cells, the self-attention's reference points."""
        ys = (torch.arange(self.bev_h, device=device, dtype=torch.float32) + 0.5) / self.bev_h
        xs = (torch.arange(self.bev_w, device=device, dtype=torch.float32) + 0.5) / self.bev_w
        y, x = torch.meshgrid(ys, xs, indexing='ij')
        return torch.stack([x, y], -1).view(1, -1, 1, 2).expand(batch, -1, -1, -1)

    def forward(self, feats: Sequence[Tensor], lidar2img: Tensor, image_size: Tuple[int, int],
                depth_dists: Optional[Sequence[Tensor]] = None) -> Tensor:
        """
        Args:
            feats: per level (B, V, C, h, w) image features.
            lidar2img: (B, V, 4, 4) projections to the input pixels.
            image_size: (H, W) of the input.
            depth_dists: per level (B, V, N, h, w) depth distributions (DFA3D).

        Returns:
            (B, bev_h * bev_w, C) BEV features, cell (r, c) at index ``r * bev_w + c``.
        """
        batch, device = len(lidar2img), lidar2img.device
        value = torch.cat([f.flatten(3).transpose(2, 3) + self.cams_embeds[None, :, None] + self.level_embeds[level]
                           for level, f in enumerate(feats)], 2)
        depth = None if depth_dists is None else torch.cat([d.flatten(3).transpose(2, 3) for d in depth_dists], 2)
        spatial_shapes = torch.tensor([list(f.shape[-2:]) for f in feats], device=device)
        level_start_index = torch.cat([spatial_shapes.new_zeros(1), spatial_shapes.prod(1).cumsum(0)[:-1]])
        points = pillar_points(self.bev_h, self.bev_w, self.pc_range, self.num_points_in_pillar, device)
        reference_points_cam, bev_mask = project_pillars(points, lidar2img, image_size, self.depth_range)
        query = self.bev_embedding.weight[None].expand(batch, -1, -1)
        mask = torch.zeros(batch, self.bev_h, self.bev_w, dtype=torch.bool, device=device)
        query_pos = self.positional_encoding(mask).flatten(2).transpose(1, 2)
        bev_reference = self.bev_reference(batch, device)
        bev_shape = torch.tensor([[self.bev_h, self.bev_w]], device=device)
        for layer in self.layers:
            query = layer(query, query_pos, bev_reference, bev_shape, value, reference_points_cam, bev_mask,
                          spatial_shapes, level_start_index, depth)
        return query


@MODELS.register_module()
class DFA3DBEVFormer(Base3DDetector):
    """Multi-view 3D detector: backbone, FPN, depth head, BEV encoder with DFA3D, BEVFormer's head.

    Inputs per sample: ``imgs`` (V, 3, H, W) and, for the depth supervision or the ground-truth depth,
    ``points``; metainfo ``lidar2img`` (V, 4, 4) to the input pixels (as ``PackMultiViewInputs`` packs them).

    Args:
        backbone, neck: image backbone and neck configs (all neck levels are sampled).
        encoder: :class:`BEVFormerEncoder` config (its ``depth_range`` and ``use_dfa3d`` are set here).
        pts_bbox_head: :class:`BEVFormerHead` config.
        depth_head: :class:`DFA3DDepthHead` config (its ``depth_range`` and ``bin_size`` are set here); built only
            for DFA3D with the predicted depth.
        use_dfa3d: DFA3D's sampling; False: BEVFormer's 2D sampling without any depth.
        depth_source: 'predicted' (the depth head) or 'lidar' (the ground-truth distribution, the upper bound).
        depth_level: the neck level of the depth head and of the LiDAR depth cells (stride 32).
        depth_range, depth_bin_size: the depth bins, metres ((2, 58) by 0.5: 112 bins).
        train_cfg, test_cfg: unused (the head takes its settings).
        data_preprocessor: ``Det3DDataPreprocessor`` config.
        init_cfg: mmengine initialisation config.
    """

    def __init__(self,
                 backbone: dict,
                 neck: dict,
                 encoder: dict,
                 pts_bbox_head: dict,
                 depth_head: Optional[dict] = None,
                 use_dfa3d: bool = True,
                 depth_source: str = 'predicted',
                 depth_level: int = 0,
                 depth_range: Tuple[float, float] = (2.0, 58.0),
                 depth_bin_size: float = 0.5,
                 train_cfg: Optional[dict] = None,
                 test_cfg: Optional[dict] = None,
                 data_preprocessor: Optional[dict] = None,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        if depth_source not in ('predicted', 'lidar'):
            raise ValueError(f"depth_source must be 'predicted' or 'lidar', got {depth_source!r}")
        if use_dfa3d and depth_source == 'predicted' and depth_head is None:
            raise ValueError('DFA3D with the predicted depth needs a depth_head')
        self.use_dfa3d, self.depth_source, self.depth_level = use_dfa3d, depth_source, depth_level
        self.depth_range, self.depth_bin_size = tuple(depth_range), depth_bin_size
        self.backbone = build_backbone(backbone, type(self).__name__)
        self.neck = MODELS.build(neck)
        self.encoder = MODELS.build(dict(encoder, depth_range=self.depth_range, use_dfa3d=use_dfa3d))
        self.pts_bbox_head = MODELS.build(pts_bbox_head)
        self.depth_head = None
        if use_dfa3d and depth_source == 'predicted':
            self.depth_head = MODELS.build(dict(depth_head, depth_range=self.depth_range, bin_size=depth_bin_size))

    def extract_feat(self, batch_inputs_dict: Dict[str, Tensor]) -> List[Tensor]:
        """Per neck level (B, V, C, h, w) features of ``imgs`` (B, V, 3, H, W)."""
        imgs = batch_inputs_dict['imgs']
        return [f.unflatten(0, imgs.shape[:2]) for f in self.neck(self.backbone(imgs.flatten(0, 1)))]

    @staticmethod
    def lidar2img(batch_data_samples: List[Det3DDataSample], device) -> Tensor:
        return torch.as_tensor(np.stack([np.asarray(s.metainfo['lidar2img']) for s in batch_data_samples]),
                               dtype=torch.float32, device=device)

    def lidar_depth(self, points: Sequence[Tensor], lidar2img: Tensor, image_size: Tuple[int, int],
                    feat_size: Tuple[int, int]) -> Tensor:
        """(B * V, h, w) nearest LiDAR depth of each cell of the depth level (0: none)."""
        return torch.cat([lidar_depth_maps(p, m, image_size, feat_size) for p, m in zip(points, lidar2img)])

    def forward_bev(self, batch_inputs_dict: Dict[str, Tensor], batch_data_samples: List[Det3DDataSample]
                    ) -> Tuple[Tensor, Optional[Tensor], Optional[Tensor]]:
        """The BEV map (B, Q, C), the depth head's code probabilities (B * V, K, h, w) and the LiDAR depth
        cells (B * V, h, w) (None where not used)."""
        feats = self.extract_feat(batch_inputs_dict)
        image_size = tuple(batch_inputs_dict['imgs'].shape[-2:])
        lidar2img = self.lidar2img(batch_data_samples, feats[0].device)
        probs, depth_cells, bins, dists = None, None, None, None
        depth_feat = feats[self.depth_level]
        points = batch_inputs_dict.get('points')
        if self.use_dfa3d and (self.depth_source == 'lidar' or (self.training and points is not None)):
            if points is None:
                raise ValueError("depth_source='lidar' needs the LiDAR points in the inputs (pipeline keys)")
            depth_cells = self.lidar_depth(points, lidar2img, image_size, tuple(depth_feat.shape[-2:]))
        if self.use_dfa3d:
            if self.depth_source == 'lidar':
                bins = one_hot_depth(depth_cells, self.depth_range, self.depth_bin_size)
            else:
                probs = self.depth_head(depth_feat.flatten(0, 1))
                bins = self.depth_head.decode(probs)
            dists = [F.interpolate(bins, size=f.shape[-2:], mode='nearest').unflatten(0, f.shape[:2]) for f in feats]
        return self.encoder(feats, lidar2img, image_size, dists), probs, depth_cells

    def loss(self, batch_inputs_dict: Dict[str, Tensor], batch_data_samples: List[Det3DDataSample],
             **kwargs) -> Dict[str, Tensor]:
        """3D losses of every decoder layer and, with the predicted depth and the points, the depth loss."""
        bev, probs, depth_cells = self.forward_bev(batch_inputs_dict, batch_data_samples)
        head = self.pts_bbox_head
        losses = head.loss(head(bev, (self.encoder.bev_h, self.encoder.bev_w)),
                           [sample.gt_instances_3d for sample in batch_data_samples])
        if probs is not None and depth_cells is not None:
            losses['loss_depth'] = self.depth_head.loss(probs, depth_cells)
        return losses

    def predict(self, batch_inputs_dict: Dict[str, Tensor], batch_data_samples: List[Det3DDataSample],
                **kwargs) -> List[Det3DDataSample]:
        """LiDAR-frame detections (``pred_instances_3d``: boxes with velocity, scores, labels)."""
        bev, _, _ = self.forward_bev(batch_inputs_dict, batch_data_samples)
        results = self.pts_bbox_head.predict(bev, (self.encoder.bev_h, self.encoder.bev_w))
        return self.add_pred_to_datasample(batch_data_samples, results)

    def _forward(self, batch_inputs_dict: Dict[str, Tensor],
                 batch_data_samples: Optional[List[Det3DDataSample]] = None, **kwargs) -> Dict[str, Tensor]:
        """The head's raw per-layer outputs (no decoding)."""
        bev, _, _ = self.forward_bev(batch_inputs_dict, batch_data_samples)
        return self.pts_bbox_head(bev, (self.encoder.bev_h, self.encoder.bev_w))
