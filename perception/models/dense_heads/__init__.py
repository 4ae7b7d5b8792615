from .sepc_heads import SEPCFreeAnchorRetinaHead, SEPCRetinaHead
from .ssd_head import SSDHead
from .stage_interactor_head import StageInteractorHead
from .monodetr_head import MonoDETRHead, fuse_depth, geometric_depth, sample_depth_map
from .monodgp_head import MonoDGPHead, geometry_error_depth
from .region_seg_head import RegionSegHead, object_region_mask, region_targets

__all__ = [
    'SEPCFreeAnchorRetinaHead', 'SEPCRetinaHead', 'SSDHead', 'StageInteractorHead', 'MonoDETRHead', 'fuse_depth',
    'geometric_depth', 'sample_depth_map', 'MonoDGPHead', 'geometry_error_depth', 'RegionSegHead',
    'object_region_mask', 'region_targets'
]
from .open_object_head import OPENObjectHead, lidar_depth_maps  # noqa: E402
from .streampetr_head import FrustumPositionEmbedding, StreamPETRHead  # noqa: E402

__all__ += ['OPENObjectHead', 'lidar_depth_maps', 'FrustumPositionEmbedding', 'StreamPETRHead']
from .bevformer_head import BEVFormerHead  # noqa: E402

__all__ += ['BEVFormerHead']
