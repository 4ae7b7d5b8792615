"""SSD head that predicts on mmdet 3.3.0.

Everything of SSD comes from mmdet: the ``SSDVGG`` backbone, the ``SSDNeck`` (L2Norm on conv4_3, extra
levels), ``SSDHead`` (3x3 cls/reg convs, softmax CE with 3:1 hard-negative mining, Smooth-L1),
``SSDAnchorGenerator``, ``MaxIoUAssigner``, ``DeltaXYWHBBoxCoder`` and the NMS post-processing of
``BaseDenseHead``. This file only fixes inference: ``BaseDenseHead._predict_by_feat_single`` reads
``self.loss_cls``, which ``SSDHead`` never sets because it computes its softmax CE inline, so
``predict`` (validation, test, inference) raises ``AttributeError`` (open-mmlab/mmdetection issues
#11305 and #11780; the fix of PR #11524 was not merged).
"""
from mmdet.models.dense_heads import SSDHead as MMDetSSDHead

from perception.registry import MODELS


@MODELS.register_module()
class SSDHead(MMDetSSDHead):
    """mmdet's SSDHead, with the missing ``loss_cls`` that its prediction path looks up.

    ``None`` says there is no classification-loss module with custom channels, so scores are the
    softmax over the C + 1 logits without the background column, which is how SSD is trained.
    """

    loss_cls = None
