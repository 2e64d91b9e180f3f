#include "precision.h"

#include <ATen/autocast_mode.h>

#include "args.h"
#include "errors.h"
#include "torch_compat.h"

namespace convscope {
namespace {

// Turns bfloat16 autocast on or off for this thread on the CPU or CUDA; returns the previous state.
bool SwitchAutocast(bool enabled, bool cuda) {
  const at::DeviceType device = cuda ? at::kCUDA : at::kCPU;
  bool previous = compat::AutocastEnabled(device);
  compat::SetAutocast(device, enabled, at::kBFloat16);
  return previous;
}

}  // namespace

AutocastScope::AutocastScope(bool enabled, const torch::Device& device) : enabled_(enabled), cuda_(device.is_cuda()), previous_(false) {
  if (!enabled_) return;
  previous_ = SwitchAutocast(true, cuda_);
  at::autocast::increment_nesting();
}

AutocastScope::~AutocastScope() {
  if (!enabled_) return;
  if (at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();
  SwitchAutocast(previous_, cuda_);
}

namespace {

// setAutocast(enabled, device) -> previous: for the eager path, which runs its forward from JS.
Napi::Value SetAutocast(const Napi::CallbackInfo& info) {
  return Guarded(info.Env(), [&]() -> Napi::Value {
    bool enabled = ReadBool(info[0], "enabled");
    bool cuda = ReadString(info[1], "device").rfind("cuda", 0) == 0;
    bool previous = SwitchAutocast(enabled, cuda);
    // Cached bf16 copies of the weights are only valid for one step.
    if (!enabled) at::autocast::clear_cache();
    return Napi::Boolean::New(info.Env(), previous);
  });
}

}  // namespace

void RegisterPrecision(Napi::Env env, Napi::Object exports) {
  exports.Set("setAutocast", Napi::Function::New(env, SetAutocast, "setAutocast"));
}

}  // namespace convscope
