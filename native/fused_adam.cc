#include "fused_adam.h"

#include <ATen/Parallel.h>

#include <cmath>

namespace convscope {
namespace {

// Compiled for AVX-512, AVX2 and baseline x86-64; the loader picks the best the CPU has at run time,
// so the binary stays portable. The loop is memory-bound once it is vectorised. The kind of weight
// decay is a template argument so the loop body has no branch (a branch stops GCC vectorising the
// AVX2 clone).
enum class Decay { kNone, kL2, kDecoupled };

template <Decay kDecay>
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
__attribute__((target_clones("avx512f", "avx2", "default")))
#endif
void UpdateRange(float* __restrict p, const float* __restrict g, float* __restrict m, float* __restrict v,
                 int64_t begin, int64_t end, AdamStepScalars s) {
#pragma omp simd
  for (int64_t i = begin; i < end; ++i) {
    float grad = g[i];
    if constexpr (kDecay == Decay::kL2) grad = grad + s.weightDecay * p[i];
    // AdamW: param.mul_(1 - lr * weight_decay) before the update, as PyTorch's AdamW.
    float param = p[i];
    if constexpr (kDecay == Decay::kDecoupled) param = param * s.decay;
    // lerp_ with a weight below 0.5: self + weight * (end - self).
    const float mean = m[i] + s.firstMomentWeight * (grad - m[i]);
    const float square = v[i] * s.beta2 + s.oneMinusBeta2 * grad * grad;
    const float denominator = std::sqrt(square) / s.sqrtBiasCorrection2 + s.epsilon;
    m[i] = mean;
    v[i] = square;
    p[i] = param + s.stepSize * mean / denominator;
  }
}

bool Qualifies(const at::Tensor& t, int64_t numel) {
  return t.defined() && t.device().is_cpu() && t.scalar_type() == at::kFloat && t.is_contiguous() && t.numel() == numel;
}

}  // namespace

bool FusedAdamStep(const at::Tensor& param, const at::Tensor& grad, const at::Tensor& expAvg, const at::Tensor& expAvgSq,
                   const AdamStepScalars& s) {
  const int64_t n = param.numel();
  if (!Qualifies(param, n) || !Qualifies(grad, n) || !Qualifies(expAvg, n) || !Qualifies(expAvgSq, n)) return false;
  float* p = param.data_ptr<float>();
  const float* g = grad.data_ptr<float>();
  float* m = expAvg.data_ptr<float>();
  float* v = expAvgSq.data_ptr<float>();
  // 16K elements (256 KB over the four arrays) per task keeps small parameters on one thread.
  at::parallel_for(0, n, 16384, [&](int64_t begin, int64_t end) {
    if (s.decay != 1.0f) {
      UpdateRange<Decay::kDecoupled>(p, g, m, v, begin, end, s);
    } else if (s.weightDecay != 0.0f) {
      UpdateRange<Decay::kL2>(p, g, m, v, begin, end, s);
    } else {
      UpdateRange<Decay::kNone>(p, g, m, v, begin, end, s);
    }
  });
  return true;
}

}  // namespace convscope
