// 2x2 max pooling (stride 2) followed by ReLU or leaky ReLU, in one pass forward and one backward,
// for CPU tensors in float32 or bfloat16, with its own autograd node.
//
// Why: libtorch's channels-last max pooling keeps an int64 index per output (8 bytes), its backward
// zero-fills the whole input gradient before scattering into it, and the activation and its backward
// are two passes more. Here the forward reads the input once and writes the output and one byte per
// output (which of the four inputs won, and whether it was positive); the backward writes every input
// gradient once. Together they took about a tenth of a training step of the tutorial network on the
// project's 2-core machine (perf, 2026-12-01).
//
// The values are libtorch's bit for bit: the maximum is taken in the same order with the same NaN
// rule, and max commutes with these increasing piecewise-linear activations (script-source.ts says
// why the scripted graph already applied them after the pooling). The gradient reaches the same
// input element. Used by both paths on the CPU, in training and in evaluation (the eager model and
// the TorchScript op convscope::max_pool2x2_act); other devices keep libtorch's ops.
#pragma once

#include <ATen/ATen.h>

namespace convscope {

// act(max_pool2d(x, 2, 2)) where act is ReLU (negativeSlope 0) or leaky ReLU with that slope, for a
// 4-D CPU float or bfloat16 tensor; anything else takes libtorch's max_pool2d and activation. The
// output is channels-last (an NCHW input is made channels-last first, as the scripted pooling did).
at::Tensor MaxPool2x2Activation(const at::Tensor& x, double negativeSlope);

}  // namespace convscope
