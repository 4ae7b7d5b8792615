// Python bindings of perception._ext. Each op dispatches on the device of its inputs.
#include <torch/extension.h>

#include "dfa3d/dfa3d.h"
#include "dropout/dropout.h"
#include "msda/msda.h"

namespace {

at::Tensor ms_deform_attn_forward(const at::Tensor &value, const at::Tensor &spatial_shapes,
                                  const at::Tensor &level_start_index,
                                  const at::Tensor &sampling_loc, const at::Tensor &attn_weight) {
  if (value.is_cuda()) {
#ifdef WITH_CUDA
    return ms_deform_attn_forward_cuda(value, spatial_shapes, level_start_index, sampling_loc,
                                       attn_weight);
#else
    TORCH_CHECK(false, "perception._ext was built without CUDA; rebuild with FORCE_CUDA=1");
#endif
  }
  return ms_deform_attn_forward_cpu(value, spatial_shapes, level_start_index, sampling_loc,
                                    attn_weight);
}

std::vector<at::Tensor> ms_deform_attn_backward(const at::Tensor &value,
                                                const at::Tensor &spatial_shapes,
                                                const at::Tensor &level_start_index,
                                                const at::Tensor &sampling_loc,
                                                const at::Tensor &attn_weight,
                                                const at::Tensor &grad_output) {
  if (value.is_cuda()) {
#ifdef WITH_CUDA
    return ms_deform_attn_backward_cuda(value, spatial_shapes, level_start_index, sampling_loc,
                                        attn_weight, grad_output);
#else
    TORCH_CHECK(false, "perception._ext was built without CUDA; rebuild with FORCE_CUDA=1");
#endif
  }
  return ms_deform_attn_backward_cpu(value, spatial_shapes, level_start_index, sampling_loc,
                                     attn_weight, grad_output);
}

at::Tensor ms_3d_deform_attn_forward(const at::Tensor &value, const at::Tensor &depth_dist,
                                     const at::Tensor &spatial_shapes,
                                     const at::Tensor &level_start_index,
                                     const at::Tensor &sampling_loc,
                                     const at::Tensor &attn_weight) {
  if (value.is_cuda()) {
#ifdef WITH_CUDA
    return ms_3d_deform_attn_forward_cuda(value, depth_dist, spatial_shapes, level_start_index,
                                          sampling_loc, attn_weight);
#else
    TORCH_CHECK(false, "perception._ext was built without CUDA; rebuild with FORCE_CUDA=1");
#endif
  }
  return ms_3d_deform_attn_forward_cpu(value, depth_dist, spatial_shapes, level_start_index,
                                       sampling_loc, attn_weight);
}

std::vector<at::Tensor> ms_3d_deform_attn_backward(
    const at::Tensor &value, const at::Tensor &depth_dist, const at::Tensor &spatial_shapes,
    const at::Tensor &level_start_index, const at::Tensor &sampling_loc,
    const at::Tensor &attn_weight, const at::Tensor &grad_output) {
  if (value.is_cuda()) {
#ifdef WITH_CUDA
    return ms_3d_deform_attn_backward_cuda(value, depth_dist, spatial_shapes, level_start_index,
                                           sampling_loc, attn_weight, grad_output);
#else
    TORCH_CHECK(false, "perception._ext was built without CUDA; rebuild with FORCE_CUDA=1");
#endif
  }
  return ms_3d_deform_attn_backward_cpu(value, depth_dist, spatial_shapes, level_start_index,
                                        sampling_loc, attn_weight, grad_output);
}

}  // namespace

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.def("ms_deform_attn_forward", &ms_deform_attn_forward,
        "multi-scale deformable attention, forward", py::arg("value"), py::arg("spatial_shapes"),
        py::arg("level_start_index"), py::arg("sampling_locations"),
        py::arg("attention_weights"));
  m.def("ms_deform_attn_backward", &ms_deform_attn_backward,
        "multi-scale deformable attention, backward: grads of value, locations, weights",
        py::arg("value"), py::arg("spatial_shapes"), py::arg("level_start_index"),
        py::arg("sampling_locations"), py::arg("attention_weights"), py::arg("grad_output"));
  m.def("ms_3d_deform_attn_forward", &ms_3d_deform_attn_forward,
        "multi-scale 3D deformable attention (DFA3D), forward", py::arg("value"),
        py::arg("depth_dist"), py::arg("spatial_shapes"), py::arg("level_start_index"),
        py::arg("sampling_locations"), py::arg("attention_weights"));
  m.def("ms_3d_deform_attn_backward", &ms_3d_deform_attn_backward,
        "multi-scale 3D deformable attention (DFA3D), backward: grads of value, depth_dist, "
        "locations, weights",
        py::arg("value"), py::arg("depth_dist"), py::arg("spatial_shapes"),
        py::arg("level_start_index"), py::arg("sampling_locations"),
        py::arg("attention_weights"), py::arg("grad_output"));
  m.def("philox_dropout", &philox_dropout_cpu,
        "dropout (CPU) with a counter-based mask: the same (seed, p) give the same mask; returns the output and "
        "the mask, bit-packed",
        py::arg("input"), py::arg("p"), py::arg("seed"));
  m.def("dropout_backward", &dropout_backward_cpu,
        "the gradient of philox_dropout: grad * keep / (1 - p) with its bit-packed mask", py::arg("grad"),
        py::arg("mask"), py::arg("p"));
#ifdef WITH_CUDA
  m.attr("with_cuda") = true;
#else
  m.attr("with_cuda") = false;
#endif
}
