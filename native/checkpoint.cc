#include "checkpoint.h"

#include <torch/serialize.h>
#include <torch/torch.h>

#include "errors.h"
#include "tensor.h"

namespace convscope {
namespace {

// encodeStateDict({ name: Tensor | string }) -> Buffer in torch.save's format.
Napi::Value EncodeStateDict(const Napi::CallbackInfo& info) {
  return Guarded(info.Env(), [&]() -> Napi::Value {
    if (!info[0].IsObject()) throw TypeMismatch("Expected an object of Tensors for stateDict but received " + DescribeValue(info[0]));
    auto entries = info[0].As<Napi::Object>();
    auto names = entries.GetPropertyNames();
    c10::impl::GenericDict dict(c10::StringType::get(), c10::AnyType::get());
    for (uint32_t i = 0; i < names.Length(); ++i) {
      std::string name = names.Get(i).As<Napi::String>().Utf8Value();
      Napi::Value value = entries.Get(name);
      if (value.IsString()) {
        dict.insert(name, c10::IValue(value.As<Napi::String>().Utf8Value()));
      } else {
        // Saved from the CPU so that a checkpoint written on a GPU loads anywhere.
        dict.insert(name, c10::IValue(TensorWrap::From(value, name.c_str()).detach().to(torch::kCPU)));
      }
    }
    std::vector<char> bytes = torch::pickle_save(c10::IValue(dict));
    // Copied into a JS-owned buffer that TS writes atomically.
    return Napi::Buffer<char>::Copy(info.Env(), bytes.data(), bytes.size());
  });
}

// decodeStateDict(Buffer) -> { name: Tensor | string }; anything but a dict of tensors and strings is refused.
Napi::Value DecodeStateDict(const Napi::CallbackInfo& info) {
  return Guarded(info.Env(), [&]() -> Napi::Value {
    if (!info[0].IsBuffer()) throw TypeMismatch("Expected a Buffer for bytes but received " + DescribeValue(info[0]));
    auto buffer = info[0].As<Napi::Buffer<char>>();
    std::vector<char> bytes(buffer.Data(), buffer.Data() + buffer.Length());
    c10::IValue value = torch::pickle_load(bytes);
    if (!value.isGenericDict()) throw std::runtime_error("checkpoint does not hold a dict (a state dict was expected)");
    // Validate every entry before wrapping any, so a bad file leaves no half-made Tensors behind.
    for (const auto& entry : value.toGenericDict()) {
      if (!entry.key().isString()) throw std::runtime_error("checkpoint dict has a key that is not a string");
      const c10::IValue& item = entry.value();
      if (!item.isTensor() && !item.isString()) {
        throw std::runtime_error("checkpoint entry \"" + entry.key().toStringRef() + "\" is a " + item.tagKind() +
                                 ", expected a tensor or a string");
      }
    }
    auto result = Napi::Object::New(info.Env());
    for (const auto& entry : value.toGenericDict()) {
      const c10::IValue& item = entry.value();
      if (item.isTensor()) result.Set(entry.key().toStringRef(), TensorWrap::Wrap(info.Env(), item.toTensor()));
      else result.Set(entry.key().toStringRef(), item.toStringRef());
    }
    return result;
  });
}

}  // namespace

void RegisterCheckpoint(Napi::Env env, Napi::Object exports) {
  exports.Set("encodeStateDict", Napi::Function::New(env, EncodeStateDict, "encodeStateDict"));
  exports.Set("decodeStateDict", Napi::Function::New(env, DecodeStateDict, "decodeStateDict"));
}

}  // namespace convscope
