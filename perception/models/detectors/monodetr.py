"""MonoDETR (Zhang, Qiu, Wang, Guo, Tang, Xu, Cui, Qiao, Li, Gao: "MonoDETR: Depth-guided Transformer for
Monocular 3D Object Detection", ICCV 2023).

Idea: a DETR whose object queries are guided by depth. A light depth predictor, supervised only by the
object-wise depth of the 2D boxes (no LiDAR), yields depth embeddings; every decoder layer first lets the
queries read them (depth cross-attention) before the visual features, and each object's depth is the
mean of a regressed, a geometric and a depth-map estimate.

Where each equation lives:
- depth bins (LID) and the depth predictor with its interpolated depth positional embedding:
  :mod:`perception.models.layers.depth_bins`, :mod:`perception.models.layers.depth_predictor`;
- visual encoder and depth-aware decoder, Group-DETR queries, 6-D reference boxes:
  :mod:`perception.models.layers.depthaware_transformer`;
- the heads and the depth fusion ``d = (d_reg + d_geo + d_map) / 3``:
  :mod:`perception.models.dense_heads.monodetr_head`;
- the box parametrisation (targets, decoding into camera-frame 3D boxes and 2D boxes):
  :mod:`perception.models.task_modules.monodetr_bbox_coder`;
- losses: :mod:`perception.models.losses` (``DDNLoss``, ``LaplacianDepthLoss``,
  ``DimAwareL1Loss``, ``MultiBinLoss``) and mmdet's focal, L1 and GIoU losses; matching:
  :mod:`perception.models.task_modules.group_hungarian_assigner`.
"""
from typing import Dict, List, Optional, Tuple, Union

import torch
from mmdet.models.layers import SinePositionalEncoding
from mmdet3d.models.detectors import Base3DDetector
from mmdet3d.structures import Det3DDataSample
from torch import Tensor

from perception.models.builder import build_backbone
from perception.registry import MODELS


@MODELS.register_module()
class MonoDETR(Base3DDetector):
    """Monocular 3D detector: backbone, neck to 4 levels, depth predictor, depth-aware transformer, head.

    Args:
        backbone: backbone config giving 3 levels at strides 8, 16, 32 (e.g. ``mmdet.ResNet`` with
            ``out_indices=(1, 2, 3)``); pretrained weights load from a local file through its
            ``init_cfg=dict(type='Pretrained', checkpoint=PATH)`` (torchvision or mmdet ResNet key names).
            Without one it starts from a random initialisation, with a warning.
        neck: neck config mapping them to 4 levels of ``embed_dims`` channels (``mmdet.ChannelMapper``
            with one extra stride-2 level).
        positional_encoding: keyword arguments of mmdet's ``SinePositionalEncoding``.
        depth_predictor: :class:`DepthPredictor` config.
        transformer: :class:`DepthAwareTransformer` config.
        bbox_head: :class:`MonoDETRHead` config.
        train_cfg, test_cfg: merged into the head's.
        data_preprocessor: ``Det3DDataPreprocessor`` config.
        init_cfg: mmengine initialisation config.
    """

    def __init__(self,
                 backbone: dict,
                 neck: dict,
                 positional_encoding: dict,
                 depth_predictor: dict,
                 transformer: dict,
                 bbox_head: dict,
                 train_cfg: Optional[dict] = None,
                 test_cfg: Optional[dict] = None,
                 data_preprocessor: Optional[dict] = None,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        self.backbone = build_backbone(backbone, type(self).__name__)
        self.neck = MODELS.build(neck)
        self.positional_encoding = SinePositionalEncoding(**positional_encoding)
        self.depth_predictor = MODELS.build(depth_predictor)
        self.transformer = MODELS.build(transformer)
        if train_cfg is not None:
            bbox_head = dict(bbox_head, train_cfg=train_cfg)
        if test_cfg is not None:
            bbox_head = dict(bbox_head, test_cfg=test_cfg)
        self.bbox_head = MODELS.build(bbox_head)
        self.num_groups = self.transformer.num_groups

    def extract_feat(self, batch_inputs_dict: Dict[str, Tensor]) -> List[Tensor]:
        """The 4 feature levels (B, C, H_l, W_l) of ``batch_inputs_dict['imgs']`` (B, 3, H, W)."""
        return list(self.neck(self.backbone(batch_inputs_dict['imgs'])))

    def positional_encodings(self, mlvl_feats: List[Tensor]) -> List[Tensor]:
        """Sine positional encoding (B, C, H_l, W_l) of each level (nothing is padded)."""
        return [
            self.positional_encoding(feat.new_zeros((feat.shape[0], ) + feat.shape[-2:], dtype=torch.bool))
            for feat in mlvl_feats
        ]

    def forward_features(self, batch_inputs_dict: Dict[str, Tensor], num_groups: int) -> Dict[str, object]:
        """Features, depth predictor and transformer: the head's inputs.

        Returns:
            ``hidden_states`` (L, B, G * Q, C) and ``references`` of the decoder (see
            :meth:`DepthAwareTransformer.forward_decoder`), ``depth_logits`` (B, N + 1, H_d, W_d),
            ``weighted_depth`` (B, H_d, W_d) and ``img_size``, the input size (H, W).
        """
        mlvl_feats = self.extract_feat(batch_inputs_dict)
        mlvl_pos_embeds = self.positional_encodings(mlvl_feats)
        depth_logits, depth_embed, weighted_depth = self.depth_predictor(mlvl_feats, mlvl_pos_embeds[1])
        head_inputs_dict = self.transformer(mlvl_feats, mlvl_pos_embeds, depth_embed, num_groups=num_groups,
                                            reg_branches=self.bbox_head.reg_branches)
        return dict(head_inputs_dict, depth_logits=depth_logits, weighted_depth=weighted_depth,
                    img_size=tuple(batch_inputs_dict['imgs'].shape[-2:]))

    def loss(self, batch_inputs_dict: Dict[str, Tensor], batch_data_samples: List[Det3DDataSample],
             **kwargs) -> Dict[str, Tensor]:
        """Losses of a training batch, with all ``num_groups`` query groups."""
        head_inputs_dict = self.forward_features(batch_inputs_dict, self.num_groups)
        return self.bbox_head.loss(**head_inputs_dict, batch_data_samples=batch_data_samples,
                                   num_groups=self.num_groups)

    def predict(self, batch_inputs_dict: Dict[str, Tensor], batch_data_samples: List[Det3DDataSample],
                **kwargs) -> List[Det3DDataSample]:
        """Detections of the first query group, set as ``pred_instances_3d`` (camera frame of the
        original image) and ``pred_instances`` (2D boxes in original pixels) of each data sample."""
        head_inputs_dict = self.forward_features(batch_inputs_dict, 1)
        results_3d, results_2d = self.bbox_head.predict(
            head_inputs_dict['hidden_states'], head_inputs_dict['references'], head_inputs_dict['weighted_depth'],
            batch_data_samples, head_inputs_dict['img_size'])
        return self.add_pred_to_datasample(batch_data_samples, results_3d, results_2d)

    def raw_outputs(self, head_inputs_dict: Dict[str, object], batch_img_metas: List[dict]) -> Dict[str, Tensor]:
        """The head's per-layer outputs (see :meth:`MonoDETRHead.forward`) with ``depth_logits`` and
        ``weighted_depth``, from what :meth:`forward_features` returns."""
        weighted_depth, img_size = head_inputs_dict['weighted_depth'], head_inputs_dict['img_size']
        outputs = self.bbox_head(head_inputs_dict['hidden_states'], head_inputs_dict['references'], weighted_depth,
                                 self.bbox_head.focal_lengths(batch_img_metas, weighted_depth), img_size,
                                 self.bbox_head.box_height_scales(batch_img_metas, weighted_depth, img_size))
        return dict(outputs, depth_logits=head_inputs_dict['depth_logits'], weighted_depth=weighted_depth)

    def _forward(self, batch_inputs_dict: Dict[str, Tensor],
                 batch_data_samples: Optional[List[Det3DDataSample]] = None,
                 **kwargs) -> Union[Tuple[Tensor, ...], Dict[str, Tensor]]:
        """Raw per-layer outputs of the first query group (no decoding), :meth:`raw_outputs`; the cameras
        of the data samples give the geometric depth (:meth:`MonoDETRHead.focal_lengths`)."""
        return self.raw_outputs(self.forward_features(batch_inputs_dict, 1),
                                [sample.metainfo for sample in batch_data_samples])
