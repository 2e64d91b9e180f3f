#include "checkpoint.h"

#include <algorithm>

#include <caffe2/serialize/inline_container.h>
#include <torch/csrc/jit/serialization/export.h>
#include <torch/csrc/jit/serialization/pickler.h>
#include <torch/serialize.h>
#include <torch/torch.h>

#include "args.h"
#include "errors.h"
#include "tensor.h"

namespace convscope {
namespace {

// torch.save's zip format, as torch::pickle_save writes it, but without the type tags it puts on
// dicts (a global, torch.jit._pickle.restore_type_tag, that PyTorch 2.x's torch.load refuses under its
// default weights_only=True). The file holds only a dict, strings and tensors, all of which the safe
// unpickler allows; libtorch's own pickle_load reads it as before.
std::vector<char> SaveUntagged(const c10::IValue& value) {
  std::vector<char> pickled;
  torch::jit::Pickler pickler([&](const char* bytes, size_t size) { pickled.insert(pickled.end(), bytes, bytes + size); },
                              /*tensor_table=*/nullptr, /*type_renamer=*/nullptr, /*memoized_class_types=*/nullptr,
                              /*get_tensor_id=*/nullptr, /*tag_aggregates=*/false);
  pickler.protocol();
  pickler.pushIValue(value);
  pickler.stop();
  std::vector<char> archive;
  caffe2::serialize::PyTorchStreamWriter writer([&](const void* bytes, size_t size) {
    const char* begin = static_cast<const char*>(bytes);
    archive.insert(archive.end(), begin, begin + size);
    return size;
  });
  torch::jit::writeArchiveAndTensors("data", pickled.data(), pickled.size(), pickler.tensorData(), writer);
  writer.writeEndOfFile();
  return archive;
}

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
    std::vector<char> bytes = SaveUntagged(c10::IValue(dict));
    // Copied into a JS-owned buffer that TS writes atomically.
    return Napi::Buffer<char>::Copy(info.Env(), bytes.data(), bytes.size());
  });
}

// libtorch's unpickler reads collections.OrderedDict (what nn.Module.state_dict() returns) as None, so
// a state dict saved as one fails when its items are set, on this assertion of IValue::toGenericDict.
constexpr const char* kItemsSetOnNone = "Expected GenericDict but got None";

// Whether a failed pickle_load failed because the state dict is an OrderedDict: only then is the
// fix to save a plain dict. Every tensor's backward hooks are an OrderedDict too, so its mere
// presence in the file says nothing about the cause; any other failure (a refused global, bad
// strides) is libtorch's own, reported in its words ("libtorch: ...", see errors.cc).
bool FailedOnOrderedDict(const std::vector<char>& bytes, const c10::Error& error) {
  static const std::string kOrderedDict = "collections\nOrderedDict\n";
  const bool names_ordered_dict = std::search(bytes.begin(), bytes.end(), kOrderedDict.begin(), kOrderedDict.end()) != bytes.end();
  return names_ordered_dict && std::string(error.what_without_backtrace()).find(kItemsSetOnNone) != std::string::npos;
}

// decodeStateDict(Buffer) -> { name: Tensor | string }; anything but a dict of tensors and strings is refused.
Napi::Value DecodeStateDict(const Napi::CallbackInfo& info) {
  return Guarded(info.Env(), [&]() -> Napi::Value {
    if (!info[0].IsBuffer()) throw TypeMismatch("Expected a Buffer for bytes but received " + DescribeValue(info[0]));
    auto buffer = info[0].As<Napi::Buffer<char>>();
    std::vector<char> bytes(buffer.Data(), buffer.Data() + buffer.Length());
    c10::IValue value;
    try {
      value = torch::pickle_load(bytes);
    } catch (const c10::Error& e) {
      if (!FailedOnOrderedDict(bytes, e)) throw;
      throw std::runtime_error("it holds a collections.OrderedDict, which libtorch cannot read; save a plain dict: "
                               "torch.save(dict(net.state_dict()), path)");
    }
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
