#include "sync_batch_norm.h"

#include <torch/autograd.h>

#include <mutex>
#include <stdexcept>
#include <string>
#include <vector>

#include "distributed.h"
#include "torch_compat.h"

namespace convscope {

namespace {

std::mutex syncGroupMutex;
std::shared_ptr<Group> syncGroup;

std::shared_ptr<Group> CurrentSyncGroup() {
  std::lock_guard<std::mutex> lock(syncGroupMutex);
  return syncGroup;
}

#if CONVSCOPE_HAS_C10D

// The dimensions a channel's statistics run over, and the shape that broadcasts a [C] tensor
// against the input: [N, C] (after a dense layer) or [N, C, H, W] (after a convolution).
std::vector<int64_t> StatisticDims(const at::Tensor& x) {
  return x.dim() == 2 ? std::vector<int64_t>{0} : std::vector<int64_t>{0, 2, 3};
}
std::vector<int64_t> ChannelShape(const at::Tensor& x) {
  return x.dim() == 2 ? std::vector<int64_t>{1, x.size(1)} : std::vector<int64_t>{1, x.size(1), 1, 1};
}

// PyTorch's SyncBatchNorm on c10d: one sum over the group of every rank's statistics in forward, and
// in backward one sum of the two per-channel terms of the input's gradient. The weight's and bias's
// gradients stay local: the Reducer averages them with the others. Reduced precision (bf16, fp16) is
// computed in float32.
struct SyncBatchNormFunction : public torch::autograd::Function<SyncBatchNormFunction> {
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& x, const at::Tensor& weight,
                            const at::Tensor& bias, at::Tensor runningMean, at::Tensor runningVar, double momentum, double eps) {
    std::shared_ptr<Group> group = CurrentSyncGroup();
    if (!group) throw std::runtime_error("SyncBatchNorm: the group was left during the forward pass");
    const bool reduced = x.scalar_type() != at::kFloat && x.scalar_type() != at::kDouble;
    const at::Tensor xf = reduced ? x.to(at::kFloat) : x;
    const auto dims = StatisticDims(x);
    const auto shape = ChannelShape(x);
    const int64_t channels = x.size(1);
    // Each rank's mean and variance in two passes over its own images (no cancellation), then one
    // sum over the ranks of [n * mean, n * (var + mean^2), n] in float64, from which the group's mean
    // and variance follow: one collective, as PyTorch's one gather of each rank's mean and invstd.
    const auto [localVar, localMean] = at::var_mean(xf, dims, /*unbiased=*/false, /*keepdim=*/false);
    const at::Tensor meanD = localMean.to(at::kDouble);
    const double localCount = static_cast<double>(x.numel() / channels);
    at::Tensor sums = SumOverGroup(*group, at::cat({meanD * localCount, (localVar.to(at::kDouble) + meanD.square()) * localCount,
                                                    at::full({1}, localCount, meanD.options())}));
    const double count = sums[2 * channels].item<double>();
    if (count < 2) {
      throw std::invalid_argument("Expected more than 1 value per channel when training a batch norm, got " +
                                  std::to_string(static_cast<int64_t>(count)) + " over the group");
    }
    const at::Tensor groupMean = sums.slice(0, 0, channels) / count;
    const at::Tensor groupVar = (sums.slice(0, channels, 2 * channels) / count - groupMean.square()).clamp_min(0);
    const at::Tensor mean = groupMean.to(xf.scalar_type());
    const at::Tensor var = groupVar.to(xf.scalar_type());
    // Normalised with the group's statistics in one fused pass: libtorch's evaluation-mode batch
    // norm, given them as its running statistics (which it only reads).
    const at::Tensor y = at::batch_norm(xf, weight, bias, mean, var, /*training=*/false, 0.0, eps, /*cudnn_enabled=*/true);
    // The running statistics, as nn.BatchNorm keeps them: the variance unbiased over the global batch.
    runningMean.mul_(1 - momentum).add_(mean.to(runningMean.scalar_type()), momentum);
    runningVar.mul_(1 - momentum).add_((var * (count / (count - 1))).to(runningVar.scalar_type()), momentum);
    ctx->save_for_backward(weight.defined() ? torch::autograd::variable_list{xf, mean, var, weight} : torch::autograd::variable_list{xf, mean, var});
    ctx->saved_data["count"] = count;
    ctx->saved_data["eps"] = eps;
    ctx->saved_data["dtype"] = static_cast<int64_t>(x.scalar_type());
    ctx->saved_data["bias"] = bias.defined();
    return reduced ? y.to(x.scalar_type()) : y;
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx, torch::autograd::variable_list grads) {
    // Backward runs inside the Reducer's backward (ReducedBackward), which holds the group's order:
    // the sum below is issued in the same place of every rank's backward, and must not lock again.
    std::shared_ptr<Group> group = CurrentSyncGroup();
    if (!group) throw std::runtime_error("SyncBatchNorm: the group was left before the backward pass");
    const auto saved = ctx->get_saved_variables();
    const at::Tensor& x = saved[0];
    const at::Tensor& mean = saved[1];
    const at::Tensor& var = saved[2];
    const at::Tensor weight = saved.size() > 3 ? saved[3] : at::Tensor();
    const double count = ctx->saved_data["count"].toDouble();
    const double eps = ctx->saved_data["eps"].toDouble();
    const auto dtype = static_cast<at::ScalarType>(ctx->saved_data["dtype"].toInt());
    const auto shape = ChannelShape(x);
    const int64_t channels = x.size(1);
    const at::Tensor dy = grads[0].defined() ? grads[0].to(x.scalar_type()) : at::zeros_like(x);
    const at::Tensor scaleOf = weight.defined() ? weight.to(x.scalar_type()) : at::ones({channels}, mean.options());
    // This rank's sum(dy) and sum(dy * xhat) in one fused pass: libtorch's evaluation-mode backward,
    // given the group's statistics as the running ones, asked for the weight's and bias's gradients only.
    const auto local = at::native_batch_norm_backward(dy, x, scaleOf, mean, var, {}, {}, /*train=*/false, eps, {false, true, true});
    const at::Tensor& sumDyXhat = std::get<1>(local);
    const at::Tensor& sumDy = std::get<2>(local);
    const at::Tensor both = SumOverGroup(*group, at::cat({sumDy, sumDyXhat}).to(at::kDouble)).to(x.scalar_type());
    const at::Tensor meanDy = both.slice(0, 0, channels) / count;
    const at::Tensor meanDyXhat = both.slice(0, channels, 2 * channels) / count;
    // dx = w * invstd * (dy - mean(dy) - xhat * mean(dy * xhat)), affine in dy and x per channel:
    // dx = a * dy + b * x + c, three passes.
    const at::Tensor invstd = (var + eps).rsqrt();
    const at::Tensor a = scaleOf * invstd;
    const at::Tensor b = -a * invstd * meanDyXhat;
    const at::Tensor c = -a * meanDy - b * mean;
    at::Tensor gradX = dy * a.view(shape);
    gradX.addcmul_(x, b.view(shape)).add_(c.view(shape));
    const at::Tensor gradWeight = weight.defined() ? sumDyXhat.to(weight.scalar_type()) : at::Tensor();
    const at::Tensor gradBias = ctx->saved_data["bias"].toBool() ? sumDy : at::Tensor();
    return {gradX.to(dtype), gradWeight, gradBias, at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor()};
  }
};

#endif

}  // namespace

at::Tensor BatchNormForward(const at::Tensor& x, const c10::optional<at::Tensor>& weight, const c10::optional<at::Tensor>& bias,
                            at::Tensor& runningMean, at::Tensor& runningVar, bool training, double momentum, double eps) {
#if CONVSCOPE_HAS_C10D
  if (training) {
    if (std::shared_ptr<Group> group = CurrentSyncGroup(); group && group->size > 1) {
      // The forward's two sums are collectives like any other: one caller at a time on the group.
      std::lock_guard<std::mutex> lock(group->order);
      return SyncBatchNormFunction::apply(x, weight.value_or(at::Tensor()), bias.value_or(at::Tensor()), runningMean,
                                          runningVar, momentum, eps);
    }
  }
#endif
  return at::batch_norm(x, weight, bias, runningMean, runningVar, training, momentum, eps, /*cudnn_enabled=*/true);
}

void SyncBatchNormOver(std::shared_ptr<Group> group) {
  std::lock_guard<std::mutex> lock(syncGroupMutex);
  syncGroup = std::move(group);
}

void StopSyncingOver(const Group* group) {
  std::lock_guard<std::mutex> lock(syncGroupMutex);
  if (syncGroup.get() == group) syncGroup.reset();
}

bool SyncingBatchNorm() { return CurrentSyncGroup() != nullptr; }

}  // namespace convscope
