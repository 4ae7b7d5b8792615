// Multi-scale 3D deformable attention (DFA3D, Li, Zhang et al., ICCV 2023).
//
// Each head samples the expanded volume F(u, v) * D(u, v, d) (features times the per-pixel depth
// distribution) trilinearly at (u, v, d) without building it: for each of the four bilinear (u, v)
// corners the depth distribution is interpolated linearly along d (the corner's depth score), and
// the corner's feature is weighted by its bilinear weight times that score. This equals trilinear
// grid_sample of the outer product with zero padding.
//
// Shapes (mmcv's MSDA layout, see msda/msda.h, plus the depth distribution):
//   value               (B, S, M, C)        S = sum_l H_l * W_l keys, M heads, C channels per head
//   depth_dist          (B, S, M, N)        N depth bins, shared by all levels
//   spatial_shapes      (L, 2) int64        (H_l, W_l)
//   level_start_index   (L,)   int64
//   sampling_locations  (B, Q, M, L, P, 3)  normalised (u, v, d) in [0, 1]
//   attention_weights   (B, Q, M, L, P)
//   output              (B, Q, M * C)
// All three coordinates follow grid_sample with align_corners=False: pixel coordinate =
// loc * size - 0.5 with sizes (W_l, H_l, N); a point with any coordinate <= -1 or >= size is skipped.
#pragma once
#include <ATen/ATen.h>

#include <vector>

void dfa3d_check_inputs(const at::Tensor &value, const at::Tensor &depth_dist,
                        const at::Tensor &spatial_shapes, const at::Tensor &level_start_index,
                        const at::Tensor &sampling_loc, const at::Tensor &attn_weight);

at::Tensor ms_3d_deform_attn_forward_cpu(const at::Tensor &value, const at::Tensor &depth_dist,
                                         const at::Tensor &spatial_shapes,
                                         const at::Tensor &level_start_index,
                                         const at::Tensor &sampling_loc,
                                         const at::Tensor &attn_weight);

// Gradients of value, depth_dist, sampling_locations and attention_weights.
std::vector<at::Tensor> ms_3d_deform_attn_backward_cpu(
    const at::Tensor &value, const at::Tensor &depth_dist, const at::Tensor &spatial_shapes,
    const at::Tensor &level_start_index, const at::Tensor &sampling_loc,
    const at::Tensor &attn_weight, const at::Tensor &grad_output);

#ifdef WITH_CUDA
at::Tensor ms_3d_deform_attn_forward_cuda(const at::Tensor &value, const at::Tensor &depth_dist,
                                          const at::Tensor &spatial_shapes,
                                          const at::Tensor &level_start_index,
                                          const at::Tensor &sampling_loc,
                                          const at::Tensor &attn_weight);

std::vector<at::Tensor> ms_3d_deform_attn_backward_cuda(
    const at::Tensor &value, const at::Tensor &depth_dist, const at::Tensor &spatial_shapes,
    const at::Tensor &level_start_index, const at::Tensor &sampling_loc,
    const at::Tensor &attn_weight, const at::Tensor &grad_output);
#endif
