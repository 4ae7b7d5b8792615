// Multi-scale deformable attention (Deformable DETR, Zhu et al., ICLR 2021, eq. 3).
//
// Shapes (the layout of mmcv's MultiScaleDeformableAttnFunction):
//   value               (B, S, M, D)     S = sum_l H_l * W_l keys, M heads, D channels per head
//   spatial_shapes      (L, 2) int64     (H_l, W_l)
//   level_start_index   (L,)   int64     offset of level l in S
//   sampling_locations  (B, Q, M, L, P, 2)  normalised (x, y) in [0, 1]
//   attention_weights   (B, Q, M, L, P)
//   output              (B, Q, M * D)
// Sampling is bilinear with zero padding and half-pixel centres, i.e. grid_sample with
// align_corners=False: pixel coordinate = loc * size - 0.5.
#pragma once
#include <ATen/ATen.h>

#include <vector>

// Shapes, dtypes and devices of the inputs (both devices): clear errors instead of bad reads.
// num_coords is the size of the last dimension of sampling_loc (3 for dfa3d/'s (u, v, d)).
void msda_check_inputs(const at::Tensor &value, const at::Tensor &spatial_shapes,
                       const at::Tensor &level_start_index, const at::Tensor &sampling_loc,
                       const at::Tensor &attn_weight, int64_t num_coords = 2);

at::Tensor ms_deform_attn_forward_cpu(const at::Tensor &value, const at::Tensor &spatial_shapes,
                                      const at::Tensor &level_start_index,
                                      const at::Tensor &sampling_loc, const at::Tensor &attn_weight);

std::vector<at::Tensor> ms_deform_attn_backward_cpu(
    const at::Tensor &value, const at::Tensor &spatial_shapes, const at::Tensor &level_start_index,
    const at::Tensor &sampling_loc, const at::Tensor &attn_weight, const at::Tensor &grad_output);

#ifdef WITH_CUDA
at::Tensor ms_deform_attn_forward_cuda(const at::Tensor &value, const at::Tensor &spatial_shapes,
                                       const at::Tensor &level_start_index,
                                       const at::Tensor &sampling_loc,
                                       const at::Tensor &attn_weight);

std::vector<at::Tensor> ms_deform_attn_backward_cuda(
    const at::Tensor &value, const at::Tensor &spatial_shapes, const at::Tensor &level_start_index,
    const at::Tensor &sampling_loc, const at::Tensor &attn_weight, const at::Tensor &grad_output);
#endif
