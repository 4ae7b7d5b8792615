from .monodetr import MonoDETR
from .monodgp import (Det2DDecoder, Det2DDecoderLayer, MonoDGP, MonoDGPHead, MonoDGPTransformer, RegionSegHead,
                      geometry_error_depth, region_targets)

__all__ = [
    'MonoDETR', 'MonoDGP', 'MonoDGPHead', 'MonoDGPTransformer', 'Det2DDecoder', 'Det2DDecoderLayer', 'RegionSegHead',
    'geometry_error_depth', 'region_targets'
]
