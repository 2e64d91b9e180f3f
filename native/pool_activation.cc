#include "pool_activation.h"

#include <ATen/Parallel.h>
#include <torch/torch.h>

#include <cmath>
#include <cstdint>
#include <algorithm>
#include <stdexcept>
#include <string>

namespace convscope {
namespace {

// One byte per output: bits 0-1 the window position that won (0 top-left, 1 top-right, 2 bottom-left,
// 3 bottom-right), bit 2 set when the activation's backward passes the gradient unscaled.
constexpr uint8_t kPassBit = 4;

// The kernels work on raw elements: float, or bfloat16 as its 16 bits (c10::BFloat16's conversions
// do not vectorise). Load widens exactly; Store rounds to nearest even with NaN made quiet, as
// c10::BFloat16 does.
inline float Load(float v) { return v; }
inline float Load(uint16_t v) { return __builtin_bit_cast(float, static_cast<uint32_t>(v) << 16); }
template <typename Raw>
inline Raw Store(float v);
template <>
inline float Store<float>(float v) { return v; }
template <>
inline uint16_t Store<uint16_t>(float v) {
  const uint32_t u = __builtin_bit_cast(uint32_t, v);
  const uint32_t rounded = (u + 0x7FFFu + ((u >> 16) & 1u)) >> 16;
  return static_cast<uint16_t>(v != v ? 0x7FC0u : rounded);
}

// Calls body(float{}) or body(uint16_t{}) for a float32 or bfloat16 tensor (Supported() allows no other).
template <typename Body>
void WithRawType(at::ScalarType type, Body&& body) {
  if (type == at::kFloat) {
    body(float{});
  } else if (type == at::kBFloat16) {
    body(uint16_t{});
  } else {
    throw std::invalid_argument(std::string("max_pool2x2_act: expected float32 or bfloat16 but received ") + c10::toString(type));
  }
}

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define CONVSCOPE_VECTOR_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define CONVSCOPE_VECTOR_CLONES
#endif

// One output row: the windows of input rows `top` and `top + w * c` (channels-last), written to `out`
// and, with kKeepCodes, `code`. Branch-free, so that the channel loop vectorises.
// The winner is libtorch's: its CPU max pooling keeps the first maximum in window order and lets a NaN
// win (`val > max || isnan(val)`), so the same element gets the gradient.
template <typename T, bool kRelu, bool kKeepCodes>
CONVSCOPE_VECTOR_CLONES void ForwardRow(const T* __restrict top, T* __restrict out, uint8_t* __restrict code, int64_t ow, int64_t w,
                                        int64_t c, float slope) {
  const T* bottom = top + w * c;
  for (int64_t j = 0; j < ow; ++j) {
    const T* __restrict p0 = top + 2 * j * c;
    const T* __restrict p1 = p0 + c;
    const T* __restrict p2 = bottom + 2 * j * c;
    const T* __restrict p3 = p2 + c;
    T* __restrict o = out + j * c;
    uint8_t* __restrict k = code + (kKeepCodes ? j * c : 0);
#pragma omp simd
    for (int64_t ch = 0; ch < c; ++ch) {
      const float v0 = Load(p0[ch]), v1 = Load(p1[ch]), v2 = Load(p2[ch]), v3 = Load(p3[ch]);
      float m = v0;  // -inf loses to anything but -inf, and then the index stays the first
      int32_t at = 0;
      const bool t1 = (v1 > m) | (v1 != v1);
      m = t1 ? v1 : m;
      at = t1 ? 1 : at;
      const bool t2 = (v2 > m) | (v2 != v2);
      m = t2 ? v2 : m;
      at = t2 ? 2 : at;
      const bool t3 = (v3 > m) | (v3 != v3);
      m = t3 ? v3 : m;
      at = t3 ? 3 : at;
      // relu is clamp_min(x, 0), x < 0 ? 0 : x (NaN and -0 stay), and its backward passes where the
      // output is not <= 0. leaky ReLU is x > 0 ? x : x * slope, its backward scales where x is not > 0.
      const bool pass = kRelu ? !(m <= 0.0f) : m > 0.0f;
      const float scaled = m * slope;  // unconditional, so that the select vectorises
      o[ch] = Store<T>(kRelu ? (m < 0.0f ? 0.0f : m) : (pass ? m : scaled));
      if constexpr (kKeepCodes) k[ch] = static_cast<uint8_t>(at | (pass ? kPassBit : 0));
    }
  }
}

// x: [N, H, W, C] in memory (channels-last), y: [N, OH, OW, C], codes likewise or null.
template <typename T, bool kRelu>
void ForwardKernel(const T* x, T* y, uint8_t* codes, int64_t n, int64_t h, int64_t w, int64_t c, float slope) {
  const int64_t oh = h / 2, ow = w / 2;
  at::parallel_for(0, n * oh, 8, [&](int64_t begin, int64_t end) {
    for (int64_t row = begin; row < end; ++row) {
      const int64_t b = row / oh, i = row % oh;
      const T* top = x + ((b * h + 2 * i) * w) * c;
      if (codes) {
        ForwardRow<T, kRelu, true>(top, y + row * ow * c, codes + row * ow * c, ow, w, c, slope);
      } else {
        ForwardRow<T, kRelu, false>(top, y + row * ow * c, nullptr, ow, w, c, slope);
      }
    }
  });
}

// One input row of the gradient: every element written, the window's winner with the output's
// gradient (scaled by the activation's backward), the other three with zeros; columns that no window
// covered (odd widths) with zeros too.
template <typename T, bool kRelu>
CONVSCOPE_VECTOR_CLONES void BackwardRow(const T* __restrict g, const uint8_t* __restrict code, T* __restrict out, int64_t ow, int64_t w,
                                         int64_t c, uint8_t bottomRow, float slope) {
  const T zero = 0;
  for (int64_t j = 0; j < ow; ++j) {
    T* left = out + 2 * j * c;
    T* right = left + c;
    const T* gj = g + j * c;
    const uint8_t* kj = code + j * c;
#pragma omp simd
    for (int64_t ch = 0; ch < c; ++ch) {
      const uint8_t k = kj[ch];
      const float gv = Load(gj[ch]);
      const bool pass = (k & kPassBit) != 0;
      const float scaled = kRelu ? 0.0f : gv * slope;
      const T gm = Store<T>(pass ? gv : scaled);
      const uint8_t at = k & 3;
      left[ch] = at == bottomRow ? gm : zero;
      right[ch] = at == (bottomRow | 1) ? gm : zero;
    }
  }
  for (int64_t e = 2 * ow * c; e < w * c; ++e) out[e] = zero;
}

// gradOut and codes: [N, OH, OW, C] in memory; gradIn: [N, H, W, C] in memory. Rows that no window
// covered (odd heights) are zeros.
template <typename T, bool kRelu>
void BackwardKernel(const T* gradOut, const uint8_t* codes, T* gradIn, int64_t n, int64_t h, int64_t w, int64_t c, float slope) {
  const int64_t oh = h / 2, ow = w / 2;
  const T zero = 0;
  at::parallel_for(0, n * h, 16, [&](int64_t begin, int64_t end) {
    for (int64_t inRow = begin; inRow < end; ++inRow) {
      const int64_t b = inRow / h, hi = inRow % h, i = hi / 2;
      T* out = gradIn + inRow * w * c;
      if (i >= oh) {
        std::fill(out, out + w * c, zero);
        continue;
      }
      const int64_t outRow = (b * oh + i) * ow * c;
      BackwardRow<T, kRelu>(gradOut + outRow, codes + outRow, out, ow, w, c, static_cast<uint8_t>((hi & 1) << 1), slope);
    }
  });
}

bool Supported(const at::Tensor& x) {
  return x.defined() && x.is_cpu() && x.dim() == 4 && x.size(2) >= 2 && x.size(3) >= 2 &&
         (x.scalar_type() == at::kFloat || x.scalar_type() == at::kBFloat16);
}

// y and (when keepCodes) the byte per output that the backward reads.
std::pair<at::Tensor, at::Tensor> Forward(const at::Tensor& input, double negativeSlope, bool keepCodes) {
  const at::Tensor x = input.contiguous(at::MemoryFormat::ChannelsLast);
  const int64_t n = x.size(0), c = x.size(1), h = x.size(2), w = x.size(3);
  at::Tensor y = at::empty({n, c, h / 2, w / 2}, x.options().memory_format(at::MemoryFormat::ChannelsLast));
  at::Tensor codes = keepCodes ? at::empty({n, c, h / 2, w / 2}, x.options().dtype(at::kByte).memory_format(at::MemoryFormat::ChannelsLast)) : at::Tensor();
  uint8_t* codePtr = keepCodes ? codes.data_ptr<uint8_t>() : nullptr;
  const float slope = static_cast<float>(negativeSlope);
  WithRawType(x.scalar_type(), [&](auto raw) {
    using Raw = decltype(raw);
    const Raw* in = static_cast<const Raw*>(x.data_ptr());
    Raw* out = static_cast<Raw*>(y.data_ptr());
    if (negativeSlope == 0.0) {
      ForwardKernel<Raw, true>(in, out, codePtr, n, h, w, c, slope);
    } else {
      ForwardKernel<Raw, false>(in, out, codePtr, n, h, w, c, slope);
    }
  });
  return {y, codes};
}

at::Tensor Backward(const at::Tensor& gradOutput, const at::Tensor& codes, int64_t h, int64_t w, double negativeSlope) {
  // The gradient usually arrives channels-last (from the next convolution's backward); from a flatten
  // it arrives NCHW: one small copy then.
  const at::Tensor gradOut = gradOutput.contiguous(at::MemoryFormat::ChannelsLast);
  const int64_t n = codes.size(0), c = codes.size(1);
  at::Tensor gradIn = at::empty({n, c, h, w}, gradOut.options().memory_format(at::MemoryFormat::ChannelsLast));
  const float slope = static_cast<float>(negativeSlope);
  WithRawType(gradOut.scalar_type(), [&](auto raw) {
    using Raw = decltype(raw);
    const Raw* g = static_cast<const Raw*>(gradOut.data_ptr());
    Raw* out = static_cast<Raw*>(gradIn.data_ptr());
    if (negativeSlope == 0.0) {
      BackwardKernel<Raw, true>(g, codes.data_ptr<uint8_t>(), out, n, h, w, c, slope);
    } else {
      BackwardKernel<Raw, false>(g, codes.data_ptr<uint8_t>(), out, n, h, w, c, slope);
    }
  });
  return gradIn;
}

class PoolActivationFunction : public torch::autograd::Function<PoolActivationFunction> {
 public:
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& x, double negativeSlope) {
    auto [y, codes] = Forward(x, negativeSlope, /*keepCodes=*/true);
    ctx->save_for_backward({codes});
    ctx->saved_data["slope"] = negativeSlope;
    ctx->saved_data["h"] = x.size(2);
    ctx->saved_data["w"] = x.size(3);
    ctx->saved_data["dtype"] = x.scalar_type();
    return y;
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx, torch::autograd::variable_list grads) {
    if (!grads[0].defined()) return {at::Tensor(), at::Tensor()};
    const at::Tensor codes = ctx->get_saved_variables()[0];
    // The gradient arrives in the output's dtype; under autocast it may come back in another one.
    const at::Tensor grad = grads[0].to(ctx->saved_data["dtype"].toScalarType());
    at::Tensor gradIn = Backward(grad, codes, ctx->saved_data["h"].toInt(), ctx->saved_data["w"].toInt(), ctx->saved_data["slope"].toDouble());
    return {gradIn, at::Tensor()};
  }
};

at::Tensor Unfused(const at::Tensor& x, double negativeSlope) {
  at::Tensor pooled = at::max_pool2d(x, {2, 2}, {2, 2});
  return negativeSlope == 0.0 ? at::relu(pooled) : at::leaky_relu(pooled, negativeSlope);
}

}  // namespace

at::Tensor MaxPool2x2Activation(const at::Tensor& x, double negativeSlope) {
  // A negative slope makes leaky ReLU decreasing below 0: it would not commute with the maximum.
  if (!(negativeSlope >= 0.0)) throw std::invalid_argument("Expected a negative slope >= 0 for max_pool2x2_act but received " + std::to_string(negativeSlope));
  if (!Supported(x)) return Unfused(x, negativeSlope);
  if (at::GradMode::is_enabled() && x.requires_grad()) return PoolActivationFunction::apply(x, negativeSlope);
  return Forward(x, negativeSlope, /*keepCodes=*/false).first;
}

}  // namespace convscope
