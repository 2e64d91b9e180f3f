// Mixed precision: libtorch's autocast, the C++ side of torch.autocast. Its state is per thread,
// so the main thread (eager path) and the epoch worker each switch it around their own forward pass.
#pragma once

#include <napi.h>
#include <torch/torch.h>

namespace convscope {

// Autocast to bfloat16 on `device` while alive; clears the cast cache when it ends, so the next
// step casts the freshly updated weights again (as leaving torch.autocast does in Python).
class AutocastScope {
 public:
  AutocastScope(bool enabled, const torch::Device& device);
  ~AutocastScope();
  AutocastScope(const AutocastScope&) = delete;
  AutocastScope& operator=(const AutocastScope&) = delete;

 private:
  bool enabled_;
  bool cuda_;
  bool previous_;
};

void RegisterPrecision(Napi::Env env, Napi::Object exports);

}  // namespace convscope
