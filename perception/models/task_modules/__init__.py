from .group_hungarian_assigner import GroupHungarianAssigner, InstanceL1Cost, group_linear_sum_assignment
from .cross_stage_assigner import candidate_stages, cross_stage_labels
from .monodetr_bbox_coder import MonoDETRBBoxCoder, boxes6d_to_xyxy

__all__ = [
    'GroupHungarianAssigner', 'InstanceL1Cost', 'group_linear_sum_assignment', 'candidate_stages',
    'cross_stage_labels', 'MonoDETRBBoxCoder', 'boxes6d_to_xyxy'
]
from .nms_free_bbox_coder import NMSFreeBBoxCoder  # noqa: E402

__all__ += ['NMSFreeBBoxCoder']
