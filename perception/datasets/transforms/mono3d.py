"""Monocular 3D detection transforms that keep the image, the labels and the camera matrix consistent.

Every geometric transform here is a 3x3 pixel transform A (see :mod:`perception.structures.camera`): it warps the
image, maps 2D boxes and projected centres by A, turns ``cam2img`` into ``A @ cam2img`` and composes A into
``results['img_aug_matrix']`` (original image pixels -> current pixels). Projecting the 3D boxes with the new
``cam2img`` therefore lands exactly on the transformed labels, and depths stay metric. mmdet3d's ``RandomFlip3D``,
``Resize3D`` and ``AffineResize`` are not used because they move ``cam2img`` by half a pixel (or not at all) and
ignore the baseline column of KITTI's ``P2``.

Result keys read and written: ``img`` (H, W, 3), ``img_shape``, ``cam2img`` (4, 4) float64, ``img_aug_matrix``
(3, 3) float64, ``gt_bboxes`` (N, 4) pixels, ``centers_2d`` (N, 2) pixels, ``depths`` (N,) metres,
``gt_bboxes_3d`` :class:`CameraInstance3DBoxes`.
"""
from typing import Optional, Sequence, Tuple

import cv2
import mmcv
import numpy as np
import torch
from mmcv.transforms import BaseTransform
from mmcv.transforms.utils import cache_randomness
from mmdet3d.datasets.transforms import LoadAnnotations3D, Pack3DDetInputs
from mmengine.fileio import get

from perception.registry import TRANSFORMS
from perception.structures import (cam2img_to_4x4, crop_scale_matrix, flip_cam2img, flip_matrix, resize_matrix,
                                   transform_boxes_2d, transform_cam2img, transform_points_2d)

# Per-instance arrays that filters must keep aligned.
INSTANCE_KEYS = ('gt_bboxes', 'gt_bboxes_labels', 'gt_bboxes_3d', 'gt_labels_3d', 'centers_2d', 'depths')


def _move_2d_labels(results: dict, matrix: np.ndarray) -> None:
    """Move 2D boxes and projected centres by a pixel transform and record it in ``img_aug_matrix``."""
    if 'gt_bboxes' in results:
        results['gt_bboxes'] = transform_boxes_2d(results['gt_bboxes'], matrix).astype(np.float32)
    if 'centers_2d' in results:
        results['centers_2d'] = transform_points_2d(results['centers_2d'], matrix).astype(np.float32)
    results['img_aug_matrix'] = matrix @ results.get('img_aug_matrix', np.eye(3))


def _apply_pixel_transform(results: dict, matrix: np.ndarray) -> None:
    """Move the 2D labels and the camera by a pixel transform; the image is warped by the caller."""
    _move_2d_labels(results, matrix)
    results['cam2img'] = transform_cam2img(results['cam2img'], matrix)


@TRANSFORMS.register_module()
class LoadImageMono3D(BaseTransform):
    """Load the image of the default camera and its projection matrix.

    Like mmdet3d's ``LoadImageFromFileMono3D``, which crashes with an ``AttributeError`` on an undecodable image
    and leaves ``cam2img`` a nested list; this one raises naming the file and gives a (4, 4) float64 array.

    Args:
        to_float32: convert the image to float32.
        color_type: ``mmcv.imfrombytes`` flag; 'color' gives BGR uint8 (H, W, 3).
        imdecode_backend: ``mmcv.imfrombytes`` backend.
        backend_args: file backend arguments of ``mmengine.fileio.get``.

    Adds ``img``, ``img_shape``, ``ori_shape`` (H, W), ``cam2img`` and ``ori_cam2img`` (4, 4) and
    ``img_aug_matrix`` (identity).
    """

    def __init__(self, to_float32: bool = False, color_type: str = 'color', imdecode_backend: str = 'cv2',
                 backend_args: Optional[dict] = None) -> None:
        self.to_float32 = to_float32
        self.color_type = color_type
        self.imdecode_backend = imdecode_backend
        self.backend_args = backend_args

    def transform(self, results: dict) -> dict:
        filename = results['img_path']
        img = mmcv.imfrombytes(get(filename, backend_args=self.backend_args), flag=self.color_type,
                               backend=self.imdecode_backend)
        if img is None:
            raise ValueError(f'{filename}: cannot decode the image')
        if self.to_float32:
            img = img.astype(np.float32)
        cam2img = cam2img_to_4x4(np.asarray(results['cam2img'], dtype=np.float64))
        results.update(img=img, img_shape=img.shape[:2], ori_shape=img.shape[:2], cam2img=cam2img,
                       ori_cam2img=cam2img.copy(), img_aug_matrix=np.eye(3))
        return results

    def __repr__(self) -> str:
        return f'{self.__class__.__name__}(to_float32={self.to_float32}, color_type={self.color_type!r})'


@TRANSFORMS.register_module()
class LoadAnnotationsMono3D(LoadAnnotations3D):
    """mmdet3d's ``LoadAnnotations3D`` set up for monocular 3D: 2D and 3D boxes, labels, projected centres and
    depths (the observation angles follow from the 3D boxes, :func:`perception.structures.yaw_to_alpha`).

    Args:
        official_centers: recompute the projected centres and depths as the official MonoDETR and MonoDGP do:
            ``P2`` applied to the gravity centre but divided by its ``z`` instead of the projected depth
            ``z + t_z`` (KITTI's ``t_z`` is 2.7 mm, which moves near centres by up to 0.2 px), and the depth
            taken as ``z``. The default is the exact projection of the info files.
        edge_coordinates: read the label file's 2D boxes and the projections of ``P2`` as coordinates from the
            image's top-left edge (pixel centres at 0.5), as the official code does, and move them, ``cam2img``
            and ``ori_cam2img`` by -0.5 px into the project's convention (pixel centres at integers, KITTI's);
            the image does not move, so ``img_aug_matrix`` stays. The training targets then sit half an input
            pixel from the project's.
        **kwargs: as ``LoadAnnotations3D``.
    """

    def __init__(self, official_centers: bool = False, edge_coordinates: bool = False, **kwargs) -> None:
        defaults = dict(with_bbox=True, with_label=True, with_bbox_3d=True, with_label_3d=True,
                        with_bbox_depth=True)
        super().__init__(**{**defaults, **kwargs})
        self.official_centers = official_centers
        self.edge_coordinates = edge_coordinates

    def transform(self, results: dict) -> dict:
        results = super().transform(results)
        if self.official_centers:
            centers = results['gt_bboxes_3d'].gravity_center.numpy().astype(np.float64)
            projected = np.concatenate([centers, np.ones((len(centers), 1))], axis=1) @ results['cam2img'][:2].T
            results['centers_2d'] = (projected / centers[:, 2:]).astype(np.float32)
            results['depths'] = centers[:, 2].astype(np.float32)
        if self.edge_coordinates:
            results['gt_bboxes'] = results['gt_bboxes'] - np.float32(0.5)
            results['centers_2d'] = results['centers_2d'] - np.float32(0.5)
            shift = np.array([[1., 0., -0.5], [0., 1., -0.5], [0., 0., 1.]])
            for key in ('cam2img', 'ori_cam2img'):
                results[key] = transform_cam2img(results[key], shift)
        return results


@TRANSFORMS.register_module()
class RandomFlipMono3D(BaseTransform):
    """Random horizontal flip of the image and of the scene (camera-frame x -> -x).

    Pixels map by ``u -> W - 1 - u``; 2D boxes, projected centres and ``cam2img`` (including KITTI's baseline
    column) follow, 3D boxes get x -> -x and yaw ``ry -> pi - ry`` (wrapped to [-pi, pi)). Depths do not
    change.

    Args:
        prob: flip probability.
    """

    def __init__(self, prob: float = 0.5) -> None:
        if not 0 <= prob <= 1:
            raise ValueError(f'prob must be in [0, 1], got {prob}')
        self.prob = prob

    @cache_randomness
    def _do_flip(self) -> bool:
        return np.random.rand() < self.prob

    def transform(self, results: dict) -> dict:
        flip = self._do_flip()
        results['flip'] = flip
        results['flip_direction'] = 'horizontal' if flip else None
        if not flip:
            return results
        width = results['img'].shape[1]
        results['img'] = mmcv.imflip(results['img'], direction='horizontal')
        _move_2d_labels(results, flip_matrix(width))
        # The scene is mirrored too, so the camera becomes F @ P @ diag(-1, 1, 1, 1), not just F @ P.
        results['cam2img'] = flip_cam2img(results['cam2img'], width)
        if 'gt_bboxes_3d' in results:
            results['gt_bboxes_3d'].flip('horizontal')
            results['gt_bboxes_3d'].limit_yaw(offset=0.5, period=2 * np.pi)
        return results

    def __repr__(self) -> str:
        return f'{self.__class__.__name__}(prob={self.prob})'


@TRANSFORMS.register_module()
class RandomCropScaleMono3D(BaseTransform):
    """MonoDETR's crop-and-scale: warp the image into a fixed ``out_size`` with a similarity transform.

    Without augmentation (probability ``1 - prob``, and at test time with ``prob=0``) the whole image is scaled
    to the output width and centred. With augmentation the window is ``crop_scale`` times the image size,
    ``crop_scale ~ clip(N(1, scale), 1 - scale, 1 + scale)``, and its centre moves by
    ``clip(N(0, shift), -2 shift, 2 shift)`` times the image size in each direction. Unlike MonoDETR, which keeps
    ``P2`` and multiplies the depth targets by ``crop_scale``, the camera matrix is transformed and depths stay
    metric; the two agree to first order.

    Args:
        out_size: (W, H) of the output, pixels.
        prob: probability of a random crop.
        scale: standard deviation (and clip) of the crop size factor.
        shift: standard deviation (half the clip) of the centre shift, as a fraction of the image size.
        border_value: value of output pixels that fall outside the image.
    """

    def __init__(self, out_size: Tuple[int, int] = (1280, 384), prob: float = 0.5, scale: float = 0.05,
                 shift: float = 0.05, border_value: float = 0) -> None:
        if not 0 <= prob <= 1:
            raise ValueError(f'prob must be in [0, 1], got {prob}')
        if not 0 <= scale < 1:
            raise ValueError(f'scale must be in [0, 1), got {scale}')
        self.out_size = tuple(out_size)
        self.prob = prob
        self.scale = scale
        self.shift = shift
        self.border_value = border_value

    @cache_randomness
    def _sample_crop(self, width: int, height: int) -> Tuple[np.ndarray, float]:
        center = np.array([width / 2, height / 2])
        if np.random.rand() >= self.prob:
            return center, 1.0
        crop_scale = float(np.clip(np.random.randn() * self.scale + 1, 1 - self.scale, 1 + self.scale))
        center += np.array([width, height]) * np.clip(np.random.randn(2) * self.shift, -2 * self.shift,
                                                      2 * self.shift)
        return center, crop_scale

    def transform(self, results: dict) -> dict:
        height, width = results['img'].shape[:2]
        center, crop_scale = self._sample_crop(width, height)
        matrix = crop_scale_matrix(center, (width * crop_scale, height * crop_scale), self.out_size)
        results['img'] = cv2.warpAffine(results['img'], matrix[:2], self.out_size, flags=cv2.INTER_LINEAR,
                                        borderMode=cv2.BORDER_CONSTANT, borderValue=self.border_value)
        results['img_shape'] = results['img'].shape[:2]
        results['crop_scale'] = crop_scale
        _apply_pixel_transform(results, matrix)
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(out_size={self.out_size}, prob={self.prob}, scale={self.scale}, '
                f'shift={self.shift})')


@TRANSFORMS.register_module()
class ResizeMono3D(BaseTransform):
    """Resize the image to ``scale`` (W, H), or within it keeping the aspect ratio, with the camera and labels.

    Pixels map as in ``cv2.resize``: ``u -> s (u + 0.5) - 0.5``, so ``cx`` moves by ``(s - 1) / 2`` beyond the
    plain scaling that mmdet3d's ``Resize3D`` applies.

    Args:
        scale: (W, H) target size, pixels.
        keep_ratio: scale both axes by the same factor, the largest that fits in ``scale``.
        interpolation: ``mmcv.imresize`` interpolation.
    """

    def __init__(self, scale: Sequence[int], keep_ratio: bool = False, interpolation: str = 'bilinear') -> None:
        self.scale = tuple(scale)
        self.keep_ratio = keep_ratio
        self.interpolation = interpolation

    def transform(self, results: dict) -> dict:
        height, width = results['img'].shape[:2]
        if self.keep_ratio:
            factor = min(self.scale[0] / width, self.scale[1] / height)
            new_size = (int(width * factor + 0.5), int(height * factor + 0.5))
        else:
            new_size = self.scale
        results['img'] = mmcv.imresize(results['img'], new_size, interpolation=self.interpolation)
        scale_factor = (new_size[0] / width, new_size[1] / height)
        results['img_shape'] = results['img'].shape[:2]
        results['scale_factor'] = scale_factor
        _apply_pixel_transform(results, resize_matrix(*scale_factor))
        return results

    def __repr__(self) -> str:
        return f'{self.__class__.__name__}(scale={self.scale}, keep_ratio={self.keep_ratio})'


@TRANSFORMS.register_module()
class FilterMono3DInstances(BaseTransform):
    """Drop objects a monocular head cannot learn from, as MonoDETR does after augmentation.

    Args:
        min_depth: drop objects whose projected-centre depth is below this (metres).
        max_depth: drop objects whose depth is above this (metres).
        center_in_image: drop objects whose projected 3D centre lies outside the image.
        center_in_box: drop objects whose projected 3D centre lies outside their 2D box (MonoDETR regresses the
            box as distances l, r, t, b from that centre, which must be non-negative).
        region_bboxes: also record, as ``gt_region_bboxes`` (N', 4), the 2D boxes of the objects within the depth
            bounds, before the centre filters: the official MonoDGP paints its region target with them (the
            region head reads them, :func:`perception.models.dense_heads.region_seg_head.region_boxes`); without
            them the region target is made of the objects kept.
    """

    def __init__(self, min_depth: float = 2.0, max_depth: float = 65.0, center_in_image: bool = True,
                 center_in_box: bool = True, region_bboxes: bool = False) -> None:
        self.min_depth = min_depth
        self.max_depth = max_depth
        self.center_in_image = center_in_image
        self.center_in_box = center_in_box
        self.region_bboxes = region_bboxes

    def transform(self, results: dict) -> dict:
        depths, centers, boxes = results['depths'], results['centers_2d'], results['gt_bboxes']
        keep = (depths >= self.min_depth) & (depths <= self.max_depth)
        if self.region_bboxes:
            results['gt_region_bboxes'] = boxes[keep]
        if self.center_in_image:
            height, width = results['img_shape']
            # pixel centres 0 .. W - 1 cover [-0.5, W - 0.5)
            keep &= ((centers[:, 0] >= -0.5) & (centers[:, 0] < width - 0.5) & (centers[:, 1] >= -0.5)
                     & (centers[:, 1] < height - 0.5))
        if self.center_in_box:
            keep &= ((centers[:, 0] >= boxes[:, 0]) & (centers[:, 0] <= boxes[:, 2]) & (centers[:, 1] >= boxes[:, 1])
                     & (centers[:, 1] <= boxes[:, 3]))
        for key in INSTANCE_KEYS:
            if key in results:
                results[key] = results[key][torch.from_numpy(keep) if key == 'gt_bboxes_3d' else keep]
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(min_depth={self.min_depth}, max_depth={self.max_depth}, '
                f'center_in_image={self.center_in_image}, center_in_box={self.center_in_box}, '
                f'region_bboxes={self.region_bboxes})')


@TRANSFORMS.register_module()
class PackMono3DInputs(Pack3DDetInputs):
    """mmdet3d's ``Pack3DDetInputs`` whose default keys and meta keys are those of a monocular model: no stale
    LiDAR matrices after augmentation, ``frame_id``, the KITTI frame number (``KittiMono3DDataset``), and
    ``gt_region_bboxes`` where :class:`FilterMono3DInstances` records them."""

    def __init__(self,
                 keys: Sequence[str] = ('img', 'gt_bboxes', 'gt_bboxes_labels', 'gt_bboxes_3d', 'gt_labels_3d',
                                        'centers_2d', 'depths'),
                 meta_keys: Sequence[str] = ('img_path', 'ori_shape', 'img_shape', 'cam2img', 'ori_cam2img',
                                             'img_aug_matrix', 'scale_factor', 'crop_scale', 'flip',
                                             'flip_direction', 'box_mode_3d', 'box_type_3d', 'frame_id',
                                             'gt_region_bboxes')
                 ) -> None:
        super().__init__(keys=tuple(keys), meta_keys=tuple(meta_keys))
