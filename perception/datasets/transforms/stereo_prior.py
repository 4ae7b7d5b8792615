"""A coarse teacher depth from the stereo pair itself: semi-global block matching.

Ordering losses (SparseNeRF's depth ranking) need a teacher whose near/far order is mostly right, not its
scale. Without a pretrained monocular network (nothing is downloaded here), OpenCV's semi-global matcher
on the training pair is such a teacher: dense enough, wrong in textureless and occluded regions, which it
mostly marks as invalid.
"""
from typing import Optional

import cv2
import numpy as np
from mmcv.transforms import BaseTransform

from perception.registry import TRANSFORMS
from perception.structures.camera import stereo_direction


@TRANSFORMS.register_module()
class StereoPseudoDisparity(BaseTransform):
    """Write ``results['depth_prior']``: the SGBM disparity (H, W) float32 of the target view ``img`` against
    its partner ``stereo_img``, in pixels of the current images, 0 where the matcher found no value.

    Runs after the geometric transforms of the pair (so the prior fits the network input). The side of the
    partner is :func:`~perception.structures.camera.stereo_direction` of the results, as for
    :class:`TiODepth` (a view without ``side`` is taken for a left one); a view whose partner is to its
    left is matched as the mirror of a left one.

    Args:
        num_disparities: search range in pixels, rounded up to a multiple of 16.
        block_size: odd matching block size.
        uniqueness_ratio: OpenCV's margin (percent) by which the best cost must beat the second best.
        speckle_window: largest speckle (pixels) removed as noise; 0 keeps them.
        min_valid_disparity: disparities below this (far beyond the scene, or unmatched) count as invalid.
    """

    def __init__(self,
                 num_disparities: int = 80,
                 block_size: int = 5,
                 uniqueness_ratio: int = 10,
                 speckle_window: int = 50,
                 min_valid_disparity: float = 0.5) -> None:
        if block_size % 2 == 0 or block_size < 1:
            raise ValueError(f'block_size must be odd and positive, got {block_size}')
        self.num_disparities = int(np.ceil(num_disparities / 16) * 16)
        self.block_size = block_size
        self.uniqueness_ratio = uniqueness_ratio
        self.speckle_window = speckle_window
        self.min_valid_disparity = min_valid_disparity
        self._matcher: Optional[cv2.StereoSGBM] = None

    @property
    def matcher(self) -> cv2.StereoSGBM:
        if self._matcher is None:  # built lazily: OpenCV objects do not pickle into dataloader workers
            channels, block = 3, self.block_size
            self._matcher = cv2.StereoSGBM_create(
                minDisparity=0,
                numDisparities=self.num_disparities,
                blockSize=block,
                P1=8 * channels * block * block,
                P2=32 * channels * block * block,
                uniquenessRatio=self.uniqueness_ratio,
                speckleWindowSize=self.speckle_window,
                speckleRange=2,
                mode=cv2.STEREO_SGBM_MODE_SGBM_3WAY)
        return self._matcher

    def __getstate__(self):
        state = dict(self.__dict__)
        state['_matcher'] = None
        return state

    def match(self, target: np.ndarray, partner: np.ndarray, partner_right: bool) -> np.ndarray:
        """(H, W) float32 disparity of ``target`` (H, W, 3 uint8) against ``partner``, 0 = invalid."""
        if target.shape != partner.shape:
            raise ValueError(f'the stereo pair differs in shape: {target.shape} vs {partner.shape}')
        target, partner = np.ascontiguousarray(target), np.ascontiguousarray(partner)
        if not partner_right:
            target, partner = target[:, ::-1].copy(), partner[:, ::-1].copy()
        disp = self.matcher.compute(target, partner).astype(np.float32) / 16.  # fixed point, 4 bits
        disp[disp < self.min_valid_disparity] = 0.
        return disp if partner_right else disp[:, ::-1].copy()

    def transform(self, results: dict) -> dict:
        target, partner = results['img'], results['stereo_img']
        to_uint8 = (lambda x: x if x.dtype == np.uint8 else np.clip(x, 0, 255).astype(np.uint8))
        # without a side, the view is taken for the left one
        partner_right = stereo_direction(dict(dict(side='l'), **results)) > 0
        results['depth_prior'] = self.match(to_uint8(target), to_uint8(partner), partner_right)
        return results

    def __repr__(self) -> str:
        return (f'{type(self).__name__}(num_disparities={self.num_disparities}, block_size={self.block_size}, '
                f'uniqueness_ratio={self.uniqueness_ratio})')
