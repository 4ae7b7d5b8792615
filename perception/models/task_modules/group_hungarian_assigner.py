"""One-to-one matching of Group DETR (Chen et al., "Group DETR", ICCV 2023), with the costs of MonoDETR.

Each group of ``Q`` consecutive queries is matched to all ground-truth objects on its own, so every
object gets one query per group; the cost is computed once for all queries.
"""
from typing import List, Optional, Tuple, Union

import numpy as np
import torch
from mmdet.models.task_modules import AssignResult, BaseAssigner
from mmdet.models.task_modules.assigners.match_cost import BaseMatchCost
from mmengine.structures import InstanceData
from scipy.optimize import linear_sum_assignment
from torch import Tensor

from perception.registry import TASK_UTILS


def group_linear_sum_assignment(cost: Tensor, num_groups: int = 1) -> Tuple[Tensor, Tensor]:
    """Hungarian matching of each group of predictions against all targets.

    Args:
        cost: (G * Q, N) cost of each prediction for each target; the G groups are consecutive blocks of
            Q rows.
        num_groups: G.

    Returns:
        (M,) int64 prediction rows and (M,) target columns of the matches, ``M = G * min(Q, N)``, sorted
        by row.
    """
    num_preds, _ = cost.shape
    if num_preds % num_groups:
        raise ValueError(f'{num_preds} predictions do not split into {num_groups} groups')
    group_size = num_preds // num_groups
    cost = cost.detach().cpu().float().numpy()
    rows, cols = [], []
    for group in range(num_groups):
        group_rows, group_cols = linear_sum_assignment(cost[group * group_size:(group + 1) * group_size])
        rows.append(group_rows + group * group_size)
        cols.append(group_cols)
    return torch.from_numpy(np.concatenate(rows)).long(), torch.from_numpy(np.concatenate(cols)).long()


@TASK_UTILS.register_module()
class GroupHungarianAssigner(BaseAssigner):
    """Hungarian assignment per query group on a weighted sum of match costs.

    Like mmdet's ``HungarianAssigner`` (each prediction gets 0 for background or the 1-based index of
    its object), with the predictions split into ``num_groups`` groups matched independently.

    Args:
        match_costs: mmdet match cost configs (``mmdet.FocalLossCost``, ``mmdet.IoUCost``,
            :class:`InstanceL1Cost` ...), each called with the prediction and ground-truth instances.
    """

    def __init__(self, match_costs: Union[dict, List[dict]]) -> None:
        if isinstance(match_costs, dict):
            match_costs = [match_costs]
        if not match_costs:
            raise ValueError('match_costs must not be empty')
        self.match_costs = [TASK_UTILS.build(cost) for cost in match_costs]

    def cost(self, pred_instances: InstanceData, gt_instances: InstanceData,
             img_meta: Optional[dict] = None) -> Tensor:
        """(num_preds, num_gts) weighted sum of the match costs."""
        return sum(match_cost(pred_instances=pred_instances, gt_instances=gt_instances, img_meta=img_meta)
                   for match_cost in self.match_costs)

    def assign(self, pred_instances: InstanceData, gt_instances: InstanceData, img_meta: Optional[dict] = None,
               num_groups: int = 1, **kwargs) -> AssignResult:
        """
        Args:
            pred_instances: G * Q predictions with the fields the costs read.
            gt_instances: N objects with ``labels`` and the fields the costs read.
            img_meta: passed to the costs.
            num_groups: G.

        Returns:
            The assignment of the G * Q predictions.
        """
        num_gts, num_preds = len(gt_instances), len(pred_instances)
        labels = gt_instances.labels
        gt_inds = labels.new_zeros(num_preds, dtype=torch.long)
        assigned_labels = labels.new_full((num_preds, ), -1, dtype=torch.long)
        if num_gts > 0 and num_preds > 0:
            rows, cols = group_linear_sum_assignment(self.cost(pred_instances, gt_instances, img_meta), num_groups)
            rows, cols = rows.to(labels.device), cols.to(labels.device)
            gt_inds[rows] = cols + 1
            assigned_labels[rows] = labels[cols]
        return AssignResult(num_gts=num_gts, gt_inds=gt_inds, max_overlaps=None, labels=assigned_labels)


@TASK_UTILS.register_module()
class InstanceL1Cost(BaseMatchCost):
    """L1 distance between one field of the predictions and of the objects.

    MonoDETR matches with two of them: the projected 3D centres (x, y) and the 2D box sides (l, r, t, b)
    around them, both normalised by the input size.

    Args:
        key: the field, shaped (n, D) in both instance sets.
        weight: cost weight.
    """

    def __init__(self, key: str, weight: float = 1.) -> None:
        super().__init__(weight=weight)
        self.key = key

    def __call__(self, pred_instances: InstanceData, gt_instances: InstanceData, img_meta: Optional[dict] = None,
                 **kwargs) -> Tensor:
        """(num_preds, num_gts) cost."""
        return torch.cdist(pred_instances[self.key], gt_instances[self.key], p=1) * self.weight
