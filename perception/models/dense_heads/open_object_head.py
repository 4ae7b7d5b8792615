"""OPEN's image-side head (Hou et al., ECCV 2024, Sec. 3.2): pixel-wise depth, object-wise depth and the 2D
object branch that predicts, for every stride-16 token, the projected centre and the depth of its object.

Per view: the camera-aware depth net gives the pixel depth; the object-wise depth encoder (over the current
and the previous frame's features) refines it into an object depth, whose sine embedding is added to the
features of a FCOS-like 2D branch: class (quality focal loss), centerness (Gaussian focal loss on a heatmap of
the projected centres), box sides (L1 + GIoU), projected-centre offset (L1) and object-centre depth (L1).
Each view's tokens are matched one-to-one to its 2D objects (Hungarian: focal, L1, GIoU, centre costs). The pixel
and object depths are supervised by LiDAR points projected into each view (L1, and a distribution focal loss
on the bins).

Departure from the official code, which builds the LiDAR depth maps in the data pipeline: they are built here
from the packed points and the augmented ``lidar2img`` (:func:`lidar_depth_maps`).
"""
from typing import Dict, List, Optional, Sequence, Tuple

import torch
from mmcv.cnn import ConvModule
from mmdet.models.utils import gaussian_radius, gen_gaussian_target
from mmdet.structures.bbox import bbox_overlaps
from mmdet.utils import reduce_mean
from mmengine.model import BaseModule, bias_init_with_prob
from mmengine.structures import InstanceData
from torch import Tensor, nn

from perception.models.layers.camera_aware_depth_net import CameraAwareDepthNet
from perception.models.layers.object_depth_encoder import ObjectDepthEncoder, pixel_centres
from perception.models.layers.position_embedding_3d import pos2posemb1d
from perception.registry import MODELS, TASK_UTILS


def lidar_depth_maps(points: Tensor, lidar2img: Tensor, image_size: Tuple[int, int],
                     feat_size: Tuple[int, int]) -> Tensor:
    """Nearest LiDAR depth in each cell of a feature grid, per view (0 where no point lands).

    Args:
        points: (P, >= 3) LiDAR-frame points.
        lidar2img: (V, 4, 4) projections to the input pixels.
        image_size: (H, W) of the input; feat_size: (h, w) of the grid.

    Returns:
        (V, h, w) depths, metres.
    """
    height, width = feat_size
    homogeneous = torch.cat([points[:, :3], points.new_ones(len(points), 1)], dim=1)
    uvd = homogeneous @ lidar2img.transpose(1, 2)
    depth = uvd[..., 2]
    uv = uvd[..., :2] / depth.clamp(min=1e-5)[..., None]
    col = torch.floor((uv[..., 0] + 0.5) * width / image_size[1]).long()
    row = torch.floor((uv[..., 1] + 0.5) * height / image_size[0]).long()
    valid = (depth > 1e-3) & (col >= 0) & (col < width) & (row >= 0) & (row < height)
    view = torch.arange(len(lidar2img), device=points.device)[:, None].expand_as(depth)
    index = (view * height + row) * width + col
    maps = depth.new_full((len(lidar2img) * height * width, ), float('inf'))
    maps = maps.scatter_reduce(0, index[valid], depth[valid], reduce='amin')
    return maps.nan_to_num(posinf=0.).view(-1, height, width)


def tokens(x: Tensor) -> Tensor:
    """(N, C, h, w) maps -> (N, h * w, C) tokens, row-major."""
    return x.flatten(2).transpose(1, 2)


@MODELS.register_module()
class OPENObjectHead(BaseModule):
    """Pixel depth, object depth and the 2D object branch of OPEN.

    Args:
        num_classes: classes.
        embed_dims: feature channels.
        depth_range: (min, max) depth of the bins and of the supervision, metres ((1, 61.2)).
        num_depth_bins: pixel-depth bins (16).
        position_range: (x_min, y_min, z_min, x_max, y_max, z_max) of the encoder's point normalisation.
        depth_net: extra keyword arguments of :class:`CameraAwareDepthNet`.
        encoder: extra keyword arguments of :class:`ObjectDepthEncoder`.
        assigner: assigner of the tokens to a view's 2D objects.
        loss_cls, loss_centerness, loss_bbox, loss_iou, loss_centers, loss_center_depth: 2D-branch losses.
        loss_depth: L1 of the pixel and object depths against the LiDAR depth.
        loss_depth_bins: distribution focal loss of the bin logits.
        init_cfg: mmengine initialisation config.
    """

    def __init__(self,
                 num_classes: int = 10,
                 embed_dims: int = 256,
                 depth_range: Tuple[float, float] = (1.0, 61.2),
                 num_depth_bins: int = 16,
                 position_range: Sequence[float] = (-61.2, -61.2, -10.0, 61.2, 61.2, 10.0),
                 depth_net: dict = dict(),
                 encoder: dict = dict(),
                 assigner: dict = dict(
                     type='GroupHungarianAssigner',
                     match_costs=[
                         dict(type='mmdet.FocalLossCost', weight=2.0),
                         dict(type='mmdet.BBoxL1Cost', weight=5.0, box_format='xywh'),
                         dict(type='mmdet.IoUCost', iou_mode='giou', weight=2.0),
                         dict(type='InstanceL1Cost', key='centers', weight=10.0)]),
                 loss_cls: dict = dict(type='mmdet.QualityFocalLoss', use_sigmoid=True, beta=2.0, loss_weight=2.0),
                 loss_centerness: dict = dict(type='mmdet.GaussianFocalLoss', reduction='mean', loss_weight=1.0),
                 loss_bbox: dict = dict(type='mmdet.L1Loss', loss_weight=5.0),
                 loss_iou: dict = dict(type='mmdet.GIoULoss', loss_weight=2.0),
                 loss_centers: dict = dict(type='mmdet.L1Loss', loss_weight=10.0),
                 loss_center_depth: dict = dict(type='mmdet.L1Loss', loss_weight=1.0),
                 loss_depth: dict = dict(type='mmdet.L1Loss', loss_weight=1.0),
                 loss_depth_bins: dict = dict(type='mmdet.DistributionFocalLoss', loss_weight=0.25),
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        self.num_classes = num_classes
        self.depth_range = tuple(depth_range)
        self.depth_net = CameraAwareDepthNet(embed_dims, num_bins=num_depth_bins, depth_range=depth_range,
                                             **depth_net)
        self.encoder = ObjectDepthEncoder(embed_dims, position_range, **encoder)
        self.depth_embed = nn.Sequential(nn.Linear(embed_dims, embed_dims), nn.LayerNorm(embed_dims))
        self.shared_cls = ConvModule(embed_dims, embed_dims, 3, padding=1, norm_cfg=dict(type='GN', num_groups=32))
        self.shared_reg = ConvModule(embed_dims, embed_dims, 3, padding=1, norm_cfg=dict(type='GN', num_groups=32))
        self.cls = nn.Conv2d(embed_dims, num_classes, 1)
        self.centerness = nn.Conv2d(embed_dims, 1, 1)
        self.ltrb = nn.Conv2d(embed_dims, 4, 1)
        self.offset = nn.Conv2d(embed_dims, 2, 1)
        self.center_depth = nn.Conv2d(embed_dims, 1, 1)
        self.assigner = TASK_UTILS.build(assigner)
        self.loss_cls = MODELS.build(loss_cls)
        self.loss_centerness = MODELS.build(loss_centerness)
        self.loss_bbox = MODELS.build(loss_bbox)
        self.loss_iou = MODELS.build(loss_iou)
        self.loss_centers = MODELS.build(loss_centers)
        self.loss_center_depth = MODELS.build(loss_center_depth)
        self.loss_depth = MODELS.build(loss_depth)
        self.loss_depth_bins = MODELS.build(loss_depth_bins)
        self.prev_feats = None
        nn.init.constant_(self.cls.bias, bias_init_with_prob(0.01))
        nn.init.constant_(self.centerness.bias, bias_init_with_prob(0.01))

    def reset_memory(self) -> None:
        self.prev_feats = None

    def previous_features(self, feats: Tensor, prev_exists: Tensor) -> Tensor:
        """The previous frame's features of each view; zeros where a run starts (no previous frame), as the
        official code."""
        if self.prev_feats is None or self.prev_feats.shape != feats.shape:
            prev = torch.zeros_like(feats)
        else:
            keep = prev_exists.to(feats.dtype).repeat_interleave(len(feats) // len(prev_exists))[:, None, None, None]
            prev = keep * self.prev_feats
        self.prev_feats = feats.detach()
        return prev

    def forward(self, feats: Tensor, cam2img: Tensor, image_size: Tuple[int, int],
                prev_exists: Tensor) -> Dict[str, Tensor]:
        """
        Args:
            feats: (N, C, h, w) stride-16 features of the N = B * V views.
            cam2img: (N, 4, 4) intrinsics of the input pixels.
            image_size: (H, W) of the input.
            prev_exists: (B,) bool, the previous frame is in the feature memory.

        Returns:
            ``pixel_depth``, ``object_depth`` (N, 1, h, w) metres, ``depth_logits`` (N, D, h, w), and per token
            (N, h * w, ...): ``cls_scores`` logits, ``centerness`` logits, ``bboxes`` (x1, y1, x2, y2) and
            ``centers`` (u, v) normalised by the input size, ``center_depth`` (sigmoid of the normalised
            object-centre depth).
        """
        n, c, h, w = feats.shape
        pixel_depth, depth_logits = self.depth_net(feats, cam2img)
        _, object_depth = self.encoder(feats, self.previous_features(feats, prev_exists), pixel_depth, cam2img,
                                       image_size)
        depth_embed = self.depth_embed(pos2posemb1d(object_depth.permute(0, 2, 3, 1), c)).permute(0, 3, 1, 2)
        cls_feats = self.shared_cls(feats)
        reg_feats = self.shared_reg(feats + depth_embed)
        locations = (pixel_centres(h, w, image_size[0] / h, image_size[1] / w, feats.device) + 0.5) / \
            feats.new_tensor([image_size[1], image_size[0]])
        ltrb = tokens(self.ltrb(reg_feats).sigmoid())
        return dict(
            pixel_depth=pixel_depth, object_depth=object_depth, depth_logits=depth_logits,
            cls_scores=tokens(self.cls(cls_feats)), centerness=tokens(self.centerness(cls_feats)),
            bboxes=torch.cat([locations - ltrb[..., :2], locations + ltrb[..., 2:]], dim=-1),
            centers=locations + tokens(self.offset(reg_feats)),
            center_depth=tokens(self.center_depth(reg_feats)).sigmoid())

    def decode_centers(self, outputs: Dict[str, Tensor], image_size: Tuple[int, int]) -> Tuple[Tensor, Tensor]:
        """Per token the predicted projected object centre (N, h * w, 2) in pixels and its depth (N, h * w),
        metres."""
        size = outputs['centers'].new_tensor([image_size[1], image_size[0]])
        low, high = 1e-5, self.depth_range[1]
        return outputs['centers'] * size - 0.5, outputs['center_depth'][..., 0] * (high - low) + low

    def loss(self, outputs: Dict[str, Tensor], gt_views: List[InstanceData], depth_maps: Optional[Tensor],
             image_size: Tuple[int, int]) -> Dict[str, Tensor]:
        """Losses of the N views: ``gt_views`` the 2D objects of each (``bboxes`` pixels, ``labels``, ``centers_2d``
        pixels, ``depths`` metres); ``depth_maps`` (N, h, w) LiDAR depths (None: no depth supervision)."""
        losses = self.loss_2d(outputs, gt_views, image_size)
        if depth_maps is not None:
            losses.update(self.loss_depths(outputs, depth_maps))
        return losses

    def loss_depths(self, outputs: Dict[str, Tensor], depth_maps: Tensor) -> Dict[str, Tensor]:
        low, high = self.depth_range
        valid = (depth_maps >= low) & (depth_maps < high)
        target = depth_maps[valid]
        avg = reduce_mean(target.new_tensor(max(len(target), 1)))
        num_bins = outputs['depth_logits'].shape[1]
        logits = outputs['depth_logits'].permute(0, 2, 3, 1)[valid]
        bin_target = ((target - low) / (high - low) * (num_bins - 1)).clamp(0, num_bins - 1 - 1e-4)
        return dict(
            loss_pixel_depth=self.loss_depth(outputs['pixel_depth'][:, 0][valid], target, avg_factor=avg),
            loss_object_depth=self.loss_depth(outputs['object_depth'][:, 0][valid], target, avg_factor=avg),
            loss_depth_bins=self.loss_depth_bins(logits, bin_target, avg_factor=avg))

    def loss_2d(self, outputs: Dict[str, Tensor], gt_views: List[InstanceData],
                image_size: Tuple[int, int]) -> Dict[str, Tensor]:
        height, width = image_size
        scale = outputs['bboxes'].new_tensor([width, height, width, height])
        num_tokens = outputs['cls_scores'].shape[1]
        feat_size = tuple(outputs['pixel_depth'].shape[-2:])
        cls_targets, heatmaps, matched = [], [], []
        for view, gt in enumerate(gt_views):
            pred = InstanceData(scores=outputs['cls_scores'][view].detach(),
                                bboxes=outputs['bboxes'][view].detach() * scale,
                                centers=outputs['centers'][view].detach())
            gt_norm_centers = (gt.centers_2d + 0.5) / scale[:2]
            target = InstanceData(labels=gt.labels, bboxes=gt.bboxes, centers=gt_norm_centers)
            assigned = self.assigner.assign(pred, target, img_meta=dict(img_shape=image_size))
            pos = torch.nonzero(assigned.gt_inds > 0)[:, 0]
            obj = assigned.gt_inds[pos] - 1
            labels = torch.full((num_tokens, ), self.num_classes, dtype=torch.long, device=scale.device)
            labels[pos] = gt.labels[obj]
            quality = scale.new_zeros(num_tokens)
            quality[pos] = bbox_overlaps(pred.bboxes[pos], gt.bboxes[obj], is_aligned=True).clamp(min=0)
            cls_targets.append((labels, quality))
            heatmaps.append(self.centerness_heatmap(gt, image_size, feat_size))
            matched.append((view, pos, gt.bboxes[obj] / scale, gt_norm_centers[obj], gt.depths[obj]))
        num_pos = sum(len(m[1]) for m in matched)
        avg = reduce_mean(scale.new_tensor(max(num_pos, 1)))
        labels = torch.cat([t[0] for t in cls_targets])
        quality = torch.cat([t[1] for t in cls_targets])
        losses = dict(
            loss_cls2d=self.loss_cls(outputs['cls_scores'].flatten(0, 1), (labels, quality), avg_factor=avg),
            loss_centerness=self.loss_centerness(outputs['centerness'].flatten(0, 1).sigmoid()[:, 0],
                                                 torch.cat(heatmaps)))
        view_idx = torch.cat([torch.full_like(m[1], m[0]) for m in matched])
        pos = torch.cat([m[1] for m in matched])
        gt_boxes, gt_centers, gt_depths = (torch.cat([m[k] for m in matched]) for k in (2, 3, 4))
        pred_boxes = outputs['bboxes'][view_idx, pos]
        low, high = 1e-5, self.depth_range[1]
        depth_target = (gt_depths.clamp(low, high) - low) / (high - low)
        losses.update(
            loss_bbox2d=self.loss_bbox(pred_boxes, gt_boxes, avg_factor=avg),
            loss_iou2d=self.loss_iou(pred_boxes * scale, gt_boxes * scale, avg_factor=avg),
            loss_centers2d=self.loss_centers(outputs['centers'][view_idx, pos], gt_centers, avg_factor=avg),
            loss_center_depth=self.loss_center_depth(outputs['center_depth'][view_idx, pos, 0], depth_target,
                                                     avg_factor=avg))
        return losses

    @staticmethod
    def centerness_heatmap(gt: InstanceData, image_size: Tuple[int, int], feat_size: Tuple[int, int]) -> Tensor:
        """(h * w,) Gaussian heatmap of a view's projected object centres on the token grid (CenterNet radius
        from the 2D box size on the grid, IoU 0.3)."""
        height, width = feat_size
        heatmap = gt.bboxes.new_zeros(feat_size)
        sx, sy = width / image_size[1], height / image_size[0]
        for box, centre in zip(gt.bboxes, gt.centers_2d):
            size = ((box[3] - box[1]) * sy, (box[2] - box[0]) * sx)
            radius = max(0, int(gaussian_radius(size, min_overlap=0.3)))
            cx, cy = int((centre[0] + 0.5) * sx), int((centre[1] + 0.5) * sy)
            if 0 <= cx < width and 0 <= cy < height:
                gen_gaussian_target(heatmap, [cx, cy], radius)
        return heatmap.flatten()
