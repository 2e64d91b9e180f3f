#include "graph_step.h"

#include <ATen/autocast_mode.h>
#include <ATen/cuda/CUDAGraph.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <cuda_runtime_api.h>

#include <array>
#include <atomic>
#include <cmath>
#include <functional>
#include <mutex>
#include <optional>

#include "../batch.h"
#include "../args.h"
#include "../errors.h"
#include "../instance_data.h"
#include "../optimizer.h"
#include "../torch_compat.h"

namespace convscope {
namespace {

constexpr int kWarmupSteps = 3;
std::atomic<int64_t> liveGraphs{0};

// One side stream per GPU for every graph of the process, taken by one segment at a time. A capture
// must see no other work launched onto its stream, and a stream of its own per graph would leave a
// cuBLAS workspace behind for each (libtorch keeps one per stream for the life of the process).
struct Lane {
  std::mutex mutex;
  std::optional<c10::cuda::CUDAStream> stream;
};

Lane& LaneOf(c10::DeviceIndex device) {
  static std::array<Lane, 64> lanes;
  static std::mutex making;
  Lane& lane = lanes.at(static_cast<size_t>(device));
  // Not the lane's own mutex: a segment may hold that for a while, and this runs on the main thread.
  std::lock_guard<std::mutex> lock(making);
  if (!lane.stream) lane.stream = c10::cuda::getStreamFromPool(false, device);
  return lane;
}

// The optimizer's update in a form a CUDA graph can hold: nothing read on the host changes between
// replays, and the learning rate lives in a device tensor that a schedule refills before each step.
// Adam runs PyTorch's fused CUDA kernel (what Adam(fused=True, capturable=True) calls) with the step
// count on the device too (AdamW its fused kernel); the count goes back to libtorch's own state after each segment, so
// checkpoints and resuming see the usual Adam state. SGD is libtorch's update written out with the
// device learning rate, once its momentum buffers exist (the warm-up steps make them).
class CapturableUpdate {
 public:
  // Parameter groups differ only in weight decay (the optimizer's `undecayed` group has none); they
  // share the learning rate, which a schedule sets for all.
  explicit CapturableUpdate(std::shared_ptr<torch::optim::Optimizer> optimizer) : optimizer_(std::move(optimizer)) {
    adam_ = dynamic_cast<torch::optim::Adam*>(optimizer_.get());
    sgd_ = dynamic_cast<torch::optim::SGD*>(optimizer_.get());
    if (!adam_ && !sgd_) throw std::runtime_error("the CUDA graph step takes Adam or SGD");
    const auto& first = optimizer_->param_groups().at(0).params();
    learningRate_ = torch::zeros({}, first.at(0).options().dtype(at::kFloat));
    for (const auto& group : optimizer_->param_groups()) {
      if (adam_) for (auto& p : group.params()) steps_.push_back(torch::zeros({}, p.options().dtype(at::kFloat)));
    }
  }

  // Outside the graph, before a segment: finds the optimizer's state (making what Adam's first step
  // would make, so its tensors exist before capture; loadState() may have replaced them since the
  // last segment) and copies the host's step counts and learning rate to the device.
  void Load() {
    params_.clear();
    groupEnds_.clear();
    for (auto& group : optimizer_->param_groups()) {
      params_.insert(params_.end(), group.params().begin(), group.params().end());
      groupEnds_.push_back(params_.size());
      if (adam_ && static_cast<torch::optim::AdamOptions&>(group.options()).amsgrad()) throw std::runtime_error("the CUDA graph step does not take AMSGrad");
    }
    learningRate_.fill_(optimizer_->param_groups().at(0).options().get_lr());
    if (!adam_) return;
    expAvgs_.clear();
    expAvgSqs_.clear();
    states_.clear();
    for (auto& p : params_) {
      auto& s = AdamStateOf(*adam_, p);
      expAvgs_.push_back(s.exp_avg());
      expAvgSqs_.push_back(s.exp_avg_sq());
      states_.push_back(&s);
    }
    if (params_.size() != steps_.size()) throw std::runtime_error("the optimizer's parameters changed under the CUDA graph step");
    for (size_t i = 0; i < steps_.size(); ++i) steps_[i].fill_(static_cast<double>(states_[i]->step()));
  }

  // Outside the graph: the rate of the next steps, on the host (plain steps) and the device (the graph).
  void SetLearningRate(double lr) {
    convscope::SetLearningRate(*optimizer_, lr);
    learningRate_.fill_(lr);
  }

  // Capturable: device work only (SGD's first step, which makes the momentum buffers, is not).
  void Apply() {
    torch::NoGradGuard noGrad;
    std::vector<at::Tensor> grads;
    grads.reserve(params_.size());
    for (auto& p : params_) {
      if (!p.grad().defined()) throw std::runtime_error("a parameter has no gradient: the CUDA graph step updates every parameter");
      grads.push_back(p.grad());
    }
    if (sgd_) {
      ApplySgd(grads);
      return;
    }
    at::_foreach_add_(steps_, 1);
    const auto* lean = dynamic_cast<const LeanAdam*>(adam_);
    const bool decoupled = lean && lean->decoupled();
    // One fused launch per parameter group (its own weight decay).
    size_t begin = 0;
    for (size_t g = 0; g < groupEnds_.size(); ++g) {
      const size_t end = groupEnds_[g];
      const auto& o = static_cast<const torch::optim::AdamOptions&>(adam_->param_groups().at(g).options());
      const auto part = [&](const std::vector<at::Tensor>& all) { return std::vector<at::Tensor>(all.begin() + begin, all.begin() + end); };
      if (decoupled) {
        at::_fused_adamw_(part(params_), part(grads), part(expAvgs_), part(expAvgSqs_), {}, part(steps_), learningRate_, std::get<0>(o.betas()),
                          std::get<1>(o.betas()), o.weight_decay(), o.eps(), /*amsgrad=*/false, /*maximize=*/false);
      } else {
        at::_fused_adam_(part(params_), part(grads), part(expAvgs_), part(expAvgSqs_), {}, part(steps_), learningRate_, std::get<0>(o.betas()),
                         std::get<1>(o.betas()), o.weight_decay(), o.eps(), /*amsgrad=*/false, /*maximize=*/false);
      }
      begin = end;
    }
  }

  // Outside the graph, after a segment: the device's step count back into libtorch's state.
  void Store() {
    if (!adam_ || steps_.empty()) return;
    const auto step = static_cast<int64_t>(std::llround(steps_[0].item<double>()));
    for (auto* s : states_) s->step(step);
  }

  bool Updates(const torch::optim::Optimizer& optimizer) const { return optimizer_.get() == &optimizer; }

  // Everything the captured update reads by address (after Load).
  void AppendAddresses(std::vector<const void*>& out) const {
    for (const auto& t : expAvgs_) out.push_back(t.data_ptr());
    for (const auto& t : expAvgSqs_) out.push_back(t.data_ptr());
  }

 private:
  // libtorch's SGD step (weight decay, momentum with dampening, Nesterov), with the device rate.
  void ApplySgd(const std::vector<at::Tensor>& grads) {
    const auto& o = static_cast<const torch::optim::SGDOptions&>(sgd_->param_groups().at(0).options());
    // The groups' weight decay, per parameter (momentum, dampening and Nesterov are the same in every group).
    std::vector<double> decays;
    for (size_t g = 0, i = 0; g < groupEnds_.size(); ++g) {
      const double decay = static_cast<const torch::optim::SGDOptions&>(sgd_->param_groups().at(g).options()).weight_decay();
      for (; i < groupEnds_[g]; ++i) decays.push_back(decay);
    }
    auto& state = sgd_->state();
    using Key = std::remove_reference_t<decltype(state)>::key_type;
    std::vector<torch::optim::SGDParamState*> buffers;
    if (o.momentum() != 0) {
      for (auto& p : params_) {
        auto found = state.find(compat::OptimizerStateKey<Key>(p));
        if (found == state.end()) {
          // The first step makes the buffers (a clone of the gradient): libtorch's own step does it.
          sgd_->step();
          return;
        }
        buffers.push_back(static_cast<torch::optim::SGDParamState*>(found->second.get()));
      }
    }
    for (size_t i = 0; i < params_.size(); ++i) {
      at::Tensor d = decays[i] != 0 ? grads[i].add(params_[i], decays[i]) : grads[i];
      if (o.momentum() != 0) {
        at::Tensor& buffer = buffers[i]->momentum_buffer();
        buffer.mul_(o.momentum()).add_(d, 1 - o.dampening());
        d = o.nesterov() ? d.add(buffer, o.momentum()) : buffer;
      }
      params_[i].addcmul_(d, learningRate_, -1.0);
    }
  }

  std::shared_ptr<torch::optim::Optimizer> optimizer_;
  torch::optim::Adam* adam_ = nullptr;
  torch::optim::SGD* sgd_ = nullptr;
  std::vector<at::Tensor> params_, expAvgs_, expAvgSqs_, steps_;
  // Where each parameter group ends in params_ (and the lists beside it).
  std::vector<size_t> groupEnds_;
  std::vector<torch::optim::AdamParamState*> states_;
  at::Tensor learningRate_;
};

// What a captured graph read by address or baked in as a constant: a graph is replayed only while
// all of it is unchanged.
struct CaptureKey {
  std::vector<const void*> addresses;
  const void* optimizer = nullptr;
  const void* reducer = nullptr;
  int64_t batchSize = 0;
  ChannelValues mean, std, padValues;
  double l1 = 0, labelSmoothing = 0;
  int64_t shift = 0;
  bool bf16 = false, flip = false;

  bool operator==(const CaptureKey& o) const {
    return addresses == o.addresses && optimizer == o.optimizer && reducer == o.reducer && batchSize == o.batchSize && mean == o.mean &&
           std == o.std && padValues == o.padValues && l1 == o.l1 && labelSmoothing == o.labelSmoothing && shift == o.shift && bf16 == o.bf16 &&
           flip == o.flip;
  }
};

}  // namespace

class GraphedStep {
 public:
  explicit GraphedStep(c10::DeviceIndex device) : lane_(LaneOf(device)) { ++liveGraphs; }
  ~GraphedStep() { --liveGraphs; }
  GraphedStep(const GraphedStep&) = delete;
  GraphedStep& operator=(const GraphedStep&) = delete;

  Lane& lane() const { return lane_; }
  int64_t replays() const { return replays_; }
  bool captured() const { return graph_ != nullptr; }

  // On the side stream, before a segment: keeps the graph if it still fits, else drops it.
  void Prepare(StepInputs& inputs, const std::shared_ptr<torch::optim::Optimizer>& optimizer, int64_t batchSize,
               const std::shared_ptr<GradientReducer>& reducer) {
    if (!update_ || !update_->Updates(*optimizer)) update_.emplace(optimizer);
    update_->Load();
    CaptureKey key = KeyFor(inputs, optimizer, batchSize);
    key.reducer = reducer.get();
    if (!(key == key_)) {
      graph_.reset();
      updateGraph_.reset();
      average_.reset();
      if (reducer) {
        std::vector<at::Tensor> params;
        for (const auto& group : optimizer->param_groups()) params.insert(params.end(), group.params().begin(), group.params().end());
        average_ = std::make_unique<BucketedAverage>(reducer, params);
      }
      warmups_ = 0;
      key_ = std::move(key);
      const auto options = inputs.images.options();
      rows_ = torch::zeros({batchSize}, options.dtype(at::kLong));
      stats_ = torch::zeros({2}, options.dtype(at::kDouble));
    }
    stats_.zero_();
  }

  const at::Tensor& stats() const { return stats_; }

  void Step(StepInputs& inputs, torch::optim::Optimizer& optimizer, const at::Tensor& rows) {
    if (rows.size(0) != key_.batchSize || (!graph_ && warmups_ < kWarmupSteps)) {
      if (rows.size(0) == key_.batchSize) ++warmups_;
      PlainStep(inputs, optimizer, rows);
      return;
    }
    rows_.copy_(rows, /*non_blocking=*/true);
    if (!graph_) Capture(inputs, optimizer);
    graph_->replay();
    if (average_) {
      average_->Allreduce();
      updateGraph_->replay();
    }
    ++replays_;
  }

  void SetLearningRate(double lr) { update_->SetLearningRate(lr); }

  void Finish() {
    lane_.stream->synchronize();
    update_->Store();
  }

 private:
  CaptureKey KeyFor(StepInputs& inputs, const std::shared_ptr<torch::optim::Optimizer>& optimizer, int64_t batchSize) {
    CaptureKey key;
    key.addresses.push_back(inputs.images.data_ptr());
    key.addresses.push_back(inputs.labels.data_ptr());
    for (const auto& p : inputs.module.parameters()) key.addresses.push_back(p.data_ptr());
    for (const auto& p : inputs.l1Params) key.addresses.push_back(p.data_ptr());
    update_->AppendAddresses(key.addresses);
    key.optimizer = optimizer.get();
    key.batchSize = batchSize;
    key.mean = inputs.mean;
    key.std = inputs.std;
    key.padValues = inputs.padValues;
    key.l1 = inputs.l1;
    key.labelSmoothing = inputs.labelSmoothing;
    key.shift = inputs.shift;
    key.flip = inputs.flip;
    key.bf16 = inputs.bf16;
    return key;
  }

  // The step the graph holds, run directly: warm-ups and odd-sized batches.
  void PlainStep(StepInputs& inputs, torch::optim::Optimizer& optimizer, const at::Tensor& rows) {
    Backward(inputs, optimizer, rows);
    if (average_) average_->Allreduce();
    Update();
  }

  // Up to the gradients (packed into the average's buckets in a data-parallel run).
  void Backward(StepInputs& inputs, torch::optim::Optimizer& optimizer, const at::Tensor& rows) {
    ClearGradients(optimizer);
    const StepTensors t = ForwardBackward(inputs, rows);
    stats_.add_(BatchStats(t.logits, t.labels, t.loss));
    if (average_) average_->Pack();
  }

  // The averaged gradients back into place (a data-parallel run), then the optimizer's update.
  void Update() {
    if (average_) average_->Unpack();
    update_->Apply();
  }

  // One graph of the whole step; in a data-parallel run two, backward's and the update's, whose
  // replays the gradients' allreduce goes between (it cannot be captured: Gloo's is host work, and
  // NCCL's in a graph needs settings this path does not rely on).
  void Capture(StepInputs& inputs, torch::optim::Optimizer& optimizer) {
    // Gradients are cleared, so the captured backward writes them instead of adding into last step's.
    ClearGradients(optimizer);
    auto graph = CaptureOf(optimizer, [&] {
      Backward(inputs, optimizer, rows_);
      if (!average_) Update();
    });
    if (average_) updateGraph_ = CaptureOf(optimizer, [&] { Update(); });
    graph_ = std::move(graph);
  }

  std::unique_ptr<at::cuda::CUDAGraph> CaptureOf(torch::optim::Optimizer& optimizer, const std::function<void()>& work) {
    // Autocast's cast cache would keep tensors made during capture beyond it (PyTorch asks for
    // cache_enabled=False when capturing for the same reason).
    const bool castCache = at::autocast::is_autocast_cache_enabled();
    at::autocast::set_autocast_cache_enabled(false);
    auto graph = std::make_unique<at::cuda::CUDAGraph>();
    try {
      // A private memory pool and global capture mode, as torch.cuda.graph does. The default CUDA
      // generator registers itself, so dropout draws new masks at every replay.
      graph->capture_begin();
      work();
      graph->capture_end();
    } catch (...) {
      at::autocast::set_autocast_cache_enabled(castCache);
      const std::string reason = Describe(std::current_exception()).message;
      // End the capture so the stream is usable again; its own error is the one already reported.
      try {
        graph->capture_end();
      } catch (...) {
      }
      graph.reset();
      (void)cudaGetLastError();
      ClearGradients(optimizer);
      throw std::runtime_error("the CUDA graph capture of the training step failed (" + reason +
                               "); train with cudaGraph: false to run the step without a graph");
    }
    at::autocast::set_autocast_cache_enabled(castCache);
    return graph;
  }

  Lane& lane_;
  std::optional<CapturableUpdate> update_;
  CaptureKey key_;
  at::Tensor rows_, stats_;
  std::unique_ptr<at::cuda::CUDAGraph> graph_;
  // A data-parallel run's: the update's graph, replayed after the gradients' allreduce.
  std::unique_ptr<at::cuda::CUDAGraph> updateGraph_;
  std::unique_ptr<BucketedAverage> average_;
  int warmups_ = 0;
  int64_t replays_ = 0;
};

namespace {

// One segment on the GPU's side stream, which it holds until it ends. The stream guard restores the
// worker thread's stream however the segment ends; work queued on the default stream (the dataset's
// upload) is waited for.
class GraphedSegment : public StepRunner {
 public:
  GraphedSegment(std::shared_ptr<GraphedStep> graph, StepInputs& inputs, std::shared_ptr<torch::optim::Optimizer> optimizer,
                 int64_t batchSize, const std::shared_ptr<GradientReducer>& reducer)
      : graph_(std::move(graph)), inputs_(inputs), optimizer_(std::move(optimizer)), hold_(graph_->lane().mutex),
        guard_(*graph_->lane().stream) {
    c10::cuda::getDefaultCUDAStream(graph_->lane().stream->device_index()).synchronize();
    graph_->Prepare(inputs_, optimizer_, batchSize, reducer);
  }

  bool Step(const at::Tensor& rows) override {
    graph_->Step(inputs_, *optimizer_, rows);
    return true;
  }

  const at::Tensor& Stats() const override { return graph_->stats(); }

  void SetLearningRate(double lr) override { graph_->SetLearningRate(lr); }

  void Finish() override { graph_->Finish(); }

 private:
  std::shared_ptr<GraphedStep> graph_;
  StepInputs& inputs_;
  std::shared_ptr<torch::optim::Optimizer> optimizer_;
  std::unique_lock<std::mutex> hold_;
  c10::cuda::CUDAStreamGuard guard_;
};

// new cuda.StepGraph(device?): the graph of one run; dispose() frees it and its memory pool.
class StepGraphWrap : public Napi::ObjectWrap<StepGraphWrap> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "StepGraph", {
        InstanceAccessor<&StepGraphWrap::Captured>("captured"),
        InstanceAccessor<&StepGraphWrap::Replays>("replays"),
        InstanceMethod<&StepGraphWrap::Dispose>("dispose"),
    });
  }

  explicit StepGraphWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<StepGraphWrap>(info) {
    Guarded(info.Env(), [&] {
      const std::string name = info[0].IsUndefined() ? "cuda" : ReadString(info[0], "device");
      const torch::Device device(name);
      if (!device.is_cuda()) throw OutOfRange("Expected a CUDA device for device but received \"" + name + "\"");
      graph_ = std::make_shared<GraphedStep>(device.has_index() ? device.index() : c10::cuda::current_device());
    });
  }

  std::shared_ptr<GraphedStep> graph() const { return graph_; }

 private:
  Napi::Value Captured(const Napi::CallbackInfo& info) { return Napi::Boolean::New(info.Env(), graph_ && graph_->captured()); }
  Napi::Value Replays(const Napi::CallbackInfo& info) {
    return Napi::Number::New(info.Env(), graph_ ? static_cast<double>(graph_->replays()) : 0.0);
  }
  // A job still running keeps its own reference; the graph goes when that job ends.
  Napi::Value Dispose(const Napi::CallbackInfo& info) {
    graph_.reset();
    return info.Env().Undefined();
  }

  std::shared_ptr<GraphedStep> graph_;
};

Napi::Value LiveGraphs(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), static_cast<double>(LiveGraphCount()));
}

}  // namespace

std::unique_ptr<StepRunner> OpenGraphedSegment(std::shared_ptr<GraphedStep> graph, StepInputs& inputs,
                                               std::shared_ptr<torch::optim::Optimizer> optimizer, int64_t batchSize,
                                               std::shared_ptr<GradientReducer> reducer) {
  if (!inputs.images.is_cuda()) throw OutOfRange("Expected training data on a CUDA device for the CUDA graph step");
  return std::make_unique<GraphedSegment>(std::move(graph), inputs, std::move(optimizer), batchSize, reducer);
}

int64_t LiveGraphCount() { return liveGraphs.load(); }

std::shared_ptr<GraphedStep> GraphedStepFrom(const Napi::Value& value, const char* name) {
  auto& data = GetInstanceData(value.Env());
  if (!value.IsObject() || data.stepGraphConstructor.IsEmpty() || !value.As<Napi::Object>().InstanceOf(data.stepGraphConstructor.Value())) {
    throw TypeMismatch(std::string("Expected a cuda.StepGraph for ") + name + " but received " + DescribeValue(value));
  }
  auto graph = StepGraphWrap::Unwrap(value.As<Napi::Object>())->graph();
  if (!graph) throw std::runtime_error(std::string("StepGraph for ") + name + " was used after dispose()");
  return graph;
}

void RegisterGraphStep(Napi::Env env, Napi::Object cuda) {
  Napi::Function constructor = StepGraphWrap::Define(env);
  GetInstanceData(env).stepGraphConstructor = Napi::Persistent(constructor);
  cuda.Set("StepGraph", constructor);
  cuda.Set("liveGraphs", Napi::Function::New(env, LiveGraphs, "liveGraphs"));
}

}  // namespace convscope
