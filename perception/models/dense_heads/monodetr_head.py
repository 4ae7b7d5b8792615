"""MonoDETR's prediction head (Zhang et al., "MonoDETR: Depth-guided Transformer for Monocular 3D Object
Detection", ICCV 2023), one set of branches per decoder layer:

- class logits (sigmoid focal loss);
- the 6-D box ``(x, y, l, r, t, b)``: projected 3D centre and distances to the 2D box sides, normalised by
  the input size, refined from the layer's reference box in logit space;
- the 3D size ``(l, h, w)`` in metres (dimension-aware L1);
- the heading as 12 MultiBin bins + residuals of the observation angle ``alpha = ry - atan2(x, z)``;
- the depth, fused from three estimates, with a log-variance ``s`` (Laplacian loss):
  ``d_reg = 1 / (sigmoid(o) + 1e-6) - 1``, ``d_geo = f * H_3D / h_2D`` and ``d_map``, the weighted depth
  map sampled at the projected centre; ``d = (d_reg + d_geo + d_map) / 3``.

The parametrisation (normalised coordinates, targets, decoding into camera-frame boxes) is the box
coder's, :class:`perception.models.task_modules.MonoDETRBBoxCoder`. The official code samples ``d_map``
with ``align_corners=True``, off by up to half a stride-16 cell.
"""
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn.functional as F
from mmdet.models.layers.transformer import MLP
from mmdet.utils import reduce_mean
from mmengine.model import BaseModule, bias_init_with_prob
from mmengine.structures import InstanceData
from torch import Tensor, nn

from perception.models.layers import refine_reference_boxes
from perception.models.task_modules import boxes6d_to_xyxy
from perception.registry import MODELS, TASK_UTILS
from perception.structures import cam2img_to_4x4


def geometric_depth(height_3d: Tensor, box_height: Tensor, focal: Tensor, min_box_height: float = 1.) -> Tensor:
    """Pinhole depth of an object from its 3D and 2D heights: ``f * H_3D / h_2D``.

    Args:
        height_3d: (...) 3D heights, metres.
        box_height: (...) 2D box heights, pixels (clamped to at least ``min_box_height``).
        focal: (...) vertical focal lengths, pixels (broadcast).

    Returns:
        (...) depths, metres.
    """
    return focal * height_3d / box_height.clamp(min=min_box_height)


def sample_depth_map(depth_map: Tensor, centers: Tensor) -> Tensor:
    """Bilinear samples of a depth map at normalised points.

    Args:
        depth_map: (B, H, W) metres.
        centers: (B, Q, 2) normalised (x, y), 0 and 1 at the image edges.

    Returns:
        (B, Q) metres.
    """
    grid = (centers * 2 - 1).unsqueeze(2)
    return F.grid_sample(depth_map.unsqueeze(1), grid, mode='bilinear', align_corners=False)[:, 0, :, 0]


def fuse_depth(depth_reg: Tensor, depth_geo: Tensor, depth_map: Tensor) -> Tensor:
    """MonoDETR's depth: the mean of the regressed, geometric and depth-map estimates."""
    return (depth_reg + depth_geo + depth_map) / 3


@MODELS.register_module()
class MonoDETRHead(BaseModule):
    """Per-layer prediction branches, losses with Group-DETR matching, and decoding.

    Args:
        num_classes: object classes.
        embed_dims: channels of the decoder's hidden states.
        num_pred_layers: decoder layers (one set of branches each).
        num_heading_bins: MultiBin bins K (the angle branch has 2K outputs).
        bbox_coder: the box coder that makes the targets and decodes the predictions
            (:class:`MonoDETRBBoxCoder`, with as many heading bins).
        loss_cls: classification loss (sigmoid, background = ``num_classes``).
        loss_center: L1 loss of the normalised projected centre.
        loss_bbox: L1 loss of the normalised 2D box sides (l, r, t, b).
        loss_iou: IoU loss of the 2D boxes.
        loss_dim: 3D size loss.
        loss_angle: heading loss on the observation angle.
        loss_depth: depth loss taking (depth, target, log_variance).
        loss_depth_map: depth-map loss taking (logits, boxes in map cells, depths).
        train_cfg: ``assigner`` config.
        test_cfg: ``max_per_img`` (top-k over queries x classes), ``score_thr`` (on the class
            probability), ``depth_score`` (multiply the kept scores by the depth confidence
            ``exp(-s)``, as the official decoder).
        init_cfg: mmengine initialisation config.
    """

    def __init__(self,
                 num_classes: int = 3,
                 embed_dims: int = 256,
                 num_pred_layers: int = 3,
                 num_heading_bins: int = 12,
                 bbox_coder: dict = dict(type='MonoDETRBBoxCoder', num_heading_bins=12),
                 loss_cls: dict = dict(type='mmdet.FocalLoss', use_sigmoid=True, gamma=2.0, alpha=0.25,
                                       loss_weight=2.0),
                 loss_center: dict = dict(type='mmdet.L1Loss', loss_weight=10.0),
                 loss_bbox: dict = dict(type='mmdet.L1Loss', loss_weight=5.0),
                 loss_iou: dict = dict(type='mmdet.GIoULoss', loss_weight=2.0),
                 loss_dim: dict = dict(type='DimAwareL1Loss', loss_weight=1.0),
                 loss_angle: dict = dict(type='MultiBinLoss', num_bins=12, loss_weight=1.0),
                 loss_depth: dict = dict(type='LaplacianDepthLoss', loss_weight=1.0),
                 loss_depth_map: dict = dict(type='DDNLoss', loss_weight=1.0),
                 train_cfg: dict = dict(assigner=dict(
                     type='GroupHungarianAssigner',
                     match_costs=[
                         dict(type='mmdet.FocalLossCost', weight=2.0),
                         dict(type='InstanceL1Cost', key='lrtb', weight=5.0),
                         dict(type='mmdet.IoUCost', iou_mode='giou', weight=2.0),
                         dict(type='InstanceL1Cost', key='centers_2d', weight=10.0),
                     ])),
                 test_cfg: dict = dict(max_per_img=50, score_thr=0.2, depth_score=True),
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg)
        self.num_classes = num_classes
        self.num_heading_bins = num_heading_bins
        self.num_pred_layers = num_pred_layers
        self.train_cfg = train_cfg
        self.test_cfg = test_cfg
        self.bbox_coder = TASK_UTILS.build(bbox_coder)
        if self.bbox_coder.num_heading_bins != num_heading_bins:
            raise ValueError(f'the head has {num_heading_bins} heading bins, its bbox_coder '
                             f'{self.bbox_coder.num_heading_bins}')
        self.assigner = TASK_UTILS.build(train_cfg['assigner'])
        self.loss_cls = MODELS.build(loss_cls)
        self.loss_center = MODELS.build(loss_center)
        self.loss_bbox = MODELS.build(loss_bbox)
        self.loss_iou = MODELS.build(loss_iou)
        self.loss_dim = MODELS.build(loss_dim)
        self.loss_angle = MODELS.build(loss_angle)
        self.loss_depth = MODELS.build(loss_depth)
        self.loss_depth_map = MODELS.build(loss_depth_map)

        def branches(make) -> nn.ModuleList:
            return nn.ModuleList([make() for _ in range(num_pred_layers)])

        self.cls_branches = branches(lambda: nn.Linear(embed_dims, num_classes))
        self.reg_branches = branches(lambda: MLP(embed_dims, embed_dims, 6, 3))
        self.dim_branches = branches(lambda: MLP(embed_dims, embed_dims, 3, 2))
        self.angle_branches = branches(lambda: MLP(embed_dims, embed_dims, 2 * num_heading_bins, 2))
        self.depth_branches = branches(lambda: MLP(embed_dims, embed_dims, 2, 2))

    def init_weights(self) -> None:
        """Class bias at prior 0.01; the first layer's box sides start small (sigmoid(-2) = 0.12), as the
        official head; later layers refine from their reference."""
        super().init_weights()
        for branch in self.cls_branches:
            nn.init.constant_(branch.bias, bias_init_with_prob(0.01))
        nn.init.constant_(self.reg_branches[0].layers[-1].bias.data[2:], -2.0)

    # ------------------------------------------------------------------ forward

    def predict_depth(self, layer: int, hidden: Tensor, boxes: Tensor, dims: Tensor, weighted_depth: Tensor,
                      focal: Tensor, img_height: int) -> Tensor:
        """Depth and log-variance of each query (the method-specific part: MonoDGP overrides it).

        Args:
            layer: decoder layer index.
            hidden: (B, Q, C) hidden states.
            boxes: (B, Q, 6) normalised boxes.
            dims: (B, Q, 3) sizes (l, h, w), metres.
            weighted_depth: (B, H_d, W_d) depth map, metres.
            focal: (B,) vertical focal lengths of the input images, pixels.
            img_height: input height, pixels.

        Returns:
            (B, Q, 2): fused depth (metres) and log-variance.
        """
        out = self.depth_branches[layer](hidden)
        depth_geo = geometric_depth(dims[..., 1], self.bbox_coder.box_heights(boxes, img_height), focal[:, None])
        depth_map = sample_depth_map(weighted_depth, boxes[..., :2].detach())
        depth = fuse_depth(self.bbox_coder.decode_depth(out[..., 0]), depth_geo, depth_map)
        return torch.stack([depth, out[..., 1]], dim=-1)

    def forward(self, hidden_states: Tensor, references: Sequence[Tensor], weighted_depth: Tensor,
                focal: Tensor, img_size: Tuple[int, int]) -> Dict[str, Tensor]:
        """
        Args:
            hidden_states: (L, B, Q, C) decoder outputs.
            references: L tensors (B, Q, 2 | 6), the reference each layer attended around.
            weighted_depth: (B, H_d, W_d) depth map of the depth predictor, metres.
            focal: (B,) vertical focal lengths of the input images, pixels.
            img_size: (H, W) of the input tensor, pixels.

        Returns:
            Per-layer predictions: ``cls_scores`` (L, B, Q, num_classes) logits, ``boxes`` (L, B, Q, 6)
            normalised, ``dims`` (L, B, Q, 3) metres, ``angles`` (L, B, Q, 2K), ``depths`` (L, B, Q, 2).
        """
        outputs = dict(cls_scores=[], boxes=[], dims=[], angles=[], depths=[])
        for layer, (hidden, reference) in enumerate(zip(hidden_states, references)):
            boxes = refine_reference_boxes(reference, self.reg_branches[layer](hidden))
            dims = self.dim_branches[layer](hidden)
            outputs['cls_scores'].append(self.cls_branches[layer](hidden))
            outputs['boxes'].append(boxes)
            outputs['dims'].append(dims)
            outputs['angles'].append(self.angle_branches[layer](hidden))
            outputs['depths'].append(
                self.predict_depth(layer, hidden, boxes, dims, weighted_depth, focal, img_size[0]))
        return {key: torch.stack(value) for key, value in outputs.items()}

    # ------------------------------------------------------------------ targets and losses

    @staticmethod
    def focal_lengths(batch_img_metas: Sequence[dict], like: Tensor) -> Tensor:
        """(B,) vertical focal length ``cam2img[1, 1]`` of each input image, pixels (KITTI's ``f_u`` and
        ``f_v`` are equal; the official code reads ``f_u``)."""
        return like.new_tensor([float(np.asarray(meta['cam2img'])[1, 1]) for meta in batch_img_metas])

    def loss(self, hidden_states: Tensor, references: Sequence[Tensor], weighted_depth: Tensor,
             depth_logits: Tensor, batch_data_samples: Sequence, img_size: Tuple[int, int],
             num_groups: int = 1) -> Dict[str, Tensor]:
        """Forward and losses; arguments as :meth:`forward` and :meth:`loss_by_feat`."""
        batch_img_metas = [sample.metainfo for sample in batch_data_samples]
        outputs = self(hidden_states, references, weighted_depth, self.focal_lengths(batch_img_metas,
                                                                                     weighted_depth), img_size)
        return self.loss_by_feat(outputs, depth_logits, self.get_targets(batch_data_samples, img_size), img_size,
                                 num_groups)

    def get_targets(self, batch_data_samples: Sequence, img_size: Tuple[int, int]) -> List[InstanceData]:
        """Per image, the targets that :meth:`MonoDETRBBoxCoder.encode` makes of ``gt_instances_3d`` and
        ``gt_instances``."""
        return [
            self.bbox_coder.encode(sample.gt_instances_3d, sample.gt_instances, img_size)
            for sample in batch_data_samples
        ]

    def loss_by_feat(self, outputs: Dict[str, Tensor], depth_logits: Tensor, batch_gt: List[InstanceData],
                     img_size: Tuple[int, int], num_groups: int = 1) -> Dict[str, Tensor]:
        """Losses of every decoder layer (the last one unprefixed, earlier ones ``d{i}.``) and of the
        depth map.

        Args:
            outputs: as returned by :meth:`forward`.
            depth_logits: (B, N + 1, H_d, W_d) depth-map logits.
            batch_gt: per image, the targets of :meth:`MonoDETRBBoxCoder.encode`.
            img_size: (H, W) of the input tensor.
            num_groups: query groups G; each object is matched once per group.
        """
        num_objects = sum(len(gt) for gt in batch_gt) * num_groups
        avg_factor = reduce_mean(depth_logits.new_tensor(num_objects)).clamp(min=1).item()
        losses = {}
        for layer in range(self.num_pred_layers):
            layer_outputs = {key: value[layer] for key, value in outputs.items()}
            prefix = '' if layer == self.num_pred_layers - 1 else f'd{layer}.'
            for name, value in self.loss_by_layer(layer_outputs, batch_gt, avg_factor, num_groups).items():
                losses[prefix + name] = value

        map_height, map_width = depth_logits.shape[-2:]
        cell_scale = depth_logits.new_tensor([map_width / img_size[1], map_height / img_size[0]]).repeat(2)
        losses['loss_depth_map'] = self.loss_depth_map(
            depth_logits, [(gt.pixel_bboxes + 0.5) * cell_scale for gt in batch_gt], [gt.depths for gt in batch_gt])
        return losses

    def loss_by_layer(self, outputs: Dict[str, Tensor], batch_gt: List[InstanceData], avg_factor: float,
                      num_groups: int) -> Dict[str, Tensor]:
        """Match the queries of one layer to the objects and compute its losses.

        Args:
            outputs: one layer of :meth:`forward`'s outputs, (B, Q, ...) each; with only
                ``cls_scores`` and ``boxes`` (a 2D decoder's layer) only the 2D losses are computed.
            batch_gt: per image targets.
            avg_factor: number of matches over the batch (objects x groups), the loss divisor.
            num_groups: query groups.
        """
        cls_scores, boxes = outputs['cls_scores'], outputs['boxes']
        batch_size, num_queries = cls_scores.shape[:2]
        labels = cls_scores.new_full((batch_size, num_queries), self.num_classes, dtype=torch.long)
        batch_index, query_index, gt_index = [], [], []
        for image, gt in enumerate(batch_gt):
            with torch.no_grad():
                preds = InstanceData(scores=cls_scores[image], centers_2d=boxes[image, :, :2],
                                     lrtb=boxes[image, :, 2:], bboxes=boxes6d_to_xyxy(boxes[image]))
                assign = self.assigner.assign(preds, gt, num_groups=num_groups)
            matched = torch.nonzero(assign.gt_inds > 0).squeeze(1)
            batch_index.append(torch.full_like(matched, image))
            query_index.append(matched)
            gt_index.append(assign.gt_inds[matched] - 1)
            labels[image, matched] = gt.labels[gt_index[-1]]

        batch_index, query_index = torch.cat(batch_index), torch.cat(query_index)

        def gather(key: str) -> Tensor:
            return torch.cat([getattr(gt, key)[index] for gt, index in zip(batch_gt, gt_index)])

        pred_boxes = boxes[batch_index, query_index]
        losses = dict(
            loss_cls=self.loss_cls(cls_scores.flatten(0, 1), labels.flatten(), avg_factor=avg_factor),
            loss_center=self.loss_center(pred_boxes[:, :2], gather('centers_2d'), avg_factor=avg_factor),
            loss_bbox=self.loss_bbox(pred_boxes[:, 2:], gather('lrtb'), avg_factor=avg_factor),
            loss_iou=self.loss_iou(boxes6d_to_xyxy(pred_boxes), gather('bboxes'), avg_factor=avg_factor))
        if 'depths' not in outputs:
            return losses
        depths = outputs['depths'][batch_index, query_index]
        losses.update(
            loss_depth=self.loss_depth(depths[:, 0], gather('depths'), log_variance=depths[:, 1],
                                       avg_factor=avg_factor),
            loss_dim=self.loss_dim(outputs['dims'][batch_index, query_index], gather('dims'),
                                   avg_factor=avg_factor),
            loss_angle=self.loss_angle(outputs['angles'][batch_index, query_index], gather('alphas'),
                                       avg_factor=avg_factor))
        return losses

    # ------------------------------------------------------------------ inference

    def predict(self, hidden_states: Tensor, references: Sequence[Tensor], weighted_depth: Tensor,
                batch_data_samples: Sequence,
                img_size: Tuple[int, int]) -> Tuple[List[InstanceData], List[InstanceData]]:
        """Forward and decoding of the last layer; see :meth:`predict_by_feat`."""
        batch_img_metas = [sample.metainfo for sample in batch_data_samples]
        outputs = self(hidden_states, references, weighted_depth, self.focal_lengths(batch_img_metas, weighted_depth),
                       img_size)
        return self.predict_by_feat({key: value[-1] for key, value in outputs.items()}, batch_img_metas, img_size)

    def predict_by_feat(self, outputs: Dict[str, Tensor], batch_img_metas: Sequence[dict],
                        img_size: Tuple[int, int]) -> Tuple[List[InstanceData], List[InstanceData]]:
        """Top-k decoding into camera-frame 3D boxes.

        Args:
            outputs: one layer of :meth:`forward`'s outputs, (B, Q, ...) each.
            batch_img_metas: ``cam2img`` of the input image (after the test pipeline) and, optionally,
                ``img_aug_matrix`` (original pixels to input pixels) for the 2D boxes.
            img_size: (H, W) of the input tensor.

        Returns:
            Per image, the 3D results (``bboxes_3d`` CameraInstance3DBoxes in the camera frame of the
            original image, ``scores_3d``, ``labels_3d``) and the 2D ones (``bboxes`` in original image
            pixels, ``scores``, ``labels``).
        """
        results_3d, results_2d = [], []
        for image, meta in enumerate(batch_img_metas):
            prob = outputs['cls_scores'][image].sigmoid()
            k = min(self.test_cfg.get('max_per_img', 50), prob.numel())
            scores, index = prob.flatten().topk(k)
            query, labels = index // self.num_classes, index % self.num_classes
            keep = scores >= self.test_cfg.get('score_thr', 0.)
            scores, query, labels = scores[keep], query[keep], labels[keep]
            depth, log_variance = outputs['depths'][image, query].unbind(-1)
            if self.test_cfg.get('depth_score', True):
                scores = scores * (-log_variance).exp()

            boxes = outputs['boxes'][image, query]
            cam2img = cam2img_to_4x4(torch.as_tensor(np.asarray(meta['cam2img']), dtype=torch.float64)).to(boxes)
            img_aug_matrix = None
            if 'img_aug_matrix' in meta:
                img_aug_matrix = torch.as_tensor(np.asarray(meta['img_aug_matrix']), dtype=torch.float64,
                                                 device=boxes.device)
            bboxes_3d, bboxes_2d = self.bbox_coder.decode(boxes, depth, outputs['dims'][image, query],
                                                          outputs['angles'][image, query], cam2img, img_size,
                                                          img_aug_matrix)
            results_3d.append(InstanceData(bboxes_3d=bboxes_3d, scores_3d=scores, labels_3d=labels))
            results_2d.append(InstanceData(bboxes=bboxes_2d, scores=scores, labels=labels))
        return results_3d, results_2d
