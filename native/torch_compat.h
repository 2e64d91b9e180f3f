// The one place where the libtorch versions convscope builds against differ: PyTorch 2.x's libtorch
// (the default, from pip) and Debian's libtorch 1.13 (the fallback). The language standard is chosen
// by scripts/find-libtorch.js (C++20 for 2.x, whose headers need it; C++17 for 1.13); everything
// else that differs lives here, so no other source tests a version.
#pragma once

#include <ATen/Context.h>
#include <ATen/autocast_mode.h>
#include <c10/core/Allocator.h>
#include <torch/optim/optimizer.h>
#include <torch/version.h>

#include <sstream>
#include <string>
#include <type_traits>

// c10d (process groups, stores, Gloo) is used only from libtorch 2.x: the 1.13 fallback build
// compiles distributed training out and says so when it is asked for (native/distributed.cc).
#if TORCH_VERSION_MAJOR >= 2
#define CONVSCOPE_HAS_C10D 1
#else
#define CONVSCOPE_HAS_C10D 0
#endif

namespace convscope::compat {

// libtorch keys an optimizer's per-parameter state by the parameter's TensorImpl: as a pointer since
// 2.x, as that pointer printed to a string in 1.13. Decided from the map's own key type, so that any
// release in between builds too.
template <typename Key>
Key OptimizerStateKey(const at::Tensor& parameter) {
  if constexpr (std::is_same_v<Key, std::string>) {
    std::ostringstream printed;  // the formatting 1.13's c10::guts::to_string used
    printed << parameter.unsafeGetTensorImpl();
    return printed.str();
  } else {
    return parameter.unsafeGetTensorImpl();
  }
}

// Autocast: PyTorch 2.4 replaced the per-device functions (is_cpu_enabled, set_autocast_gpu_dtype, ...,
// which now print a deprecation warning on every call) by ones that take the device type.
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 4)
inline bool AutocastEnabled(at::DeviceType device) { return at::autocast::is_autocast_enabled(device); }
inline void SetAutocast(at::DeviceType device, bool enabled, at::ScalarType dtype) {
  at::autocast::set_autocast_dtype(device, dtype);
  at::autocast::set_autocast_enabled(device, enabled);
}
#else
inline bool AutocastEnabled(at::DeviceType device) {
  return device == at::kCUDA ? at::autocast::is_enabled() : at::autocast::is_cpu_enabled();
}
inline void SetAutocast(at::DeviceType device, bool enabled, at::ScalarType dtype) {
  if (device == at::kCUDA) {
    at::autocast::set_autocast_gpu_dtype(dtype);
    at::autocast::set_enabled(enabled);
  } else {
    at::autocast::set_autocast_cpu_dtype(dtype);
    at::autocast::set_cpu_enabled(enabled);
  }
}
#endif

// NNPACK, one of libtorch's CPU convolution back ends, prints "Could not initialize NNPACK! Reason:
// Unsupported hardware." the first time a convolution considers it on a CPU it does not support (any
// with AVX-512, this project's machine among them). oneDNN and libtorch's own kernels serve those
// convolutions, so 2.x's switch turns NNPACK off instead of letting it speak; 1.13 has no switch.
inline void DisableNnpack() {
#if TORCH_VERSION_MAJOR >= 2
  at::globalContext().setUserEnabledNNPACK(false);
#endif
}

// A CPU allocator: PyTorch 2.3 made Allocator::allocate non-const and added copy_data (pure virtual);
// 1.13's allocate is const. Subclasses implement Allocate and build against both.
class CpuAllocatorBase : public c10::Allocator {
 public:
  virtual c10::DataPtr Allocate(size_t n) = 0;
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 3)
  c10::DataPtr allocate(size_t n) override { return Allocate(n); }
  void copy_data(void* dest, const void* src, std::size_t count) const override { default_copy_data(dest, src, count); }
#else
  // 1.13 calls it through a const pointer; the allocator's state is its own, guarded by its mutex.
  c10::DataPtr allocate(size_t n) const override { return const_cast<CpuAllocatorBase*>(this)->Allocate(n); }
#endif
};

}  // namespace convscope::compat
