"""Multi-view camera transforms that keep every view's matrices exact (StreamPETR / OPEN pipelines).

Two kinds of augmentation act on a multi-view sample, and each is one matrix:

* an image operation on view v (resize, crop, flip) is a 3x3 pixel transform A_v (see
  :mod:`perception.structures.camera`): it warps the image and maps its 2D labels, ``cam2img[v]`` and
  ``lidar2img[v]`` become ``A_v @ ...`` (first 3 rows) and A_v is composed into ``img_aug_matrix[v]``
  (original pixels -> current pixels). A flip here is a flip of the image only: the 3D scene is not mirrored
  (a single camera of a rigid rig cannot be), so the projection absorbs it;
* the BEV augmentation (rotation about z, scale, flips of the 3D scene) is a 4x4 matrix M from the original
  LiDAR frame to the augmented one: the boxes (and points) move by M, every matrix that leaves the LiDAR frame
  (``lidar2img``, ``lidar2cam``, ``lidar2ego``, ``lidar2global``) is multiplied by ``inv(M)`` on the right, and M is
  composed into ``bda_matrix``. ``ego2global`` stays the sample's true ego pose and
  ``ego2global @ lidar2ego == lidar2global`` holds throughout.

Projecting the augmented 3D boxes with the augmented ``lidar2img`` therefore lands where the original boxes
project in the original images, moved by the image transforms (tested within 0.5 px on a real keyframe).

Result keys: ``img`` (list of V (H, W, 3) arrays), ``img_shape`` (list of V (H, W)), ``cam2img``, ``lidar2cam``,
``lidar2img``, ``cam2ego`` (V, 4, 4) float64, ``img_aug_matrix`` (V, 3, 3), ``lidar2ego``, ``ego2global``,
``lidar2global``, ``bda_matrix`` (4, 4), ``gt_bboxes_3d`` (``LiDARInstance3DBoxes``), ``cam_ann_info`` (list of V
dicts of 2D labels: ``gt_bboxes``, ``gt_bboxes_labels``, ``centers_2d``, ``depths``).
"""
from typing import Optional, Sequence, Tuple

import mmcv
import numpy as np
import torch
from mmcv.transforms import BaseTransform
from mmcv.transforms.utils import cache_randomness
from mmdet3d.datasets.transforms import Pack3DDetInputs
from mmengine.fileio import get
from mmengine.structures import InstanceData

from perception.fileio import InvalidInputError
from perception.registry import TRANSFORMS
from perception.structures import (flip_matrix, resize_matrix, transform_boxes_2d, transform_cam2img,
                                   transform_points_2d)

CAM_LABEL_KEYS = ('gt_bboxes', 'gt_bboxes_labels', 'centers_2d', 'depths')


def translation_matrix(dx: float, dy: float) -> np.ndarray:
    """(3, 3) pixel transform ``(u, v) -> (u + dx, v + dy)``."""
    return np.array([[1., 0., dx], [0., 1., dy], [0., 0., 1.]])


def crop_image(img: np.ndarray, x0: int, y0: int, width: int, height: int) -> np.ndarray:
    """The ``width`` x ``height`` window of ``img`` whose top-left pixel is (x0, y0), zero outside the image."""
    out = np.zeros((height, width) + img.shape[2:], dtype=img.dtype)
    src_x0, src_y0 = max(x0, 0), max(y0, 0)
    src_x1, src_y1 = min(x0 + width, img.shape[1]), min(y0 + height, img.shape[0])
    if src_x1 > src_x0 and src_y1 > src_y0:
        out[src_y0 - y0:src_y1 - y0, src_x0 - x0:src_x1 - x0] = img[src_y0:src_y1, src_x0:src_x1]
    return out


def apply_view_transform(results: dict, view: int, matrix: np.ndarray, image_size: Tuple[int, int]) -> None:
    """Move view ``view``'s camera and 2D labels by the pixel transform ``matrix`` (the image is warped by the
    caller); 2D boxes are clipped to the ``image_size`` (W, H) canvas and dropped, with their labels, when less
    than a pixel of them is left."""
    for key in ('cam2img', 'lidar2img'):
        results[key][view] = transform_cam2img(results[key][view], matrix)
    results['img_aug_matrix'][view] = matrix @ results['img_aug_matrix'][view]
    if 'cam_ann_info' not in results:
        return
    labels = results['cam_ann_info'][view]
    boxes = np.clip(transform_boxes_2d(labels['gt_bboxes'], matrix), 0, [*image_size, *image_size])
    keep = (boxes[:, 2] - boxes[:, 0] >= 1) & (boxes[:, 3] - boxes[:, 1] >= 1)
    labels['gt_bboxes'] = boxes
    labels['centers_2d'] = transform_points_2d(labels['centers_2d'], matrix)
    for key in CAM_LABEL_KEYS:
        labels[key] = labels[key][keep]


@TRANSFORMS.register_module()
class LoadMultiViewImages(BaseTransform):
    """Load the images of every view (``results['img_path']``, as set by ``NuScenesMultiViewDataset``).

    Unlike mmdet3d's ``LoadMultiViewImageFromFiles``, an undecodable image raises naming the file, images are not
    padded to a common size (each keeps its own camera), and the matrices stay (V, 4, 4) float64 arrays.

    Args:
        to_float32: convert the images to float32.
        color_type: ``mmcv.imfrombytes`` flag ('color': BGR uint8).
        backend_args: file backend arguments of ``mmengine.fileio.get``.
    """

    def __init__(self, to_float32: bool = False, color_type: str = 'color',
                 backend_args: Optional[dict] = None) -> None:
        self.to_float32 = to_float32
        self.color_type = color_type
        self.backend_args = backend_args

    def transform(self, results: dict) -> dict:
        imgs = []
        for path in results['img_path']:
            img = mmcv.imfrombytes(get(path, backend_args=self.backend_args), flag=self.color_type)
            if img is None:
                raise InvalidInputError(f'{path}: not a decodable image')
            imgs.append(img.astype(np.float32) if self.to_float32 else img)
        num_views = len(imgs)
        results['img'] = imgs
        results['img_shape'] = [img.shape[:2] for img in imgs]
        results['ori_shape'] = list(results['img_shape'])
        results['pad_shape'] = list(results['img_shape'])
        results['num_views'] = num_views
        results['img_aug_matrix'] = np.tile(np.eye(3), (num_views, 1, 1))
        results['bda_matrix'] = np.eye(4)
        results['ori_cam2img'] = results['cam2img'].copy()
        results['ori_lidar2img'] = results['lidar2img'].copy()
        return results

    def __repr__(self) -> str:
        return f'{self.__class__.__name__}(to_float32={self.to_float32}, color_type={self.color_type!r})'


@TRANSFORMS.register_module()
class MultiViewResizeCropFlip(BaseTransform):
    """Resize, crop and flip each view to ``final_size``, as StreamPETR's ``ResizeCropFlipRotImage`` (no rotation).

    Training: a scale ``r`` uniform in ``resize_lim`` (new size ``int(W r) x int(H r)``), a crop of ``final_size``
    at a uniform horizontal offset whose bottom sits ``bot_pct_lim`` (fraction of the height, uniform) above the
    image bottom, and a flip with probability 0.5 if ``rand_flip``. Test: the smallest scale covering
    ``final_size``, centred horizontally, bottom at ``mean(bot_pct_lim)``, no flip. Pixels map exactly (the
    resize by the integer sizes' ratios, in ``cv2.resize``'s pixel-centre convention).

    Args:
        final_size: (W, H) of the output views, pixels.
        resize_lim: (min, max) scale in training.
        bot_pct_lim: (min, max) fraction of the resized height cut from the bottom.
        rand_flip: flip views at random in training.
        training: sample random parameters (else the deterministic test ones).
        sync_views: one draw for all views of a sample (StreamPETR); False draws per view.
        interpolation: ``mmcv.imresize`` interpolation.
    """

    def __init__(self, final_size: Sequence[int], resize_lim: Sequence[float] = (1.0, 1.0),
                 bot_pct_lim: Sequence[float] = (0.0, 0.0), rand_flip: bool = False, training: bool = True,
                 sync_views: bool = True, interpolation: str = 'bilinear') -> None:
        self.final_size = tuple(final_size)
        self.resize_lim = tuple(resize_lim)
        self.bot_pct_lim = tuple(bot_pct_lim)
        self.rand_flip = rand_flip
        self.training = training
        self.sync_views = sync_views
        self.interpolation = interpolation

    @cache_randomness
    def _sample(self, width: int, height: int) -> Tuple[Tuple[int, int], int, int, bool]:
        """(new W, new H), crop x0, crop y0, flip."""
        final_w, final_h = self.final_size
        if self.training:
            resize = np.random.uniform(*self.resize_lim)
            bottom = np.random.uniform(*self.bot_pct_lim)
        else:
            resize = max(final_h / height, final_w / width)
            bottom = float(np.mean(self.bot_pct_lim))
        new_w, new_h = int(width * resize), int(height * resize)
        y0 = int((1 - bottom) * new_h) - final_h
        if self.training:
            x0 = int(np.random.uniform(0, max(0, new_w - final_w)))
            flip = bool(self.rand_flip and np.random.rand() < 0.5)
        else:
            x0, flip = int(max(0, new_w - final_w) / 2), False
        return (new_w, new_h), x0, y0, flip

    def transform(self, results: dict) -> dict:
        final_w, final_h = self.final_size
        params = None
        for view, img in enumerate(results['img']):
            height, width = img.shape[:2]
            if params is None or not self.sync_views:
                params = self._sample(width, height)
            (new_w, new_h), x0, y0, flip = params
            img = mmcv.imresize(img, (new_w, new_h), interpolation=self.interpolation)
            img = crop_image(img, x0, y0, final_w, final_h)
            matrix = translation_matrix(-x0, -y0) @ resize_matrix(new_w / width, new_h / height)
            if flip:
                img = np.ascontiguousarray(img[:, ::-1])
                matrix = flip_matrix(final_w) @ matrix
            results['img'][view] = img
            results['img_shape'][view] = img.shape[:2]
            results['pad_shape'][view] = img.shape[:2]
            apply_view_transform(results, view, matrix, (final_w, final_h))
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(final_size={self.final_size}, resize_lim={self.resize_lim}, '
                f'bot_pct_lim={self.bot_pct_lim}, rand_flip={self.rand_flip}, training={self.training})')


@TRANSFORMS.register_module()
class MultiViewBEVAug(BaseTransform):
    """BEV data augmentation of a multi-view sample: rotate the 3D scene about z, scale it and flip it, with every
    LiDAR-frame matrix kept exact (StreamPETR's ``GlobalRotScaleTransImage``, which leaves ``lidar2cam`` and the
    ego pose stale).

    The boxes move through mmdet3d's box API (yaw and velocity included); points, if loaded, move with them.
    ``horizontal`` flips y (``y -> -y``), ``vertical`` flips x, as mmdet3d's ``RandomFlip3D`` for LiDAR boxes.

    Args:
        rot_range: (min, max) rotation angle, radians, counter-clockwise seen from above.
        scale_ratio_range: (min, max) scale.
        flip_ratio_bev_horizontal: probability of the horizontal flip.
        flip_ratio_bev_vertical: probability of the vertical flip.
        training: augment (False: identity, for test pipelines sharing a config).
    """

    def __init__(self, rot_range: Sequence[float] = (-0.3925, 0.3925),
                 scale_ratio_range: Sequence[float] = (0.95, 1.05), flip_ratio_bev_horizontal: float = 0.0,
                 flip_ratio_bev_vertical: float = 0.0, training: bool = True) -> None:
        self.rot_range = tuple(rot_range)
        self.scale_ratio_range = tuple(scale_ratio_range)
        self.flip_ratio_bev_horizontal = flip_ratio_bev_horizontal
        self.flip_ratio_bev_vertical = flip_ratio_bev_vertical
        self.training = training

    @cache_randomness
    def _sample(self) -> Tuple[float, float, bool, bool]:
        return (float(np.random.uniform(*self.rot_range)), float(np.random.uniform(*self.scale_ratio_range)),
                bool(np.random.rand() < self.flip_ratio_bev_horizontal),
                bool(np.random.rand() < self.flip_ratio_bev_vertical))

    @staticmethod
    def bev_matrix(angle: float, scale: float, flip_horizontal: bool, flip_vertical: bool) -> np.ndarray:
        """(4, 4) original LiDAR frame -> augmented frame: flips after scale after rotation."""
        cos, sin = np.cos(angle), np.sin(angle)
        matrix = np.eye(4)
        matrix[:2, :2] = [[cos, -sin], [sin, cos]]
        matrix[:3] *= scale
        matrix[:3] = np.diag([-1. if flip_vertical else 1., -1. if flip_horizontal else 1., 1.]) @ matrix[:3]
        return matrix

    def transform(self, results: dict) -> dict:
        if not self.training:
            return results
        angle, scale, flip_h, flip_v = self._sample()
        matrix = self.bev_matrix(angle, scale, flip_h, flip_v)
        if 'gt_bboxes_3d' in results:
            boxes = results['gt_bboxes_3d']
            boxes.rotate(angle)
            boxes.scale(scale)
            if flip_h:
                boxes.flip('horizontal')
            if flip_v:
                boxes.flip('vertical')
        if 'points' in results:
            coords = results['points'].tensor[:, :3]
            results['points'].tensor[:, :3] = coords @ coords.new_tensor(matrix[:3, :3].T)
        inverse = np.linalg.inv(matrix)
        for key in ('lidar2img', 'lidar2cam', 'lidar2ego', 'lidar2global'):
            results[key] = results[key] @ inverse
        results['bda_matrix'] = matrix @ results['bda_matrix']
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(rot_range={self.rot_range}, scale_ratio_range={self.scale_ratio_range}, '
                f'flip_ratio_bev_horizontal={self.flip_ratio_bev_horizontal}, '
                f'flip_ratio_bev_vertical={self.flip_ratio_bev_vertical}, training={self.training})')


@TRANSFORMS.register_module()
class PackMultiViewInputs(Pack3DDetInputs):
    """Pack a multi-view sample: ``inputs['img']`` (V, 3, H, W), the 3D labels in ``gt_instances_3d``, the views'
    2D labels concatenated in ``gt_instances`` (``bboxes``, ``labels``, ``centers_2d``, ``depths`` and ``view_idx``,
    the view of each) and the matrices and temporal keys in the metainfo.

    Args:
        keys: result keys to pack (mmdet3d's ``Pack3DDetInputs``); the 2D labels come from ``cam_ann_info``.
        meta_keys: metainfo keys.
    """
    META_KEYS = ('sample_idx', 'token', 'timestamp', 'scene_token', 'frame_idx', 'prev_exists', 'img_path',
                 'ori_shape', 'img_shape', 'pad_shape', 'num_views', 'cam2img', 'lidar2cam', 'lidar2img', 'cam2ego',
                 'img_aug_matrix', 'bda_matrix', 'ori_cam2img', 'ori_lidar2img', 'lidar2ego', 'ego2global',
                 'lidar2global', 'img_timestamp', 'box_type_3d', 'box_mode_3d')

    def __init__(self, keys: Sequence[str] = ('img', 'gt_bboxes_3d', 'gt_labels_3d'),
                 meta_keys: Sequence[str] = META_KEYS) -> None:
        super().__init__(keys=tuple(keys), meta_keys=tuple(meta_keys))

    def pack_single_results(self, results: dict) -> dict:
        shapes = {tuple(img.shape) for img in results.get('img', [])}
        if len(shapes) > 1:
            raise ValueError(f'sample {results.get("token")}: views of different shapes {sorted(shapes)} cannot be '
                             'stacked; resize them to one size (MultiViewResizeCropFlip)')
        packed = super().pack_single_results(results)
        if 'cam_ann_info' in results:
            views = results['cam_ann_info']
            gt_instances = InstanceData()
            for key, name in zip(CAM_LABEL_KEYS, ('bboxes', 'labels', 'centers_2d', 'depths')):
                values = np.concatenate([view[key] for view in views])
                dtype = torch.long if key == 'gt_bboxes_labels' else torch.float32
                gt_instances[name] = torch.as_tensor(values, dtype=dtype)
            gt_instances['view_idx'] = torch.as_tensor(
                np.concatenate([np.full(len(view['gt_bboxes']), v) for v, view in enumerate(views)]),
                dtype=torch.long)
            packed['data_samples'].gt_instances = gt_instances
        return packed
