from .depth import DepthMetric
from .kitti import kitti_eval
from .metrics import KittiMetric

__all__ = ['kitti_eval', 'KittiMetric', 'DepthMetric']
