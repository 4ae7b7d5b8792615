from .kitti_metric import KittiMetric, predictions_to_kitti

__all__ = ['KittiMetric', 'predictions_to_kitti', 'NuScenesMetric']


def __getattr__(name: str):
    # imported on first use: the nuScenes metric pulls in mmdet3d's metrics and the devkit
    if name == 'NuScenesMetric':
        from .nuscenes_metric import NuScenesMetric
        return NuScenesMetric
    raise AttributeError(f'module {__name__!r} has no attribute {name!r}')
