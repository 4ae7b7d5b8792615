// Philox dropout on the CPU: out[i] = in[i] * keep[i] / (1 - p), keep[i] = (u[i] >= p), u[i] uniform in [0, 1)
// from the 24 high bits of Philox4x32-10 output i % 4 of counter i / 4 under the 64-bit key `seed` (Salmon et al.,
// SC 2011; the Random123 reference). torch's CPU bernoulli_ draws from one sequential Mersenne twister; a
// counter-based generator fills any slice on its own.
#include <ATen/OpMathType.h>
#include <ATen/Parallel.h>

#include <cmath>
#include <cstdint>

#include "dropout.h"

namespace {

constexpr int kLanes = 16;               // counters per block
constexpr int64_t kBlock = 4 * kLanes;   // elements per block (8 mask bytes)

constexpr uint32_t kM0 = 0xD2511F53u, kM1 = 0xCD9E8D57u, kW0 = 0x9E3779B9u, kW1 = 0xBB67AE85u;

// outputs j of counters first .. first + 15 under `key`, element 4 * l + j of the block in out[4 * l + j]
inline void philox_block(uint64_t first, uint64_t key, uint32_t out[kBlock]) {
  for (int l = 0; l < kLanes; ++l) {
    const uint64_t counter = first + static_cast<uint64_t>(l);
    uint32_t c0 = static_cast<uint32_t>(counter), c1 = static_cast<uint32_t>(counter >> 32), c2 = 0, c3 = 0;
    uint32_t k0 = static_cast<uint32_t>(key), k1 = static_cast<uint32_t>(key >> 32);
    for (int round = 0; round < 10; ++round) {
      const uint64_t p0 = static_cast<uint64_t>(kM0) * c0, p1 = static_cast<uint64_t>(kM1) * c2;
      const uint32_t n0 = static_cast<uint32_t>(p1 >> 32) ^ c1 ^ k0;
      const uint32_t n2 = static_cast<uint32_t>(p0 >> 32) ^ c3 ^ k1;
      c1 = static_cast<uint32_t>(p1);
      c3 = static_cast<uint32_t>(p0);
      c0 = n0;
      c2 = n2;
      k0 += kW0;
      k1 += kW1;
    }
    out[4 * l] = c0;
    out[4 * l + 1] = c1;
    out[4 * l + 2] = c2;
    out[4 * l + 3] = c3;
  }
}

template <typename scalar_t>
void dropout_kernel(const scalar_t *in, scalar_t *out, uint8_t *mask, int64_t n, float p, uint64_t seed) {
  using acc_t = at::opmath_type<scalar_t>;
  const acc_t scale = p < 1.f ? acc_t(1) / (acc_t(1) - acc_t(p)) : acc_t(0);
  // keep iff the 24-bit integer u * 2^24 >= threshold = ceil(p * 2^24)
  const uint32_t threshold = static_cast<uint32_t>(std::ceil(static_cast<double>(p) * 16777216.));
  const int64_t blocks = (n + kBlock - 1) / kBlock;
  at::parallel_for(0, blocks, 256, [&](int64_t begin, int64_t end) {
    uint32_t bits[kBlock];
    for (int64_t b = begin; b < end; ++b) {
      philox_block(static_cast<uint64_t>(b) * kLanes, seed, bits);
      const int64_t base = b * kBlock;
      const int64_t count = base + kBlock <= n ? kBlock : n - base;
      uint8_t keep[kBlock];
      for (int64_t j = 0; j < kBlock; ++j) keep[j] = (bits[j] >> 8) >= threshold;
      for (int64_t j = 0; j < count; ++j)
        out[base + j] = keep[j] ? static_cast<scalar_t>(static_cast<acc_t>(in[base + j]) * scale) : scalar_t(0);
      uint8_t *m = mask + b * (kBlock / 8);
      for (int64_t byte = 0; byte < kBlock / 8; ++byte) {
        uint8_t v = 0;
        for (int bit = 0; bit < 8; ++bit) v |= static_cast<uint8_t>(keep[8 * byte + bit] << bit);
        m[byte] = v;
      }
    }
  });
}

template <typename scalar_t>
void backward_kernel(const scalar_t *grad, const uint8_t *mask, scalar_t *out, int64_t n, float p) {
  using acc_t = at::opmath_type<scalar_t>;
  const acc_t scale = p < 1.f ? acc_t(1) / (acc_t(1) - acc_t(p)) : acc_t(0);
  const int64_t bytes = (n + 7) / 8;
  at::parallel_for(0, bytes, 4096, [&](int64_t begin, int64_t end) {
    for (int64_t byte = begin; byte < end; ++byte) {
      const uint8_t m = mask[byte];
      const int64_t base = byte * 8;
      const int64_t count = base + 8 <= n ? 8 : n - base;
      for (int64_t j = 0; j < count; ++j)
        out[base + j] = ((m >> j) & 1) ? static_cast<scalar_t>(static_cast<acc_t>(grad[base + j]) * scale)
                                       : scalar_t(0);
    }
  });
}

}  // namespace

std::tuple<at::Tensor, at::Tensor> philox_dropout_cpu(const at::Tensor &input, double p, int64_t seed) {
  TORCH_CHECK(!input.is_cuda(), "philox_dropout_cpu: the input is on ", input.device());
  TORCH_CHECK(p >= 0. && p <= 1., "philox_dropout: p must be in [0, 1], got ", p);
  const at::Tensor in = input.contiguous();
  at::Tensor out = at::empty_like(in);
  const int64_t n = in.numel();
  // whole blocks, so that every thread writes whole bytes
  at::Tensor mask = at::empty({(n + kBlock - 1) / kBlock * (kBlock / 8)}, in.options().dtype(at::kByte));
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, in.scalar_type(), "philox_dropout_cpu", [&] {
    dropout_kernel<scalar_t>(in.data_ptr<scalar_t>(), out.data_ptr<scalar_t>(), mask.data_ptr<uint8_t>(), n,
                             static_cast<float>(p), static_cast<uint64_t>(seed));
  });
  return std::make_tuple(out, mask);
}

at::Tensor dropout_backward_cpu(const at::Tensor &grad, const at::Tensor &mask, double p) {
  TORCH_CHECK(!grad.is_cuda(), "dropout_backward_cpu: the gradient is on ", grad.device());
  TORCH_CHECK(mask.scalar_type() == at::kByte && mask.is_contiguous(), "dropout_backward_cpu: a packed uint8 mask");
  TORCH_CHECK(mask.numel() * 8 >= grad.numel(), "dropout_backward_cpu: a mask of ", mask.numel(),
              " bytes for ", grad.numel(), " elements");
  const at::Tensor g = grad.contiguous();
  at::Tensor out = at::empty_like(g);
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, g.scalar_type(), "dropout_backward_cpu", [&] {
    backward_kernel<scalar_t>(g.data_ptr<scalar_t>(), mask.data_ptr<uint8_t>(), out.data_ptr<scalar_t>(),
                              g.numel(), static_cast<float>(p));
  });
  return out;
}
