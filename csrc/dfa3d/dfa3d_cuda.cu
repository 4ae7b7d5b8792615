// CUDA kernels of multi-scale 3D deformable attention: see dfa3d.h for shapes and conventions.
//
// Forward: one thread per output element (batch, query, head, channel).
// Backward: one thread per sampling point (batch, query, head, level, point); it owns that point's
// location and weight gradients and scatters into grad_value and grad_depth_dist with atomicAdd.
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>

#include "common/bilinear.h"
#include "dfa3d.h"

namespace {

using perception::Bilinear;
using perception::Linear;

constexpr int kThreads = 256;

inline int64_t num_blocks(int64_t n) { return (n + kThreads - 1) / kThreads; }

template <typename scalar_t>
__global__ void dfa3d_forward_kernel(const scalar_t *__restrict__ value,
                                     const scalar_t *__restrict__ depth,
                                     const int64_t *__restrict__ shapes,
                                     const int64_t *__restrict__ starts,
                                     const scalar_t *__restrict__ loc,
                                     const scalar_t *__restrict__ attn,
                                     scalar_t *__restrict__ out, int64_t B, int64_t S, int64_t Q,
                                     int64_t M, int64_t C, int64_t N, int64_t L, int64_t P) {
  const int64_t n = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (n >= B * Q * M * C) return;
  const int64_t c = n % C;
  const int64_t m = (n / C) % M;
  const int64_t bq = n / (C * M);
  const int64_t b = bq / Q;
  const int64_t sample_base = (bq * M + m) * L * P;
  scalar_t acc = 0;
  for (int64_t l = 0; l < L; ++l) {
    const int64_t H = shapes[2 * l], W = shapes[2 * l + 1];
    const int64_t key0 = (b * S + starts[l]) * M + m;
    const scalar_t *level_value = value + key0 * C + c;
    const scalar_t *level_depth = depth + key0 * N;
    for (int64_t p = 0; p < P; ++p) {
      const int64_t s = sample_base + l * P + p;
      Bilinear<scalar_t> bil;
      Linear<scalar_t> dep;
      if (!(bil.init(loc[3 * s], loc[3 * s + 1], H, W) && dep.init(loc[3 * s + 2], N))) continue;
      scalar_t cw[4];
      bil.weights(cw);
      scalar_t sampled = 0;
      for (int k = 0; k < 4; ++k) {
        if (bil.offset[k] < 0) continue;
        const scalar_t score = dep.sample(level_depth + bil.offset[k] * M * N);
        sampled += cw[k] * score * level_value[bil.offset[k] * M * C];
      }
      acc += attn[s] * sampled;
    }
  }
  out[n] = acc;
}

template <typename scalar_t>
__global__ void dfa3d_backward_kernel(
    const scalar_t *__restrict__ value, const scalar_t *__restrict__ depth,
    const int64_t *__restrict__ shapes, const int64_t *__restrict__ starts,
    const scalar_t *__restrict__ loc, const scalar_t *__restrict__ attn,
    const scalar_t *__restrict__ grad_out, scalar_t *__restrict__ grad_value,
    scalar_t *__restrict__ grad_depth, scalar_t *__restrict__ grad_loc,
    scalar_t *__restrict__ grad_attn, int64_t B, int64_t S, int64_t Q, int64_t M, int64_t C,
    int64_t N, int64_t L, int64_t P) {
  const int64_t s = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (s >= B * Q * M * L * P) return;
  const int64_t l = (s / P) % L;
  const int64_t m = (s / (P * L)) % M;
  const int64_t bq = s / (P * L * M);
  const int64_t b = bq / Q;
  const int64_t H = shapes[2 * l], W = shapes[2 * l + 1];
  Bilinear<scalar_t> bil;
  Linear<scalar_t> dep;
  if (!(bil.init(loc[3 * s], loc[3 * s + 1], H, W) && dep.init(loc[3 * s + 2], N))) return;
  scalar_t cw[4];
  bil.weights(cw);
  const int64_t key0 = (b * S + starts[l]) * M + m;
  const scalar_t *gout = grad_out + (bq * M + m) * C;
  const scalar_t a = attn[s];
  // As in the CPU kernel: weighted[k] = score_k * <grad_out, value at corner k>.
  scalar_t weighted[4] = {0, 0, 0, 0};
  scalar_t grad_d = 0;
  for (int k = 0; k < 4; ++k) {
    if (bil.offset[k] < 0) continue;
    const int64_t value_row = (key0 + bil.offset[k] * M) * C;
    const int64_t depth_row = (key0 + bil.offset[k] * M) * N;
    const scalar_t score = dep.sample(depth + depth_row);
    const scalar_t w = a * cw[k] * score;
    scalar_t dot = 0;
    for (int64_t c = 0; c < C; ++c) {
      dot += gout[c] * value[value_row + c];
      atomicAdd(grad_value + value_row + c, w * gout[c]);
    }
    const scalar_t g_score = a * cw[k] * dot;
    if (dep.low_in) atomicAdd(grad_depth + depth_row + dep.low, (1 - dep.frac) * g_score);
    if (dep.high_in) atomicAdd(grad_depth + depth_row + dep.low + 1, dep.frac * g_score);
    weighted[k] = score * dot;
    grad_d += cw[k] * dot * dep.slope(depth + depth_row);
  }
  grad_attn[s] = cw[0] * weighted[0] + cw[1] * weighted[1] + cw[2] * weighted[2] +
                 cw[3] * weighted[3];
  scalar_t grad_u, grad_v;
  bil.location_grad(weighted, H, W, grad_u, grad_v);
  grad_loc[3 * s] = a * grad_u;
  grad_loc[3 * s + 1] = a * grad_v;
  grad_loc[3 * s + 2] = a * grad_d * N;
}

}  // namespace

at::Tensor ms_3d_deform_attn_forward_cuda(const at::Tensor &value_, const at::Tensor &depth_dist_,
                                          const at::Tensor &spatial_shapes,
                                          const at::Tensor &level_start_index,
                                          const at::Tensor &sampling_loc_,
                                          const at::Tensor &attn_weight_) {
  dfa3d_check_inputs(value_, depth_dist_, spatial_shapes, level_start_index, sampling_loc_,
                     attn_weight_);
  const c10::cuda::CUDAGuard guard(value_.device());
  const auto value = value_.contiguous();
  const auto depth = depth_dist_.contiguous();
  const auto loc = sampling_loc_.contiguous();
  const auto attn = attn_weight_.contiguous();
  const auto shapes = spatial_shapes.to(value.device(), at::kLong).contiguous();
  const auto starts = level_start_index.to(value.device(), at::kLong).contiguous();
  const int64_t B = value.size(0), S = value.size(1), M = value.size(2), C = value.size(3);
  const int64_t N = depth.size(3);
  const int64_t Q = loc.size(1), L = loc.size(3), P = loc.size(4);
  auto output = at::zeros({B, Q, M * C}, value.options());
  const int64_t n = B * Q * M * C;
  if (n == 0) return output;
  AT_DISPATCH_FLOATING_TYPES(value.scalar_type(), "ms_3d_deform_attn_forward_cuda", [&] {
    dfa3d_forward_kernel<scalar_t><<<num_blocks(n), kThreads, 0, c10::cuda::getCurrentCUDAStream()>>>(
        value.data_ptr<scalar_t>(), depth.data_ptr<scalar_t>(), shapes.data_ptr<int64_t>(),
        starts.data_ptr<int64_t>(), loc.data_ptr<scalar_t>(), attn.data_ptr<scalar_t>(),
        output.data_ptr<scalar_t>(), B, S, Q, M, C, N, L, P);
  });
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  return output;
}

std::vector<at::Tensor> ms_3d_deform_attn_backward_cuda(
    const at::Tensor &value_, const at::Tensor &depth_dist_, const at::Tensor &spatial_shapes,
    const at::Tensor &level_start_index, const at::Tensor &sampling_loc_,
    const at::Tensor &attn_weight_, const at::Tensor &grad_output_) {
  dfa3d_check_inputs(value_, depth_dist_, spatial_shapes, level_start_index, sampling_loc_,
                     attn_weight_);
  TORCH_CHECK(grad_output_.device() == value_.device() &&
                  grad_output_.scalar_type() == value_.scalar_type() &&
                  grad_output_.numel() ==
                      value_.size(0) * sampling_loc_.size(1) * value_.size(2) * value_.size(3),
              "grad_output must be (B, Q, M * C) of value's device and dtype, got ",
              grad_output_.sizes(), " ", grad_output_.scalar_type());
  const c10::cuda::CUDAGuard guard(value_.device());
  const auto value = value_.contiguous();
  const auto depth = depth_dist_.contiguous();
  const auto loc = sampling_loc_.contiguous();
  const auto attn = attn_weight_.contiguous();
  const auto grad_output = grad_output_.contiguous();
  const auto shapes = spatial_shapes.to(value.device(), at::kLong).contiguous();
  const auto starts = level_start_index.to(value.device(), at::kLong).contiguous();
  const int64_t B = value.size(0), S = value.size(1), M = value.size(2), C = value.size(3);
  const int64_t N = depth.size(3);
  const int64_t Q = loc.size(1), L = loc.size(3), P = loc.size(4);
  auto grad_value = at::zeros_like(value);
  auto grad_depth = at::zeros_like(depth);
  auto grad_loc = at::zeros_like(loc);
  auto grad_attn = at::zeros_like(attn);
  const int64_t n = B * Q * M * L * P;
  if (n == 0 || C == 0) return {grad_value, grad_depth, grad_loc, grad_attn};
  AT_DISPATCH_FLOATING_TYPES(value.scalar_type(), "ms_3d_deform_attn_backward_cuda", [&] {
    dfa3d_backward_kernel<scalar_t><<<num_blocks(n), kThreads, 0, c10::cuda::getCurrentCUDAStream()>>>(
        value.data_ptr<scalar_t>(), depth.data_ptr<scalar_t>(), shapes.data_ptr<int64_t>(),
        starts.data_ptr<int64_t>(), loc.data_ptr<scalar_t>(), attn.data_ptr<scalar_t>(),
        grad_output.data_ptr<scalar_t>(), grad_value.data_ptr<scalar_t>(),
        grad_depth.data_ptr<scalar_t>(), grad_loc.data_ptr<scalar_t>(),
        grad_attn.data_ptr<scalar_t>(), B, S, Q, M, C, N, L, P);
  });
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  return {grad_value, grad_depth, grad_loc, grad_attn};
}
