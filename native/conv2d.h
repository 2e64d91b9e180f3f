// 2-D convolution whose bias gradient is a plain sum over the batch and the positions.
//
// Why: for float32 on the CPU, libtorch's convolution backward asks oneDNN for the bias gradient
// together with the weights', and oneDNN computes it in a scalar loop (compute_diff_bias): about 5%
// of a training step of the tutorial network on the project's machine (perf, 2026-12-01), where
// at::sum over the same gradient takes a tenth of the time. Everything else is libtorch's own
// convolution and backward. Under autocast, on other devices, and without autograd the call is
// at::conv2d itself (oneDNN's bias gradient is cheap in bfloat16, and autocast casts conv2d).
#pragma once

#include <ATen/ATen.h>

namespace convscope {

// at::conv2d(x, weight, bias, stride, padding) with dilation 1 and one group; `padding` is [top/bottom,
// left/right], symmetric.
at::Tensor Conv2d(const at::Tensor& x, const at::Tensor& weight, const c10::optional<at::Tensor>& bias, at::IntArrayRef stride,
                  at::IntArrayRef padding);

}  // namespace convscope
