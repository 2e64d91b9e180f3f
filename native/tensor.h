// Tensor: a JS object owning one at::Tensor. Freed deterministically by dispose() (the GC is the
// fallback, not the plan); the bytes it holds are reported to V8 and live wrappers are counted so
// tests can prove nothing leaks.
#pragma once

#include <napi.h>
#include <torch/torch.h>

#include <atomic>

namespace convscope {

class TensorWrap : public Napi::ObjectWrap<TensorWrap> {
 public:
  static Napi::Function Define(Napi::Env env);
  // Wraps a tensor produced natively into a new JS Tensor (no copy: the wrapper shares the storage).
  static Napi::Object Wrap(Napi::Env env, at::Tensor tensor);
  // The tensor behind a JS value; TypeError if it is not a Tensor, Error if it was disposed.
  static at::Tensor& From(const Napi::Value& value, const char* name);
  static bool IsTensor(const Napi::Value& value);
  static int64_t LiveCount() { return live_count_.load(); }

  explicit TensorWrap(const Napi::CallbackInfo& info);
  ~TensorWrap() override;

 private:
  void Adopt(Napi::Env env, at::Tensor tensor);
  void Release(Napi::Env env);
  at::Tensor& Checked(const char* method);

  Napi::Value Shape(const Napi::CallbackInfo& info);
  Napi::Value Dtype(const Napi::CallbackInfo& info);
  Napi::Value Device(const Napi::CallbackInfo& info);
  Napi::Value IsDisposed(const Napi::CallbackInfo& info);
  Napi::Value RequiresGrad(const Napi::CallbackInfo& info);
  void SetRequiresGrad(const Napi::CallbackInfo& info, const Napi::Value& value);
  Napi::Value ToTypedArray(const Napi::CallbackInfo& info);
  Napi::Value Item(const Napi::CallbackInfo& info);
  Napi::Value Grad(const Napi::CallbackInfo& info);
  Napi::Value Backward(const Napi::CallbackInfo& info);
  Napi::Value Dispose(const Napi::CallbackInfo& info);

  at::Tensor tensor_;
  bool live_ = false;
  int64_t reported_bytes_ = 0;
  static std::atomic<int64_t> live_count_;
};

// Names used across the boundary: "float32", "float64", "int32", "int64", "uint8", "int8", "int16",
// "bool", "bfloat16", "float16".
std::string DtypeName(at::ScalarType type);
at::ScalarType ParseDtype(const std::string& name);

}  // namespace convscope
