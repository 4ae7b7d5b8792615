// Dropout whose mask is a pure function of (seed, element index): Philox4x32-10 counter-based random numbers,
// generated in parallel on the CPU; the forward pass keeps the mask bit-packed (1 bit per element) for the backward.
#pragma once
#include <torch/extension.h>

#include <tuple>

// (input * keep / (1 - p), keep packed 8 elements per byte, element i in bit i % 8 of byte i / 8)
std::tuple<at::Tensor, at::Tensor> philox_dropout_cpu(const at::Tensor &input, double p, int64_t seed);
// grad * keep / (1 - p) with the packed mask of the forward pass
at::Tensor dropout_backward_cpu(const at::Tensor &grad, const at::Tensor &mask, double p);
