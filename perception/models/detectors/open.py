"""OPEN (Hou, Liu, Zhou, Lin, Wang, Liu, Li, Bai, Wang: "OPEN: Object-wise Position Embedding for Multi-view 3D
Object Detection", ECCV 2024).

Idea: PETR-style detectors embed every image token at the 3D points of its camera ray (a frustum of depths),
leaving the decoder to guess where along the ray the object is. OPEN predicts, per token, the projected centre
and the depth of the object the token belongs to, lifts that centre to 3D and embeds the token there: one
3D point per token, the object's centre (Sec. 3.3, the object-wise position embedding). The depth comes from a
pixel-wise depth net refined by an object-wise depth encoder (Sec. 3.2); the decoder is StreamPETR's.

Where each piece lives:
- pixel depth (camera-aware depth net, 16 uniform bins fused with a direct depth):
  :mod:`perception.models.layers.camera_aware_depth_net`;
- object-wise depth encoder (3D deformable sampling over the current and previous frame on the project's MSDA
  op): :mod:`perception.models.layers.object_depth_encoder`;
- the 2D object branch (FCOS-like, object-centre depth) and the depth supervision:
  :mod:`perception.models.dense_heads.open_object_head`;
- the object-wise position embedding: :class:`ObjectWisePositionEmbedding` here;
- the temporal decoder, memory queue, denoising and the 3D losses (DepthFocalLoss with OPEN's localisation
  score): :mod:`perception.models.dense_heads.streampetr_head`,
  :mod:`perception.models.layers.petr_temporal_decoder`, :mod:`perception.models.losses.depth_focal_loss`;
- the box codes and the NMS-free decoding: :mod:`perception.models.task_modules.nms_free_bbox_coder`.

With ``img_roi_head=None`` and the frustum position embedding the same detector is StreamPETR.
"""
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
from mmdet.models.layers.transformer import inverse_sigmoid
from mmdet3d.models.detectors import Base3DDetector
from mmdet3d.structures import Det3DDataSample
from mmengine.structures import InstanceData
from torch import Tensor, nn

from perception.models.builder import build_backbone
from perception.models.dense_heads.open_object_head import lidar_depth_maps
from perception.models.layers.position_embedding_3d import lift_points, mlp, normalize_points, pos2posemb3d
from perception.registry import MODELS


def lift_object_centers(centers: Tensor, depths: Tensor, lidar2img: Tensor) -> Tensor:
    """LiDAR-frame object centres ``inv(lidar2img) @ [u d, v d, d, 1]`` of (N, K, 2) pixel centres with (N, K)
    depths (metres), for (N, 4, 4) projections: (N, K, 3)."""
    return lift_points(centers, depths, torch.linalg.inv(lidar2img))


@MODELS.register_module()
class ObjectWisePositionEmbedding(nn.Module):
    """OPEN's position embedding of the image tokens: ``MLP(pos2posemb3d(inverse_sigmoid(norm(P_c))))`` with
    ``P_c`` the lifted predicted centre of the token's object. As in the official code the centres are not
    detached: the decoder's losses reach the 2D branch's centres and depths through the embedding.

    Args:
        embed_dims: channels.
        position_range: (x_min, y_min, z_min, x_max, y_max, z_max) normalising the centres, metres.
    """

    def __init__(self, embed_dims: int = 256,
                 position_range: Sequence[float] = (-61.2, -61.2, -10.0, 61.2, 61.2, 10.0)) -> None:
        super().__init__()
        self.embed_dims = embed_dims
        self.position_range = tuple(position_range)
        self.encoder = mlp(3 * (embed_dims // 2), embed_dims, embed_dims)

    def forward(self, lidar2img: Tensor, object_centers: Tensor, object_depths: Tensor, **kwargs) -> Tensor:
        """(N, 4, 4) projections, (N, K, 2) pixel centres, (N, K) depths -> (N, K, C) embeddings."""
        if object_centers is None:
            raise ValueError('ObjectWisePositionEmbedding needs the object centres of the 2D branch '
                             '(an img_roi_head)')
        centres = lift_object_centers(object_centers, object_depths, lidar2img)
        normalized = normalize_points(centres, self.position_range).clamp(0, 1)
        return self.encoder(pos2posemb3d(inverse_sigmoid(normalized), self.embed_dims // 2))


@MODELS.register_module()
class OPEN(Base3DDetector):
    """Streaming multi-view 3D detector: backbone, FPN, OPEN's image head (depth and 2D objects) and the
    StreamPETR head with the object-wise position embedding.

    Inputs per sample: ``imgs`` (V, 3, H, W) and, for the depth supervision in training, ``points``; metainfo
    ``lidar2img``, ``cam2img`` (V, 4, 4), ``lidar2global`` (4, 4), ``timestamp`` (s) and ``prev_exists`` (as
    ``PackMultiViewInputs`` packs them). The heads keep the previous frame (memory queue, features) between
    calls: samples of a batch slot must come in time order (``StreamBatchSampler``; test batches of one).

    Args:
        backbone: image backbone config; pretrained weights from a local ``init_cfg``.
        neck: neck config.
        pts_bbox_head: :class:`StreamPETRHead` config.
        img_roi_head: :class:`OPENObjectHead` config (None: StreamPETR).
        feat_level: the neck output used (stride 16).
        train_cfg, test_cfg: unused (the heads take their settings).
        data_preprocessor: ``Det3DDataPreprocessor`` config.
        init_cfg: mmengine initialisation config.
    """

    def __init__(self,
                 backbone: dict,
                 neck: dict,
                 pts_bbox_head: dict,
                 img_roi_head: Optional[dict] = None,
                 feat_level: int = 0,
                 train_cfg: Optional[dict] = None,
                 test_cfg: Optional[dict] = None,
                 data_preprocessor: Optional[dict] = None,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        self.backbone = build_backbone(backbone, type(self).__name__)
        self.neck = MODELS.build(neck)
        self.pts_bbox_head = MODELS.build(pts_bbox_head)
        self.img_roi_head = MODELS.build(img_roi_head) if img_roi_head is not None else None
        self.feat_level = feat_level

    def extract_feat(self, batch_inputs_dict: Dict[str, Tensor]) -> Tensor:
        """(B, V, C, h, w) stride-16 features of ``imgs`` (B, V, 3, H, W)."""
        imgs = batch_inputs_dict['imgs']
        feats = self.neck(self.backbone(imgs.flatten(0, 1)))[self.feat_level]
        return feats.unflatten(0, imgs.shape[:2])

    @staticmethod
    def camera_inputs(batch_data_samples: List[Det3DDataSample], device) -> Dict[str, Tensor]:
        """The matrices, poses and times of the batch as tensors."""
        metas = [sample.metainfo for sample in batch_data_samples]

        def stack(key: str, dtype: torch.dtype) -> Tensor:
            return torch.as_tensor(np.stack([np.asarray(m[key]) for m in metas]), dtype=dtype, device=device)

        return dict(lidar2img=stack('lidar2img', torch.float32), cam2img=stack('cam2img', torch.float32),
                    lidar2global=stack('lidar2global', torch.float64), timestamp=stack('timestamp', torch.float64),
                    prev_exists=torch.tensor([bool(m.get('prev_exists', False)) for m in metas], device=device))

    def forward_heads(self, batch_inputs_dict: Dict[str, Tensor], batch_data_samples: List[Det3DDataSample],
                      gt_instances: Optional[List[InstanceData]] = None) -> Tuple[Dict[str, Tensor], Optional[dict],
                                                                                  dict]:
        """Features, the image head (if any) and the decoder: (decoder outputs, image-head outputs, cameras)."""
        feats = self.extract_feat(batch_inputs_dict)
        image_size = tuple(batch_inputs_dict['imgs'].shape[-2:])
        cams = self.camera_inputs(batch_data_samples, feats.device)
        cams['image_size'] = image_size
        obj_outputs, centres, depths = None, None, None
        if self.img_roi_head is not None:
            obj_outputs = self.img_roi_head(feats.flatten(0, 1), cams['cam2img'].flatten(0, 1), image_size,
                                            cams['prev_exists'])
            centres, depths = self.img_roi_head.decode_centers(obj_outputs, image_size)
        outputs = self.pts_bbox_head(feats, cams['lidar2img'], image_size, cams['lidar2global'], cams['timestamp'],
                                     cams['prev_exists'], centres, depths, gt_instances)
        return outputs, obj_outputs, cams

    def loss(self, batch_inputs_dict: Dict[str, Tensor], batch_data_samples: List[Det3DDataSample],
             **kwargs) -> Dict[str, Tensor]:
        """3D losses of every decoder layer, and the image head's 2D and depth losses."""
        gt_3d = [sample.gt_instances_3d for sample in batch_data_samples]
        outputs, obj_outputs, cams = self.forward_heads(batch_inputs_dict, batch_data_samples, gt_3d)
        losses = self.pts_bbox_head.loss(outputs, gt_3d)
        if self.img_roi_head is not None:
            views = cams['lidar2img'].shape[1]
            gt_views = []
            for sample in batch_data_samples:
                gt = sample.gt_instances
                gt_views += [gt[gt.view_idx == v] for v in range(views)]
            depth_maps = None
            if batch_inputs_dict.get('points') is not None:
                feat_size = tuple(obj_outputs['pixel_depth'].shape[-2:])
                depth_maps = torch.cat([
                    lidar_depth_maps(points, lidar2img, cams['image_size'], feat_size)
                    for points, lidar2img in zip(batch_inputs_dict['points'], cams['lidar2img'])])
            losses.update(self.img_roi_head.loss(obj_outputs, gt_views, depth_maps, cams['image_size']))
        return losses

    def predict(self, batch_inputs_dict: Dict[str, Tensor], batch_data_samples: List[Det3DDataSample],
                **kwargs) -> List[Det3DDataSample]:
        """LiDAR-frame detections (``pred_instances_3d``: boxes with velocity, scores, labels)."""
        outputs, _, _ = self.forward_heads(batch_inputs_dict, batch_data_samples)
        return self.add_pred_to_datasample(batch_data_samples, self.pts_bbox_head.predict_by_feat(outputs))

    def _forward(self, batch_inputs_dict: Dict[str, Tensor],
                 batch_data_samples: Optional[List[Det3DDataSample]] = None, **kwargs) -> Dict[str, Tensor]:
        """The decoder's raw per-layer outputs (no decoding)."""
        return self.forward_heads(batch_inputs_dict, batch_data_samples)[0]

    def reset_memory(self) -> None:
        """Forget the previous frames (the next batch starts new runs)."""
        self.pts_bbox_head.reset_memory()
        if self.img_roi_head is not None:
            self.img_roi_head.reset_memory()
