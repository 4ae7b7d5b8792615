// CPU kernels of multi-scale deformable attention: see msda.h for shapes and conventions.
//
// Forward is parallel over (batch, query). Backward is parallel over (batch, head): every
// (batch, head) slice of grad_value is written by exactly one thread in query order, so the result
// is deterministic and needs no atomics; the location and weight gradients of a (query, head)
// belong to that same slice.
#include <ATen/Parallel.h>

#include <vector>

#include "common/bilinear.h"
#include "common/cpu_kernel.h"
#include "msda.h"

namespace {

using perception::Bilinear;

// Pointers and sizes of one call (see msda.h); the gradient pointers are unused by the forward.
template <typename scalar_t>
struct Problem {
  const scalar_t *value, *loc, *attn, *gout;
  const int64_t *shapes, *starts;
  scalar_t *out, *gvalue, *gloc, *gattn;
  int64_t B, S, M, D, Q, L, P;
};

// One thread's share of the forward: rows [begin, end) of (batch * query).
template <typename scalar_t>
PERCEPTION_ALWAYS_INLINE void forward_rows(const Problem<scalar_t> &pb, int64_t begin, int64_t end) {
  const int64_t S = pb.S, M = pb.M, D = pb.D, Q = pb.Q, L = pb.L, P = pb.P;
  const int64_t key_stride = M * D;
  const int64_t *shape_ptr = pb.shapes, *start_ptr = pb.starts;
  const scalar_t *value_ptr = pb.value, *loc_ptr = pb.loc, *attn_ptr = pb.attn;
  scalar_t *out_ptr = pb.out;
  const int64_t max_corners = L * P * 4;
  std::vector<const scalar_t *> rows(max_corners);
  std::vector<scalar_t> weights(max_corners);
  for (int64_t bq = begin; bq < end; ++bq) {
    const int64_t b = bq / Q;
    for (int64_t m = 0; m < M; ++m) {
      const int64_t sample_base = (bq * M + m) * L * P;
      int64_t n = 0;
      for (int64_t l = 0; l < L; ++l) {
        const int64_t H = shape_ptr[2 * l], W = shape_ptr[2 * l + 1];
        const scalar_t *level_value = value_ptr + ((b * S + start_ptr[l]) * M + m) * D;
        for (int64_t p = 0; p < P; ++p) {
          const int64_t s = sample_base + l * P + p;
          Bilinear<scalar_t> bil;
          if (!bil.init(loc_ptr[2 * s], loc_ptr[2 * s + 1], H, W)) continue;
          scalar_t cw[4];
          bil.weights(cw);
          for (int k = 0; k < 4; ++k) {
            if (bil.offset[k] < 0) continue;
            rows[n] = level_value + bil.offset[k] * key_stride;
            weights[n] = attn_ptr[s] * cw[k];
            __builtin_prefetch(rows[n]);
            __builtin_prefetch(rows[n] + D - 1);
            ++n;
          }
        }
      }
      scalar_t *__restrict__ out = out_ptr + (bq * M + m) * D;
      for (int64_t i = 0; i < n; ++i) {
        const scalar_t *__restrict__ v = rows[i];
        const scalar_t w = weights[i];
        for (int64_t c = 0; c < D; ++c) out[c] += w * v[c];
      }
    }
  }
}

// One thread's share of the backward: slices [begin, end) of (batch * head).
template <typename scalar_t>
PERCEPTION_ALWAYS_INLINE void backward_slices(const Problem<scalar_t> &pb, int64_t begin, int64_t end) {
  const int64_t S = pb.S, M = pb.M, D = pb.D, Q = pb.Q, L = pb.L, P = pb.P;
  const int64_t key_stride = M * D;
  const int64_t *shape_ptr = pb.shapes, *start_ptr = pb.starts;
  const scalar_t *value_ptr = pb.value, *loc_ptr = pb.loc, *attn_ptr = pb.attn, *gout_ptr = pb.gout;
  scalar_t *gvalue_ptr = pb.gvalue, *gloc_ptr = pb.gloc, *gattn_ptr = pb.gattn;
  // As in the forward, the corners of all samples of a query are located and prefetched
  // (value rows and their gradient rows) before any of them is used.
  std::vector<Bilinear<scalar_t>> bils(L * P);
  std::vector<char> inside(L * P);
  for (int64_t bm = begin; bm < end; ++bm) {
    const int64_t b = bm / M, m = bm % M;
    for (int64_t q = 0; q < Q; ++q) {
      const int64_t bq = b * Q + q;
      const scalar_t *__restrict__ gout = gout_ptr + (bq * M + m) * D;
      const int64_t sample_base = (bq * M + m) * L * P;
      for (int64_t l = 0; l < L; ++l) {
        const int64_t H = shape_ptr[2 * l], W = shape_ptr[2 * l + 1];
        const int64_t level_offset = ((b * S + start_ptr[l]) * M + m) * D;
        for (int64_t p = 0; p < P; ++p) {
          const int64_t s = sample_base + l * P + p;
          Bilinear<scalar_t> &bil = bils[l * P + p];
          inside[l * P + p] = bil.init(loc_ptr[2 * s], loc_ptr[2 * s + 1], H, W);
          if (!inside[l * P + p]) continue;
          for (int k = 0; k < 4; ++k) {
            if (bil.offset[k] < 0) continue;
            const int64_t row = level_offset + bil.offset[k] * key_stride;
            __builtin_prefetch(value_ptr + row);
            __builtin_prefetch(value_ptr + row + D - 1);
            __builtin_prefetch(gvalue_ptr + row, 1);
            __builtin_prefetch(gvalue_ptr + row + D - 1, 1);
          }
        }
      }
      for (int64_t l = 0; l < L; ++l) {
        const int64_t H = shape_ptr[2 * l], W = shape_ptr[2 * l + 1];
        const int64_t level_offset = ((b * S + start_ptr[l]) * M + m) * D;
        const scalar_t *level_value = value_ptr + level_offset;
        scalar_t *level_gvalue = gvalue_ptr + level_offset;
        for (int64_t p = 0; p < P; ++p) {
          if (!inside[l * P + p]) continue;
          const int64_t s = sample_base + l * P + p;
          const Bilinear<scalar_t> &bil = bils[l * P + p];
          scalar_t cw[4];
          bil.weights(cw);
          const scalar_t a = attn_ptr[s];
          // dot[k] = <grad_out, value at corner k>: the sampled value's gradient w.r.t. each
          // corner weight, from which the attention and location gradients follow.
          scalar_t dot[4] = {0, 0, 0, 0};
          for (int k = 0; k < 4; ++k) {
            if (bil.offset[k] < 0) continue;
            const scalar_t *__restrict__ v = level_value + bil.offset[k] * key_stride;
            scalar_t *__restrict__ gv = level_gvalue + bil.offset[k] * key_stride;
            const scalar_t w = a * cw[k];
            dot[k] = perception::dot(gout, v, D);
            for (int64_t c = 0; c < D; ++c) gv[c] += w * gout[c];
          }
          gattn_ptr[s] = cw[0] * dot[0] + cw[1] * dot[1] + cw[2] * dot[2] + cw[3] * dot[3];
          scalar_t grad_x, grad_y;
          bil.location_grad(dot, H, W, grad_x, grad_y);
          gloc_ptr[2 * s] = a * grad_x;
          gloc_ptr[2 * s + 1] = a * grad_y;
        }
      }
    }
  }
}

// The multi-versioned entry points (see PERCEPTION_TARGET_CLONES in common/cpu_kernel.h).
#define MSDA_INSTANTIATE(scalar_t)                                                             \
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
MSDA_INSTANTIATE(float)
MSDA_INSTANTIATE(double)
#undef MSDA_INSTANTIATE

}  // namespace

void msda_check_inputs(const at::Tensor &value, const at::Tensor &spatial_shapes,
                       const at::Tensor &level_start_index, const at::Tensor &sampling_loc,
                       const at::Tensor &attn_weight, int64_t num_coords) {
  TORCH_CHECK(sampling_loc.device() == value.device() && attn_weight.device() == value.device(),
              "value, sampling_locations and attention_weights must be on one device, got ",
              value.device(), ", ", sampling_loc.device(), " and ", attn_weight.device());
  TORCH_CHECK(value.dim() == 4, "value must be (B, S, M, D), got ", value.sizes());
  TORCH_CHECK(spatial_shapes.dim() == 2 && spatial_shapes.size(1) == 2,
              "spatial_shapes must be (L, 2), got ", spatial_shapes.sizes());
  TORCH_CHECK(level_start_index.dim() == 1 && level_start_index.size(0) == spatial_shapes.size(0),
              "level_start_index must be (L,), got ", level_start_index.sizes());
  TORCH_CHECK(sampling_loc.dim() == 6 && sampling_loc.size(5) == num_coords,
              "sampling_locations must be (B, Q, M, L, P, ", num_coords, "), got ",
              sampling_loc.sizes());
  TORCH_CHECK(attn_weight.dim() == 5, "attention_weights must be (B, Q, M, L, P), got ",
              attn_weight.sizes());
  TORCH_CHECK(sampling_loc.size(0) == value.size(0) && sampling_loc.size(2) == value.size(2) &&
                  sampling_loc.size(3) == spatial_shapes.size(0),
              "sampling_locations ", sampling_loc.sizes(), " does not match value ", value.sizes(),
              " and ", spatial_shapes.size(0), " levels");
  TORCH_CHECK(attn_weight.sizes() == sampling_loc.sizes().slice(0, 5),
              "attention_weights ", attn_weight.sizes(), " does not match sampling_locations ",
              sampling_loc.sizes());
  TORCH_CHECK(value.scalar_type() == sampling_loc.scalar_type() &&
                  value.scalar_type() == attn_weight.scalar_type(),
              "value, sampling_locations and attention_weights must share a dtype, got ",
              value.scalar_type(), ", ", sampling_loc.scalar_type(), " and ",
              attn_weight.scalar_type());
  const int64_t keys = (spatial_shapes.select(1, 0) * spatial_shapes.select(1, 1)).sum().item<int64_t>();
  TORCH_CHECK(keys == value.size(1), "value has ", value.size(1),
              " keys but spatial_shapes describe ", keys);
}

at::Tensor ms_deform_attn_forward_cpu(const at::Tensor &value_, const at::Tensor &spatial_shapes_,
                                      const at::Tensor &level_start_index_,
                                      const at::Tensor &sampling_loc_,
                                      const at::Tensor &attn_weight_) {
  msda_check_inputs(value_, spatial_shapes_, level_start_index_, sampling_loc_, attn_weight_);
  const auto value = value_.contiguous();
  const auto sampling_loc = sampling_loc_.contiguous();
  const auto attn_weight = attn_weight_.contiguous();
  const auto shapes = spatial_shapes_.to(at::kLong).contiguous();
  const auto starts = level_start_index_.to(at::kLong).contiguous();

  const int64_t B = value.size(0), S = value.size(1), M = value.size(2), D = value.size(3);
  const int64_t Q = sampling_loc.size(1), L = sampling_loc.size(3), P = sampling_loc.size(4);
  auto output = at::zeros({B, Q, M * D}, value.options());
  if (B * Q == 0 || M * D == 0) return output;
  const int64_t *shape_ptr = shapes.data_ptr<int64_t>();
  const int64_t *start_ptr = starts.data_ptr<int64_t>();

  AT_DISPATCH_FLOATING_TYPES(value.scalar_type(), "ms_deform_attn_forward_cpu", [&] {
    Problem<scalar_t> pb{value.data_ptr<scalar_t>(), sampling_loc.data_ptr<scalar_t>(),
                         attn_weight.data_ptr<scalar_t>(), nullptr, shape_ptr, start_ptr,
                         output.data_ptr<scalar_t>(), nullptr, nullptr, nullptr, B, S, M, D, Q, L, P};
    at::parallel_for(0, B * Q, 16,
                     [&](int64_t begin, int64_t end) { forward_rows_mv(pb, begin, end); });
  });
  return output;
}

std::vector<at::Tensor> ms_deform_attn_backward_cpu(
    const at::Tensor &value_, const at::Tensor &spatial_shapes_,
    const at::Tensor &level_start_index_, const at::Tensor &sampling_loc_,
    const at::Tensor &attn_weight_, const at::Tensor &grad_output_) {
  msda_check_inputs(value_, spatial_shapes_, level_start_index_, sampling_loc_, attn_weight_);
  const auto value = value_.contiguous();
  const auto sampling_loc = sampling_loc_.contiguous();
  const auto attn_weight = attn_weight_.contiguous();
  const auto grad_output = grad_output_.contiguous();
  const auto shapes = spatial_shapes_.to(at::kLong).contiguous();
  const auto starts = level_start_index_.to(at::kLong).contiguous();

  const int64_t B = value.size(0), S = value.size(1), M = value.size(2), D = value.size(3);
  const int64_t Q = sampling_loc.size(1), L = sampling_loc.size(3), P = sampling_loc.size(4);
  TORCH_CHECK(grad_output.numel() == B * Q * M * D, "grad_output must be (B, Q, M * D), got ",
              grad_output.sizes());
  auto grad_value = at::zeros_like(value);
  auto grad_loc = at::zeros_like(sampling_loc);
  auto grad_attn = at::zeros_like(attn_weight);
  if (B * Q == 0 || M * D == 0) return {grad_value, grad_loc, grad_attn};
  const int64_t *shape_ptr = shapes.data_ptr<int64_t>();
  const int64_t *start_ptr = starts.data_ptr<int64_t>();

  AT_DISPATCH_FLOATING_TYPES(value.scalar_type(), "ms_deform_attn_backward_cpu", [&] {
    Problem<scalar_t> pb{value.data_ptr<scalar_t>(), sampling_loc.data_ptr<scalar_t>(),
                         attn_weight.data_ptr<scalar_t>(), grad_output.data_ptr<scalar_t>(),
                         shape_ptr, start_ptr, nullptr, grad_value.data_ptr<scalar_t>(),
                         grad_loc.data_ptr<scalar_t>(), grad_attn.data_ptr<scalar_t>(),
                         B, S, M, D, Q, L, P};
    at::parallel_for(0, B * M, 1,
                     [&](int64_t begin, int64_t end) { backward_slices_mv(pb, begin, end); });
  });
  return {grad_value, grad_loc, grad_attn};
}
