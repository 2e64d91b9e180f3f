#include "conv2d.h"

#include <torch/torch.h>

#include <vector>

#include "torch_compat.h"

namespace convscope {
namespace {

class Conv2dFunction : public torch::autograd::Function<Conv2dFunction> {
 public:
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias,
                            std::vector<int64_t> stride, std::vector<int64_t> padding) {
    ctx->save_for_backward({x, weight});
    ctx->saved_data["stride"] = stride;
    ctx->saved_data["padding"] = padding;
    return at::convolution(x, weight, bias, stride, padding, {1, 1}, false, {0, 0}, 1);
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx, torch::autograd::variable_list grads) {
    const at::Tensor& grad = grads[0];
    if (!grad.defined()) return {at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor()};
    const auto saved = ctx->get_saved_variables();
    const std::vector<int64_t> stride = ctx->saved_data["stride"].toIntVector();
    const std::vector<int64_t> padding = ctx->saved_data["padding"].toIntVector();
    const std::array<bool, 3> mask{ctx->needs_input_grad(0), ctx->needs_input_grad(1), false};
    auto [gradX, gradWeight, unused] =
        at::convolution_backward(grad, saved[0], saved[1], c10::nullopt, stride, padding, {1, 1}, false, {0, 0}, 1, mask);
    at::Tensor gradBias = ctx->needs_input_grad(2) ? grad.sum({0, 2, 3}) : at::Tensor();
    return {gradX, gradWeight, gradBias, at::Tensor(), at::Tensor()};
  }
};

}  // namespace

at::Tensor Conv2d(const at::Tensor& x, const at::Tensor& weight, const c10::optional<at::Tensor>& bias, at::IntArrayRef stride,
                  at::IntArrayRef padding) {
  const bool plain = !bias.has_value() || !bias->defined() || !x.is_cpu() || x.scalar_type() != at::kFloat ||
                     compat::AutocastEnabled(at::kCPU) || !at::GradMode::is_enabled() || !bias->requires_grad();
  if (plain) return at::conv2d(x, weight, bias, stride, padding);
  return Conv2dFunction::apply(x, weight, *bias, stride.vec(), padding.vec());
}

}  // namespace convscope
