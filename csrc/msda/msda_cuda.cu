// CUDA kernels of multi-scale deformable attention: see msda.h for shapes and conventions.
//
// Forward: one thread per output element (batch, query, head, channel).
// Backward: one thread per sampling point (batch, query, head, level, point); it owns that point's
// location and weight gradients and scatters into grad_value with atomicAdd.
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>

#include "common/bilinear.h"
#include "msda.h"

namespace {

constexpr int kThreads = 256;

inline int64_t num_blocks(int64_t n) { return (n + kThreads - 1) / kThreads; }

using perception::Bilinear;

template <typename scalar_t>
__global__ void msda_forward_kernel(const scalar_t *__restrict__ value,
                                    const int64_t *__restrict__ shapes,
                                    const int64_t *__restrict__ starts,
                                    const scalar_t *__restrict__ loc,
                                    const scalar_t *__restrict__ attn, scalar_t *__restrict__ out,
                                    int64_t B, int64_t S, int64_t Q, int64_t M, int64_t D,
                                    int64_t L, int64_t P) {
  const int64_t n = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (n >= B * Q * M * D) return;
  const int64_t c = n % D;
  const int64_t m = (n / D) % M;
  const int64_t bq = n / (D * M);
  const int64_t b = bq / Q;
  const int64_t sample_base = (bq * M + m) * L * P;
  scalar_t acc = 0;
  for (int64_t l = 0; l < L; ++l) {
    const int64_t H = shapes[2 * l], W = shapes[2 * l + 1];
    const scalar_t *level_value = value + ((b * S + starts[l]) * M + m) * D + c;
    for (int64_t p = 0; p < P; ++p) {
      const int64_t s = sample_base + l * P + p;
      Bilinear<scalar_t> bil;
      if (!bil.init(loc[2 * s], loc[2 * s + 1], H, W)) continue;
      scalar_t cw[4];
      bil.weights(cw);
      scalar_t sampled = 0;
      for (int k = 0; k < 4; ++k)
        if (bil.offset[k] >= 0) sampled += cw[k] * level_value[bil.offset[k] * M * D];
      acc += attn[s] * sampled;
    }
  }
  out[n] = acc;
}

template <typename scalar_t>
__global__ void msda_backward_kernel(const scalar_t *__restrict__ value,
                                     const int64_t *__restrict__ shapes,
                                     const int64_t *__restrict__ starts,
                                     const scalar_t *__restrict__ loc,
                                     const scalar_t *__restrict__ attn,
                                     const scalar_t *__restrict__ grad_out,
                                     scalar_t *__restrict__ grad_value,
                                     scalar_t *__restrict__ grad_loc,
                                     scalar_t *__restrict__ grad_attn, int64_t B, int64_t S,
                                     int64_t Q, int64_t M, int64_t D, int64_t L, int64_t P) {
  const int64_t s = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (s >= B * Q * M * L * P) return;
  const int64_t l = (s / P) % L;
  const int64_t m = (s / (P * L)) % M;
  const int64_t bq = s / (P * L * M);
  const int64_t b = bq / Q;
  const int64_t H = shapes[2 * l], W = shapes[2 * l + 1];
  Bilinear<scalar_t> bil;
  if (!bil.init(loc[2 * s], loc[2 * s + 1], H, W)) return;
  scalar_t cw[4];
  bil.weights(cw);
  const int64_t level_offset = ((b * S + starts[l]) * M + m) * D;
  const scalar_t *gout = grad_out + (bq * M + m) * D;
  const scalar_t a = attn[s];
  scalar_t dot[4] = {0, 0, 0, 0};
  for (int k = 0; k < 4; ++k) {
    if (bil.offset[k] < 0) continue;
    const int64_t base = level_offset + bil.offset[k] * M * D;
    const scalar_t w = a * cw[k];
    scalar_t acc = 0;
    for (int64_t c = 0; c < D; ++c) {
      acc += gout[c] * value[base + c];
      atomicAdd(grad_value + base + c, w * gout[c]);
    }
    dot[k] = acc;
  }
  grad_attn[s] = cw[0] * dot[0] + cw[1] * dot[1] + cw[2] * dot[2] + cw[3] * dot[3];
  scalar_t grad_x, grad_y;
  bil.location_grad(dot, H, W, grad_x, grad_y);
  grad_loc[2 * s] = a * grad_x;
  grad_loc[2 * s + 1] = a * grad_y;
}

}  // namespace

at::Tensor ms_deform_attn_forward_cuda(const at::Tensor &value_, const at::Tensor &spatial_shapes,
                                       const at::Tensor &level_start_index,
                                       const at::Tensor &sampling_loc_,
                                       const at::Tensor &attn_weight_) {
  msda_check_inputs(value_, spatial_shapes, level_start_index, sampling_loc_, attn_weight_);
  const c10::cuda::CUDAGuard guard(value_.device());
  const auto value = value_.contiguous();
  const auto loc = sampling_loc_.contiguous();
  const auto attn = attn_weight_.contiguous();
  const auto shapes = spatial_shapes.to(value.device(), at::kLong).contiguous();
  const auto starts = level_start_index.to(value.device(), at::kLong).contiguous();
  const int64_t B = value.size(0), S = value.size(1), M = value.size(2), D = value.size(3);
  const int64_t Q = loc.size(1), L = loc.size(3), P = loc.size(4);
  auto output = at::zeros({B, Q, M * D}, value.options());
  const int64_t n = B * Q * M * D;
  if (n == 0) return output;
  AT_DISPATCH_FLOATING_TYPES(value.scalar_type(), "ms_deform_attn_forward_cuda", [&] {
    msda_forward_kernel<scalar_t><<<num_blocks(n), kThreads, 0, c10::cuda::getCurrentCUDAStream()>>>(
        value.data_ptr<scalar_t>(), shapes.data_ptr<int64_t>(), starts.data_ptr<int64_t>(),
        loc.data_ptr<scalar_t>(), attn.data_ptr<scalar_t>(), output.data_ptr<scalar_t>(), B, S, Q,
        M, D, L, P);
  });
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  return output;
}

std::vector<at::Tensor> ms_deform_attn_backward_cuda(
    const at::Tensor &value_, const at::Tensor &spatial_shapes,
    const at::Tensor &level_start_index, const at::Tensor &sampling_loc_,
    const at::Tensor &attn_weight_, const at::Tensor &grad_output_) {
  msda_check_inputs(value_, spatial_shapes, level_start_index, sampling_loc_, attn_weight_);
  TORCH_CHECK(grad_output_.is_cuda() && grad_output_.numel() == value_.size(0) *
                  sampling_loc_.size(1) * value_.size(2) * value_.size(3),
              "grad_output must be (B, Q, M * D) on the value's device, got ",
              grad_output_.sizes());
  const c10::cuda::CUDAGuard guard(value_.device());
  const auto value = value_.contiguous();
  const auto loc = sampling_loc_.contiguous();
  const auto attn = attn_weight_.contiguous();
  const auto grad_output = grad_output_.contiguous();
  const auto shapes = spatial_shapes.to(value.device(), at::kLong).contiguous();
  const auto starts = level_start_index.to(value.device(), at::kLong).contiguous();
  const int64_t B = value.size(0), S = value.size(1), M = value.size(2), D = value.size(3);
  const int64_t Q = loc.size(1), L = loc.size(3), P = loc.size(4);
  auto grad_value = at::zeros_like(value);
  auto grad_loc = at::zeros_like(loc);
  auto grad_attn = at::zeros_like(attn);
  const int64_t n = B * Q * M * L * P;
  if (n == 0 || D == 0) return {grad_value, grad_loc, grad_attn};
  AT_DISPATCH_FLOATING_TYPES(value.scalar_type(), "ms_deform_attn_backward_cuda", [&] {
    msda_backward_kernel<scalar_t><<<num_blocks(n), kThreads, 0, c10::cuda::getCurrentCUDAStream()>>>(
        value.data_ptr<scalar_t>(), shapes.data_ptr<int64_t>(), starts.data_ptr<int64_t>(),
        loc.data_ptr<scalar_t>(), attn.data_ptr<scalar_t>(), grad_output.data_ptr<scalar_t>(),
        grad_value.data_ptr<scalar_t>(), grad_loc.data_ptr<scalar_t>(),
        grad_attn.data_ptr<scalar_t>(), B, S, Q, M, D, L, P);
  });
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  return {grad_value, grad_loc, grad_attn};
}
