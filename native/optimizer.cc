#include "optimizer.h"

#include <algorithm>
#include <cmath>
#include <sstream>

#include <torch/version.h>

#include "args.h"
#include "errors.h"
#include "fused_adam.h"
#include "instance_data.h"
#include "tensor.h"
#include "torch_compat.h"

namespace convscope {
torch::optim::AdamParamState& AdamStateOf(torch::optim::Adam& adam, const at::Tensor& p) {
  auto& state = adam.state();
  // The key libtorch's Adam and its serialisation use for a parameter's state.
  const auto key = compat::OptimizerStateKey<std::remove_reference_t<decltype(state)>::key_type>(p);
  auto found = state.find(key);
  if (found == state.end()) {
    auto fresh = std::make_unique<torch::optim::AdamParamState>();
    fresh->step(0);
    fresh->exp_avg(torch::zeros_like(p, at::MemoryFormat::Preserve));
    fresh->exp_avg_sq(torch::zeros_like(p, at::MemoryFormat::Preserve));
    found = state.emplace(key, std::move(fresh)).first;
  }
  return static_cast<torch::optim::AdamParamState&>(*found->second);
}

void SetLearningRate(torch::optim::Optimizer& optimizer, double lr) {
  for (auto& group : optimizer.param_groups()) group.options().set_lr(lr);
}

void ClearGradients(torch::optim::Optimizer& optimizer) {
  for (auto& group : optimizer.param_groups()) {
    for (auto& p : group.params()) {
      if (p.mutable_grad().defined()) p.mutable_grad().reset();
    }
  }
}

// Adam's update of the parameters the CPU's fused pass did not take (those on a GPU), over whole
// lists at once. On CUDA it is PyTorch's fused Adam kernel (Adam(fused=True)): two launches per step
// for every parameter, and the very kernel the CUDA graph step captures (cuda/graph_step.cc), so
// graphed and plain training agree to rounding. Elsewhere foreach ops (PyTorch's default Adam), with
// the bias corrections as host scalars per parameter.
struct PendingAdam {
  std::vector<at::Tensor> params, grads, expAvgs, expAvgSqs, deviceSteps, stepsToAdvance;
  std::vector<at::Scalar> negativeStepSizes, sqrtBiasCorrections2;
  bool fusable = true;

  void Add(LeanAdam& owner, const at::Tensor& p, const at::Tensor& grad, torch::optim::AdamParamState& state,
           double negativeStepSize, double sqrtBiasCorrection2) {
    params.push_back(p);
    grads.push_back(grad);
    expAvgs.push_back(state.exp_avg());
    expAvgSqs.push_back(state.exp_avg_sq());
    negativeStepSizes.emplace_back(negativeStepSize);
    sqrtBiasCorrections2.emplace_back(sqrtBiasCorrection2);
#if TORCH_VERSION_MAJOR >= 2
    fusable = fusable && p.is_cuda() && p.scalar_type() == at::kFloat && p.is_contiguous() && grad.is_contiguous() &&
              grad.scalar_type() == at::kFloat;
    if (!fusable) return;
    // The kernel reads the count after this step's increment and adds nothing to it. In the usual
    // case the device count is one behind and advances with the others in one launch.
    auto& step = owner.deviceSteps_[p.unsafeGetTensorImpl()];
    if (!step.count.defined() || step.count.device() != p.device()) {
      step.count = torch::zeros({}, p.options().dtype(at::kFloat));
      step.host = 0;
    }
    if (step.host == state.step() - 1) {
      stepsToAdvance.push_back(step.count);
    } else {
      step.count.fill_(static_cast<double>(state.step()));
    }
    step.host = state.step();
    deviceSteps.push_back(step.count);
#else
    fusable = false;
#endif
  }

  void Apply(const torch::optim::AdamOptions& options, bool decoupled) {
    if (params.empty()) return;
    const double beta1 = std::get<0>(options.betas());
    const double beta2 = std::get<1>(options.betas());
    const double decay = options.weight_decay();
#if TORCH_VERSION_MAJOR >= 2
    if (fusable) {
      if (!stepsToAdvance.empty()) at::_foreach_add_(stepsToAdvance, 1);
      if (decoupled) {
        at::_fused_adamw_(params, grads, expAvgs, expAvgSqs, {}, deviceSteps, options.lr(), beta1, beta2, decay,
                          options.eps(), /*amsgrad=*/false, /*maximize=*/false);
      } else {
        at::_fused_adam_(params, grads, expAvgs, expAvgSqs, {}, deviceSteps, options.lr(), beta1, beta2, decay,
                         options.eps(), /*amsgrad=*/false, /*maximize=*/false);
      }
      return;
    }
    if (decoupled && decay != 0) at::_foreach_mul_(params, 1 - options.lr() * decay);
    if (!decoupled && decay != 0) grads = at::_foreach_add(grads, params, decay);
    at::_foreach_lerp_(expAvgs, grads, 1 - beta1);
    at::_foreach_mul_(expAvgSqs, beta2);
    at::_foreach_addcmul_(expAvgSqs, grads, grads, 1 - beta2);
    std::vector<at::Tensor> denominators = at::_foreach_sqrt(expAvgSqs);
    at::_foreach_div_(denominators, sqrtBiasCorrections2);
    at::_foreach_add_(denominators, options.eps());
    at::_foreach_addcdiv_(params, expAvgs, denominators, negativeStepSizes);
#else
    // libtorch 1.13 (CPU only, where the fused pass takes every parameter): op by op.
    for (size_t i = 0; i < params.size(); ++i) {
      if (decoupled && decay != 0) params[i].mul_(1 - options.lr() * decay);
      at::Tensor grad = !decoupled && decay != 0 ? grads[i].add(params[i], decay) : grads[i];
      expAvgs[i].lerp_(grad, 1 - beta1);
      expAvgSqs[i].mul_(beta2).addcmul_(grad, grad, 1 - beta2);
      at::Tensor denominator = expAvgSqs[i].sqrt();
      denominator.div_(sqrtBiasCorrections2[i]).add_(options.eps());
      params[i].addcdiv_(expAvgs[i], denominator, negativeStepSizes[i]);
    }
#endif
  }
};

torch::Tensor LeanAdam::step(LossClosure closure) {
  torch::NoGradGuard noGrad;
  for (auto& group : param_groups_) {
    auto& options = static_cast<torch::optim::AdamOptions&>(group.options());
    // AMSGrad is not set by convscope; keep libtorch's own step for it.
    if (options.amsgrad()) return torch::optim::Adam::step(closure);
    const double beta1 = std::get<0>(options.betas());
    const double beta2 = std::get<1>(options.betas());
    PendingAdam pending;
    for (auto& p : group.params()) {
      if (!p.grad().defined()) continue;
      at::Tensor grad = p.grad();
      auto& state = AdamStateOf(*this, p);
      state.step(state.step() + 1);
      const double correction1 = 1 - std::pow(beta1, state.step());
      const double correction2 = 1 - std::pow(beta2, state.step());
      const AdamStepScalars scalars{static_cast<float>(1 - beta1), static_cast<float>(beta2),
                                    static_cast<float>(1 - beta2), static_cast<float>(std::sqrt(correction2)),
                                    static_cast<float>(options.eps()), static_cast<float>(-options.lr() / correction1),
                                    decoupled_ ? 0.0f : static_cast<float>(options.weight_decay()),
                                    decoupled_ ? static_cast<float>(1 - options.lr() * options.weight_decay()) : 1.0f};
      if (FusedAdamStep(p, grad, state.exp_avg(), state.exp_avg_sq(), scalars)) continue;
      pending.Add(*this, p, grad, state, -options.lr() / correction1, std::sqrt(correction2));
    }
    pending.Apply(options, decoupled_);
  }
  return {};
}

Napi::Function OptimizerWrap::Define(Napi::Env env) {
  return DefineClass(env, "Optimizer", {
      InstanceMethod<&OptimizerWrap::ZeroGrad>("zeroGrad"),
      InstanceMethod<&OptimizerWrap::Step>("step"),
      InstanceMethod<&OptimizerWrap::SetLearningRate>("setLearningRate"),
      InstanceMethod<&OptimizerWrap::SaveState>("saveState"),
      InstanceMethod<&OptimizerWrap::LoadState>("loadState"),
      InstanceMethod<&OptimizerWrap::Dispose>("dispose"),
  });
}

std::shared_ptr<torch::optim::Optimizer> OptimizerWrap::From(const Napi::Value& value, const char* name) {
  if (!value.IsObject() || !value.As<Napi::Object>().InstanceOf(GetInstanceData(value.Env()).optimizerConstructor.Value())) {
    throw TypeMismatch(std::string("Expected an Optimizer for ") + name + " but received " + DescribeValue(value));
  }
  auto* wrap = Unwrap(value.As<Napi::Object>());
  if (!wrap->optimizer_) throw std::runtime_error(std::string("Optimizer for ") + name + " was used after dispose()");
  return wrap->optimizer_;
}

namespace {

// The parameters as groups: those not in `undecayed` (a JS array of Tensors, or undefined), then
// those in it. One group when none is kept from decay.
std::vector<torch::optim::OptimizerParamGroup> DecayGroups(const std::vector<at::Tensor>& params, const Napi::Value& undecayed) {
  if (undecayed.IsUndefined() || undecayed.IsNull()) return {torch::optim::OptimizerParamGroup(params)};
  if (!undecayed.IsArray()) throw TypeMismatch("Expected an array of Tensors for undecayed but received " + DescribeValue(undecayed));
  auto list = undecayed.As<Napi::Array>();
  std::vector<const void*> kept;
  for (uint32_t i = 0; i < list.Length(); ++i) {
    const at::Tensor& t = TensorWrap::From(list.Get(i), Element("undecayed", i).c_str());
    const bool known = std::any_of(params.begin(), params.end(), [&](const at::Tensor& p) { return p.unsafeGetTensorImpl() == t.unsafeGetTensorImpl(); });
    if (!known) throw OutOfRange("Expected one of params for " + Element("undecayed", i));
    kept.push_back(t.unsafeGetTensorImpl());
  }
  std::vector<at::Tensor> decayed, plain;
  for (const auto& p : params) {
    (std::find(kept.begin(), kept.end(), p.unsafeGetTensorImpl()) == kept.end() ? decayed : plain).push_back(p);
  }
  if (plain.empty()) return {torch::optim::OptimizerParamGroup(params)};
  if (decayed.empty()) throw OutOfRange("Expected some parameters with weight decay: undecayed holds them all");
  return {torch::optim::OptimizerParamGroup(decayed), torch::optim::OptimizerParamGroup(plain)};
}

// With two groups: the first gets `defaults` as they are (its weight decay), and `defaults` lose their
// decay, so that the second group (which takes the defaults) has none. Not the other way round: recent
// libtorch fills a group's options that equal a default-constructed Options' (a decay of 0) from the
// optimizer's defaults, so an explicit 0 would be replaced by the decay.
template <typename Options>
std::vector<torch::optim::OptimizerParamGroup> DecayOnFirst(std::vector<torch::optim::OptimizerParamGroup> groups, Options& defaults) {
  if (groups.size() > 1) {
    groups[0].set_options(std::make_unique<Options>(defaults));
    defaults.weight_decay(0.0);
  }
  return groups;
}

}  // namespace

// new Optimizer(params: Tensor[], { kind: 'sgd' | 'adam' | 'adamw', learningRate, momentum, nesterov, weightDecay,
// beta1, beta2, epsilon, undecayed })
// `undecayed` (some of params) are kept from weight decay: they form a second parameter group whose
// decay is 0 (batch normalisation's scales and shifts, biases). Without it, one group as before.
OptimizerWrap::OptimizerWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<OptimizerWrap>(info) {
  Guarded(info.Env(), [&] {
    if (!info[0].IsArray()) throw TypeMismatch("Expected an array of Tensors for params but received " + DescribeValue(info[0]));
    if (!info[1].IsObject()) throw TypeMismatch("Expected an object for options but received " + DescribeValue(info[1]));
    auto list = info[0].As<Napi::Array>();
    std::vector<at::Tensor> params;
    for (uint32_t i = 0; i < list.Length(); ++i) params.push_back(TensorWrap::From(list.Get(i), Element("params", i).c_str()));
    if (params.empty()) throw OutOfRange("Expected at least one parameter for params");
    auto options = info[1].As<Napi::Object>();
    std::string kind = ReadString(options.Get("kind"), "kind");
    double lr = ReadNumber(options.Get("learningRate"), "learningRate");
    double weightDecay = OptionalNumber(options, "weightDecay", 0.0);
    const std::vector<torch::optim::OptimizerParamGroup> groups = DecayGroups(params, options.Get("undecayed"));
    if (kind == "sgd") {
      auto opts = torch::optim::SGDOptions(lr)
                      .momentum(OptionalNumber(options, "momentum", 0.0))
                      .nesterov(OptionalBool(options, "nesterov", false))
                      .weight_decay(weightDecay);
      const auto grouped = DecayOnFirst(groups, opts);
      optimizer_ = std::make_shared<torch::optim::SGD>(grouped, opts);
    } else if (kind == "adam" || kind == "adamw") {
      auto opts = torch::optim::AdamOptions(lr)
                      .betas({OptionalNumber(options, "beta1", 0.9), OptionalNumber(options, "beta2", 0.999)})
                      .eps(OptionalNumber(options, "epsilon", 1e-8))
                      .weight_decay(weightDecay);
      const auto grouped = DecayOnFirst(groups, opts);
      auto adam = std::make_shared<LeanAdam>(grouped, opts);
      adam->set_decoupled(kind == "adamw");
      optimizer_ = adam;
    } else {
      throw OutOfRange("Expected \"sgd\", \"adam\" or \"adamw\" for optimizer but received \"" + kind + "\"");
    }
  });
}

torch::optim::Optimizer& OptimizerWrap::Checked(const char* method) {
  if (!optimizer_) throw std::runtime_error(std::string("Optimizer.") + method + ": used after dispose()");
  return *optimizer_;
}

Napi::Value OptimizerWrap::ZeroGrad(const Napi::CallbackInfo& info) {
  return Guarded(info.Env(), [&]() -> Napi::Value {
    ClearGradients(Checked("zeroGrad"));
    return info.Env().Undefined();
  });
}

Napi::Value OptimizerWrap::Step(const Napi::CallbackInfo& info) {
  return Guarded(info.Env(), [&]() -> Napi::Value {
    Checked("step").step();
    return info.Env().Undefined();
  });
}

Napi::Value OptimizerWrap::SetLearningRate(const Napi::CallbackInfo& info) {
  return Guarded(info.Env(), [&]() -> Napi::Value {
    convscope::SetLearningRate(Checked("setLearningRate"), ReadNumber(info[0], "learningRate"));
    return info.Env().Undefined();
  });
}

// The optimizer's state (step counts, moments) in libtorch's archive format, as bytes for a checkpoint.
Napi::Value OptimizerWrap::SaveState(const Napi::CallbackInfo& info) {
  return Guarded(info.Env(), [&]() -> Napi::Value {
    torch::serialize::OutputArchive archive;
    Checked("saveState").save(archive);
    std::ostringstream stream;
    archive.save_to(stream);
    std::string bytes = stream.str();
    // Copied into a JS-owned buffer: the string dies with this call.
    return Napi::Buffer<char>::Copy(info.Env(), bytes.data(), bytes.size());
  });
}

Napi::Value OptimizerWrap::LoadState(const Napi::CallbackInfo& info) {
  return Guarded(info.Env(), [&]() -> Napi::Value {
    if (!info[0].IsBuffer()) throw TypeMismatch("Expected a Buffer for state but received " + DescribeValue(info[0]));
    auto buffer = info[0].As<Napi::Buffer<char>>();
    std::istringstream stream(std::string(buffer.Data(), buffer.Length()));
    torch::serialize::InputArchive archive;
    archive.load_from(stream);
    Checked("loadState").load(archive);
    return info.Env().Undefined();
  });
}

Napi::Value OptimizerWrap::Dispose(const Napi::CallbackInfo& info) {
  optimizer_.reset();
  return info.Env().Undefined();
}

}  // namespace convscope
