"""StreamPETR's detection head (Wang, Liu, Wang, Zhang: "Exploring Object-Centric Temporal Modeling for
Efficient Multi-View 3D Object Detection", ICCV 2023), the decoder of OPEN.

Object-centric temporal modelling: the ``topk_proposals`` best queries of each frame (their decoded
embeddings, centres and velocities) enter a memory queue of ``memory_len`` entries. At the next frame every
entry is moved into the new LiDAR frame by the ego motion; its age, velocity and accumulated ego pose condition
its embedding and position through motion-aware layer norms (:class:`MLN`) and a time embedding. The first
``num_propagated`` entries join the ``num_query`` learnable 3D reference points as queries; the rest are extra
keys of the self-attention. Denoising groups (noised ground-truth centres) speed up training.

The image tokens' 3D position embedding is a module (``position_embedding``): PETR's camera frustum
(:class:`FrustumPositionEmbedding`, StreamPETR) or OPEN's object-wise one
(:class:`perception.models.detectors.open.ObjectWisePositionEmbedding`).

Memory frames: the official code keeps the queue in the global frame; here it is kept in the previous LiDAR
frame and moved by ``inv(lidar2global_t) @ lidar2global_{t-1}`` computed in float64 (the same motion, without
float32 round-off on ~1e3 m global coordinates).
"""
import math
from typing import Dict, List, Optional, Sequence, Tuple

import torch
from mmdet.models.layers.transformer import inverse_sigmoid
from mmdet.utils import reduce_mean
from mmengine.model import BaseModule, bias_init_with_prob
from mmengine.structures import InstanceData
from torch import Tensor, nn

from perception.models.dense_heads.detr3d_losses import DETR3DLossMixin
from perception.models.layers.object_depth_encoder import pixel_centres
from perception.models.layers.petr_temporal_decoder import PETRTemporalDecoder
from perception.models.layers.position_embedding_3d import (MLN, lift_points, mlp, nerf_positional_encoding,
                                                            normalize_points, pos2posemb1d, pos2posemb3d)
from perception.registry import MODELS, TASK_UTILS


@MODELS.register_module()
class FrustumPositionEmbedding(nn.Module):
    """PETR's 3D position embedding: every token lifted at ``num_depths`` linear-increasing depths in
    [depth_start, position_range max x] through ``inv(lidar2img)``, normalised, ``inverse_sigmoid``, an MLP.

    Args:
        embed_dims: channels.
        num_depths: depths per token (64).
        depth_start: nearest depth, metres.
        position_range: (x_min, y_min, z_min, x_max, y_max, z_max), metres.
    """

    def __init__(self, embed_dims: int = 256, num_depths: int = 64, depth_start: float = 1.0,
                 position_range: Sequence[float] = (-61.2, -61.2, -10.0, 61.2, 61.2, 10.0)) -> None:
        super().__init__()
        self.position_range = tuple(position_range)
        index = torch.arange(num_depths, dtype=torch.float32)
        bin_size = (position_range[3] - depth_start) / (num_depths * (1 + num_depths))
        self.register_buffer('depths', depth_start + bin_size * index * (index + 1), persistent=False)
        self.encoder = mlp(num_depths * 3, embed_dims * 4, embed_dims)

    def forward(self, lidar2img: Tensor, image_size: Tuple[int, int], feat_size: Tuple[int, int],
                **kwargs) -> Tensor:
        """``lidar2img`` (N, 4, 4) -> (N, h * w, C) embeddings of the N views' tokens."""
        n = len(lidar2img)
        h, w = feat_size
        uv = pixel_centres(h, w, image_size[0] / h, image_size[1] / w, lidar2img.device)
        num_depths = len(self.depths)
        uv = uv[:, None].expand(-1, num_depths, -1).flatten(0, 1)[None].expand(n, -1, -1)
        depth = self.depths.repeat(h * w)[None].expand(n, -1)
        points = normalize_points(lift_points(uv, depth, torch.linalg.inv(lidar2img)), self.position_range)
        points = inverse_sigmoid(points.view(n, h * w, num_depths * 3))
        return self.encoder(points)


@MODELS.register_module()
class StreamPETRHead(DETR3DLossMixin, BaseModule):
    """Temporal 3D DETR head with a memory queue (see the module docstring); matching, losses and decoding
    from :class:`DETR3DLossMixin`.

    Args:
        num_classes: classes.
        in_channels: image feature channels.
        embed_dims: transformer channels.
        num_query: learnable reference points (644).
        memory_len: memory entries (1024).
        topk_proposals: queries written to the memory per frame (256).
        num_propagated: memory entries used as queries (256).
        with_ego_pos: condition queries and memory on the ego motion (MLN).
        scalar, noise_scale, split: denoising groups, centre noise (in half box sizes) and the noise norm above
            which a noised box is a negative; ``scalar=0`` disables denoising.
        dn_weight: weight of the denoising losses.
        pc_range: (x_min, y_min, z_min, x_max, y_max, z_max) of the reference points, metres.
        position_embedding: the image tokens' position embedding module.
        decoder: keyword arguments of :class:`PETRTemporalDecoder`.
        num_reg_fcs: hidden layers of the classification and regression branches (shared by the layers).
        code_weights: weights of the 10 box codes in the L1 loss.
        bbox_coder: :class:`NMSFreeBBoxCoder` config.
        assigner: Hungarian assigner config (costs read ``scores`` and ``codes``).
        loss_cls: classification loss (``DepthFocalLoss`` with soft targets, or a focal loss with
            ``soft_targets=False``).
        soft_targets: OPEN's localisation-quality targets (see :meth:`soft_scores`); False: targets of 1.
        query_inverse_sigmoid: embed the learnable queries' reference points through ``inverse_sigmoid`` (OPEN's
            head; StreamPETR embeds the [0, 1] points, as it does the memory's in both).
        loss_bbox: L1 loss of the box codes.
        init_cfg: mmengine initialisation config.
    """

    def __init__(self,
                 num_classes: int = 10,
                 in_channels: int = 256,
                 embed_dims: int = 256,
                 num_query: int = 644,
                 memory_len: int = 1024,
                 topk_proposals: int = 256,
                 num_propagated: int = 256,
                 with_ego_pos: bool = True,
                 scalar: int = 10,
                 noise_scale: float = 1.0,
                 split: float = 0.75,
                 dn_weight: float = 1.0,
                 pc_range: Sequence[float] = (-51.2, -51.2, -5.0, 51.2, 51.2, 3.0),
                 position_embedding: dict = dict(type='FrustumPositionEmbedding'),
                 decoder: dict = dict(num_layers=6, num_heads=8, feedforward_channels=2048, dropout=0.1),
                 num_reg_fcs: int = 2,
                 code_weights: Sequence[float] = (2.0, 2.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0),
                 bbox_coder: dict = dict(type='NMSFreeBBoxCoder', post_center_range=(-61.2, -61.2, -10.0, 61.2,
                                                                                     61.2, 10.0), max_num=300),
                 assigner: dict = dict(type='GroupHungarianAssigner', match_costs=[
                     dict(type='mmdet.FocalLossCost', weight=2.0),
                     dict(type='InstanceL1Cost', key='codes', weight=0.25)]),
                 loss_cls: dict = dict(type='DepthFocalLoss', gamma=2.0, alpha=0.25, loss_weight=2.0),
                 soft_targets: bool = True,
                 query_inverse_sigmoid: bool = False,
                 loss_bbox: dict = dict(type='mmdet.L1Loss', loss_weight=0.25),
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        if num_propagated > memory_len or topk_proposals > num_query + num_propagated:
            raise ValueError(f'num_propagated {num_propagated} must be <= memory_len {memory_len} and '
                             f'topk_proposals {topk_proposals} <= num_query + num_propagated')
        self.num_classes, self.embed_dims = num_classes, embed_dims
        self.num_query, self.memory_len = num_query, memory_len
        self.topk_proposals, self.num_propagated = topk_proposals, num_propagated
        self.with_ego_pos = with_ego_pos
        self.scalar, self.noise_scale, self.split, self.dn_weight = scalar, noise_scale, split, dn_weight
        self.pc_range = tuple(pc_range)
        self.soft_targets = soft_targets
        self.query_inverse_sigmoid = query_inverse_sigmoid
        self.input_proj = nn.Sequential(nn.Conv2d(in_channels, embed_dims, 1), nn.ReLU(inplace=True),
                                        nn.Conv2d(embed_dims, embed_dims, 1))
        self.position_embedding = MODELS.build(dict(embed_dims=embed_dims, **position_embedding))
        self.decoder = PETRTemporalDecoder(embed_dims=embed_dims, **decoder)
        self.reference_points = nn.Embedding(num_query, 3)
        self.pseudo_reference_points = nn.Embedding(num_propagated, 3) if num_propagated else None
        self.query_embedding = mlp(3 * (embed_dims // 2), embed_dims, embed_dims)
        self.time_embedding = nn.Sequential(nn.Linear(embed_dims, embed_dims), nn.LayerNorm(embed_dims))
        if with_ego_pos:
            self.ego_pose_pe = MLN(180, embed_dims)
            self.ego_pose_memory = MLN(180, embed_dims)
        cls_layers, reg_layers = [], []
        for _ in range(num_reg_fcs):
            cls_layers += [nn.Linear(embed_dims, embed_dims), nn.LayerNorm(embed_dims), nn.ReLU(inplace=True)]
            reg_layers += [nn.Linear(embed_dims, embed_dims), nn.ReLU()]
        self.cls_branch = nn.Sequential(*cls_layers, nn.Linear(embed_dims, num_classes))
        self.reg_branch = nn.Sequential(*reg_layers, nn.Linear(embed_dims, 10))
        self.register_buffer('code_weights', torch.tensor(code_weights, dtype=torch.float32), persistent=False)
        self.bbox_coder = TASK_UTILS.build(dict(num_classes=num_classes, **bbox_coder))
        self.assigner = TASK_UTILS.build(assigner)
        self.loss_cls = MODELS.build(loss_cls)
        self.loss_bbox = MODELS.build(loss_bbox)
        self.reset_memory()
        nn.init.uniform_(self.reference_points.weight, 0, 1)
        if self.pseudo_reference_points is not None:
            nn.init.uniform_(self.pseudo_reference_points.weight, 0, 1)
            self.pseudo_reference_points.weight.requires_grad = False
        nn.init.constant_(self.cls_branch[-1].bias, bias_init_with_prob(0.01))

    # ---- memory queue ----
    def reset_memory(self) -> None:
        self.memory = None
        self.prev_pose = self.prev_time = None

    def pre_update_memory(self, lidar2global: Tensor, timestamp: Tensor, prev_exists: Tensor) -> None:
        """Move the memory into the current LiDAR frame and age it; clear it where a run starts.

        Args:
            lidar2global: (B, 4, 4) float64 pose of the current LiDAR frame.
            timestamp: (B,) float64 seconds.
            prev_exists: (B,) bool, the memory holds this sample's previous frame.
        """
        batch, device = len(lidar2global), lidar2global.device
        if self.memory is None or self.memory['embedding'].shape[0] != batch:
            self.memory = dict(embedding=torch.zeros(batch, self.memory_len, self.embed_dims, device=device),
                               reference=torch.zeros(batch, self.memory_len, 3, device=device),
                               age=torch.zeros(batch, self.memory_len, 1, device=device),
                               egopose=torch.zeros(batch, self.memory_len, 4, 4, device=device),
                               velocity=torch.zeros(batch, self.memory_len, 2, device=device))
            keep = torch.zeros(batch, device=device)
        else:
            keep = prev_exists.to(device=device, dtype=torch.float32)
            motion = (torch.linalg.inv(lidar2global) @ self.prev_pose).float()
            motion = torch.where(keep[:, None, None] > 0, motion, torch.eye(4, device=device))
            dt = torch.where(keep > 0, (timestamp - self.prev_time).float(), 0.)
            self.memory['age'] = self.memory['age'] + dt[:, None, None]
            self.memory['egopose'] = motion[:, None] @ self.memory['egopose']
            self.memory['reference'] = (self.memory['reference'] @ motion[:, :3, :3].transpose(1, 2)
                                        + motion[:, None, :3, 3])
            for key, value in self.memory.items():
                self.memory[key] = value * keep.view(-1, *([1] * (value.dim() - 1)))
        if self.pseudo_reference_points is not None:
            # a cleared memory propagates fixed random points, at rest (identity pose)
            limits = self.memory['reference'].new_tensor(self.pc_range)
            pseudo = self.pseudo_reference_points.weight * (limits[3:] - limits[:3]) + limits[:3]
            reset = (1 - keep).view(-1, 1, 1)
            reference, egopose = self.memory['reference'].clone(), self.memory['egopose'].clone()
            reference[:, :self.num_propagated] += reset * pseudo
            egopose[:, :self.num_propagated] += reset[..., None] * torch.eye(4, device=device)
            self.memory['reference'], self.memory['egopose'] = reference, egopose
        self.prev_pose, self.prev_time = lidar2global, timestamp

    def post_update_memory(self, embedding: Tensor, cls_scores: Tensor, bbox_preds: Tensor) -> None:
        """Write the ``topk_proposals`` best queries of this frame (B, Q, ...) at the front of the memory; no
        gradient crosses frames."""
        scores = cls_scores.detach().sigmoid().amax(-1)
        index = scores.topk(self.topk_proposals, dim=1).indices
        gather = lambda x: torch.gather(x, 1, index[..., None].expand(-1, -1, x.shape[-1]))  # noqa: E731
        batch = len(embedding)
        new = dict(embedding=gather(embedding.detach()), reference=gather(bbox_preds[..., :3].detach()),
                   age=embedding.new_zeros(batch, self.topk_proposals, 1),
                   egopose=torch.eye(4, device=embedding.device).expand(batch, self.topk_proposals, 4, 4),
                   velocity=gather(bbox_preds[..., 8:10].detach()))
        self.memory = {key: torch.cat([new[key], self.memory[key].detach()], dim=1)[:, :self.memory_len]
                       for key in self.memory}

    def temporal_alignment(self, query_pos: Tensor, tgt: Tensor,
                           reference: Tensor) -> Tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
        """Condition the current queries and the memory on ego motion and time; the first ``num_propagated``
        memory entries become queries. Returns tgt, query_pos, reference (normalised), memory keys and their
        positions."""
        memory = self.memory
        temp_reference = normalize_points(memory['reference'], self.pc_range)
        temp_pos = self.query_embedding(pos2posemb3d(temp_reference, self.embed_dims // 2))
        temp_memory = memory['embedding']
        if self.with_ego_pos:
            identity = torch.eye(4, device=tgt.device)[:3].flatten().expand(*tgt.shape[:2], 12)
            motion = nerf_positional_encoding(torch.cat([tgt.new_zeros(*tgt.shape[:2], 3), identity], dim=-1))
            tgt = self.ego_pose_memory(tgt, motion)
            query_pos = self.ego_pose_pe(query_pos, motion)
            memory_motion = nerf_positional_encoding(
                torch.cat([memory['velocity'], memory['age'], memory['egopose'][..., :3, :].flatten(-2)], dim=-1))
            temp_pos = self.ego_pose_pe(temp_pos, memory_motion)
            temp_memory = self.ego_pose_memory(temp_memory, memory_motion)
        query_pos = query_pos + self.time_embedding(pos2posemb1d(tgt.new_zeros(*tgt.shape[:2], 1), self.embed_dims))
        temp_pos = temp_pos + self.time_embedding(pos2posemb1d(memory['age'], self.embed_dims))
        p = self.num_propagated
        tgt = torch.cat([tgt, temp_memory[:, :p]], dim=1)
        query_pos = torch.cat([query_pos, temp_pos[:, :p]], dim=1)
        reference = torch.cat([reference, temp_reference[:, :p]], dim=1)
        return tgt, query_pos, reference, temp_memory[:, p:], temp_pos[:, p:]

    # ---- denoising ----
    def prepare_for_dn(self, batch: int, reference: Tensor,
                       gt_instances: Optional[List[InstanceData]]) -> Tuple[Tensor, Optional[Tensor], Optional[dict]]:
        """Prepend ``scalar`` groups of noised ground-truth centres to the (B, Q, 3) normalised references; the
        mask (T, T) keeps the groups and the matching queries from seeing each other's answers (T = all
        queries, propagated ones included)."""
        reference = reference[None].expand(batch, -1, -1)
        num_queries = self.num_query + self.num_propagated
        if not self.training or not self.scalar or gt_instances is None:
            return reference, None, None
        boxes = [self.gravity_boxes(gt).to(reference.device) for gt in gt_instances]
        max_known = max(len(b) for b in boxes)
        if max_known == 0:
            return reference, None, None
        pad = self.scalar * max_known
        limits = reference.new_tensor(self.pc_range)
        dn_reference = reference.new_zeros(batch, pad, 3)
        labels = torch.full((batch, pad), -1, dtype=torch.long, device=reference.device)
        targets = reference.new_zeros(batch, pad, 9)
        for b, (box, gt) in enumerate(zip(boxes, gt_instances)):
            n = len(box)
            if n == 0:
                continue
            box = box.repeat(self.scalar, 1)
            noise = torch.rand_like(box[:, :3]) * 2 - 1
            centre = box[:, :3] + noise * box[:, 3:6] / 2 * self.noise_scale
            slots = (torch.arange(self.scalar, device=box.device)[:, None] * max_known +
                     torch.arange(n, device=box.device)).flatten()
            dn_reference[b, slots] = ((centre - limits[:3]) / (limits[3:] - limits[:3])).clamp(0, 1)
            label = gt.labels_3d.to(box.device).repeat(self.scalar)
            label[noise.norm(dim=1) > self.split] = self.num_classes
            labels[b, slots] = label
            targets[b, slots] = box
        size = pad + num_queries
        mask = torch.zeros(size, size + self.memory_len - self.num_propagated, dtype=torch.bool,
                           device=reference.device)
        mask[pad:, :pad] = True
        for g in range(self.scalar):
            rows = slice(g * max_known, (g + 1) * max_known)
            mask[rows, :g * max_known] = True
            mask[rows, (g + 1) * max_known:pad] = True
        return torch.cat([dn_reference, reference], dim=1), mask, dict(pad=pad, labels=labels, targets=targets)

    # ---- forward ----
    def forward(self, feats: Tensor, lidar2img: Tensor, image_size: Tuple[int, int], lidar2global: Tensor,
                timestamp: Tensor, prev_exists: Tensor, object_centers: Optional[Tensor] = None,
                object_depths: Optional[Tensor] = None,
                gt_instances: Optional[List[InstanceData]] = None) -> Dict[str, Tensor]:
        """
        Args:
            feats: (B, V, C, h, w) image features.
            lidar2img: (B, V, 4, 4) projections to the input pixels.
            image_size: (H, W) of the (padded) input.
            lidar2global: (B, 4, 4) float64; timestamp: (B,) float64 seconds; prev_exists: (B,) bool.
            object_centers, object_depths: (B * V, h * w, 2) pixels and (B * V, h * w) metres, the predicted
                object centre of each token (OPEN's object-wise position embedding; unused by the frustum one).
            gt_instances: 3D ground truth, for the denoising queries (training).

        Returns:
            ``all_cls_scores`` (L, B, Q, K), ``all_bbox_preds`` (L, B, Q, 10) with metric centres, for the
            matching queries (Q = num_query + num_propagated), and the denoising outputs ``dn_cls_scores``,
            ``dn_bbox_preds``, ``dn_meta`` when training with denoising.
        """
        batch, views, _, h, w = feats.shape
        memory = self.input_proj(feats.flatten(0, 1)).flatten(2).transpose(1, 2).reshape(batch, -1, self.embed_dims)
        pos = self.position_embedding(lidar2img=lidar2img.flatten(0, 1), image_size=image_size, feat_size=(h, w),
                                      object_centers=object_centers, object_depths=object_depths)
        pos = pos.reshape(batch, -1, self.embed_dims)
        self.pre_update_memory(lidar2global, timestamp, prev_exists)
        reference, attn_mask, dn_meta = self.prepare_for_dn(batch, self.reference_points.weight, gt_instances)
        query_pos = self.query_embedding(pos2posemb3d(inverse_sigmoid(reference) if self.query_inverse_sigmoid
                                                      else reference, self.embed_dims // 2))
        tgt = torch.zeros_like(query_pos)
        tgt, query_pos, reference, temp_memory, temp_pos = self.temporal_alignment(query_pos, tgt, reference)
        outs = self.decoder(tgt, query_pos, memory, pos, temp_memory, temp_pos, attn_mask)
        limits = reference.new_tensor(self.pc_range)
        cls_scores = self.cls_branch(outs)
        deltas = self.reg_branch(outs)
        centres = (deltas[..., :3] + inverse_sigmoid(reference)).sigmoid() * (limits[3:] - limits[:3]) + limits[:3]
        bbox_preds = torch.cat([centres, deltas[..., 3:]], dim=-1)
        pad = dn_meta['pad'] if dn_meta else 0
        self.post_update_memory(outs[-1][:, pad:], cls_scores[-1][:, pad:], bbox_preds[-1][:, pad:])
        result = dict(all_cls_scores=cls_scores[:, :, pad:], all_bbox_preds=bbox_preds[:, :, pad:])
        if dn_meta:
            result.update(dn_cls_scores=cls_scores[:, :, :pad], dn_bbox_preds=bbox_preds[:, :, :pad], dn_meta=dn_meta)
        return result

    # ---- losses (the rest in DETR3DLossMixin) ----
    def loss_dn_single(self, cls_scores: Tensor, bbox_preds: Tensor, dn_meta: dict) -> Tuple[Tensor, Tensor]:
        """Denoising losses of one layer, as the official head: every noised query regresses its object's box;
        the positive ones (noise norm <= split) classify it, with OPEN's soft score as target. The classification
        is averaged over the expected number of positives, ``num * pi / 6 * split^3`` (the fraction of the noise
        cube inside the ball of radius ``split``), the boxes over all noised queries."""
        labels = dn_meta['labels']
        valid = labels >= 0
        positive = valid & (labels < self.num_classes)
        num = cls_scores.new_tensor(float(valid.sum()))
        boxes = dn_meta['targets'][valid]
        codes = self.bbox_coder.encode(boxes)
        pred_codes = bbox_preds[valid]
        soft = self.soft_scores(pred_codes, codes) if self.soft_targets else torch.ones_like(num).expand(len(codes))
        target = torch.zeros_like(cls_scores[valid])
        pos = positive[valid]
        target[pos, labels[valid][pos]] = soft[pos]
        cls_avg = reduce_mean(num * math.pi / 6 * self.split ** 3).clamp(min=1)
        loss_cls = self.loss_cls(cls_scores[valid], target, avg_factor=cls_avg)
        return loss_cls, self.loss_box_codes(pred_codes, codes, reduce_mean(num).clamp(min=1))
