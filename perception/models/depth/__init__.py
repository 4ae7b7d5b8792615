from .augundo import AugUndo
from .batch_augments import (Brightness, Contrast, CropAndPad, Gamma, GeometricChain, GeometricTransform,
                             HorizontalFlip, Hue, PhotometricTransform, ResizeAndCrop, ResizeAndPad, Rotate, Saturation)
from .batch_warp import Warp
from .tiodepth import TiODepth

__all__ = [
    'AugUndo', 'Brightness', 'Contrast', 'CropAndPad', 'Gamma', 'GeometricChain', 'GeometricTransform',
    'HorizontalFlip', 'Hue', 'PhotometricTransform', 'ResizeAndCrop', 'ResizeAndPad', 'Rotate', 'Saturation',
    'Warp', 'TiODepth'
]
from .chronodepth import ChronoDepth  # noqa: E402

__all__ += ['ChronoDepth']
from .depthmaster import DepthMaster  # noqa: E402

__all__ += ['DepthMaster']
