// Helpers of the CPU kernels: a vectorisable dot product and the multi-versioning attributes.
#pragma once
#include <cstdint>

namespace perception {

// <a, b> over n elements with 8 independent partial sums: a single running sum is a dependency
// chain the compiler may not reorder (no -ffast-math), which leaves the loop scalar and latency-bound.
template <typename scalar_t>
inline scalar_t dot(const scalar_t *__restrict__ a, const scalar_t *__restrict__ b, int64_t n) {
  scalar_t part[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  int64_t c = 0;
  for (; c + 8 <= n; c += 8)
    for (int k = 0; k < 8; ++k) part[k] += a[c + k] * b[c + k];
  scalar_t acc = ((part[0] + part[1]) + (part[2] + part[3])) + ((part[4] + part[5]) + (part[6] + part[7]));
  for (; c < n; ++c) acc += a[c] * b[c];
  return acc;
}

}  // namespace perception

// A kernel marked PERCEPTION_TARGET_CLONES is compiled twice, for baseline x86-64 and for AVX2 + FMA,
// and the loader picks the one the CPU supports: the channel loops gain from the wider vectors.
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define PERCEPTION_TARGET_CLONES __attribute__((target_clones("arch=haswell", "default")))
#else
#define PERCEPTION_TARGET_CLONES
#endif
#define PERCEPTION_ALWAYS_INLINE inline __attribute__((always_inline))
