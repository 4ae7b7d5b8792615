from .augundo import (AugUndo, Brightness, Contrast, CropAndPad, Gamma, GeometricChain, GeometricTransform,
                      HorizontalFlip, Hue, PhotometricTransform, ResizeAndCrop, ResizeAndPad, Rotate, Saturation,
                      Warp)
from .tiodepth import TiODepth, TiODepthOptimWrapperConstructor
