"""MixUp3D, MonoDGP's augmentation (Pu et al., "MonoDGP: Monocular 3D Object Detection with Decoupled-Query
and Geometry-Error Priors", CVPR 2025; PuFanqi23/MonoDGP ``lib/datasets/kitti/kitti_dataset.py``).

Two images taken by the same camera (same intrinsics, same size) share one projection, so blending them
half and half gives an image whose objects are all correctly labelled by the union of both label sets:
every 3D box still projects onto its own object. A partner that would break this is refused.
"""
import copy
from typing import Callable, Optional, Sequence, Union

import numpy as np
from mmcv.transforms import BaseTransform, Compose

from perception.registry import DATASETS, TRANSFORMS
from perception.structures import flip_matrix
from .mono3d import INSTANCE_KEYS, RandomFlipMono3D


def intrinsics(cam2img: np.ndarray) -> np.ndarray:
    """(fu, fv, cu, cv) of a (3, 3), (3, 4) or (4, 4) camera matrix."""
    cam2img = np.asarray(cam2img, dtype=np.float64)
    return cam2img[[0, 1, 0, 1], [0, 1, 2, 2]]


@TRANSFORMS.register_module()
class MixUp3D(BaseTransform):
    """Blend the image with another training image of the same camera and take the union of the labels.

    With probability ``prob`` up to ``max_tries`` random images of ``dataset`` are drawn; the first one
    with the same intrinsics (fu, fv, cu, cv) and image size as this sample, and with fewer than
    ``max_objects`` objects in both together, is loaded with ``load_pipeline``, flipped if this sample was
    flipped, and blended: ``(1 - alpha) * img + alpha * other``. Its objects are appended after this
    sample's. A partner with other intrinsics or another size is refused, and the sample passes unchanged
    when no partner is found.

    Place it after the loading transforms and the flip, before any transform that moves pixels
    (crop, scale): the partner's labels are only in this sample's pixel frame up to the flip.

    Args:
        dataset: config of the dataset to draw from (its ``pipeline`` is replaced by an empty one; built at
            the first call), or a dataset object with ``__len__`` and ``get_data_info(index)`` giving
            ``cam2img``, ``ann_info`` and, optionally, ``images[cam_key]`` with ``height`` and ``width``.
        load_pipeline: transforms (configs or callables) that load a partner from its data info: the image
            and the same annotation fields as this sample.
        prob: probability of trying to mix a sample.
        alpha: weight of the partner image.
        max_objects: the union must hold fewer objects than this.
        max_tries: partners drawn before giving up.
        cam_key: camera of the size fields in the data info.

    Reads ``img``, ``ori_cam2img``, ``img_aug_matrix``, ``flip`` and the instance fields of
    :data:`perception.datasets.transforms.mono3d.INSTANCE_KEYS`; writes ``img``, those fields and
    ``mixup3d_index`` (the partner's dataset index, or None).
    """

    def __init__(self,
                 dataset: Union[dict, object],
                 load_pipeline: Sequence[Union[dict, Callable]] = (
                     dict(type='LoadImageMono3D'),
                     dict(type='LoadAnnotationsMono3D'),
                 ),
                 prob: float = 0.5,
                 alpha: float = 0.5,
                 max_objects: int = 50,
                 max_tries: int = 50,
                 cam_key: str = 'CAM2') -> None:
        if not 0 <= prob <= 1:
            raise ValueError(f'prob must be in [0, 1], got {prob}')
        if not 0 <= alpha <= 1:
            raise ValueError(f'alpha must be in [0, 1], got {alpha}')
        self.dataset = dataset
        self.load_pipeline = Compose([TRANSFORMS.build(t) if isinstance(t, dict) else t for t in load_pipeline])
        self.prob = prob
        self.alpha = alpha
        self.max_objects = max_objects
        self.max_tries = max_tries
        self.cam_key = cam_key

    def _get_dataset(self):
        if isinstance(self.dataset, dict):
            self.dataset = DATASETS.build({**self.dataset, 'pipeline': []})
        return self.dataset

    def _fits(self, info: dict, results: dict) -> bool:
        """Whether a partner's data info has this sample's intrinsics, size (when given) and leaves room
        for its objects."""
        if not np.allclose(intrinsics(info['cam2img']), intrinsics(results['ori_cam2img']), rtol=0, atol=1e-6):
            return False
        camera = info.get('images', {}).get(self.cam_key, {})
        if 'height' in camera and 'width' in camera:
            if (camera['height'], camera['width']) != tuple(results['ori_shape'][:2]):
                return False
        num_objects = len(results['gt_labels_3d']) + len(info['ann_info']['gt_labels_3d'])
        return num_objects < self.max_objects

    def find_partner(self, results: dict) -> Optional[dict]:
        """Draw and load a partner for ``results``, or None after ``max_tries`` refusals.

        Returns:
            The partner's loaded results (flipped like ``results``), with ``mixup3d_index``.
        """
        dataset = self._get_dataset()
        for _ in range(self.max_tries):
            index = int(np.random.randint(len(dataset)))
            info = copy.deepcopy(dataset.get_data_info(index))
            if not self._fits(info, results):
                continue
            partner = self.load_pipeline(info)
            if partner is None or partner['img'].shape[:2] != results['img'].shape[:2]:
                continue
            if results.get('flip', False):
                partner = RandomFlipMono3D(prob=1.0).transform(partner)
            partner['mixup3d_index'] = index
            return partner
        return None

    def mix(self, results: dict, partner: dict) -> dict:
        """Blend ``partner`` into ``results`` and append its objects.

        Raises:
            ValueError: if the two do not share the pixel transform, the camera and the size, which would
                mislabel the partner's objects.
        """
        if not np.allclose(partner['img_aug_matrix'], results['img_aug_matrix']):
            raise ValueError('MixUp3D: the partner and the image were moved by different pixel transforms')
        if not np.allclose(intrinsics(partner['cam2img']), intrinsics(results['cam2img']), rtol=0, atol=1e-6):
            raise ValueError('MixUp3D: the partner image has other camera intrinsics')
        if partner['img'].shape != results['img'].shape:
            raise ValueError(f'MixUp3D: partner image {partner["img"].shape} and image {results["img"].shape} '
                             'differ in size')
        img = results['img']
        blended = (1 - self.alpha) * img.astype(np.float32) + self.alpha * partner['img'].astype(np.float32)
        if np.issubdtype(img.dtype, np.integer):
            info = np.iinfo(img.dtype)
            blended = np.clip(np.rint(blended), info.min, info.max)
        results['img'] = blended.astype(img.dtype)
        for key in INSTANCE_KEYS:
            if key not in results:
                continue
            if key not in partner:
                raise KeyError(f'MixUp3D: the partner has no {key!r}; load it with the same annotations')
            if key == 'gt_bboxes_3d':
                results[key] = type(results[key]).cat([results[key], partner[key]])
            else:
                results[key] = np.concatenate([results[key], partner[key].astype(results[key].dtype)])
        results['mixup3d_index'] = partner.get('mixup3d_index')
        return results

    def transform(self, results: dict) -> dict:
        unmoved = flip_matrix(results['ori_shape'][1]) if results.get('flip', False) else np.eye(3)
        if not np.allclose(results.get('img_aug_matrix', np.eye(3)), unmoved):
            raise ValueError('MixUp3D must come before any transform that moves pixels but the flip; got the '
                             f'pixel transform {results["img_aug_matrix"].tolist()}')
        results['mixup3d_index'] = None
        if np.random.rand() >= self.prob:
            return results
        partner = self.find_partner(results)
        return results if partner is None else self.mix(results, partner)

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(prob={self.prob}, alpha={self.alpha}, max_objects={self.max_objects}, '
                f'max_tries={self.max_tries})')
