#include "script_model.h"

#include <torch/csrc/jit/api/compilation_unit.h>
#include <torch/csrc/jit/frontend/resolver.h>
#include <torch/csrc/jit/frontend/sugared_value.h>
#include <torch/csrc/jit/serialization/import.h>

#include <map>
#include <sstream>

#include "args.h"
#include "errors.h"
#include "instance_data.h"
#include "tensor.h"

namespace convscope {
namespace {

// nn.Module.train()/eval() flip this attribute on every module; TorchScript's dropout reads it.
void AddTrainingFlag(torch::jit::Module& module) {
  module.register_attribute("training", c10::BoolType::get(), true);
}

// Names in the source: `torch` (ATen's operators, as libtorch's own resolver has it) and `convscope`,
// the operators of native/script_ops.h, which the training form of the source calls.
struct SourceResolver : torch::jit::Resolver {
  std::shared_ptr<torch::jit::SugaredValue> resolveValue(const std::string& name, torch::jit::GraphFunction& m,
                                                         const torch::jit::SourceRange& loc) override {
    if (name == "convscope") return std::make_shared<torch::jit::BuiltinModule>("convscope");
    return torch::jit::nativeResolver()->resolveValue(name, m, loc);
  }
  c10::TypePtr resolveType(const std::string&, const torch::jit::SourceRange&) override { return nullptr; }
};

struct NamedTensor {
  std::string name;
  at::Tensor tensor;
  bool isBuffer;
};

// Builds "ConvNet" with one submodule per layer ("conv1", "fc1", ...) so that parameter and buffer
// names are PyTorch's ("conv1.weight", "conv1_bn.running_mean"), then compiles the generated
// forward() against them. The tensors are shared, not copied: the model's own tensors.
torch::jit::Module Compile(const std::string& source, const std::vector<NamedTensor>& params) {
  auto unit = std::make_shared<torch::jit::CompilationUnit>();
  torch::jit::Module root(c10::QualifiedName("__torch__.convscope.ConvNet"), unit, /*shouldMangle=*/true);
  AddTrainingFlag(root);
  std::map<std::string, torch::jit::Module> layers;
  std::vector<std::string> order;
  for (const auto& [name, tensor, isBuffer] : params) {
    auto dot = name.find('.');
    if (dot == std::string::npos || dot == 0 || dot + 1 == name.size() || name.find('.', dot + 1) != std::string::npos) {
      throw OutOfRange("Expected parameter names of the form layer.weight, but received \"" + name + "\"");
    }
    std::string layer = name.substr(0, dot);
    if (!layers.count(layer)) {
      torch::jit::Module sub(c10::QualifiedName("__torch__.convscope." + layer), unit, /*shouldMangle=*/true);
      AddTrainingFlag(sub);
      layers.emplace(layer, sub);
      order.push_back(layer);
    }
    layers.at(layer).register_parameter(name.substr(dot + 1), tensor, isBuffer);
  }
  for (const auto& layer : order) root.register_module(layer, layers.at(layer));
  root.define(source, std::make_shared<SourceResolver>());
  return root;
}

// Appends the [name, Tensor] pairs of options[key]; the buffers list may be absent (a model without any).
void ReadNamedTensors(const Napi::Object& options, const char* key, bool isBuffer, std::vector<NamedTensor>& out) {
  if (!options.Has(key) && isBuffer) return;
  Napi::Value list = options.Get(key);
  if (!list.IsArray()) throw TypeMismatch(std::string("Expected an array of [name, Tensor] for ") + key + " but received " + DescribeValue(list));
  auto array = list.As<Napi::Array>();
  for (uint32_t i = 0; i < array.Length(); ++i) {
    Napi::Value pair = array.Get(i);
    if (!pair.IsArray() || pair.As<Napi::Array>().Length() != 2) throw TypeMismatch("Expected [name, Tensor] for " + Element(key, i) + " but received " + DescribeValue(pair));
    auto entry = pair.As<Napi::Array>();
    out.push_back({ReadString(entry.Get(0u), "parameter name"), TensorWrap::From(entry.Get(1u), key), isBuffer});
  }
}

}  // namespace

Napi::Function ScriptModelWrap::Define(Napi::Env env) {
  return DefineClass(env, "ScriptModel", {
      InstanceMethod<&ScriptModelWrap::Forward>("forward"),
      InstanceMethod<&ScriptModelWrap::Train>("train"),
      InstanceMethod<&ScriptModelWrap::NamedParameters>("namedParameters"),
      InstanceMethod<&ScriptModelWrap::Save>("save"),
      InstanceMethod<&ScriptModelWrap::Code>("code"),
      InstanceMethod<&ScriptModelWrap::Dispose>("dispose"),
  });
}

torch::jit::Module ScriptModelWrap::From(const Napi::Value& value, const char* name) {
  if (!value.IsObject() || !value.As<Napi::Object>().InstanceOf(GetInstanceData(value.Env()).scriptModelConstructor.Value())) {
    throw TypeMismatch(std::string("Expected a ScriptModel for ") + name + " but received " + DescribeValue(value));
  }
  return Unwrap(value.As<Napi::Object>())->Checked(name);
}

// new ScriptModel({ source, parameters: [[name, Tensor], ...], buffers?: [[name, Tensor], ...] })
// or new ScriptModel({ bytes: Buffer, device? })
ScriptModelWrap::ScriptModelWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<ScriptModelWrap>(info) {
  Guarded(info.Env(), [&] {
    if (!info[0].IsObject()) throw TypeMismatch("Expected an object for options but received " + DescribeValue(info[0]));
    auto options = info[0].As<Napi::Object>();
    if (options.Has("bytes")) {
      Napi::Value bytes = options.Get("bytes");
      if (!bytes.IsBuffer()) throw TypeMismatch("Expected a Buffer for bytes but received " + DescribeValue(bytes));
      auto buffer = bytes.As<Napi::Buffer<char>>();
      std::istringstream stream(std::string(buffer.Data(), buffer.Length()));
      module_ = torch::jit::load(stream, torch::Device(torch::kCPU));
      return;
    }
    std::string source = ReadString(options.Get("source"), "source");
    std::vector<NamedTensor> params;
    ReadNamedTensors(options, "parameters", false, params);
    ReadNamedTensors(options, "buffers", true, params);
    module_ = Compile(source, params);
  });
}

torch::jit::Module& ScriptModelWrap::Checked(const char* method) {
  if (!module_) throw std::runtime_error(std::string("ScriptModel.") + method + ": used after dispose()");
  return *module_;
}

Napi::Value ScriptModelWrap::Forward(const Napi::CallbackInfo& info) {
  return Guarded(info.Env(), [&]() -> Napi::Value {
    at::Tensor x = TensorWrap::From(info[0], "input");
    c10::IValue out = Checked("forward").forward({x});
    if (!out.isTensor()) throw std::runtime_error("the module's forward() returned a " + out.tagKind() + ", expected a Tensor");
    return TensorWrap::Wrap(info.Env(), out.toTensor());
  });
}

Napi::Value ScriptModelWrap::Train(const Napi::CallbackInfo& info) {
  return Guarded(info.Env(), [&]() -> Napi::Value {
    Checked("train").train(ReadBool(info[0], "training"));
    return info.Env().Undefined();
  });
}

// The module's own parameter tensors (shared, not copied), in registration order.
Napi::Value ScriptModelWrap::NamedParameters(const Napi::CallbackInfo& info) {
  return Guarded(info.Env(), [&]() -> Napi::Value {
    std::vector<std::pair<std::string, at::Tensor>> found;
    for (const auto& p : Checked("namedParameters").named_parameters(/*recurse=*/true)) found.emplace_back(p.name, p.value);
    auto result = Napi::Array::New(info.Env(), found.size());
    for (size_t i = 0; i < found.size(); ++i) {
      auto pair = Napi::Array::New(info.Env(), 2);
      pair.Set(0u, found[i].first);
      pair.Set(1u, TensorWrap::Wrap(info.Env(), found[i].second));
      result.Set(static_cast<uint32_t>(i), pair);
    }
    return result;
  });
}

Napi::Value ScriptModelWrap::Save(const Napi::CallbackInfo& info) {
  return Guarded(info.Env(), [&]() -> Napi::Value {
    std::ostringstream stream;
    Checked("save").save(stream);
    std::string bytes = stream.str();
    // Copied into a JS-owned buffer that TS writes atomically.
    return Napi::Buffer<char>::Copy(info.Env(), bytes.data(), bytes.size());
  });
}

Napi::Value ScriptModelWrap::Code(const Napi::CallbackInfo& info) {
  return Guarded(info.Env(), [&]() -> Napi::Value {
    return Napi::String::New(info.Env(), Checked("code").dump_to_str(/*print_method_bodies=*/true, /*print_attr_values=*/false, /*print_param_values=*/false));
  });
}

Napi::Value ScriptModelWrap::Dispose(const Napi::CallbackInfo& info) {
  module_.reset();
  return info.Env().Undefined();
}

}  // namespace convscope
