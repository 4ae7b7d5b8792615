from .depth_metric import DepthMetric
from .functional import (METRIC_KEYS, align_depth, average_metrics, compute_depth_metrics, crop_mask,
                         evaluate_depth, fit_scale_shift, median_scale, resize_depth)

__all__ = [
    'DepthMetric', 'METRIC_KEYS', 'align_depth', 'average_metrics', 'compute_depth_metrics', 'crop_mask',
    'evaluate_depth', 'fit_scale_shift', 'median_scale', 'resize_depth'
]
