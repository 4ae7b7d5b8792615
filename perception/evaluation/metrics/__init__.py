from .kitti_metric import KittiMetric, predictions_to_kitti

__all__ = ['KittiMetric', 'predictions_to_kitti']
