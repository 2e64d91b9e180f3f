// One Adam update of one parameter in a single pass over its elements, for contiguous float32 CPU
// tensors. libtorch's op-by-op update reads and writes the 3.2M-element dense weight six times per
// step; this reads each of parameter, gradient and the two moments once and writes three of them once.
#pragma once

#include <torch/torch.h>

namespace convscope {

struct AdamStepScalars {
  float firstMomentWeight;   // 1 - beta1, the lerp_ weight
  float beta2;
  float oneMinusBeta2;
  float sqrtBiasCorrection2; // sqrt(1 - beta2^step)
  float epsilon;
  float stepSize;            // -lr / (1 - beta1^step)
  float weightDecay;         // Adam's L2 penalty, added to the gradient (0 for AdamW)
  float decay = 1.0f;        // AdamW's decoupled decay: the parameter is first scaled by 1 - lr * weight decay
};

// True if the tensors qualify (same size, contiguous float32 on the CPU) and were updated; false
// leaves them untouched for the caller's op-by-op update. The arithmetic is libtorch's, operation for
// operation in float (lerp_, mul_, addcmul_, sqrt, div_, add_, addcdiv_), so both routes agree to
// rounding.
// The tensors are taken by const reference, as libtorch's in-place ops take `self`: the handles stay,
// the elements of param, expAvg and expAvgSq are written.
bool FusedAdamStep(const at::Tensor& param, const at::Tensor& grad, const at::Tensor& expAvg,
                   const at::Tensor& expAvgSq, const AdamStepScalars& s);

}  // namespace convscope
