// Optimizer: torch::optim (SGD with momentum/Nesterov, Adam) over parameter tensors owned by either
// path's model. The eager path calls step() from TS; the native epoch loop shares the same object.
#pragma once

#include <napi.h>
#include <torch/torch.h>

#include <memory>
#include <unordered_map>

namespace convscope {

// Drops every parameter's gradient instead of zeroing it (PyTorch 2's zero_grad(set_to_none=True)):
// the next backward then writes fresh gradients instead of adding into zeroed ones, which saves a
// memset and an accumulation pass over every gradient per step.
void ClearGradients(torch::optim::Optimizer& optimizer);

// Every parameter group's learning rate.
void SetLearningRate(torch::optim::Optimizer& optimizer, double lr);

// Adam's state of parameter p, made as its first step makes it (step 0, zero moments) when absent.
torch::optim::AdamParamState& AdamStateOf(torch::optim::Adam& adam, const at::Tensor& p);

// torch::optim::Adam with a leaner step: on the CPU one fused pass per parameter (fused_adam.h, as
// PyTorch 2's Adam(fused=True)); on a GPU the whole parameter list at once with foreach ops (as
// PyTorch 2's default CUDA Adam), a few kernel launches per step instead of seven per parameter. Same state
// objects, so save()/load() and resuming are unchanged.
class LeanAdam : public torch::optim::Adam {
 public:
  using torch::optim::Adam::Adam;
  torch::Tensor step(LossClosure closure = nullptr) override;
  // AdamW (Loshchilov and Hutter): weight decay scales the parameter by 1 - lr * decay before the
  // update instead of joining the gradient. Same state as Adam.
  void set_decoupled(bool decoupled) { decoupled_ = decoupled; }
  bool decoupled() const { return decoupled_; }

 private:
  // Per GPU parameter, its step count as the float32 device tensor PyTorch's fused CUDA kernel reads,
  // and the host count it was last set from (the CUDA graph step or loadState may move the host's).
  struct DeviceStep {
    at::Tensor count;
    int64_t host = -1;
  };
  std::unordered_map<const void*, DeviceStep> deviceSteps_;
  bool decoupled_ = false;
  friend struct PendingAdam;
};

class OptimizerWrap : public Napi::ObjectWrap<OptimizerWrap> {
 public:
  static Napi::Function Define(Napi::Env env);
  static std::shared_ptr<torch::optim::Optimizer> From(const Napi::Value& value, const char* name);
  explicit OptimizerWrap(const Napi::CallbackInfo& info);

 private:
  torch::optim::Optimizer& Checked(const char* method);
  Napi::Value ZeroGrad(const Napi::CallbackInfo& info);
  Napi::Value Step(const Napi::CallbackInfo& info);
  Napi::Value SetLearningRate(const Napi::CallbackInfo& info);
  Napi::Value SaveState(const Napi::CallbackInfo& info);
  Napi::Value LoadState(const Napi::CallbackInfo& info);
  Napi::Value Dispose(const Napi::CallbackInfo& info);

  std::shared_ptr<torch::optim::Optimizer> optimizer_;
};

}  // namespace convscope
