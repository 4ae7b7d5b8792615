from .kitti_mono3d import KittiMono3DDataset
from .kitti_raw import KittiRawDepthDataset
from .kitti_raw_clips import KittiRawDepthClipDataset
from .nuscenes_multiview import NuScenesMultiViewDataset, StreamBatchSampler
from .transforms import *  # noqa: F401,F403

__all__ = [
    'KittiMono3DDataset', 'KittiRawDepthDataset', 'KittiRawDepthClipDataset', 'NuScenesMultiViewDataset',
    'StreamBatchSampler'
]
