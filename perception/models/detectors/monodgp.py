"""MonoDGP (Pu, Wang, Deng, Yang: "MonoDGP: Monocular 3D Object Detection with Decoupled-Query and
Geometry-Error Priors", CVPR 2025).

Idea: MonoDETR with three changes. Depth is the pinhole estimate ``f * H_3D / h_2D`` corrected by a
learned geometry error, instead of an average of three estimates. The queries are decoupled: a visual-only
2D decoder finds the objects first, and its last hidden states and refined boxes start the depth-aware 3D
decoder. A region segmentation head predicts a foreground probability per feature level, which weights
the features and marks the foreground for the depth predictor.

Where each change lives (everything else is MonoDETR's, :mod:`perception.models.detectors.monodetr` and
the modules it names):

- the geometry-error depth ``d = f * H_3D / h_2D + delta``, with ``h_2D`` and ``H_3D`` not detached, in
  the same Laplacian loss ``sqrt(2) exp(-s) |d - d*| + s``, and the 2D decoder's losses:
  :mod:`perception.models.dense_heads.monodgp_head` (``geometry_error_depth``, ``MonoDGPHead``);
- the region segmentation head, its Dice loss and targets:
  :mod:`perception.models.dense_heads.region_seg_head` (``RegionSegHead``, ``region_targets``); this
  detector weights the features by it and adds its segment embedding to the depth predictor's
  positional encoding (:meth:`MonoDGP.forward_features`);
- the decoupled queries, the 2D decoder and its hand-off to MonoDETR's depth-aware decoder (no query
  position): :mod:`perception.models.layers.monodgp_transformer` (``Det2DDecoder``,
  ``MonoDGPTransformer``, which overrides the transformer's ``forward_decoder`` step). Both decoders
  share the per-layer class and box branches of the head; the 2D decoder's layers get their own
  classification, projected-centre, box-side and GIoU losses.
"""
from typing import Dict, List

from mmdet3d.structures import Det3DDataSample
from torch import Tensor

from perception.models.dense_heads.region_seg_head import region_boxes
from perception.registry import MODELS
from .monodetr import MonoDETR


@MODELS.register_module()
class MonoDGP(MonoDETR):
    """Monocular 3D detector: backbone, neck to 4 levels, region segmentation head, depth predictor,
    2D then 3D decoder, head.

    Args:
        region_head: :class:`RegionSegHead` config.
        **kwargs: as :class:`MonoDETR` (``transformer`` a :class:`MonoDGPTransformer`, ``bbox_head`` a
            :class:`MonoDGPHead`, ``depth_predictor`` without the depth positional embedding).
    """

    def __init__(self, region_head: dict, **kwargs) -> None:
        super().__init__(**kwargs)
        self.region_head = MODELS.build(region_head)
        num_branches = self.bbox_head.num_pred_layers
        if self.transformer.decoder.num_layers != num_branches or self.transformer.decoder_2d.num_layers > num_branches:
            raise ValueError(f'the head has {num_branches} branch sets: the 3D decoder needs as many layers and the '
                             f'2D decoder at most as many (got {self.transformer.decoder.num_layers} and '
                             f'{self.transformer.decoder_2d.num_layers})')

    def forward_features(self, batch_inputs_dict: Dict[str, Tensor], num_groups: int) -> Dict[str, object]:
        """Features, region head, depth predictor and both decoders: the head's inputs.

        Returns:
            ``hidden_states`` (L3, B, G * Q, C) and ``references`` of the 3D decoder,
            ``hidden_states_2d`` (L2, B, G * Q, C) and ``references_2d`` of the 2D decoder (see
            :meth:`MonoDGPTransformer.forward_decoder`), ``region_probs`` (L maps (B, 1, H_l, W_l)),
            ``depth_logits`` (B, N + 1, H_d, W_d), ``weighted_depth`` (B, H_d, W_d) and ``img_size`` (H, W).
        """
        mlvl_feats, region_probs, seg_embeds = self.region_head(self.extract_feat(batch_inputs_dict))
        mlvl_pos_embeds = self.positional_encodings(mlvl_feats)
        depth_logits, depth_embed, weighted_depth = self.depth_predictor(mlvl_feats,
                                                                         mlvl_pos_embeds[1] + seg_embeds[1])
        head_inputs_dict = self.transformer(mlvl_feats, mlvl_pos_embeds, depth_embed, num_groups=num_groups,
                                            reg_branches=self.bbox_head.reg_branches)
        return dict(head_inputs_dict, region_probs=region_probs, depth_logits=depth_logits,
                    weighted_depth=weighted_depth, img_size=tuple(batch_inputs_dict['imgs'].shape[-2:]))

    def loss(self, batch_inputs_dict: Dict[str, Tensor], batch_data_samples: List[Det3DDataSample],
             **kwargs) -> Dict[str, Tensor]:
        """Losses of a training batch, with all ``num_groups`` query groups: the 3D decoder's, the 2D
        decoder's (``d2d{l}.``), the depth map's and the region head's."""
        head_inputs_dict = self.forward_features(batch_inputs_dict, self.num_groups)
        region_probs = head_inputs_dict.pop('region_probs')
        losses = self.bbox_head.loss(**head_inputs_dict, batch_data_samples=batch_data_samples,
                                     num_groups=self.num_groups)
        losses.update(self.region_head.loss(region_probs, [region_boxes(sample) for sample in batch_data_samples],
                                            head_inputs_dict['img_size']))
        return losses

    def raw_outputs(self, head_inputs_dict: Dict[str, object], batch_img_metas: List[dict]) -> Dict[str, Tensor]:
        """:meth:`MonoDETR.raw_outputs` plus the 2D decoder's layers (``cls_scores_2d`` and ``boxes_2d``,
        see :meth:`MonoDGPHead.forward_2d`) and the region probabilities ``region_probs`` (L maps)."""
        outputs = super().raw_outputs(head_inputs_dict, batch_img_metas)
        outputs_2d = self.bbox_head.forward_2d(head_inputs_dict['hidden_states_2d'], head_inputs_dict['references_2d'])
        return dict(outputs, cls_scores_2d=outputs_2d['cls_scores'], boxes_2d=outputs_2d['boxes'],
                    region_probs=head_inputs_dict['region_probs'])
