// Philox dropout on the CPU: out[i] = in[i] * keep[i] / (1 - p), keep[i] = (u[i] >= p), u[i] uniform in [0, 1)
// from the 24 high bits of Philox4x32-10 output i % 4 of counter i / 4 under the 64-bit key `seed`. torch's CPU
// bernoulli_ draws from one sequential Mersenne twister; a counter-based generator fills any slice on its own.
#include <ATen/OpMathType.h>
#include <ATen/Parallel.h>

#include <cstdint>

#include "dropout.h"

namespace {

struct Philox4x32 {
  static constexpr uint32_t M0 = 0xD2511F53u, M1 = 0xCD9E8D57u, W0 = 0x9E3779B9u, W1 = 0xBB67AE85u;

  // the 4 outputs of counter (c0, c1, 0, 0) under key (k0, k1): 10 rounds
  static inline void generate(uint64_t counter, uint64_t key, uint32_t out[4]) {
    uint32_t c0 = static_cast<uint32_t>(counter), c1 = static_cast<uint32_t>(counter >> 32), c2 = 0, c3 = 0;
    uint32_t k0 = static_cast<uint32_t>(key), k1 = static_cast<uint32_t>(key >> 32);
    for (int round = 0; round < 10; ++round) {
      const uint64_t p0 = static_cast<uint64_t>(M0) * c0, p1 = static_cast<uint64_t>(M1) * c2;
      const uint32_t hi0 = static_cast<uint32_t>(p0 >> 32), lo0 = static_cast<uint32_t>(p0);
      const uint32_t hi1 = static_cast<uint32_t>(p1 >> 32), lo1 = static_cast<uint32_t>(p1);
      c0 = hi1 ^ c1 ^ k0;
      c1 = lo1;
      c2 = hi0 ^ c3 ^ k1;
      c3 = lo0;
      k0 += W0;
      k1 += W1;
    }
    out[0] = c0;
    out[1] = c1;
    out[2] = c2;
    out[3] = c3;
  }
};

template <typename scalar_t>
void dropout_kernel(const scalar_t *in, scalar_t *out, int64_t n, float p, uint64_t seed) {
  using acc_t = at::opmath_type<scalar_t>;
  const acc_t scale = p < 1.f ? acc_t(1) / (acc_t(1) - acc_t(p)) : acc_t(0);
  const int64_t groups = (n + 3) / 4;
  at::parallel_for(0, groups, 2048, [&](int64_t begin, int64_t end) {
    uint32_t bits[4];
    for (int64_t g = begin; g < end; ++g) {
      Philox4x32::generate(static_cast<uint64_t>(g), seed, bits);
      const int64_t base = g * 4;
      const int64_t count = base + 4 <= n ? 4 : n - base;
      for (int64_t j = 0; j < count; ++j) {
        const float u = static_cast<float>(bits[j] >> 8) * (1.f / 16777216.f);
        out[base + j] = u >= p ? static_cast<scalar_t>(static_cast<acc_t>(in[base + j]) * scale) : scalar_t(0);
      }
    }
  });
}

}  // namespace

at::Tensor philox_dropout_cpu(const at::Tensor &input, double p, int64_t seed) {
  TORCH_CHECK(!input.is_cuda(), "philox_dropout_cpu: the input is on ", input.device());
  TORCH_CHECK(p >= 0. && p <= 1., "philox_dropout: p must be in [0, 1], got ", p);
  const at::Tensor in = input.contiguous();
  at::Tensor out = at::empty_like(in);
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, in.scalar_type(), "philox_dropout_cpu", [&] {
    dropout_kernel<scalar_t>(in.data_ptr<scalar_t>(), out.data_ptr<scalar_t>(), in.numel(),
                             static_cast<float>(p), static_cast<uint64_t>(seed));
  });
  return out;
}
