// ScriptModel: a TorchScript module, compiled from source generated from the same CnnSpec as the
// eager model (or loaded from a .pt file), holding its parameters under PyTorch's names.
#pragma once

#include <napi.h>
#include <torch/script.h>

#include <optional>

namespace convscope {

class ScriptModelWrap : public Napi::ObjectWrap<ScriptModelWrap> {
 public:
  static Napi::Function Define(Napi::Env env);
  static torch::jit::Module From(const Napi::Value& value, const char* name);
  explicit ScriptModelWrap(const Napi::CallbackInfo& info);

 private:
  torch::jit::Module& Checked(const char* method);
  Napi::Value Forward(const Napi::CallbackInfo& info);
  Napi::Value Train(const Napi::CallbackInfo& info);
  Napi::Value NamedParameters(const Napi::CallbackInfo& info);
  Napi::Value Save(const Napi::CallbackInfo& info);
  Napi::Value Code(const Napi::CallbackInfo& info);
  Napi::Value Dispose(const Napi::CallbackInfo& info);

  std::optional<torch::jit::Module> module_;
};

}  // namespace convscope
