"""MonoDGP's region segmentation head (Pu, Wang, Deng, Yang: "MonoDGP: Monocular 3D Object Detection with
Decoupled-Query and Geometry-Error Priors", CVPR 2025).

A top-down FPN over the 4 levels, a squeeze-and-excitation layer and a foreground probability ``P_l`` per
level; the detector weights the features ``f_l <- f_l * P_l`` and adds the segment embedding
``1[P_l > 0.5]`` to the positional encoding that the depth predictor reads. Dice loss per level against
the union of the GT 2D boxes (:func:`region_targets`).
"""
from typing import Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from mmdet.models.layers import SELayer
from mmengine.model import BaseModule
from torch import Tensor, nn

from perception.registry import MODELS


def object_region_mask(bboxes: Tensor, img_size: Tuple[int, int], truncate_boxes: bool = False) -> Tensor:
    """Union of 2D boxes as an image mask.

    Args:
        bboxes: (N, 4) boxes x1, y1, x2, y2 in input pixels (pixel centres at integers).
        img_size: (H, W) of the input.
        truncate_boxes: rasterise as the official code: Python's ``int`` of each side in edge coordinates
            (``x + 0.5``), clipped to the image, as slice bounds, so that a box takes the pixel its
            left/top edge falls in and leaves out the one its right/bottom edge falls in.

    Returns:
        (H, W) float mask, 1 at the pixels whose centre lies in a box (edges included), or those of
        the official rasterisation.
    """
    height, width = img_size
    bboxes = bboxes.float()
    if truncate_boxes:
        mask = bboxes.new_zeros(height, width)
        for x1, y1, x2, y2 in (bboxes.double() + 0.5).tolist():
            mask[int(max(y1, 0)):int(min(y2, height)), int(max(x1, 0)):int(min(x2, width))] = 1
        return mask
    cols = torch.arange(width, dtype=torch.float32, device=bboxes.device)
    rows = torch.arange(height, dtype=torch.float32, device=bboxes.device)
    inside_x = ((cols >= bboxes[:, 0:1]) & (cols <= bboxes[:, 2:3])).float()  # (N, W)
    inside_y = ((rows >= bboxes[:, 1:2]) & (rows <= bboxes[:, 3:4])).float()  # (N, H)
    return (inside_y.t() @ inside_x > 0).float()


def region_targets(batch_bboxes: Sequence[Tensor], img_size: Tuple[int, int],
                   level_sizes: Sequence[Tuple[int, int]], truncate_boxes: bool = False) -> List[Tensor]:
    """Foreground targets of the region segmentation head.

    The union of each image's boxes at input resolution, bilinearly resized to every level with
    ``align_corners=True`` as the official code does (values between 0 and 1 on box edges).

    Args:
        batch_bboxes: B tensors (N_i, 4) of 2D boxes in input pixels.
        img_size: (H, W) of the input.
        level_sizes: (H_l, W_l) of each level.
        truncate_boxes: the official rasterisation, see :func:`object_region_mask`.

    Returns:
        One (B, 1, H_l, W_l) tensor per level.
    """
    masks = torch.stack([object_region_mask(b.reshape(-1, 4), img_size, truncate_boxes) for b in batch_bboxes])
    return [F.interpolate(masks[:, None], size=tuple(size), mode='bilinear', align_corners=True)
            for size in level_sizes]


def region_boxes(data_sample) -> Tensor:
    """(N, 4) 2D boxes (input pixels) of a data sample's region target: the ``gt_region_bboxes`` that
    :class:`perception.datasets.transforms.FilterMono3DInstances` records (the official MonoDGP's), else the
    boxes of ``gt_instances``."""
    if 'gt_region_bboxes' in data_sample.metainfo:
        return torch.as_tensor(data_sample.metainfo['gt_region_bboxes'], dtype=torch.float32)
    return data_sample.gt_instances.bboxes


@MODELS.register_module()
class RegionSegHead(BaseModule):
    """MonoDGP's region segmentation head: a foreground probability per feature level.

    Args:
        embed_dims: channels of the levels.
        num_levels: feature levels L (finest first, each at most twice the size of the next).
        num_norm_groups: groups of the GroupNorms of the lateral projections.
        se_reduction: channel reduction of the squeeze-and-excitation layers (mmdet's ``SELayer``).
        prob_eps: the probabilities are clamped to ``[eps, 1 - eps]``.
        loss_region: Dice loss config, called on the batch of one level flattened into one row
            (the official sums over the whole batch, smoothed by 1).
        truncate_boxes: rasterise the target boxes as the official code, see :func:`object_region_mask`
            (it shifts each box by up to a pixel; the default covers the pixels whose centre is inside).
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
                 truncate_boxes: bool = False,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg)
        self.num_levels = num_levels
        self.truncate_boxes = truncate_boxes
        self.prob_eps = prob_eps
        self.lateral_convs = nn.ModuleList([
            nn.Sequential(nn.Conv2d(embed_dims, embed_dims, kernel_size=1), nn.GroupNorm(num_norm_groups, embed_dims))
            for _ in range(num_levels)
        ])
        self.attentions = nn.ModuleList([
            SELayer(embed_dims, ratio=se_reduction, act_cfg=(dict(type='ReLU'), dict(type='Sigmoid')))
            for _ in range(num_levels)
        ])
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
                                 [prob.shape[-2:] for prob in region_probs], self.truncate_boxes)
        loss = sum(self.loss_region(prob.reshape(1, -1), target.reshape(1, -1))
                   for prob, target in zip(region_probs, targets))
        return dict(loss_region=loss)
