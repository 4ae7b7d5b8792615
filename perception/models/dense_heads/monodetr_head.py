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
coder's, :class:`perception.models.task_modules.MonoDETRBBoxCoder`.

Where the official code differs, the head follows it only when asked (the official-behaviour configs,
``configs/monodetr/monodetr_r50_official_kitti.py``), since the default is exact under the resize of the
test pipeline: the official code samples ``d_map`` with ``align_corners=True``, off by up to half a
stride-16 cell (``depth_map_align_corners``); it computes ``d_geo`` with ``f_u`` of the unadjusted
``P2`` and the box height in rows of the original image, while the input is the image scaled by
1280 / 1242 and cropped to 384 rows, which makes its ``d_geo`` about 0.6 % too large on KITTI
(``geo_depth_camera='original'``); and it decodes in the original image's pixels without undoing the
crop (``test_cfg.official_decoding``, see :meth:`MonoDETRBBoxCoder.decode_official`).
"""
from typing import Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
import torch.nn.functional as F
from mmdet.models.layers.transformer import MLP
from mmdet.models.task_modules import AssignResult
from mmdet.utils import reduce_mean
from mmengine.model import BaseModule, bias_init_with_prob
from mmengine.structures import InstanceData
from torch import Tensor, nn

from perception.models.layers import refine_reference_boxes
from perception.models.task_modules import boxes6d_to_xyxy
from perception.registry import MODELS, TASK_UTILS
from perception.structures import cam2img_to_4x4, wrap_angle


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


def sample_depth_map(depth_map: Tensor, centers: Tensor, align_corners: bool = False) -> Tensor:
    """Bilinear samples of a depth map at normalised points.

    Args:
        depth_map: (B, H, W) metres.
        centers: (B, Q, 2) normalised (x, y), 0 and 1 at the image edges.
        align_corners: read 0 and 1 as the centres of the border cells instead (the official code).

    Returns:
        (B, Q) metres.
    """
    grid = (centers * 2 - 1).unsqueeze(2)
    return F.grid_sample(depth_map.unsqueeze(1), grid, mode='bilinear', align_corners=align_corners)[:, 0, :, 0]


def box_ray_alpha(yaws: Tensor, bboxes: Tensor, cam2img: np.ndarray) -> Tensor:
    """Observation angle ``ry - atan2(u - c_u, f_u)`` of the ray through each 2D box centre ``u``, in
    ``[-pi, pi)``: the official MonoDETR target, which the ray through the 3D centre defines exactly.

    Args:
        yaws: (N,) yaws ``ry``, radians.
        bboxes: (N, 4) 2D boxes x1, y1, x2, y2 in the pixels of ``cam2img`` (the ratio is the same in any
            image that a scaling and shifting of the original gives).
        cam2img: (3 | 4, 3 | 4) projection of the image.

    Returns:
        (N,) radians.
    """
    centers = (bboxes[:, 0].double() + bboxes[:, 2].double()) / 2
    rays = torch.atan2(centers - float(cam2img[0, 2]), torch.full_like(centers, float(cam2img[0, 0])))
    return wrap_angle(yaws.double() - rays).to(yaws.dtype)


def query_instances(cls_scores: Tensor, boxes: Tensor) -> InstanceData:
    """The fields that the match costs read of Q queries: ``scores`` (Q, num_classes) logits, normalised
    ``centers_2d`` (Q, 2), ``lrtb`` (Q, 4) and ``bboxes`` (Q, 4) xyxy of the boxes (Q, 6)."""
    return InstanceData(scores=cls_scores, centers_2d=boxes[:, :2], lrtb=boxes[:, 2:], bboxes=boxes6d_to_xyxy(boxes))


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
        geo_depth_camera: the camera of the geometric depth ``f * H_3D / h_2D``: ``'input'``, ``f_v`` of
            the input image's ``cam2img`` and box heights in input rows; ``'original'``, ``f_u`` of the
            original image's ``ori_cam2img`` and box heights in rows of the original image
            (``ori_shape``), as the official code, which keeps ``P2`` unchanged through the resize.
        depth_map_align_corners: sample the depth map with ``align_corners=True``, as the official code.
        train_cfg: ``assigner`` config, and ``heading_ray``, the ray whose observation angle is the
            heading target: through the 3D centre (``'center_3d'``, the default, which
            :func:`perception.structures.alpha_to_yaw` inverts exactly) or through the 2D box centre
            (``'box_2d'``, the official target, off by the angle between the two rays).
        test_cfg: ``max_per_img`` (top-k over queries x classes), ``score_thr`` (on the class
            probability), ``depth_score`` (multiply the kept scores by the depth confidence
            ``exp(-s)``, as the official decoder), ``official_decoding`` (decode as the official
            tester, :meth:`MonoDETRBBoxCoder.decode_official`).
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
                 geo_depth_camera: str = 'input',
                 depth_map_align_corners: bool = False,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg)
        if geo_depth_camera not in ('input', 'original'):
            raise ValueError(f"geo_depth_camera must be 'input' or 'original', got {geo_depth_camera!r}")
        self.geo_depth_camera = geo_depth_camera
        self.depth_map_align_corners = depth_map_align_corners
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
                      focal: Tensor, img_height: Union[int, Tensor]) -> Tensor:
        """Depth and log-variance of each query (the method-specific part: MonoDGP overrides it).

        Args:
            layer: decoder layer index.
            hidden: (B, Q, C) hidden states.
            boxes: (B, Q, 6) normalised boxes.
            dims: (B, Q, 3) sizes (l, h, w), metres.
            weighted_depth: (B, H_d, W_d) depth map, metres.
            focal: (B,) focal lengths of the geometric depth, pixels (:meth:`focal_lengths`).
            img_height: the image height that the normalised box heights are scaled by, pixels: an int or
                (B, 1) per image (:meth:`box_height_scales`).

        Returns:
            (B, Q, 2): fused depth (metres) and log-variance.
        """
        out = self.depth_branches[layer](hidden)
        depth_geo = geometric_depth(dims[..., 1], self.bbox_coder.box_heights(boxes, img_height), focal[:, None])
        depth_map = sample_depth_map(weighted_depth, boxes[..., :2].detach(), self.depth_map_align_corners)
        depth = fuse_depth(self.bbox_coder.decode_depth(out[..., 0]), depth_geo, depth_map)
        return torch.stack([depth, out[..., 1]], dim=-1)

    def forward(self, hidden_states: Tensor, references: Sequence[Tensor], weighted_depth: Tensor,
                focal: Tensor, img_size: Tuple[int, int], img_heights: Optional[Tensor] = None) -> Dict[str, Tensor]:
        """
        Args:
            hidden_states: (L, B, Q, C) decoder outputs.
            references: L tensors (B, Q, 2 | 6), the reference each layer attended around.
            weighted_depth: (B, H_d, W_d) depth map of the depth predictor, metres.
            focal: (B,) focal lengths of the geometric depth, pixels (:meth:`focal_lengths`).
            img_size: (H, W) of the input tensor, pixels.
            img_heights: (B,) image heights that scale the normalised box heights of the geometric depth
                (:meth:`box_height_scales`); None takes the input height.

        Returns:
            Per-layer predictions: ``cls_scores`` (L, B, Q, num_classes) logits, ``boxes`` (L, B, Q, 6)
            normalised, ``dims`` (L, B, Q, 3) metres, ``angles`` (L, B, Q, 2K), ``depths`` (L, B, Q, 2).
        """
        outputs = dict(cls_scores=[], boxes=[], dims=[], angles=[], depths=[])
        box_height_scale = img_size[0] if img_heights is None else img_heights[:, None]
        for layer, (hidden, reference) in enumerate(zip(hidden_states, references)):
            boxes = refine_reference_boxes(reference, self.reg_branches[layer](hidden))
            dims = self.dim_branches[layer](hidden)
            outputs['cls_scores'].append(self.cls_branches[layer](hidden))
            outputs['boxes'].append(boxes)
            outputs['dims'].append(dims)
            outputs['angles'].append(self.angle_branches[layer](hidden))
            outputs['depths'].append(
                self.predict_depth(layer, hidden, boxes, dims, weighted_depth, focal, box_height_scale))
        return {key: torch.stack(value) for key, value in outputs.items()}

    # ------------------------------------------------------------------ targets and losses

    def focal_lengths(self, batch_img_metas: Sequence[dict], like: Tensor) -> Tensor:
        """(B,) focal length of the geometric depth of each image, pixels: the vertical one of the input
        image's ``cam2img``, or with ``geo_depth_camera='original'`` the horizontal one of the original
        ``ori_cam2img``, as the official code (KITTI's ``f_u`` and ``f_v`` are equal)."""
        if self.geo_depth_camera == 'original':
            return like.new_tensor([float(np.asarray(meta['ori_cam2img'])[0, 0]) for meta in batch_img_metas])
        return like.new_tensor([float(np.asarray(meta['cam2img'])[1, 1]) for meta in batch_img_metas])

    def box_height_scales(self, batch_img_metas: Sequence[dict], like: Tensor, img_size: Tuple[int, int]) -> Tensor:
        """(B,) height that scales the normalised box heights of the geometric depth, pixels: the input
        height, or with ``geo_depth_camera='original'`` the original image's (``ori_shape``)."""
        if self.geo_depth_camera == 'original':
            return like.new_tensor([float(meta['ori_shape'][0]) for meta in batch_img_metas])
        return like.new_full((len(batch_img_metas), ), float(img_size[0]))

    def loss(self, hidden_states: Tensor, references: Sequence[Tensor], weighted_depth: Tensor,
             depth_logits: Tensor, batch_data_samples: Sequence, img_size: Tuple[int, int],
             num_groups: int = 1) -> Dict[str, Tensor]:
        """Forward and losses; arguments as :meth:`forward` and :meth:`loss_by_feat`."""
        batch_img_metas = [sample.metainfo for sample in batch_data_samples]
        outputs = self(hidden_states, references, weighted_depth, self.focal_lengths(batch_img_metas, weighted_depth),
                       img_size, self.box_height_scales(batch_img_metas, weighted_depth, img_size))
        return self.loss_by_feat(outputs, depth_logits, self.get_targets(batch_data_samples, img_size), img_size,
                                 num_groups)

    def get_targets(self, batch_data_samples: Sequence, img_size: Tuple[int, int]) -> List[InstanceData]:
        """Per image, the targets that :meth:`MonoDETRBBoxCoder.encode` makes of ``gt_instances_3d`` and
        ``gt_instances``, with the observation angles of ``train_cfg.heading_ray``."""
        heading_ray = self.train_cfg.get('heading_ray', 'center_3d')
        if heading_ray not in ('center_3d', 'box_2d'):
            raise ValueError(f"train_cfg.heading_ray must be 'center_3d' or 'box_2d', got {heading_ray!r}")
        batch_gt = []
        for sample in batch_data_samples:
            gt = self.bbox_coder.encode(sample.gt_instances_3d, sample.gt_instances, img_size)
            if heading_ray == 'box_2d':
                yaws = sample.gt_instances_3d.bboxes_3d.tensor[:, 6].to(gt.alphas)
                gt.alphas = box_ray_alpha(yaws, gt.pixel_bboxes, np.asarray(sample.metainfo['cam2img']))
            batch_gt.append(gt)
        return batch_gt

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
        for image, (gt, assign) in enumerate(zip(batch_gt, self.assign(cls_scores, boxes, batch_gt, num_groups))):
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

    @torch.no_grad()
    def assign(self, cls_scores: Tensor, boxes: Tensor, batch_gt: List[InstanceData],
               num_groups: int) -> List[AssignResult]:
        """Per image, the assignment of one layer's queries to the objects (each group matched on its own).

        Args:
            cls_scores: (B, G * Q, num_classes) logits.
            boxes: (B, G * Q, 6) normalised boxes.
            batch_gt: per image targets.
            num_groups: G.
        """
        return [
            self.assigner.assign(query_instances(scores, image_boxes), gt, num_groups=num_groups)
            for scores, image_boxes, gt in zip(cls_scores, boxes, batch_gt)
        ]

    # ------------------------------------------------------------------ inference

    def predict(self, hidden_states: Tensor, references: Sequence[Tensor], weighted_depth: Tensor,
                batch_data_samples: Sequence,
                img_size: Tuple[int, int]) -> Tuple[List[InstanceData], List[InstanceData]]:
        """Forward and decoding of the last layer; see :meth:`predict_by_feat`."""
        batch_img_metas = [sample.metainfo for sample in batch_data_samples]
        outputs = self(hidden_states, references, weighted_depth, self.focal_lengths(batch_img_metas, weighted_depth),
                       img_size, self.box_height_scales(batch_img_metas, weighted_depth, img_size))
        return self.predict_by_feat({key: value[-1] for key, value in outputs.items()}, batch_img_metas, img_size)

    def predict_by_feat(self, outputs: Dict[str, Tensor], batch_img_metas: Sequence[dict],
                        img_size: Tuple[int, int]) -> Tuple[List[InstanceData], List[InstanceData]]:
        """Top-k decoding into camera-frame 3D boxes.

        Args:
            outputs: one layer of :meth:`forward`'s outputs, (B, Q, ...) each.
            batch_img_metas: ``cam2img`` of the input image (after the test pipeline) and, optionally,
                ``img_aug_matrix`` (original pixels to input pixels) for the 2D boxes; with
                ``official_decoding``, ``ori_cam2img`` and ``ori_shape`` of the original image instead.
            img_size: (H, W) of the input tensor.

        Returns:
            Per image, the 3D results (``bboxes_3d`` CameraInstance3DBoxes in the camera frame of the
            original image, ``scores_3d``, ``labels_3d``; with ``official_decoding`` also ``alphas_3d``,
            the predicted observation angles, which the official result rows carry) and the 2D ones
            (``bboxes`` in original image pixels, ``scores``, ``labels``).
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

            boxes, dims, angles = (outputs[key][image, query] for key in ('boxes', 'dims', 'angles'))
            result_3d = InstanceData(scores_3d=scores, labels_3d=labels)
            if self.test_cfg.get('official_decoding', False):
                ori_cam2img = torch.as_tensor(np.asarray(meta['ori_cam2img']), dtype=torch.float64)
                result_3d.bboxes_3d, bboxes_2d, result_3d.alphas_3d = self.bbox_coder.decode_official(
                    boxes, depth, dims, angles, cam2img_to_4x4(ori_cam2img).to(boxes.device), meta['ori_shape'][:2])
            else:
                cam2img = cam2img_to_4x4(torch.as_tensor(np.asarray(meta['cam2img']), dtype=torch.float64)).to(boxes)
                img_aug_matrix = None
                if 'img_aug_matrix' in meta:
                    img_aug_matrix = torch.as_tensor(np.asarray(meta['img_aug_matrix']), dtype=torch.float64,
                                                     device=boxes.device)
                result_3d.bboxes_3d, bboxes_2d = self.bbox_coder.decode(boxes, depth, dims, angles, cam2img, img_size,
                                                                        img_aug_matrix)
            results_3d.append(result_3d)
            results_2d.append(InstanceData(bboxes=bboxes_2d, scores=scores, labels=labels))
        return results_3d, results_2d
