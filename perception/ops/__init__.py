"""Custom operators: autograd Functions over ``perception._ext`` and their pure-PyTorch references.

The ground floor of the package: nothing here imports models, datasets or tools.
"""
from .msda import (MultiScaleDeformableAttention, MultiScaleDeformableAttnFunction,
                   multi_scale_deformable_attn, multi_scale_deformable_attn_pytorch)

__all__ = [
    'MultiScaleDeformableAttention', 'MultiScaleDeformableAttnFunction',
    'multi_scale_deformable_attn', 'multi_scale_deformable_attn_pytorch'
]
