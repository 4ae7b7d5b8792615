// Linear and bilinear interpolation with zero padding and half-pixel centres (grid_sample with
// align_corners=False: pixel coordinate = loc * size - 0.5), shared by the CPU and CUDA kernels of
// the deformable-attention ops (msda/, dfa3d/).
#pragma once
#include <cmath>
#include <cstdint>

#ifdef __CUDACC__
#define PERCEPTION_HOST_DEVICE __host__ __device__ __forceinline__
#else
#define PERCEPTION_HOST_DEVICE inline
#endif

namespace perception {

template <typename scalar_t>
PERCEPTION_HOST_DEVICE scalar_t floor_of(scalar_t x) {
#ifdef __CUDA_ARCH__
  return floor(x);
#else
  return std::floor(x);
#endif
}

// The two neighbours of a point on an axis of `size` cells.
template <typename scalar_t>
struct Linear {
  int64_t low;              // index of the lower neighbour; the upper one is low + 1
  scalar_t frac;            // weight of the upper neighbour; the lower one weighs 1 - frac
  bool low_in, high_in;     // whether each neighbour lies on the axis (else it reads as zero)

  // Returns false when the point lies wholly outside (pixel coordinate <= -1 or >= size, or NaN).
  PERCEPTION_HOST_DEVICE bool init(scalar_t loc, int64_t size) {
    const scalar_t x = loc * size - scalar_t(0.5);
    if (!(x > -1 && x < size)) return false;
    low = static_cast<int64_t>(floor_of(x));
    frac = x - low;
    low_in = low >= 0;
    high_in = low + 1 <= size - 1;
    return true;
  }

  // (1 - frac) * a[low] + frac * a[low + 1], reading only the neighbours on the axis.
  PERCEPTION_HOST_DEVICE scalar_t sample(const scalar_t *a) const {
    return (low_in ? (1 - frac) * a[low] : scalar_t(0)) + (high_in ? frac * a[low + 1] : scalar_t(0));
  }

  // a[low + 1] - a[low], zero outside the axis: the derivative of sample() w.r.t. the pixel
  // coordinate.
  PERCEPTION_HOST_DEVICE scalar_t slope(const scalar_t *a) const {
    return (high_in ? a[low + 1] : scalar_t(0)) - (low_in ? a[low] : scalar_t(0));
  }
};

// The four neighbours of a point on an H x W map, in the order (top-left, top-right, bottom-left,
// bottom-right).
template <typename scalar_t>
struct Bilinear {
  int64_t offset[4];  // key index of each corner (y * W + x), or -1 when outside the map
  scalar_t lh, lw, hh, hw;

  // Returns false when the point lies wholly outside (no corner contributes).
  PERCEPTION_HOST_DEVICE bool init(scalar_t loc_x, scalar_t loc_y, int64_t H, int64_t W) {
    Linear<scalar_t> y, x;
    if (!(y.init(loc_y, H) && x.init(loc_x, W))) return false;
    lh = y.frac;
    lw = x.frac;
    hh = 1 - lh;
    hw = 1 - lw;
    offset[0] = (y.low_in && x.low_in) ? y.low * W + x.low : -1;
    offset[1] = (y.low_in && x.high_in) ? y.low * W + x.low + 1 : -1;
    offset[2] = (y.high_in && x.low_in) ? (y.low + 1) * W + x.low : -1;
    offset[3] = (y.high_in && x.high_in) ? (y.low + 1) * W + x.low + 1 : -1;
    return true;
  }

  PERCEPTION_HOST_DEVICE void weights(scalar_t *w) const {
    w[0] = hh * hw;
    w[1] = hh * lw;
    w[2] = lh * hw;
    w[3] = lh * lw;
  }

  // Gradient of sum_k weights[k] * corner[k] w.r.t. the normalised location (x, y), given the four
  // corner values (zero for corners outside).
  PERCEPTION_HOST_DEVICE void location_grad(const scalar_t *corner, int64_t H, int64_t W,
                                            scalar_t &grad_x, scalar_t &grad_y) const {
    grad_x = (hh * (corner[1] - corner[0]) + lh * (corner[3] - corner[2])) * W;
    grad_y = (hw * (corner[2] - corner[0]) + lw * (corner[3] - corner[1])) * H;
  }
};

}  // namespace perception
