from .kitti_metric import KittiMetric, predictions_to_kitti
from .nuscenes_metric import NuScenesMetric

__all__ = ['KittiMetric', 'predictions_to_kitti', 'NuScenesMetric']
