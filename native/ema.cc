#include "ema.h"

#include <torch/version.h>

#include <algorithm>
#include <string>
#include <utility>

#include "args.h"
#include "errors.h"
#include "tensor.h"

namespace convscope {
namespace {

// The tensors of a JS array of Tensors (handles: the tensors themselves are shared, not copied).
std::vector<at::Tensor> EmaTensorList(const Napi::Value& value, const char* name) {
  if (!value.IsArray()) throw TypeMismatch(std::string("Expected an array of Tensors for ") + name + " but received " + DescribeValue(value));
  auto array = value.As<Napi::Array>();
  std::vector<at::Tensor> out;
  for (uint32_t i = 0; i < array.Length(); ++i) out.push_back(TensorWrap::From(array.Get(i), Element(name, i).c_str()));
  return out;
}

// Averages and sources pair up one to one, in shape, dtype and device.
void CheckEmaPairs(const std::vector<at::Tensor>& averages, const std::vector<at::Tensor>& sources, const char* name) {
  if (averages.size() != sources.size()) {
    throw OutOfRange(std::string("Expected as many sources as averages (") + std::to_string(averages.size()) + ") for " + name +
                     " but received " + std::to_string(sources.size()));
  }
  for (size_t i = 0; i < averages.size(); ++i) {
    const auto& a = averages[i];
    const auto& s = sources[i];
    if (!a.sizes().equals(s.sizes()) || a.scalar_type() != s.scalar_type() || a.device() != s.device()) {
      throw OutOfRange(std::string("Expected the shape, dtype and device of its source for ") + Element(name, static_cast<uint32_t>(i)));
    }
  }
}

double CheckEmaDecay(double decay, const char* name) {
  if (!(decay >= 0.0 && decay < 1.0)) throw OutOfRange(std::string("Expected a number in [0, 1) for ") + name + " but received " + std::to_string(decay));
  return decay;
}

// ema.update(averages, sources, decay): one update of the averages, in place.
Napi::Value EmaUpdate(const Napi::CallbackInfo& info) {
  return Guarded(info.Env(), [&] {
    const auto averages = EmaTensorList(info[0], "averages");
    const auto sources = EmaTensorList(info[1], "sources");
    CheckEmaPairs(averages, sources, "averages");
    UpdateAverage(averages, sources, CheckEmaDecay(ReadNumber(info[2], "decay"), "decay"));
    return info.Env().Undefined();
  });
}

// ema.swap(a, b): exchanges the contents of two lists of tensors in place, so that a model's own
// tensors (shared with its TorchScript module) hold the average while it is evaluated, then their
// own weights again. One temporary copy per pair.
Napi::Value EmaSwap(const Napi::CallbackInfo& info) {
  return Guarded(info.Env(), [&] {
    const auto a = EmaTensorList(info[0], "a");
    const auto b = EmaTensorList(info[1], "b");
    CheckEmaPairs(a, b, "a");
    torch::NoGradGuard noGrad;
    for (size_t i = 0; i < a.size(); ++i) {
      at::Tensor kept = a[i].clone();
      a[i].copy_(b[i]);
      b[i].copy_(kept);
    }
    return info.Env().Undefined();
  });
}

}  // namespace

void UpdateAverage(const std::vector<at::Tensor>& averages, const std::vector<at::Tensor>& sources, double decay) {
  torch::NoGradGuard noGrad;
  std::vector<at::Tensor> floating, floatingSources;
  for (size_t i = 0; i < averages.size(); ++i) {
    if (at::isFloatingType(averages[i].scalar_type())) {
      floating.push_back(averages[i]);
      floatingSources.push_back(sources[i]);
    } else {
      averages[i].copy_(sources[i]);
    }
  }
  if (floating.empty()) return;
#if TORCH_VERSION_MAJOR >= 2
  // One launch for the whole list on a GPU (and inside a CUDA graph's stream order).
  at::_foreach_lerp_(floating, floatingSources, 1.0 - decay);
#else
  for (size_t i = 0; i < floating.size(); ++i) floating[i].lerp_(floatingSources[i], 1.0 - decay);
#endif
}

double EffectiveDecay(double decay, bool warmup, int64_t update) {
  if (!warmup) return decay;
  return std::min(decay, (1.0 + static_cast<double>(update)) / (10.0 + static_cast<double>(update)));
}

WeightAverage ReadWeightAverage(const Napi::Value& value, const char* name) {
  WeightAverage average;
  if (value.IsUndefined() || value.IsNull()) return average;
  if (!value.IsObject()) throw TypeMismatch(std::string("Expected an object for ") + name + " but received " + DescribeValue(value));
  auto o = value.As<Napi::Object>();
  average.averages = EmaTensorList(o.Get("averages"), "ema.averages");
  average.sources = EmaTensorList(o.Get("sources"), "ema.sources");
  CheckEmaPairs(average.averages, average.sources, "ema.averages");
  if (average.averages.empty()) throw OutOfRange("Expected at least one tensor for ema.averages");
  average.decay = CheckEmaDecay(ReadNumber(o.Get("decay"), "ema.decay"), "ema.decay");
  average.warmup = OptionalBool(o, "warmup", true);
  average.every = OptionalInt(o, "every", 1, 1, INT64_C(1) << 31);
  average.firstStep = OptionalInt(o, "firstStep", 0, 0, INT64_C(1) << 53);
  return average;
}

void RegisterEma(Napi::Env env, Napi::Object exports) {
  auto table = Napi::Object::New(env);
  table.Set("update", Napi::Function::New(env, EmaUpdate, "update"));
  table.Set("swap", Napi::Function::New(env, EmaSwap, "swap"));
  exports.Set("ema", table);
}

}  // namespace convscope
