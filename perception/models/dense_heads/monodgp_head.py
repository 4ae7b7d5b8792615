"""MonoDGP's head (Pu, Wang, Deng, Yang: "MonoDGP: Monocular 3D Object Detection with Decoupled-Query and
Geometry-Error Priors", CVPR 2025): MonoDETR's head whose depth is the pinhole estimate corrected by a
learned geometry error (:func:`geometry_error_depth`) instead of an average of three estimates, with the
losses of the 2D decoder's layers.
"""
from typing import Dict, List, Optional, Sequence, Tuple, Union

import torch
from mmdet.utils import reduce_mean
from torch import Tensor

from perception.models.layers import refine_reference_boxes
from perception.registry import MODELS
from .monodetr_head import MonoDETRHead, geometric_depth


def geometry_error_depth(height_3d: Tensor, box_height: Tensor, focal: Tensor, depth_error: Tensor,
                         min_box_height: float = 1.) -> Tensor:
    """MonoDGP's depth: the pinhole depth plus a learned geometry error, ``f * H_3D / h_2D + delta``.

    Gradients reach both heights (detaching them costs the official model over 3 AP, PuFanqi23/MonoDGP#12).

    Args:
        height_3d: (...) predicted 3D heights, metres.
        box_height: (...) predicted 2D box heights, pixels (clamped to at least ``min_box_height``).
        focal: (...) vertical focal lengths, pixels (broadcast).
        depth_error: (...) predicted geometry errors ``delta``, metres.

    Returns:
        (...) depths, metres.
    """
    return geometric_depth(height_3d, box_height, focal, min_box_height) + depth_error


@MODELS.register_module()
class MonoDGPHead(MonoDETRHead):
    """MonoDETR's head with the geometry-error depth and the 2D decoder's losses.

    Each branch set serves layer ``l`` of both decoders. The 2D decoder's layers get classification,
    centre, box-side and IoU losses prefixed ``d2d{l}.``. Arguments as :class:`MonoDETRHead`.
    """

    def predict_depth(self, layer: int, hidden: Tensor, boxes: Tensor, dims: Tensor, weighted_depth: Tensor,
                      focal: Tensor, img_height: Union[int, Tensor]) -> Tensor:
        """Depth ``f * H_3D / h_2D + delta`` and log-variance; the depth map is not used.

        Args:
            layer, hidden, boxes, dims, weighted_depth, focal, img_height: as
                :meth:`MonoDETRHead.predict_depth`.

        Returns:
            (B, Q, 2): depth (metres) and log-variance.
        """
        out = self.depth_branches[layer](hidden)
        depth = geometry_error_depth(dims[..., 1], self.bbox_coder.box_heights(boxes, img_height), focal[:, None],
                                     out[..., 0])
        return torch.stack([depth, out[..., 1]], dim=-1)

    def forward_2d(self, hidden_states: Tensor, references: Sequence[Tensor]) -> Dict[str, Tensor]:
        """Class logits and boxes of the 2D decoder's layers.

        Args:
            hidden_states: (L2, B, Q, C).
            references: L2 tensors (B, Q, 2 | 6).

        Returns:
            ``cls_scores`` (L2, B, Q, num_classes) and ``boxes`` (L2, B, Q, 6) normalised.
        """
        cls_scores, boxes = [], []
        for layer, (hidden, reference) in enumerate(zip(hidden_states, references)):
            cls_scores.append(self.cls_branches[layer](hidden))
            boxes.append(refine_reference_boxes(reference, self.reg_branches[layer](hidden)))
        return dict(cls_scores=torch.stack(cls_scores), boxes=torch.stack(boxes))

    def loss(self, hidden_states: Tensor, references: Sequence[Tensor], weighted_depth: Tensor,
             depth_logits: Tensor, batch_data_samples: Sequence, img_size: Tuple[int, int], num_groups: int = 1,
             hidden_states_2d: Optional[Tensor] = None,
             references_2d: Optional[Sequence[Tensor]] = None) -> Dict[str, Tensor]:
        """Forward and losses; arguments as :meth:`MonoDETRHead.loss`, plus the 2D decoder's outputs."""
        batch_img_metas = [sample.metainfo for sample in batch_data_samples]
        outputs = self(hidden_states, references, weighted_depth, self.focal_lengths(batch_img_metas, weighted_depth),
                       img_size, self.box_height_scales(batch_img_metas, weighted_depth, img_size))
        outputs_2d = None if hidden_states_2d is None else self.forward_2d(hidden_states_2d, references_2d)
        return self.loss_by_feat(outputs, depth_logits, self.get_targets(batch_data_samples, img_size), img_size,
                                 num_groups, outputs_2d=outputs_2d)

    def loss_by_feat(self, outputs: Dict[str, Tensor], depth_logits: Tensor, batch_gt: List,
                     img_size: Tuple[int, int], num_groups: int = 1,
                     outputs_2d: Optional[Dict[str, Tensor]] = None) -> Dict[str, Tensor]:
        """:meth:`MonoDETRHead.loss_by_feat` plus the losses of each 2D decoder layer (``outputs_2d`` as
        :meth:`forward_2d` returns them), matched on their own."""
        losses = super().loss_by_feat(outputs, depth_logits, batch_gt, img_size, num_groups)
        if outputs_2d is None:
            return losses
        num_objects = sum(len(gt) for gt in batch_gt) * num_groups
        avg_factor = reduce_mean(depth_logits.new_tensor(num_objects)).clamp(min=1).item()
        for layer in range(outputs_2d['boxes'].shape[0]):
            layer_outputs = {key: value[layer] for key, value in outputs_2d.items()}
            for name, value in self.loss_by_layer(layer_outputs, batch_gt, avg_factor, num_groups).items():
                losses[f'd2d{layer}.{name}'] = value
        return losses
