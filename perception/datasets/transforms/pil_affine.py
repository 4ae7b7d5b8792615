"""The test-time resize of the official MonoDETR and MonoDGP code, pixel for pixel.

The official KITTI dataset scales the whole image about its centre into the 1280 x 384 input with
``PIL.Image.transform(AFFINE, resample=BILINEAR)``, the inverse affine coming from OpenCV's
``getAffineTransform`` of a triangle (centre, a point half a width above it, and one beside). The
project's :class:`RandomCropScaleMono3D` applies the same transform with ``cv2.warpAffine``, whose
bilinear kernel and pixel-centre convention differ from PIL's: the two images differ by up to 10 grey
levels, which is enough to move the outputs of an official checkpoint. This transform replays the PIL call
so that a converted checkpoint sees exactly the official input.
"""
from typing import Tuple

import cv2
import numpy as np
from mmcv.transforms import BaseTransform
from PIL import Image

from perception.registry import TRANSFORMS
from perception.structures import crop_scale_matrix
from .mono3d import _apply_pixel_transform


def official_affine_inverse(img_size: Tuple[int, int], out_size: Tuple[int, int]) -> np.ndarray:
    """(2, 3) float64 map from output to input pixels (edge coordinates, as PIL reads them) of the official
    centred scale of a (W, H) image into ``out_size`` (W', H'), from the same triangle (centre, a point half a
    width above, one that far to its left) as the official code, so that its rounding is the same."""
    (width, height), (out_w, out_h) = img_size, out_size
    center = np.array([width / 2, height / 2])
    out_center = np.array([out_w / 2, out_h / 2])

    def triangle(centre: np.ndarray, half_width: float) -> np.ndarray:
        up = centre + [0, -half_width]
        return np.float32([centre, up, up + [up[1] - centre[1], centre[0] - up[0]]])

    return cv2.getAffineTransform(triangle(out_center, out_w / 2), triangle(center, width / 2))


@TRANSFORMS.register_module()
class PILAffineResizeMono3D(BaseTransform):
    """Scale the image about its centre into ``out_size`` with PIL's bilinear affine warp, as the official
    MonoDETR and MonoDGP test pipelines do; the camera and the labels follow as in
    :class:`RandomCropScaleMono3D` (``cam2img``, ``img_aug_matrix``, 2D boxes and centres).

    Args:
        out_size: (W, H) of the output, pixels.
    """

    def __init__(self, out_size: Tuple[int, int] = (1280, 384)) -> None:
        self.out_size = tuple(out_size)

    def transform(self, results: dict) -> dict:
        img = results['img']
        if img.dtype != np.uint8 or img.ndim != 3:
            raise ValueError(f'{results.get("img_path", "the image")}: PILAffineResizeMono3D takes an (H, W, 3) '
                             f'uint8 image, got {img.dtype} {img.shape}')
        height, width = img.shape[:2]
        inverse = official_affine_inverse((width, height), self.out_size)
        # PIL resamples each channel alike, so the channel order does not matter
        warped = Image.fromarray(img).transform(self.out_size, Image.AFFINE, data=tuple(inverse.reshape(-1).tolist()),
                                                resample=Image.BILINEAR)
        results['img'] = np.array(warped)
        results['img_shape'] = results['img'].shape[:2]
        results['crop_scale'] = 1.0
        _apply_pixel_transform(results, crop_scale_matrix((width / 2, height / 2), (width, height), self.out_size))
        return results

    def __repr__(self) -> str:
        return f'{self.__class__.__name__}(out_size={self.out_size})'
