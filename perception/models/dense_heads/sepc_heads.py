"""RetinaNet and FreeAnchor heads fed by the SEPC neck (``perception/models/necks/sepc.py``).

SEPC replaces the stacked convs of these heads: the neck already returns a classification and a
localisation feature per level, so the heads keep only their final ``retina_cls`` / ``retina_reg`` convs
(build them with ``stacked_convs=0``). Anchors, assignment, losses and decoding stay mmdet's.
"""
from typing import Tuple

from mmdet.models.dense_heads import FreeAnchorRetinaHead, RetinaHead
from torch import Tensor

from perception.registry import MODELS


class _SEPCFeaturesMixin:
    """Routes the (cls_feat, loc_feat) pair of one SEPC level to the two output convs."""

    def forward_single(self, x: Tuple[Tensor, Tensor]) -> Tuple[Tensor, Tensor]:
        """Args: ``x`` = (cls_feat, loc_feat), each (N, C, H, W).

        Returns: cls scores (N, A * num_classes, H, W) and box deltas (N, A * 4, H, W).
        """
        if self.stacked_convs != 0:
            raise ValueError('heads fed by SEPC take stacked_convs=0: the neck replaces the towers')
        cls_feat, loc_feat = x
        return self.retina_cls(cls_feat), self.retina_reg(loc_feat)


@MODELS.register_module()
class SEPCRetinaHead(_SEPCFeaturesMixin, RetinaHead):
    """mmdet's RetinaHead reading SEPC's separate cls / loc features."""


@MODELS.register_module()
class SEPCFreeAnchorRetinaHead(_SEPCFeaturesMixin, FreeAnchorRetinaHead):
    """mmdet's FreeAnchorRetinaHead reading SEPC's separate cls / loc features."""
