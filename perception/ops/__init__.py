"""Custom operators: autograd Functions over ``perception._ext`` and their pure-PyTorch references.

The ground floor of the package: nothing here imports models, datasets or tools.
"""
from .dfa3d import (MultiScale3DDeformableAttention, MultiScale3DDeformableAttnFunction,
                    depth_scores, multi_scale_3d_deformable_attn,
                    multi_scale_3d_deformable_attn_materialised,
                    multi_scale_3d_deformable_attn_pytorch)
from .dropout import (PhiloxDropout, PhiloxDropoutFunction, philox_dropout, scaled_dot_product_attention,
                      use_philox_dropout)
from .msda import (MultiScaleDeformableAttention, MultiScaleDeformableAttnFunction,
                   multi_scale_deformable_attn, multi_scale_deformable_attn_pytorch, ray_offsets)

__all__ = [
    'MultiScaleDeformableAttention', 'MultiScaleDeformableAttnFunction',
    'multi_scale_deformable_attn', 'multi_scale_deformable_attn_pytorch', 'ray_offsets',
    'MultiScale3DDeformableAttention', 'MultiScale3DDeformableAttnFunction', 'depth_scores',
    'multi_scale_3d_deformable_attn', 'multi_scale_3d_deformable_attn_materialised',
    'multi_scale_3d_deformable_attn_pytorch', 'PhiloxDropout', 'PhiloxDropoutFunction', 'philox_dropout',
    'scaled_dot_product_attention', 'use_philox_dropout'
]
