"""Matching, losses and decoding shared by the project's 3D DETR heads (:class:`StreamPETRHead` of OPEN and
StreamPETR, :class:`BEVFormerHead` of BEVFormer/DFA3D).

The heads give, per decoder layer, class logits ``(B, Q, K)`` and box codes ``(B, Q, 10)``
(``(cx, cy, cz, log dx, log dy, log dz, sin, cos, vx, vy)``, gravity centre, metres); each query is matched to a
ground-truth box by the Hungarian assigner, matched queries regress the box codes (weighted L1) and classify with
a target of 1 or, with ``soft_targets``, OPEN's localisation quality.
"""
from typing import Dict, List, Tuple

import torch
from mmdet.utils import reduce_mean
from mmdet3d.structures import LiDARInstance3DBoxes
from mmengine.structures import InstanceData
from torch import Tensor


class DETR3DLossMixin:
    """Losses and decoding of a 3D DETR head. The head sets ``bbox_coder``, ``assigner``, ``loss_cls``,
    ``loss_bbox``, ``code_weights`` (a buffer of 10) and ``soft_targets``; a head with denoising groups also
    defines ``loss_dn_single`` and returns ``dn_meta`` in its outputs."""

    @staticmethod
    def gravity_boxes(gt: InstanceData) -> Tensor:
        """(n, 9) gravity-centre boxes with velocity of ``gt.bboxes_3d``."""
        boxes = gt.bboxes_3d
        return torch.cat([boxes.gravity_center, boxes.tensor[:, 3:]], dim=1)

    def soft_scores(self, pred_centres: Tensor, gt_centres: Tensor) -> Tensor:
        """OPEN's classification targets of matched queries: ``exp(-|c_pred - c_gt|_xy)`` (metres), divided by
        the batch maximum, without gradient (``OpenHead.gen_dfl_score``)."""
        scores = torch.exp(-(pred_centres[:, :2] - gt_centres[:, :2]).norm(dim=-1)).detach()
        return scores / scores.max().clamp(min=1e-12) if len(scores) else scores

    def loss_single(self, cls_scores: Tensor, bbox_preds: Tensor,
                    gt_instances: List[InstanceData]) -> Tuple[Tensor, Tensor]:
        """Losses of one decoder layer: ``cls_scores`` (B, Q, K), ``bbox_preds`` (B, Q, 10)."""
        matched = []
        for scores, preds, gt in zip(cls_scores, bbox_preds, gt_instances):
            codes = self.bbox_coder.encode(self.gravity_boxes(gt).to(preds.device))
            pred = InstanceData(scores=scores.detach(), codes=preds.detach())
            target = InstanceData(labels=gt.labels_3d.to(preds.device), codes=codes)
            assigned = self.assigner.assign(pred, target)
            pos = torch.nonzero(assigned.gt_inds > 0)[:, 0]
            obj = assigned.gt_inds[pos] - 1
            matched.append((pos, target.labels[obj], codes[obj]))
        num_pos = reduce_mean(cls_scores.new_tensor(max(sum(len(m[0]) for m in matched), 1)))
        batch_idx = torch.cat([torch.full_like(m[0], b) for b, m in enumerate(matched)])
        pos, labels, codes = (torch.cat([m[k] for m in matched]) for k in range(3))
        pred_codes = bbox_preds[batch_idx, pos]
        soft = self.soft_scores(pred_codes, codes) if self.soft_targets else torch.ones_like(labels, dtype=torch.float)
        target = torch.zeros_like(cls_scores)
        target[batch_idx, pos, labels] = soft
        loss_cls = self.loss_cls(cls_scores.flatten(0, 1), target.flatten(0, 1), avg_factor=num_pos)
        return loss_cls, self.loss_box_codes(pred_codes, codes, num_pos)

    def loss_box_codes(self, pred_codes: Tensor, codes: Tensor, avg_factor: Tensor) -> Tensor:
        weights = self.code_weights[:codes.shape[1]].expand_as(codes) * codes.isfinite()
        return self.loss_bbox(pred_codes[:, :codes.shape[1]], codes.nan_to_num(), weights, avg_factor=avg_factor)

    def loss(self, outputs: Dict[str, Tensor], gt_instances: List[InstanceData]) -> Dict[str, Tensor]:
        """Losses of every decoder layer (``d{i}.`` prefixes, the last layer without), denoising ones included."""
        losses = {}
        num_layers = len(outputs['all_cls_scores'])
        for layer in range(num_layers):
            prefix = '' if layer == num_layers - 1 else f'd{layer}.'
            losses[prefix + 'loss_cls'], losses[prefix + 'loss_bbox'] = self.loss_single(
                outputs['all_cls_scores'][layer], outputs['all_bbox_preds'][layer], gt_instances)
            if 'dn_meta' in outputs:
                dn_cls, dn_bbox = self.loss_dn_single(outputs['dn_cls_scores'][layer],
                                                      outputs['dn_bbox_preds'][layer], outputs['dn_meta'])
                losses[prefix + 'dn_loss_cls'] = dn_cls * self.dn_weight
                losses[prefix + 'dn_loss_bbox'] = dn_bbox * self.dn_weight
        return losses

    def predict_by_feat(self, outputs: Dict[str, Tensor]) -> List[InstanceData]:
        """Decode the last layer: per sample ``bboxes_3d`` (``LiDARInstance3DBoxes`` with velocity, bottom
        centre), ``scores_3d``, ``labels_3d``."""
        results = []
        for scores, preds in zip(outputs['all_cls_scores'][-1], outputs['all_bbox_preds'][-1]):
            decoded = self.bbox_coder.decode(scores, preds)
            boxes = decoded['bboxes'].clone()
            boxes[:, 2] -= boxes[:, 5] / 2
            results.append(InstanceData(bboxes_3d=LiDARInstance3DBoxes(boxes, box_dim=9), scores_3d=decoded['scores'],
                                        labels_3d=decoded['labels']))
        return results
