"""Depth-map loss of MonoDETR's depth predictor, after CaDDN's depth distribution network loss (Reading
et al., CVPR 2021; MonoDETR, Zhang et al., ICCV 2023).

The target is object-wise: every pixel inside an object's 2D box takes the depth of that object's
centre, boxes painted from far to near so that nearer objects win where boxes overlap; pixels outside
every box (depth 0) and depths outside the bins get the extra class ``N``. The per-pixel loss is a
softmax focal loss over the ``N + 1`` LID classes, pixels inside boxes weighted 13 and the others 1,
summed and divided by the number of pixels.
"""
from typing import Sequence, Tuple

import torch
import torch.nn.functional as F
from mmdet.models.losses.utils import weighted_loss
from torch import Tensor, nn

from perception.models.layers.depth_bins import depth_to_lid_index
from perception.registry import MODELS


def build_ddn_target(bboxes: Tensor, depths: Tensor, size: Tuple[int, int],
                     clip_boxes: bool = True) -> Tuple[Tensor, Tensor]:
    """Object-centre depth map and foreground mask of one image.

    Args:
        bboxes: (N, 4) boxes x1, y1, x2, y2 in map cells (pixel boxes times map size over image size);
            each covers cells ``floor(x1) .. ceil(x2) - 1`` and ``floor(y1) .. ceil(y2) - 1``.
        depths: (N,) depth of each object's centre, metres.
        size: (H, W) of the map.
        clip_boxes: clip the cell ranges to the map. Without it a negative corner indexes from the far
            side, as a Python slice does (the official code's behaviour: a box starting at cell -1 covers
            only the last cell before its end, usually nothing).

    Returns:
        (H, W) depth map, metres (0 outside the boxes), and (H, W) bool foreground mask.
    """
    height, width = size
    depth_map = depths.new_zeros(height, width)
    fg_mask = torch.zeros(height, width, dtype=torch.bool, device=depths.device)
    corners = torch.cat([bboxes[:, :2].floor(), bboxes[:, 2:].ceil()], dim=1).long()
    if clip_boxes:
        corners[:, 0::2] = corners[:, 0::2].clamp(0, width)
        corners[:, 1::2] = corners[:, 1::2].clamp(0, height)
    for index in torch.argsort(depths, descending=True).tolist():
        x1, y1, x2, y2 = corners[index].tolist()
        depth_map[y1:y2, x1:x2] = depths[index]
        fg_mask[y1:y2, x1:x2] = True
    return depth_map, fg_mask


@weighted_loss
def softmax_focal_loss(logits: Tensor, target: Tensor, alpha: float = 0.25, gamma: float = 2.0,
                       one_hot_eps: float = 0.) -> Tensor:
    """Per-element ``-alpha (1 - p_t)^gamma log p_t`` with ``p`` the softmax over dim 1.

    Args:
        logits: (B, K, ...) class logits.
        target: (B, ...) int64 classes.
        one_hot_eps: added to every entry of the one-hot target, so that each class ``c`` adds
            ``eps * (-alpha (1 - p_c)^gamma log p_c)`` (kornia's focal loss, which the official DDN loss
            uses, with 1e-6).

    Returns:
        (B, ...) losses.
    """
    log_probs = F.log_softmax(logits, dim=1)
    if one_hot_eps:
        losses = -alpha * (1 - log_probs.exp()).pow(gamma) * log_probs
        return losses.gather(1, target.unsqueeze(1)).squeeze(1) + one_hot_eps * losses.sum(1)
    log_prob = log_probs.gather(1, target.unsqueeze(1)).squeeze(1)
    return -alpha * (1 - log_prob.exp()).pow(gamma) * log_prob


@MODELS.register_module()
class DDNLoss(nn.Module):
    """Foreground-weighted softmax focal loss of the LID depth map.

    Args:
        num_depth_bins: LID bins ``N`` (logits have ``N + 1`` classes).
        depth_min: start of the bins, metres.
        depth_max: end of the bins, metres.
        alpha: focal loss alpha (applied to every class, as the official loss).
        gamma: focal loss gamma.
        fg_weight: weight of the pixels inside a box.
        bg_weight: weight of the other pixels.
        one_hot_eps: added to every class of the one-hot target, see :func:`softmax_focal_loss` (the
            official 1e-6 adds about 1e-4 of the loss from the other classes; 0 supervises the true bin
            alone).
        clip_boxes: clip the boxes to the map, see :func:`build_ddn_target` (False: the official
            Python-slice behaviour, which drops most boxes that start above or left of the image).
        loss_weight: multiplier of the loss.
    """

    def __init__(self,
                 num_depth_bins: int = 80,
                 depth_min: float = 1e-3,
                 depth_max: float = 60.,
                 alpha: float = 0.25,
                 gamma: float = 2.0,
                 fg_weight: float = 13.,
                 bg_weight: float = 1.,
                 one_hot_eps: float = 0.,
                 clip_boxes: bool = True,
                 loss_weight: float = 1.0) -> None:
        super().__init__()
        self.num_depth_bins = num_depth_bins
        self.depth_min = depth_min
        self.depth_max = depth_max
        self.alpha = alpha
        self.gamma = gamma
        self.fg_weight = fg_weight
        self.bg_weight = bg_weight
        self.one_hot_eps = one_hot_eps
        self.clip_boxes = clip_boxes
        self.loss_weight = loss_weight

    def get_targets(self, bboxes: Sequence[Tensor], depths: Sequence[Tensor],
                    size: Tuple[int, int]) -> Tuple[Tensor, Tensor]:
        """Bin targets (B, H, W) int64 and foreground masks (B, H, W) of a batch; arguments as
        :func:`build_ddn_target`, one entry per image."""
        maps, masks = zip(*[build_ddn_target(b, d, size, self.clip_boxes) for b, d in zip(bboxes, depths)])
        target = depth_to_lid_index(torch.stack(maps), self.num_depth_bins, self.depth_min, self.depth_max)
        return target, torch.stack(masks)

    def forward(self, depth_logits: Tensor, bboxes: Sequence[Tensor], depths: Sequence[Tensor]) -> Tensor:
        """
        Args:
            depth_logits: (B, N + 1, H, W).
            bboxes: B tensors (N_i, 4) of 2D boxes in map cells, see :func:`build_ddn_target`.
            depths: B tensors (N_i,) of object centre depths, metres.

        Returns:
            Scalar loss.
        """
        target, fg_mask = self.get_targets(bboxes, depths, depth_logits.shape[-2:])
        weight = torch.where(fg_mask, self.fg_weight, self.bg_weight).to(depth_logits.dtype)
        return self.loss_weight * softmax_focal_loss(depth_logits, target, weight, alpha=self.alpha, gamma=self.gamma,
                                                     one_hot_eps=self.one_hot_eps)
