"""The box parametrisation of the 3D DETRs (DETR3D, PETR, StreamPETR, OPEN, BEVFormer) and their NMS-free decoding.

A query regresses, in the LiDAR/ego frame, ``(cx, cy, cz, log dx, log dy, log dz, sin yaw, cos yaw, vx, vy)``:
the gravity centre (metres), the log of the box sizes along its own x, y, z (mmdet3d's ``LiDARInstance3DBoxes``
dims: length, width, height), the heading as sine and cosine, and the BEV velocity (m/s). Predictions are
decoded without NMS: the ``max_num`` best (query, class) scores over all queries.
"""
from typing import Dict, Optional, Sequence

import torch
from mmdet.models.task_modules import BaseBBoxCoder
from torch import Tensor

from perception.registry import TASK_UTILS


@TASK_UTILS.register_module()
class NMSFreeBBoxCoder(BaseBBoxCoder):
    """Encode gravity-centre 3D boxes into the 10 regression targets; decode the top-scoring predictions.

    Args:
        post_center_range: (x_min, y_min, z_min, x_max, y_max, z_max): decoded boxes whose centre lies
            outside are dropped (None: keep all).
        max_num: boxes kept per sample.
        score_threshold: minimum score (None: keep all ``max_num``).
        num_classes: classes of the sigmoid scores.
    """
    code_size = 10

    def __init__(self, post_center_range: Optional[Sequence[float]] = None, max_num: int = 300,
                 score_threshold: Optional[float] = None, num_classes: int = 10) -> None:
        super().__init__()
        self.post_center_range = post_center_range
        self.max_num = max_num
        self.score_threshold = score_threshold
        self.num_classes = num_classes

    def encode(self, boxes: Tensor) -> Tensor:
        """(n, 7 or 9) ``(x, y, z_gravity, dx, dy, dz, yaw[, vx, vy])`` -> (n, 8 or 10) targets."""
        center, dims, yaw = boxes[:, :3], boxes[:, 3:6], boxes[:, 6:7]
        return torch.cat([center, dims.log(), yaw.sin(), yaw.cos(), boxes[:, 7:9]], dim=-1)

    def denormalize(self, codes: Tensor) -> Tensor:
        """(..., 8 or 10) targets -> (..., 7 or 9) gravity-centre boxes."""
        yaw = torch.atan2(codes[..., 6:7], codes[..., 7:8])
        return torch.cat([codes[..., :3], codes[..., 3:6].exp(), yaw, codes[..., 8:10]], dim=-1)

    def decode(self, cls_scores: Tensor, bbox_preds: Tensor) -> Dict[str, Tensor]:
        """One sample: ``cls_scores`` (Q, C) logits, ``bbox_preds`` (Q, 10) codes -> ``bboxes`` (k, 9)
        gravity-centre boxes, ``scores`` (k,), ``labels`` (k,), ``query_inds`` (k,), best first."""
        scores, index = cls_scores.sigmoid().flatten().topk(min(self.max_num, cls_scores.numel()))
        labels = index % self.num_classes
        query_inds = torch.div(index, self.num_classes, rounding_mode='floor')
        boxes = self.denormalize(bbox_preds[query_inds])
        keep = torch.ones_like(scores, dtype=torch.bool)
        if self.score_threshold is not None:
            keep &= scores > self.score_threshold
        if self.post_center_range is not None:
            limits = boxes.new_tensor(self.post_center_range)
            keep &= ((boxes[:, :3] >= limits[:3]) & (boxes[:, :3] <= limits[3:])).all(-1)
        return dict(bboxes=boxes[keep], scores=scores[keep], labels=labels[keep], query_inds=query_inds[keep])
