#include "distributed.h"

#include "torch_compat.h"

#if CONVSCOPE_HAS_C10D
#include <torch/csrc/distributed/c10d/FileStore.hpp>
#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>

#include "distributed_gloo.h"
#ifdef CONVSCOPE_NCCL
#include "cuda/distributed_nccl.h"
#endif
#endif

#include <algorithm>
#include <atomic>
#include <chrono>
#include <functional>
#include <mutex>
#include <optional>
#include <string>

#include "args.h"
#include "errors.h"
#include "instance_data.h"
#include "reducer.h"
#include "sync_batch_norm.h"
#include "tensor.h"

namespace convscope {

#if CONVSCOPE_HAS_C10D

namespace {

// Where a run's keys live in the store: torchrun's agent store holds the agent's own keys too.
constexpr const char* kStorePrefix = "convscope/";

void WaitAll(std::vector<c10::intrusive_ptr<c10d::Work>>& works) {
  for (auto& work : works) work->wait();
}

// Broadcasts `tensors` from rank 0 in place (a contiguous copy where a tensor is not contiguous).
void BroadcastFromRank0(Group& group, std::vector<at::Tensor>& tensors) {
  std::lock_guard<std::mutex> lock(group.order);
  std::vector<at::Tensor> sent;
  std::vector<c10::intrusive_ptr<c10d::Work>> works;
  for (auto& t : tensors) {
    sent.push_back(t.is_contiguous() ? t : t.contiguous());
    std::vector<at::Tensor> one{sent.back()};
    c10d::BroadcastOptions options;
    options.rootRank = 0;
    works.push_back(group.backend->broadcast(one, options));
  }
  WaitAll(works);
  for (size_t i = 0; i < tensors.size(); ++i) {
    if (!sent[i].is_same(tensors[i])) tensors[i].copy_(sent[i]);
  }
}

// The sum over the ranks of a few numbers (epoch totals, evaluation counts).
std::vector<double> SumOverRanks(Group& group, const std::vector<double>& values) {
  std::lock_guard<std::mutex> lock(group.order);
  const at::Tensor t = SumOverGroup(group, torch::tensor(values, torch::kDouble));
  return std::vector<double>(t.data_ptr<double>(), t.data_ptr<double>() + t.numel());
}

struct GroupConfig {
  std::string host;
  int port = 0;
  int rank = 0, size = 1;
  std::chrono::milliseconds timeout{300000};
  // torchrun's agent already serves the store at host:port (TORCHELASTIC_USE_AGENT_STORE): every
  // rank connects to it as a client, under the agent's prefix.
  bool agentStore = false;
  std::string agentPrefix;
  // Set for a FileStore rendezvous (torch's init_method='file://...'): the file every rank opens,
  // on a file system they share; host and port are then unused.
  std::string storeFile;
  // "gloo" (CPU tensors) or "nccl" (CUDA tensors on GPU `device`).
  std::string backend = "gloo";
  int device = 0;
};

// The backends this build can make: Gloo always (libtorch 2.x), NCCL in a CUDA build that found nccl.h.
std::vector<std::string> Backends() {
#ifdef CONVSCOPE_NCCL
  return {"gloo", "nccl"};
#else
  return {"gloo"};
#endif
}

c10::intrusive_ptr<c10d::Store> OpenStore(const GroupConfig& config) {
  if (!config.storeFile.empty()) {
    // Every rank opens the file; the last of `size` to close it removes it.
    auto store = c10::make_intrusive<c10d::FileStore>(config.storeFile, config.size);
    store->setTimeout(config.timeout);
    return store;
  }
  c10d::TCPStoreOptions options;
  options.port = static_cast<std::uint16_t>(config.port);
  options.isServer = !config.agentStore && config.rank == 0;
  if (!config.agentStore) options.numWorkers = config.size;
  options.waitWorkers = !config.agentStore;
  options.timeout = config.timeout;
  // libtorch's libuv would bind to Node's own libuv inside the addon: the classic backend has none.
  options.useLibUV = false;
  c10::intrusive_ptr<c10d::Store> store = c10::make_intrusive<c10d::TCPStore>(config.host, options);
  if (config.agentStore) store = c10::make_intrusive<c10d::PrefixStore>(config.agentPrefix, store);
  return store;
}

std::shared_ptr<Group> Join(const GroupConfig& config) {
  c10::intrusive_ptr<c10d::Store> store = c10::make_intrusive<c10d::PrefixStore>(kStorePrefix, OpenStore(config));
  auto group = std::make_shared<Group>();
  group->store = store;
  group->rank = config.rank;
  group->size = config.size;
  group->backendName = config.backend;
  // The process group DDP's Reducer takes: the backend registered for its device type, as
  // torch.distributed's new_group does it.
  group->processGroup = c10::make_intrusive<c10d::ProcessGroup>(store, config.rank, config.size);
#ifdef CONVSCOPE_NCCL
  if (config.backend == "nccl") {
    group->device = at::Device(at::kCUDA, static_cast<c10::DeviceIndex>(config.device));
    group->backend = ConnectNccl(store, config.rank, config.size, config.timeout, config.device);
    group->processGroup->setDefaultBackend(c10d::ProcessGroup::BackendType::NCCL);
    group->processGroup->setBackend(c10::DeviceType::CUDA, c10d::ProcessGroup::BackendType::NCCL, group->backend);
    return group;
  }
#endif
  group->backend = ConnectGloo(store, config.rank, config.size, config.timeout);
  group->processGroup->setDefaultBackend(c10d::ProcessGroup::BackendType::GLOO);
  group->processGroup->setBackend(c10::DeviceType::CPU, c10d::ProcessGroup::BackendType::GLOO, group->backend);
  return group;
}

}  // namespace

at::Tensor SumOverGroup(Group& group, const at::Tensor& t) {
  // A copy the collective can own, on the group's device.
  at::Tensor sent = t.to(group.device, /*non_blocking=*/false, /*copy=*/true).contiguous();
  std::vector<at::Tensor> one{sent};
  group.backend->allreduce(one)->wait();
  return sent.to(t.device());
}

#endif

namespace {

constexpr const char* kNeedsLibtorch2 =
    "distributed training needs the libtorch 2.x build of convscope: this addon is built against libtorch " TORCH_VERSION
    " (the fallback build), which has no c10d process groups here";

std::atomic<int64_t> liveGroups{0};

// The JS object of a joined group. Made only by joinGroup (its constructor takes a key JS cannot forge).
class ProcessGroupWrap : public Napi::ObjectWrap<ProcessGroupWrap> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "ProcessGroup", {
      InstanceAccessor<&ProcessGroupWrap::Rank>("rank"),
      InstanceAccessor<&ProcessGroupWrap::Size>("size"),
      InstanceAccessor<&ProcessGroupWrap::Backend>("backend"),
      InstanceMethod<&ProcessGroupWrap::SumOverRanksJs>("sumOverRanks"),
      InstanceMethod<&ProcessGroupWrap::BroadcastJs>("broadcast"),
      InstanceMethod<&ProcessGroupWrap::SyncBatchNorm>("syncBatchNorm"),
      InstanceMethod<&ProcessGroupWrap::Dispose>("dispose"),
    });
  }

  explicit ProcessGroupWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<ProcessGroupWrap>(info) {
    Guarded(info.Env(), [&] {
      if (!info[0].IsExternal() || info[0].As<Napi::External<std::shared_ptr<Group>>>().Data() == nullptr) {
        throw TypeMismatch("A ProcessGroup is made by distributed.joinGroup(), not by new");
      }
      group_ = *info[0].As<Napi::External<std::shared_ptr<Group>>>().Data();
      liveGroups.fetch_add(1);
    });
  }

  ~ProcessGroupWrap() override { Release(); }

  static std::shared_ptr<Group> Held(const Napi::Value& value, const char* name) {
    auto& data = GetInstanceData(value.Env());
    if (!value.IsObject() || data.processGroupConstructor.IsEmpty() ||
        !value.As<Napi::Object>().InstanceOf(data.processGroupConstructor.Value())) {
      throw TypeMismatch(std::string("Expected a ProcessGroup for ") + name + " but received " + DescribeValue(value));
    }
    auto* wrap = Unwrap(value.As<Napi::Object>());
    if (!wrap->group_) throw std::runtime_error(std::string("ProcessGroup for ") + name + " was used after dispose()");
    return wrap->group_;
  }

 private:
  void Release() {
    if (group_) {
      StopSyncingOver(group_.get());
      group_.reset();
      liveGroups.fetch_sub(1);
    }
  }

  Group& Checked(const char* method) {
    if (!group_) throw std::runtime_error(std::string("ProcessGroup.") + method + ": the group was used after dispose()");
    return *group_;
  }

  Napi::Value Rank(const Napi::CallbackInfo& info) {
    return Guarded(info.Env(), [&] { return Napi::Number::New(info.Env(), Checked("rank").rank); });
  }
  Napi::Value Size(const Napi::CallbackInfo& info) {
    return Guarded(info.Env(), [&] { return Napi::Number::New(info.Env(), Checked("size").size); });
  }
  Napi::Value Backend(const Napi::CallbackInfo& info) {
    return Guarded(info.Env(), [&] { return Napi::String::New(info.Env(), Checked("backend").backendName); });
  }

  Napi::Value SumOverRanksJs(const Napi::CallbackInfo& info);
  Napi::Value BroadcastJs(const Napi::CallbackInfo& info);

  // syncBatchNorm(on): from now on, training batch norms in this process normalise with the whole
  // group's statistics (on) or their own rank's (off; also when the group is left).
  Napi::Value SyncBatchNorm(const Napi::CallbackInfo& info) {
    return Guarded(info.Env(), [&] {
      Checked("syncBatchNorm");
      if (ReadBool(info[0], "on")) {
        SyncBatchNormOver(group_);
      } else {
        StopSyncingOver(group_.get());
      }
      return info.Env().Undefined();
    });
  }

  Napi::Value Dispose(const Napi::CallbackInfo& info) {
    Release();
    return info.Env().Undefined();
  }

  // Shared with the collectives in flight, which keep the group alive until they finish.
  std::shared_ptr<Group> group_;
};

// A blocking collective (or the rendezvous) run on a libuv worker thread; its promise settles on
// the main thread with `finish`'s value, or rejects with the failure as its JS error class.
class CollectiveWorker : public Napi::AsyncWorker {
 public:
  CollectiveWorker(Napi::Env env, const char* name, std::function<void()> work, std::function<Napi::Value(Napi::Env)> finish)
      : Napi::AsyncWorker(env, name), deferred_(Napi::Promise::Deferred::New(env)), work_(std::move(work)), finish_(std::move(finish)) {}

  Napi::Promise Promise() { return deferred_.Promise(); }

 protected:
  void Execute() override {
    try {
      work_();
    } catch (...) {
      failure_ = Describe(std::current_exception());
      SetError(failure_->message);
    }
  }
  void OnOK() override {
    try {
      deferred_.Resolve(finish_(Env()));
    } catch (const Napi::Error& e) {
      deferred_.Reject(e.Value());
    }
  }
  void OnError(const Napi::Error& error) override {
    deferred_.Reject(failure_ ? ToJsError(Env(), *failure_).Value() : error.Value());
  }

 private:
  Napi::Promise::Deferred deferred_;
  std::function<void()> work_;
  std::function<Napi::Value(Napi::Env)> finish_;
  std::optional<ErrorDescription> failure_;
};

}  // namespace

Napi::Value QueueCollective(Napi::Env env, const char* name, std::function<void()> work, std::function<Napi::Value(Napi::Env)> finish) {
  auto* worker = new CollectiveWorker(env, name, std::move(work), std::move(finish));
  Napi::Promise promise = worker->Promise();
  worker->Queue();
  return promise;
}

namespace {

std::vector<at::Tensor> ReadTensors(const Napi::Value& value, const char* name) {
  if (!value.IsArray()) throw TypeMismatch(std::string("Expected an array of Tensors for ") + name + " but received " + DescribeValue(value));
  auto array = value.As<Napi::Array>();
  std::vector<at::Tensor> tensors;
  for (uint32_t i = 0; i < array.Length(); ++i) tensors.push_back(TensorWrap::From(array.Get(i), Element(name, i).c_str()));
  return tensors;
}

// sumOverRanks(values: Float64Array) -> Promise<Float64Array>
Napi::Value ProcessGroupWrap::SumOverRanksJs(const Napi::CallbackInfo& info) {
  return Guarded(info.Env(), [&]() -> Napi::Value {
    auto group = group_;
    Checked("sumOverRanks");
    if (!info[0].IsTypedArray() || info[0].As<Napi::TypedArray>().TypedArrayType() != napi_float64_array) {
      throw TypeMismatch("Expected a Float64Array for values but received " + DescribeValue(info[0]));
    }
    auto array = info[0].As<Napi::Float64Array>();
    // Copied: the worker thread must not read a JS-owned buffer.
    auto values = std::make_shared<std::vector<double>>(array.Data(), array.Data() + array.ElementLength());
#if CONVSCOPE_HAS_C10D
    return QueueCollective(info.Env(), "convscope.sumOverRanks", [group, values] { *values = SumOverRanks(*group, *values); },
                           [values](Napi::Env env) -> Napi::Value {
                             auto out = Napi::Float64Array::New(env, values->size());
                             // The sums copied back into JS memory.
                             std::copy(values->begin(), values->end(), out.Data());
                             return out;
                           });
#else
    throw OutOfRange(kNeedsLibtorch2);
#endif
  });
}

// broadcast(tensors: Tensor[]) -> Promise<void>: rank 0's values, in place on every rank.
Napi::Value ProcessGroupWrap::BroadcastJs(const Napi::CallbackInfo& info) {
  return Guarded(info.Env(), [&]() -> Napi::Value {
    auto group = group_;
    Checked("broadcast");
    auto tensors = std::make_shared<std::vector<at::Tensor>>(ReadTensors(info[0], "tensors"));
#if CONVSCOPE_HAS_C10D
    at::NoGradGuard noGrad;  // the copy back into a parameter is not part of any graph
    return QueueCollective(info.Env(), "convscope.broadcast", [group, tensors] {
      at::NoGradGuard noGradHere;
      BroadcastFromRank0(*group, *tensors);
    }, [](Napi::Env env) -> Napi::Value { return env.Undefined(); });
#else
    throw OutOfRange(kNeedsLibtorch2);
#endif
  });
}

#if CONVSCOPE_HAS_C10D
GroupConfig ReadGroupConfig(const Napi::Value& value) {
  if (!value.IsObject()) throw TypeMismatch("Expected an object for config but received " + DescribeValue(value));
  auto o = value.As<Napi::Object>();
  GroupConfig config;
  config.storeFile = OptionalString(o, "storeFile", "");
  if (config.storeFile.empty()) {
    config.host = ReadString(o.Get("host"), "host");
    config.port = static_cast<int>(ReadInt(o.Get("port"), "port", 1, 65535));
  }
  config.size = static_cast<int>(ReadInt(o.Get("size"), "size", 1, 1 << 20));
  config.rank = static_cast<int>(ReadInt(o.Get("rank"), "rank", 0, config.size - 1));
  config.timeout = std::chrono::milliseconds(ReadInt(o.Get("timeoutMs"), "timeoutMs", 1, INT64_C(1) << 40));
  config.agentStore = OptionalBool(o, "agentStore", false);
  config.agentPrefix = OptionalString(o, "agentPrefix", "");
  config.backend = OptionalString(o, "backend", "gloo");
  const auto backends = Backends();
  if (std::find(backends.begin(), backends.end(), config.backend) == backends.end()) {
    std::string list;
    for (const auto& b : backends) list += (list.empty() ? "\"" : " or \"") + b + "\"";
    throw OutOfRange("Expected " + list + " for backend (what this build of convscope has) but received \"" + config.backend + "\"");
  }
  config.device = static_cast<int>(OptionalInt(o, "device", 0, 0, 1 << 16));
  return config;
}
#endif

// joinGroup({ host, port, rank, size, timeoutMs, agentStore?, agentPrefix?, storeFile?, backend?, device? }) -> Promise<ProcessGroup>
Napi::Value JoinGroup(const Napi::CallbackInfo& info) {
  return Guarded(info.Env(), [&]() -> Napi::Value {
#if CONVSCOPE_HAS_C10D
    GroupConfig config = ReadGroupConfig(info[0]);
    auto joined = std::make_shared<std::shared_ptr<Group>>();
    return QueueCollective(info.Env(), "convscope.joinGroup", [config, joined] { *joined = Join(config); },
                           [joined](Napi::Env env) -> Napi::Value {
                             auto external = Napi::External<std::shared_ptr<Group>>::New(env, joined.get());
                             return GetInstanceData(env).processGroupConstructor.New({external});
                           });
#else
    throw OutOfRange(kNeedsLibtorch2);
#endif
  });
}

Napi::Value LiveGroups(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), static_cast<double>(liveGroups.load()));
}

}  // namespace

std::shared_ptr<Group> GroupFrom(const Napi::Value& value, const char* name) { return ProcessGroupWrap::Held(value, name); }

void RegisterDistributed(Napi::Env env, Napi::Object exports) {
  Napi::Function constructor = ProcessGroupWrap::Define(env);
  GetInstanceData(env).processGroupConstructor = Napi::Persistent(constructor);
  auto distributed = Napi::Object::New(env);
  distributed.Set("available", Napi::Boolean::New(env, CONVSCOPE_HAS_C10D == 1));
  auto backends = Napi::Array::New(env);
#if CONVSCOPE_HAS_C10D
  for (const auto& b : Backends()) backends.Set(backends.Length(), Napi::String::New(env, b));
#endif
  distributed.Set("backends", backends);
  distributed.Set("ProcessGroup", constructor);
  distributed.Set("joinGroup", Napi::Function::New(env, JoinGroup, "joinGroup"));
  distributed.Set("liveGroups", Napi::Function::New(env, LiveGroups, "liveGroups"));
  RegisterReducer(env, distributed);
  exports.Set("distributed", distributed);
}

}  // namespace convscope
