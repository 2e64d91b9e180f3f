#include "reducer.h"

#include "torch_compat.h"

#if CONVSCOPE_HAS_C10D
#include <torch/csrc/distributed/c10d/reducer.hpp>
#endif

#include <ATen/Parallel.h>

#include <algorithm>
#include <atomic>
#include <limits>
#include <string>
#include <vector>

#include "args.h"
#include "distributed.h"
#include "errors.h"
#include "instance_data.h"
#include "tensor.h"

namespace convscope {

#if CONVSCOPE_HAS_C10D

// c10d's Reducer, and the two things of its state this file reads (protected members, read under
// the Reducer's own mutex): how many buckets it has, and whether it still waits for gradients.
class ObservedReducer : public c10d::Reducer {
 public:
  using c10d::Reducer::Reducer;

  size_t BucketCount() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return buckets_.size();
  }
  // Set by prepare_for_backward; cleared by finalize_backward, the callback the Reducer queues on
  // the autograd engine once the last bucket is on its way (it waits for every bucket).
  bool AwaitsGradients() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return expect_autograd_hooks_;
  }
};

namespace {

// The parameters that get gradients, as DDP takes them (it skips those with requires_grad false).
std::vector<at::Tensor> TrainedParameters(const std::vector<at::Tensor>& params) {
  std::vector<at::Tensor> trained;
  for (const auto& p : params) {
    if (p.requires_grad()) trained.push_back(p);
  }
  if (trained.empty()) throw OutOfRange("Expected at least one parameter that requires a gradient for params");
  return trained;
}

// The Reducer warns (once) when a gradient's strides differ from its bucket view's, comparing every
// dimension; autograd's own layout contract ignores the strides of size-1 dimensions. A grey
// model's first convolution (one input channel) computes its weight's gradient channels-last,
// strides [9, 1, 3, 1] against the parameter's [9, 9, 3, 1]: the same memory, and a warning on every
// rank's stderr that means nothing. That one is dropped; every other warning passes on.
class BucketStrideWarningFilter : public c10::WarningHandler {
 public:
  explicit BucketStrideWarningFilter(c10::WarningHandler* next) : next_(next) {}
  void process(const c10::Warning& warning) override {
    if (warning.msg().rfind("Grad strides do not match bucket view strides", 0) == 0) return;
    next_->process(warning);
  }

 private:
  c10::WarningHandler* next_;
};

std::unique_ptr<ObservedReducer> MakeReducer(const std::vector<at::Tensor>& params, Group& group) {
  // DDP's first layout (no find_unused_parameters): one bucket for everything, in reverse order.
  // After the first backward the Reducer rebuilds the buckets in the order the gradients arrived,
  // the first one small (1 MiB) so that its allreduce starts early, the others 25 MiB
  // (rebuild_buckets, called before each backward: ReducedBackward).
  const std::vector<size_t> oneBucket{static_cast<size_t>(std::numeric_limits<int64_t>::max())};
  auto indices = std::get<0>(c10d::compute_bucket_assignment_by_size(params, oneBucket));
  std::reverse(indices.begin(), indices.end());
  return std::make_unique<ObservedReducer>(
      params, std::move(indices), group.processGroup, std::vector<bool>(params.size(), false), c10d::kDefaultBucketBytesCap,
      /*find_unused_parameters=*/false,
      // The averaged gradient stays in its bucket, as the allreduce after backward left it before.
      /*gradient_as_bucket_view=*/true, std::unordered_map<size_t, std::string>{}, c10d::kDefaultFirstBucketBytes,
      /*skip_all_reduce_unused_params=*/false, /*use_python_reducer=*/false, /*bucket_bytes_cap_list=*/std::vector<int64_t>{});
}

}  // namespace

class GradientReducer {
 public:
  GradientReducer(std::shared_ptr<Group> group, const std::vector<at::Tensor>& params)
      : group(std::move(group)), params(params), reducer(MakeReducer(TrainedParameters(params), *this->group)) {}

  std::shared_ptr<Group> group;
  std::vector<at::Tensor> params;
  std::unique_ptr<ObservedReducer> reducer;
  // Backward passes whose gradients the Reducer averaged (its callback ran), or BucketedAverage
  // did beside a CUDA graph: what tests read.
  std::atomic<int64_t> steps{0};
  // BucketedAverage's buckets, once one was made (its layout, not the Reducer's, is then the run's).
  std::atomic<int64_t> besideGraphBuckets{0};
};

struct BucketedAverage::State {
  std::shared_ptr<GradientReducer> reducer;
  std::vector<at::Tensor> params;  // those averaged, in bucket order
  std::vector<at::Tensor> buckets;
  std::vector<size_t> bucketEnds;  // where each bucket's parameters end in `params`
};

BucketedAverage::BucketedAverage(std::shared_ptr<GradientReducer> reducer, const std::vector<at::Tensor>& params)
    : state_(std::make_unique<State>()) {
  State& s = *state_;
  s.reducer = std::move(reducer);
  s.params = TrainedParameters(params);
  std::reverse(s.params.begin(), s.params.end());
  const at::ScalarType dtype = s.params.front().scalar_type();
  int64_t filled = 0;
  const int64_t cap = static_cast<int64_t>(c10d::kDefaultBucketBytesCap);
  auto close = [&](size_t end) {
    s.buckets.push_back(torch::zeros({filled}, s.params.front().options()));
    s.bucketEnds.push_back(end);
    filled = 0;
  };
  for (size_t i = 0; i < s.params.size(); ++i) {
    const at::Tensor& p = s.params[i];
    if (p.scalar_type() != dtype || p.device() != s.params.front().device()) {
      throw OutOfRange("Expected every trained parameter of one dtype and device to average them beside the CUDA graph");
    }
    const int64_t bytes = p.numel() * static_cast<int64_t>(p.element_size());
    if (filled > 0 && (filled * static_cast<int64_t>(p.element_size()) + bytes) > cap) close(i);
    filled += p.numel();
  }
  close(s.params.size());
  s.reducer->besideGraphBuckets.store(static_cast<int64_t>(s.buckets.size()));
}

BucketedAverage::~BucketedAverage() = default;

void BucketedAverage::Pack() {
  State& s = *state_;
  for (size_t b = 0, i = 0; b < s.buckets.size(); ++b) {
    for (int64_t offset = 0; i < s.bucketEnds[b]; ++i) {
      const at::Tensor& grad = s.params[i].grad();
      if (!grad.defined()) throw std::runtime_error("a trained parameter got no gradient this step, so it cannot be averaged over the ranks");
      const int64_t n = grad.numel();
      s.buckets[b].narrow(0, offset, n).view(grad.sizes()).copy_(grad);
      offset += n;
    }
  }
}

void BucketedAverage::Allreduce() {
  State& s = *state_;
  Group& group = *s.reducer->group;
  std::lock_guard<std::mutex> lock(group.order);
  std::vector<c10::intrusive_ptr<c10d::Work>> works;
  for (auto& bucket : s.buckets) {
    std::vector<at::Tensor> tensors{bucket};
    works.push_back(group.processGroup->allreduce(tensors));
  }
  for (auto& work : works) work->wait();
  s.reducer->steps.fetch_add(1);
}

void BucketedAverage::Unpack() {
  State& s = *state_;
  const double size = static_cast<double>(s.reducer->group->size);
  for (size_t b = 0, i = 0; b < s.buckets.size(); ++b) {
    s.buckets[b].div_(size);
    for (int64_t offset = 0; i < s.bucketEnds[b]; ++i) {
      at::Tensor grad = s.params[i].mutable_grad();
      const int64_t n = grad.numel();
      grad.copy_(s.buckets[b].narrow(0, offset, n).view(grad.sizes()));
      offset += n;
    }
  }
}

size_t BucketedAverage::buckets() const { return state_->buckets.size(); }
const GradientReducer* BucketedAverage::reducer() const { return state_->reducer.get(); }

at::Tensor ReducedBackward(GradientReducer& r, const at::Tensor& objective) {
  Group& group = *r.group;
  std::lock_guard<std::mutex> lock(group.order);
  // Once per run, after the first backward: the buckets follow the order gradients came in (rank
  // 0's layout, broadcast). A no-op afterwards.
  r.reducer->rebuild_buckets();
  r.reducer->prepare_for_backward({objective});
  const bool prepared = r.reducer->AwaitsGradients();
  // The objective's mean, issued first (every rank issues its collectives in this order) so that it
  // travels while backward computes.
  std::vector<at::Tensor> mean{objective.detach().reshape({1}).to(group.device, /*non_blocking=*/false, /*copy=*/true)};
  c10::intrusive_ptr<c10d::Work> meanWork = group.processGroup->allreduce(mean);
  // The Reducer's hooks start each bucket's allreduce inside backward; its callback at the end
  // waits for all of them and writes the averaged gradients. (On the CPU, backward and its hooks
  // run on this thread: the warning handler is per thread.)
  BucketStrideWarningFilter filter(c10::WarningUtils::get_warning_handler());
  {
    c10::WarningUtils::WarningHandlerGuard guard(&filter);
    objective.backward();
  }
  meanWork->wait();
  // Counted only when the Reducer went from waiting for gradients to done: its callback ran.
  if (!prepared || r.reducer->AwaitsGradients()) {
    throw std::runtime_error("the DDP Reducer did not average this step's gradients: backward never reached its parameters");
  }
  r.steps.fetch_add(1);
  return mean[0].div_(group.size);
}

#else  // libtorch 1.13: no c10d (distributed.cc refuses to join a group, so no reducer is ever made).

class GradientReducer {};

at::Tensor ReducedBackward(GradientReducer&, const at::Tensor&) {
  throw OutOfRange("distributed training needs the libtorch 2.x build of convscope");
}

struct BucketedAverage::State {};
BucketedAverage::BucketedAverage(std::shared_ptr<GradientReducer>, const std::vector<at::Tensor>&) {
  throw OutOfRange("distributed training needs the libtorch 2.x build of convscope");
}
BucketedAverage::~BucketedAverage() = default;
void BucketedAverage::Pack() {}
void BucketedAverage::Allreduce() {}
void BucketedAverage::Unpack() {}
size_t BucketedAverage::buckets() const { return 0; }
const GradientReducer* BucketedAverage::reducer() const { return nullptr; }

#endif

namespace {

std::atomic<int64_t> liveReducers{0};

// new distributed.GradientReducer(group, params): the JS object of one run's Reducer.
class GradientReducerWrap : public Napi::ObjectWrap<GradientReducerWrap> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "GradientReducer", {
      InstanceAccessor<&GradientReducerWrap::Buckets>("buckets"),
      InstanceAccessor<&GradientReducerWrap::Steps>("steps"),
      InstanceMethod<&GradientReducerWrap::Backward>("backward"),
      InstanceMethod<&GradientReducerWrap::AverageBesideGraph>("averageBesideGraph"),
      InstanceMethod<&GradientReducerWrap::Dispose>("dispose"),
    });
  }

  explicit GradientReducerWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<GradientReducerWrap>(info) {
    Guarded(info.Env(), [&] {
#if CONVSCOPE_HAS_C10D
      std::shared_ptr<Group> group = GroupFrom(info[0], "group");
      if (!info[1].IsArray()) throw TypeMismatch("Expected an array of Tensors for params but received " + DescribeValue(info[1]));
      auto array = info[1].As<Napi::Array>();
      std::vector<at::Tensor> params;
      for (uint32_t i = 0; i < array.Length(); ++i) params.push_back(TensorWrap::From(array.Get(i), Element("params", i).c_str()));
      reducer_ = std::make_shared<GradientReducer>(std::move(group), params);
      liveReducers.fetch_add(1);
#else
      throw OutOfRange("distributed training needs the libtorch 2.x build of convscope");
#endif
    });
  }

  ~GradientReducerWrap() override { Release(); }

  static std::shared_ptr<GradientReducer> Held(const Napi::Value& value, const char* name) {
    auto& data = GetInstanceData(value.Env());
    if (!value.IsObject() || data.gradientReducerConstructor.IsEmpty() ||
        !value.As<Napi::Object>().InstanceOf(data.gradientReducerConstructor.Value())) {
      throw TypeMismatch(std::string("Expected a GradientReducer for ") + name + " but received " + DescribeValue(value));
    }
    auto* wrap = Unwrap(value.As<Napi::Object>());
    if (!wrap->reducer_) throw std::runtime_error(std::string("GradientReducer for ") + name + " was used after dispose()");
    return wrap->reducer_;
  }

 private:
  void Release() {
    if (reducer_) {
      // The Reducer's destructor removes its hooks from the parameters (once no backward holds it).
      reducer_.reset();
      liveReducers.fetch_sub(1);
    }
  }

  GradientReducer& Checked(const char* what) {
    if (!reducer_) throw std::runtime_error(std::string("GradientReducer.") + what + ": the reducer was used after dispose()");
    return *reducer_;
  }

  Napi::Value Buckets(const Napi::CallbackInfo& info) {
    return Guarded(info.Env(), [&] {
#if CONVSCOPE_HAS_C10D
      GradientReducer& r = Checked("buckets");
      const int64_t beside = r.besideGraphBuckets.load();
      return Napi::Number::New(info.Env(), static_cast<double>(beside > 0 ? static_cast<size_t>(beside) : r.reducer->BucketCount()));
#else
      return Napi::Number::New(info.Env(), 0);
#endif
    });
  }

  Napi::Value Steps(const Napi::CallbackInfo& info) {
#if CONVSCOPE_HAS_C10D
    return Guarded(info.Env(), [&] { return Napi::Number::New(info.Env(), static_cast<double>(Checked("steps").steps.load())); });
#else
    return Napi::Number::New(info.Env(), 0);
#endif
  }

  // backward(objective: Tensor) -> Promise<number>: the eager step's backward, off the JS thread
  // (it waits for the network inside the Reducer's callback); resolves to the mean objective.
  Napi::Value Backward(const Napi::CallbackInfo& info) {
    return Guarded(info.Env(), [&]() -> Napi::Value {
      auto reducer = reducer_;
      Checked("backward");
      at::Tensor objective = TensorWrap::From(info[0], "objective");
      if (objective.numel() != 1) throw OutOfRange("Expected a one-element tensor for objective");
      // OpenMP's thread count is per thread: the worker is told the main thread's.
      const int threads = at::get_num_threads();
      auto mean = std::make_shared<double>(0.0);
      return QueueCollective(info.Env(), "convscope.reducedBackward", [reducer, objective, threads, mean] {
        at::set_num_threads(threads);
        *mean = ReducedBackward(*reducer, objective).item<double>();
      }, [mean](Napi::Env env) -> Napi::Value { return Napi::Number::New(env, *mean); });
    });
  }

  // averageBesideGraph() -> Promise<void>: the gradients the parameters hold now averaged over the
  // group as the CUDA graph step averages them (BucketedAverage), off the JS thread. What proves
  // that path's buckets on a CPU, where no graph runs.
  Napi::Value AverageBesideGraph(const Napi::CallbackInfo& info) {
    return Guarded(info.Env(), [&]() -> Napi::Value {
      auto reducer = reducer_;
      Checked("averageBesideGraph");
#if CONVSCOPE_HAS_C10D
      auto average = std::make_shared<BucketedAverage>(reducer, reducer->params);
      return QueueCollective(info.Env(), "convscope.averageBesideGraph", [average] {
        average->Pack();
        average->Allreduce();
        average->Unpack();
      }, [](Napi::Env env) -> Napi::Value { return env.Undefined(); });
#else
      return info.Env().Undefined();
#endif
    });
  }

  Napi::Value Dispose(const Napi::CallbackInfo& info) {
    Release();
    return info.Env().Undefined();
  }

  // Shared with a backward in flight, which keeps the reducer alive until it finishes.
  std::shared_ptr<GradientReducer> reducer_;
};

Napi::Value LiveReducers(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), static_cast<double>(liveReducers.load()));
}

}  // namespace

std::shared_ptr<GradientReducer> ReducerFrom(const Napi::Value& value, const char* name) { return GradientReducerWrap::Held(value, name); }

void RegisterReducer(Napi::Env env, Napi::Object distributed) {
  Napi::Function constructor = GradientReducerWrap::Define(env);
  GetInstanceData(env).gradientReducerConstructor = Napi::Persistent(constructor);
  distributed.Set("GradientReducer", constructor);
  distributed.Set("liveReducers", Napi::Function::New(env, LiveReducers, "liveReducers"));
}

}  // namespace convscope
