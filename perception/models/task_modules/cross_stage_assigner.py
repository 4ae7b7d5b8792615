"""StageInteractor's cross-stage label assigner (Teng et al., ICCV 2023, sec. 3.2).

After the usual one-to-one Hungarian matching of every decoder stage, the class labels matched to a query
in the previous stage and in all later stages are gathered and given to the query at the current stage
when its current box still overlaps that ground truth (IoU >= ``iou_thr``). The classification target
becomes one-to-many across stages while every query keeps its identity; the box targets stay the stage's
own matches. This follows the released configuration (``use_iou=True``, hard labels, threshold filter),
in which the stage's own match is subject to the same IoU threshold.
"""
from typing import List, Sequence

import torch
from mmdet.structures.bbox import bbox_overlaps
from torch import Tensor


def candidate_stages(stage: int, num_stages: int) -> List[int]:
    """Stages whose matches stage ``stage`` may take: the previous one, itself and all later ones."""
    return list(range(max(stage - 1, 0), num_stages))


def cross_stage_labels(stage: int, pred_bboxes: Tensor, gt_bboxes: Tensor, gt_labels: Tensor,
                       stage_gt_inds: Sequence[Tensor], num_classes: int,
                       iou_thr: float = 0.5) -> Tensor:
    """Binary classification targets of one image at one stage.

    Args:
        stage: index of the current stage.
        pred_bboxes: (N, 4) current-stage boxes (x1, y1, x2, y2) of the N queries.
        gt_bboxes: (M, 4) ground-truth boxes.
        gt_labels: (M,) their classes in [0, num_classes).
        stage_gt_inds: per stage, (N,) Hungarian result in mmdet's convention: 0 for background,
            ``i + 1`` when the query is matched to ground truth ``i``.
        num_classes: K.
        iou_thr: the IoU the current box must reach with a ground truth to take its label.

    Returns:
        (N, K) targets in {0, 1}: query q is positive for class c when, in a candidate stage, q was
        matched to a ground truth of class c that its current box overlaps with IoU >= ``iou_thr``.
    """
    num_queries = pred_bboxes.shape[0]
    targets = pred_bboxes.new_zeros(num_queries, num_classes)
    if gt_bboxes.shape[0] == 0:
        return targets
    ious = bbox_overlaps(pred_bboxes.detach(), gt_bboxes)  # N, M
    queries = torch.arange(num_queries, device=pred_bboxes.device)
    for t in candidate_stages(stage, len(stage_gt_inds)):
        matched = stage_gt_inds[t] > 0
        q, g = queries[matched], stage_gt_inds[t][matched] - 1
        keep = ious[q, g] >= iou_thr
        targets[q[keep], gt_labels[g[keep]]] = 1
    return targets
