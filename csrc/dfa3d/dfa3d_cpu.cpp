// CPU kernels of multi-scale 3D deformable attention: see dfa3d.h for shapes and conventions.
//
// Forward is parallel over (batch, query). Backward is parallel over (batch, head): the (batch, head)
// slices of grad_value and grad_depth_dist are each written by exactly one thread in query order, so
// the result is deterministic and needs no atomics; the location and weight gradients of a
// (query, head) belong to that same slice.
#include <ATen/Parallel.h>

#include <vector>

#include "common/bilinear.h"
#include "common/cpu_kernel.h"
#include "dfa3d.h"
#include "msda/msda.h"

namespace {

using perception::Bilinear;
using perception::Linear;

// Pointers and sizes of one call (see dfa3d.h); the gradient pointers are unused by the forward.
template <typename scalar_t>
struct Problem {
  const scalar_t *value, *depth, *loc, *attn, *gout;
  const int64_t *shapes, *starts;
  scalar_t *out, *gvalue, *gdepth, *gloc, *gattn;
  int64_t B, S, M, C, N, Q, L, P;
};

// One thread's share of the forward: rows [begin, end) of (batch * query).
template <typename scalar_t>
PERCEPTION_ALWAYS_INLINE void forward_rows(const Problem<scalar_t> &pb, int64_t begin,
                                           int64_t end) {
  const int64_t S = pb.S, M = pb.M, C = pb.C, N = pb.N, Q = pb.Q, L = pb.L, P = pb.P;
  const int64_t value_key_stride = M * C, depth_key_stride = M * N;
  // The corners of all samples of a (query, head) are gathered first, their rows prefetched, then
  // accumulated: the channel loop then runs on rows already on their way to the cache.
  const int64_t max_corners = L * P * 4;
  std::vector<const scalar_t *> rows(max_corners);
  std::vector<scalar_t> weights(max_corners);
  for (int64_t bq = begin; bq < end; ++bq) {
    const int64_t b = bq / Q;
    for (int64_t m = 0; m < M; ++m) {
      const int64_t sample_base = (bq * M + m) * L * P;
      int64_t n = 0;
      for (int64_t l = 0; l < L; ++l) {
        const int64_t H = pb.shapes[2 * l], W = pb.shapes[2 * l + 1];
        const int64_t key0 = (b * S + pb.starts[l]) * M + m;
        const scalar_t *level_value = pb.value + key0 * C;
        const scalar_t *level_depth = pb.depth + key0 * N;
        for (int64_t p = 0; p < P; ++p) {
          const int64_t s = sample_base + l * P + p;
          const scalar_t *loc = pb.loc + 3 * s;
          Bilinear<scalar_t> bil;
          Linear<scalar_t> dep;
          if (!(bil.init(loc[0], loc[1], H, W) && dep.init(loc[2], N))) continue;
          scalar_t cw[4];
          bil.weights(cw);
          for (int k = 0; k < 4; ++k) {
            if (bil.offset[k] < 0) continue;
            const scalar_t score = dep.sample(level_depth + bil.offset[k] * depth_key_stride);
            rows[n] = level_value + bil.offset[k] * value_key_stride;
            weights[n] = pb.attn[s] * cw[k] * score;
            __builtin_prefetch(rows[n]);
            __builtin_prefetch(rows[n] + C - 1);
            ++n;
          }
        }
      }
      scalar_t *__restrict__ out = pb.out + (bq * M + m) * C;
      for (int64_t i = 0; i < n; ++i) {
        const scalar_t *__restrict__ v = rows[i];
        const scalar_t w = weights[i];
        for (int64_t c = 0; c < C; ++c) out[c] += w * v[c];
      }
    }
  }
}

// One thread's share of the backward: slices [begin, end) of (batch * head).
template <typename scalar_t>
PERCEPTION_ALWAYS_INLINE void backward_slices(const Problem<scalar_t> &pb, int64_t begin,
                                              int64_t end) {
  const int64_t S = pb.S, M = pb.M, C = pb.C, N = pb.N, Q = pb.Q, L = pb.L, P = pb.P;
  const int64_t value_key_stride = M * C, depth_key_stride = M * N;
  for (int64_t bm = begin; bm < end; ++bm) {
    const int64_t b = bm / M, m = bm % M;
    for (int64_t q = 0; q < Q; ++q) {
      const int64_t bq = b * Q + q;
      const scalar_t *__restrict__ gout = pb.gout + (bq * M + m) * C;
      const int64_t sample_base = (bq * M + m) * L * P;
      for (int64_t l = 0; l < L; ++l) {
        const int64_t H = pb.shapes[2 * l], W = pb.shapes[2 * l + 1];
        const int64_t key0 = (b * S + pb.starts[l]) * M + m;
        const scalar_t *level_value = pb.value + key0 * C;
        const scalar_t *level_depth = pb.depth + key0 * N;
        scalar_t *level_gvalue = pb.gvalue + key0 * C;
        scalar_t *level_gdepth = pb.gdepth + key0 * N;
        for (int64_t p = 0; p < P; ++p) {
          const int64_t s = sample_base + l * P + p;
          const scalar_t *loc = pb.loc + 3 * s;
          Bilinear<scalar_t> bil;
          Linear<scalar_t> dep;
          if (!(bil.init(loc[0], loc[1], H, W) && dep.init(loc[2], N))) continue;
          scalar_t cw[4];
          bil.weights(cw);
          const scalar_t a = pb.attn[s];
          // weighted[k] = score_k * <grad_out, value at corner k>: the output's gradient w.r.t.
          // corner k's bilinear weight (per unit attention), from which the attention and (u, v)
          // gradients follow; grad_d sums the d-derivatives of the scores the same way.
          scalar_t weighted[4] = {0, 0, 0, 0};
          scalar_t grad_d = 0;
          for (int k = 0; k < 4; ++k) {
            if (bil.offset[k] < 0) continue;
            const scalar_t *__restrict__ v = level_value + bil.offset[k] * value_key_stride;
            scalar_t *__restrict__ gv = level_gvalue + bil.offset[k] * value_key_stride;
            const scalar_t *depth_row = level_depth + bil.offset[k] * depth_key_stride;
            scalar_t *gdepth_row = level_gdepth + bil.offset[k] * depth_key_stride;
            const scalar_t score = dep.sample(depth_row);
            const scalar_t dot = perception::dot(gout, v, C);
            const scalar_t w = a * cw[k] * score;
            for (int64_t c = 0; c < C; ++c) gv[c] += w * gout[c];
            const scalar_t g_score = a * cw[k] * dot;
            if (dep.low_in) gdepth_row[dep.low] += (1 - dep.frac) * g_score;
            if (dep.high_in) gdepth_row[dep.low + 1] += dep.frac * g_score;
            weighted[k] = score * dot;
            grad_d += cw[k] * dot * dep.slope(depth_row);
          }
          pb.gattn[s] = cw[0] * weighted[0] + cw[1] * weighted[1] + cw[2] * weighted[2] +
                        cw[3] * weighted[3];
          scalar_t grad_u, grad_v;
          bil.location_grad(weighted, H, W, grad_u, grad_v);
          scalar_t *gloc = pb.gloc + 3 * s;
          gloc[0] = a * grad_u;
          gloc[1] = a * grad_v;
          gloc[2] = a * grad_d * N;
        }
      }
    }
  }
}

// The multi-versioned entry points (see PERCEPTION_TARGET_CLONES in common/cpu_kernel.h).
#define DFA3D_INSTANTIATE(scalar_t)                                                            \
  PERCEPTION_TARGET_CLONES void forward_rows_##scalar_t(const Problem<scalar_t> &pb, int64_t b, \
                                                        int64_t e) {                            \
    forward_rows<scalar_t>(pb, b, e);                                                           \
  }                                                                                             \
  PERCEPTION_TARGET_CLONES void backward_slices_##scalar_t(const Problem<scalar_t> &pb,         \
                                                           int64_t b, int64_t e) {              \
    backward_slices<scalar_t>(pb, b, e);                                                        \
  }                                                                                             \
  inline void forward_rows_mv(const Problem<scalar_t> &pb, int64_t b, int64_t e) {              \
    forward_rows_##scalar_t(pb, b, e);                                                          \
  }                                                                                             \
  inline void backward_slices_mv(const Problem<scalar_t> &pb, int64_t b, int64_t e) {           \
    backward_slices_##scalar_t(pb, b, e);                                                       \
  }
DFA3D_INSTANTIATE(float)
DFA3D_INSTANTIATE(double)
#undef DFA3D_INSTANTIATE

}  // namespace

void dfa3d_check_inputs(const at::Tensor &value, const at::Tensor &depth_dist,
                        const at::Tensor &spatial_shapes, const at::Tensor &level_start_index,
                        const at::Tensor &sampling_loc, const at::Tensor &attn_weight) {
  msda_check_inputs(value, spatial_shapes, level_start_index, sampling_loc, attn_weight, 3);
  TORCH_CHECK(depth_dist.device() == value.device(), "depth_dist must be on the device of value (",
              value.device(), "), got ", depth_dist.device());
  TORCH_CHECK(depth_dist.dim() == 4 && depth_dist.size(0) == value.size(0) &&
                  depth_dist.size(1) == value.size(1) && depth_dist.size(2) == value.size(2) &&
                  depth_dist.size(3) >= 1,
              "depth_dist must be (B, S, M, N) with (B, S, M) of value ", value.sizes(),
              " and N >= 1 depth bins, got ", depth_dist.sizes());
  TORCH_CHECK(depth_dist.scalar_type() == value.scalar_type(),
              "depth_dist and value must share a dtype, got ", depth_dist.scalar_type(), " and ",
              value.scalar_type());
}

at::Tensor ms_3d_deform_attn_forward_cpu(const at::Tensor &value_, const at::Tensor &depth_dist_,
                                         const at::Tensor &spatial_shapes_,
                                         const at::Tensor &level_start_index_,
                                         const at::Tensor &sampling_loc_,
                                         const at::Tensor &attn_weight_) {
  dfa3d_check_inputs(value_, depth_dist_, spatial_shapes_, level_start_index_, sampling_loc_,
                     attn_weight_);
  const auto value = value_.contiguous();
  const auto depth_dist = depth_dist_.contiguous();
  const auto sampling_loc = sampling_loc_.contiguous();
  const auto attn_weight = attn_weight_.contiguous();
  const auto shapes = spatial_shapes_.to(at::kLong).contiguous();
  const auto starts = level_start_index_.to(at::kLong).contiguous();

  const int64_t B = value.size(0), S = value.size(1), M = value.size(2), C = value.size(3);
  const int64_t N = depth_dist.size(3);
  const int64_t Q = sampling_loc.size(1), L = sampling_loc.size(3), P = sampling_loc.size(4);
  auto output = at::zeros({B, Q, M * C}, value.options());
  if (B * Q == 0 || M * C == 0) return output;

  AT_DISPATCH_FLOATING_TYPES(value.scalar_type(), "ms_3d_deform_attn_forward_cpu", [&] {
    Problem<scalar_t> pb{value.data_ptr<scalar_t>(), depth_dist.data_ptr<scalar_t>(),
                         sampling_loc.data_ptr<scalar_t>(), attn_weight.data_ptr<scalar_t>(),
                         nullptr, shapes.data_ptr<int64_t>(), starts.data_ptr<int64_t>(),
                         output.data_ptr<scalar_t>(), nullptr, nullptr, nullptr, nullptr,
                         B, S, M, C, N, Q, L, P};
    at::parallel_for(0, B * Q, 16,
                     [&](int64_t begin, int64_t end) { forward_rows_mv(pb, begin, end); });
  });
  return output;
}

std::vector<at::Tensor> ms_3d_deform_attn_backward_cpu(
    const at::Tensor &value_, const at::Tensor &depth_dist_, const at::Tensor &spatial_shapes_,
    const at::Tensor &level_start_index_, const at::Tensor &sampling_loc_,
    const at::Tensor &attn_weight_, const at::Tensor &grad_output_) {
  dfa3d_check_inputs(value_, depth_dist_, spatial_shapes_, level_start_index_, sampling_loc_,
                     attn_weight_);
  const auto value = value_.contiguous();
  const auto depth_dist = depth_dist_.contiguous();
  const auto sampling_loc = sampling_loc_.contiguous();
  const auto attn_weight = attn_weight_.contiguous();
  const auto grad_output = grad_output_.contiguous();
  const auto shapes = spatial_shapes_.to(at::kLong).contiguous();
  const auto starts = level_start_index_.to(at::kLong).contiguous();

  const int64_t B = value.size(0), S = value.size(1), M = value.size(2), C = value.size(3);
  const int64_t N = depth_dist.size(3);
  const int64_t Q = sampling_loc.size(1), L = sampling_loc.size(3), P = sampling_loc.size(4);
  TORCH_CHECK(grad_output.numel() == B * Q * M * C && grad_output.scalar_type() == value.scalar_type(),
              "grad_output must be (B, Q, M * C) of value's dtype, got ", grad_output.sizes(), " ",
              grad_output.scalar_type());
  auto grad_value = at::zeros_like(value);
  auto grad_depth = at::zeros_like(depth_dist);
  auto grad_loc = at::zeros_like(sampling_loc);
  auto grad_attn = at::zeros_like(attn_weight);
  if (B * Q == 0 || M * C == 0) return {grad_value, grad_depth, grad_loc, grad_attn};

  AT_DISPATCH_FLOATING_TYPES(value.scalar_type(), "ms_3d_deform_attn_backward_cpu", [&] {
    Problem<scalar_t> pb{value.data_ptr<scalar_t>(), depth_dist.data_ptr<scalar_t>(),
                         sampling_loc.data_ptr<scalar_t>(), attn_weight.data_ptr<scalar_t>(),
                         grad_output.data_ptr<scalar_t>(), shapes.data_ptr<int64_t>(),
                         starts.data_ptr<int64_t>(), nullptr, grad_value.data_ptr<scalar_t>(),
                         grad_depth.data_ptr<scalar_t>(), grad_loc.data_ptr<scalar_t>(),
                         grad_attn.data_ptr<scalar_t>(), B, S, M, C, N, Q, L, P};
    at::parallel_for(0, B * M, 1,
                     [&](int64_t begin, int64_t end) { backward_slices_mv(pb, begin, end); });
  });
  return {grad_value, grad_depth, grad_loc, grad_attn};
}
