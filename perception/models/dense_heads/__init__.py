from .sepc_heads import SEPCFreeAnchorRetinaHead, SEPCRetinaHead
from .ssd_head import SSDHead
from .stage_interactor_head import StageInteractorHead
from .monodetr_head import MonoDETRHead, boxes6d_to_xyxy, fuse_depth, geometric_depth, sample_depth_map
