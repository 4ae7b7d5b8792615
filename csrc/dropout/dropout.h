// Dropout whose mask is a pure function of (seed, element index): Philox4x32-10 counter-based random numbers,
// generated in parallel on the CPU and regenerated in the backward pass instead of stored.
#pragma once
#include <torch/extension.h>

at::Tensor philox_dropout_cpu(const at::Tensor &input, double p, int64_t seed);
