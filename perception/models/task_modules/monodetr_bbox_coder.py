"""The box parametrisation of MonoDETR and MonoDGP (Zhang et al., ICCV 2023; Pu et al., CVPR 2025).

A query predicts, in the input image:

- the 6-D box ``(x, y, l, r, t, b)``: the projected 3D centre and the distances to the 2D box sides,
  normalised by the input size. Pixel centres are at integer coordinates (the KITTI convention), so a
  pixel ``u`` normalises to ``(u + 0.5) / W``: 0 and 1 are the image edges, as for
  ``grid_sample(align_corners=False)`` and the deformable attention;
- the depth of the projected centre, metres (the head fuses it from its estimates; the regressed one is
  ``1 / (sigmoid(o) + 1e-6) - 1``);
- the 3D size ``(l, h, w)`` in metres, regressed directly: the official configs set ``meanshape: False``,
  so their class-mean size anchors are zero;
- the observation angle ``alpha`` as ``K`` MultiBin bin logits and ``K`` residuals (:mod:`.multibin_loss`),
  of the ray through the 3D centre (the official code takes the ray through the 2D box centre).

:class:`MonoDETRBBoxCoder` encodes the ground truth into these targets and decodes predictions into
camera-frame 3D boxes and 2D boxes; heads, assigners and losses read the same parametrisation.
"""
from typing import Optional, Tuple

import torch
from mmdet.models.task_modules import BaseBBoxCoder
from mmdet3d.structures import CameraInstance3DBoxes
from mmengine.structures import InstanceData
from torch import Tensor

from perception.models.losses import decode_heading
from perception.registry import TASK_UTILS
from perception.structures import alpha_to_yaw, transform_boxes_2d, unproject_points, wrap_angle, yaw_to_alpha


def boxes6d_to_xyxy(boxes: Tensor) -> Tensor:
    """(..., 6) ``(x, y, l, r, t, b)`` to (..., 4) ``(x - l, y - t, x + r, y + b)``."""
    x, y, left, right, top, bottom = boxes.unbind(-1)
    return torch.stack([x - left, y - top, x + right, y + bottom], dim=-1)


@TASK_UTILS.register_module()
class MonoDETRBBoxCoder(BaseBBoxCoder):
    """Encode mono-3D ground truth into MonoDETR's targets and decode its predictions.

    Args:
        num_heading_bins: MultiBin bins K of the observation angle.
        min_size: decoded 3D sizes are clamped to at least this, metres (untrained heads can output
            non-positive sizes, which box overlaps cannot take).
    """

    def __init__(self, num_heading_bins: int = 12, min_size: float = 1e-2) -> None:
        super().__init__()
        self.num_heading_bins = num_heading_bins
        self.min_size = min_size

    @staticmethod
    def normalize(points: Tensor, img_size: Tuple[int, int]) -> Tensor:
        """(..., 2k) pixel coordinates (u, v, ...) of the input image to its normalised coordinates."""
        height, width = img_size
        scale = torch.tensor([width, height], dtype=torch.float32, device=points.device)
        return (points + 0.5) / scale.repeat(points.shape[-1] // 2)

    @staticmethod
    def denormalize(points: Tensor, img_size: Tuple[int, int]) -> Tensor:
        """Inverse of :meth:`normalize`."""
        height, width = img_size
        scale = points.new_tensor([width, height])
        return points * scale.repeat(points.shape[-1] // 2) - 0.5

    @staticmethod
    def box_heights(boxes: Tensor, img_height: int) -> Tensor:
        """(...) heights ``(t + b) H`` of normalised 6-D boxes (..., 6), pixels."""
        return (boxes[..., 4] + boxes[..., 5]) * img_height

    @staticmethod
    def decode_depth(logit: Tensor) -> Tensor:
        """Directly regressed depth ``1 / (sigmoid(o) + 1e-6) - 1`` (metres) from a logit ``o``."""
        return 1. / (logit.sigmoid() + 1e-6) - 1.

    def encode(self, gt_instances_3d: InstanceData, gt_instances: InstanceData,
               img_size: Tuple[int, int]) -> InstanceData:
        """Training targets of one image.

        Args:
            gt_instances_3d: ``bboxes_3d`` (CameraInstance3DBoxes), ``labels_3d``, ``centers_2d`` (pixels)
                and ``depths`` (metres).
            gt_instances: the same objects' 2D ``bboxes`` (x1, y1, x2, y2 pixels).
            img_size: (H, W) of the input tensor.

        Returns:
            N objects with ``labels``, normalised ``centers_2d`` (N, 2), ``lrtb`` (N, 4) and ``bboxes``
            (N, 4) xyxy, ``depths`` (N,) metres, ``dims`` (N, 3) l, h, w metres, ``alphas`` (N,) radians in
            ``[-pi, pi)`` and ``pixel_bboxes`` (N, 4) input pixels.
        """
        if len(gt_instances_3d) != len(gt_instances):
            raise ValueError(f'{len(gt_instances_3d)} 3D objects but {len(gt_instances)} 2D boxes: '
                             'the 2D and 3D annotations must list the same objects')
        labels = gt_instances_3d.labels_3d
        device = labels.device
        pixel_bboxes = gt_instances.bboxes.to(device=device, dtype=torch.float32).reshape(-1, 4)
        centers = self.normalize(
            gt_instances_3d.centers_2d.to(device=device, dtype=torch.float32).reshape(-1, 2), img_size)
        bboxes = self.normalize(pixel_bboxes, img_size)
        # A centre outside its box (dropped by the pipeline's filter) would give negative sides.
        lrtb = torch.stack([centers[:, 0] - bboxes[:, 0], bboxes[:, 2] - centers[:, 0],
                            centers[:, 1] - bboxes[:, 1], bboxes[:, 3] - centers[:, 1]], dim=-1).clamp(min=0)
        boxes_3d = gt_instances_3d.bboxes_3d.tensor.to(device=device, dtype=torch.float32)
        return InstanceData(
            labels=labels.long(), centers_2d=centers, lrtb=lrtb,
            bboxes=boxes6d_to_xyxy(torch.cat([centers, lrtb], 1)),
            depths=gt_instances_3d.depths.to(device=device, dtype=torch.float32).reshape(-1),
            dims=boxes_3d[:, 3:6], alphas=yaw_to_alpha(boxes_3d[:, 6], boxes_3d[:, 0], boxes_3d[:, 2]),
            pixel_bboxes=pixel_bboxes)

    def decode(self, boxes: Tensor, depths: Tensor, dims: Tensor, angles: Tensor, cam2img: Tensor,
               img_size: Tuple[int, int],
               img_aug_matrix: Optional[Tensor] = None) -> Tuple[CameraInstance3DBoxes, Tensor]:
        """3D and 2D boxes of N predictions of one image.

        Args:
            boxes: (N, 6) normalised 6-D boxes.
            depths: (N,) depths of the projected centres, metres.
            dims: (N, 3) sizes l, h, w, metres.
            angles: (N, 2K) MultiBin logits and residuals of the observation angle.
            cam2img: (4, 4) projection of the input image.
            img_size: (H, W) of the input tensor.
            img_aug_matrix: (3, 3) pixel transform from the original image to the input (float64); the
                2D boxes are mapped back through it. None leaves them in input pixels.

        Returns:
            ``bboxes_3d`` in the camera frame of ``cam2img`` and (N, 4) 2D boxes x1, y1, x2, y2, pixels.
        """
        gravity_centers = unproject_points(torch.cat([self.denormalize(boxes[:, :2], img_size), depths[:, None]],
                                                     dim=-1), cam2img)
        alphas = decode_heading(angles, self.num_heading_bins)
        yaws = alpha_to_yaw(alphas, gravity_centers[:, 0], gravity_centers[:, 2])
        bboxes_3d = CameraInstance3DBoxes(
            torch.cat([gravity_centers, dims.clamp(min=self.min_size), yaws[:, None]], dim=-1), box_dim=7,
            origin=(0.5, 0.5, 0.5))
        bboxes_2d = self.denormalize(boxes6d_to_xyxy(boxes), img_size)
        if img_aug_matrix is not None:
            bboxes_2d = transform_boxes_2d(bboxes_2d.double(), torch.linalg.inv(img_aug_matrix)).to(boxes)
        return bboxes_3d, bboxes_2d

    def decode_official(self, boxes: Tensor, depths: Tensor, dims: Tensor, angles: Tensor, cam2img: Tensor,
                        ori_size: Tuple[int, int]) -> Tuple[CameraInstance3DBoxes, Tensor, Tensor]:
        """Decode N predictions of one image as the official testers do (``decode_detections``).

        Unlike :meth:`decode`, it reads the normalised coordinates as fractions of the original image,
        without undoing the resize and crop of the input (on KITTI the input shows 372.6 of the 375 rows,
        so rows are off by up to 1.2 pixels) and without the half-pixel shift; it lifts the projected
        centre with ``x = (u - c_u) z / f_u + t_x``, ``y = (v - c_v) z / f_v + t_y``, ``z = d``
        (``t = -P[:2, 3] / f``, ignoring ``P[2, 3]``); it turns the observation angle into the yaw
        through the ray of the 2D box centre, ``ry = alpha + atan2(u_2d - c_u, f_u)``, instead of the
        3D centre's; and it keeps the sizes as predicted. Computed in float64, as the official numpy code.

        Args:
            boxes: (N, 6) normalised 6-D boxes.
            depths: (N,) depths of the projected centres, metres.
            dims: (N, 3) sizes l, h, w, metres.
            angles: (N, 2K) MultiBin logits and residuals of the observation angle.
            cam2img: (4, 4) projection of the original image (KITTI's ``P2``, unadjusted).
            ori_size: (H, W) of the original image.

        Returns:
            ``bboxes_3d`` in the camera frame of ``cam2img``, (N, 4) 2D boxes x1, y1, x2, y2 in original
            pixels and (N,) observation angles, radians.
        """
        height, width = ori_size
        cam2img = cam2img.double()
        fu, fv, cu, cv = cam2img[0, 0], cam2img[1, 1], cam2img[0, 2], cam2img[1, 2]
        scale = boxes.new_tensor([width, height], dtype=torch.float64)
        centers = boxes[:, :2].double() * scale
        bboxes_2d = boxes6d_to_xyxy(boxes).double() * scale.repeat(2)
        depths = depths.double()
        x = (centers[:, 0] - cu) * depths / fu - cam2img[0, 3] / fu
        y = (centers[:, 1] - cv) * depths / fv - cam2img[1, 3] / fv
        alphas = decode_heading(angles, self.num_heading_bins).double()
        yaws = wrap_angle(alphas + torch.atan2((bboxes_2d[:, 0] + bboxes_2d[:, 2]) / 2 - cu, fu))
        bboxes_3d = CameraInstance3DBoxes(
            torch.cat([torch.stack([x, y, depths], -1), dims.double(), yaws[:, None]], dim=-1).to(boxes), box_dim=7,
            origin=(0.5, 0.5, 0.5))
        return bboxes_3d, bboxes_2d.to(boxes), alphas.to(boxes)
