"""Clips of consecutive KITTI raw frames with their depth ground truth, for video depth models (ChronoDepth)."""
import os
import os.path as osp
from typing import List, Optional, Sequence, Tuple

import cv2
import numpy as np
import torch
from mmengine.dataset import BaseDataset

from perception.fileio import InvalidInputError
from perception.fileio.depth import read_depth_png
from perception.registry import DATASETS


@DATASETS.register_module()
class KittiRawDepthClipDataset(BaseDataset):
    """``clip_len`` consecutive frames of one camera of a KITTI raw drive and their depth maps.

    Each item is ``dict(inputs=dict(imgs=(F, 3, H, W) uint8 RGB, depths=(F, H, W) float32 metres, 0 = no data))``
    at ``size``; batch it with ``collate_fn=dict(type='default_collate')``.

    Args:
        data_root: the KITTI raw root (holding the date folders).
        depth_root: a KITTI depth root holding ``<drive>/proj_depth/groundtruth/image_0{2,3}``.
        drives: ``<date>/<drive>`` folders; by default every drive of ``depth_root`` found under ``data_root``.
        clip_len, clip_stride: frames per clip and the step between the first frames of two clips.
        cams: cameras to take clips from (2: left, 3: right).
        size: (W, H) the frames (bilinear) and depth maps (nearest) are resized to; None keeps them.
    """

    def __init__(self,
                 data_root: str,
                 depth_root: str,
                 drives: Optional[Sequence[str]] = None,
                 clip_len: int = 10,
                 clip_stride: int = 5,
                 cams: Sequence[int] = (2, ),
                 size: Optional[Tuple[int, int]] = None,
                 **kwargs) -> None:
        if clip_len < 1 or clip_stride < 1:
            raise ValueError(f'clip_len and clip_stride must be >= 1, got {clip_len}, {clip_stride}')
        self.depth_root, self.drives = depth_root, drives
        self.clip_len, self.clip_stride, self.cams, self.size = clip_len, clip_stride, tuple(cams), size
        super().__init__(data_root=data_root, serialize_data=False, **kwargs)

    def _drives(self) -> List[str]:
        if self.drives is not None:
            return list(self.drives)
        if not osp.isdir(self.depth_root):
            raise FileNotFoundError(f'{self.depth_root}: no such depth root')
        return [f'{name[:10]}/{name}' for name in sorted(os.listdir(self.depth_root))
                if osp.isdir(osp.join(self.data_root, name[:10], name))]

    def load_data_list(self) -> List[dict]:
        data_list = []
        for folder in self._drives():
            for cam in self.cams:
                image_dir = osp.join(self.data_root, folder, f'image_0{cam}', 'data')
                depth_dir = osp.join(self.depth_root, osp.basename(folder), 'proj_depth', 'groundtruth',
                                     f'image_0{cam}')
                if not osp.isdir(image_dir):
                    raise FileNotFoundError(f'{image_dir}: no such image folder (drive {folder})')
                stems = sorted(osp.splitext(n)[0] for n in os.listdir(image_dir) if n.endswith('.png'))
                for stem in stems:
                    if not osp.isfile(osp.join(depth_dir, f'{stem}.png')):
                        raise FileNotFoundError(f'{depth_dir}/{stem}.png: the depth of {image_dir}/{stem}.png is '
                                                'missing')
                for start in range(0, len(stems) - self.clip_len + 1, self.clip_stride):
                    clip = stems[start:start + self.clip_len]
                    data_list.append(dict(img_paths=[osp.join(image_dir, f'{s}.png') for s in clip],
                                          depth_paths=[osp.join(depth_dir, f'{s}.png') for s in clip]))
        if not data_list:
            raise InvalidInputError(f'{self.data_root}: no drive with {self.clip_len} frames and their depth')
        return data_list

    def prepare_data(self, idx: int) -> dict:
        info = self.get_data_info(idx)
        imgs, depths = [], []
        for img_path, depth_path in zip(info['img_paths'], info['depth_paths']):
            image = cv2.imread(img_path, cv2.IMREAD_COLOR)
            if image is None:
                raise InvalidInputError(f'{img_path}: cannot be read as an image')
            depth = read_depth_png(depth_path)
            if depth.shape != image.shape[:2]:
                raise InvalidInputError(f'{depth_path}: depth of shape {depth.shape}, its image {image.shape[:2]}')
            if self.size is not None:
                image = cv2.resize(image, tuple(self.size), interpolation=cv2.INTER_LINEAR)
                depth = cv2.resize(depth, tuple(self.size), interpolation=cv2.INTER_NEAREST)
            imgs.append(torch.from_numpy(np.ascontiguousarray(image[..., ::-1])).permute(2, 0, 1))
            depths.append(torch.from_numpy(depth.astype(np.float32)))
        return dict(inputs=dict(imgs=torch.stack(imgs), depths=torch.stack(depths)))
