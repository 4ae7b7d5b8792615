from .mixup3d import MixUp3D
from .mono3d import (FilterMono3DInstances, LoadAnnotationsMono3D, LoadImageMono3D, PackMono3DInputs,
                     RandomCropScaleMono3D, RandomFlipMono3D, ResizeMono3D)
from .pil_affine import PILAffineResizeMono3D
from .stereo_prior import StereoPseudoDisparity
from .multiview import LoadMultiViewImages, MultiViewBEVAug, MultiViewResizeCropFlip, PackMultiViewInputs

__all__ = [
    'LoadImageMono3D', 'LoadAnnotationsMono3D', 'RandomFlipMono3D', 'RandomCropScaleMono3D', 'ResizeMono3D',
    'FilterMono3DInstances', 'PackMono3DInputs', 'MixUp3D', 'PILAffineResizeMono3D',
    'StereoPseudoDisparity',
    'LoadMultiViewImages', 'MultiViewResizeCropFlip', 'MultiViewBEVAug', 'PackMultiViewInputs'
]
