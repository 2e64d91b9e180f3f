#include "trainer.h"

#include <torch/script.h>
#include <torch/torch.h>
#include <ATen/Parallel.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <memory>
#include <optional>

#include "batch.h"
#include "args.h"
#include "ema.h"
#include "errors.h"
#include "optimizer.h"
#include "reducer.h"
#include "script_model.h"
#include "tensor.h"
#include "train_step.h"
#ifdef CONVSCOPE_CUDA_SOURCES
#include "cuda/graph_step.h"
#endif

namespace convscope {
namespace {

struct EpochJob {
  StepInputs inputs;  // the module, the dataset on the device, normalisation, L1, precision
  std::shared_ptr<torch::optim::Optimizer> optimizer;
  at::Tensor order;   // int64 permutation of the rows this epoch visits
  int64_t batchSize = 0;
  int64_t progressEvery = 1;
  bool dropLast = false;
  std::vector<double> learningRates;  // per step of the segment; empty: the optimizer's own
  WeightAverage ema;  // updated after the steps it asks for (ema.h); inactive when the run keeps none
  // OpenMP's thread count is per calling thread: the worker thread must be told the main thread's
  // setting, or it starts as many threads as the host has cores and oversubscribes the CPU.
  int threads = 1;
  // Set in a data-parallel run: DDP's Reducer averages the gradients over the ranks during backward.
  std::shared_ptr<GradientReducer> reducer;
#ifdef CONVSCOPE_CUDA_SOURCES
  // Set when the step is to be replayed from a CUDA graph (cuda/graph_step.h).
  std::shared_ptr<GraphedStep> graph;
#endif

  // Batches in `order`: the last one partial unless dropped.
  int64_t Steps() const {
    const int64_t total = order.size(0);
    return dropLast ? total / batchSize : (total + batchSize - 1) / batchSize;
  }
};

// Each step issued op by op; the optimizer's own step() updates the weights.
class PlainSteps : public StepRunner {
 public:
  PlainSteps(StepInputs& inputs, std::shared_ptr<torch::optim::Optimizer> optimizer, std::shared_ptr<GradientReducer> reducer)
      : inputs_(inputs), optimizer_(std::move(optimizer)), reducer_(std::move(reducer)), onCpu_(inputs.images.device().is_cpu()),
        stats_(torch::zeros({2}, inputs.images.options().dtype(at::kDouble))) {}

  bool Step(const at::Tensor& rows) override {
    ClearGradients(*optimizer_);
    const StepTensors t = reducer_ ? Forward(inputs_, rows) : ForwardBackward(inputs_, rows);
    // In a data-parallel run every rank decides on the mean objective, so that all of them stop together.
    const at::Tensor objective = reducer_ ? ReducedBackward(*reducer_, t.objective) : t.objective;
    // On the CPU reading the loss costs nothing; stop before a non-finite loss corrupts the weights.
    if (onCpu_ && !std::isfinite(objective.item<double>())) return false;
    optimizer_->step();
    stats_.add_(BatchStats(t.logits, t.labels, t.loss));
    return true;
  }

  const at::Tensor& Stats() const override { return stats_; }

  void SetLearningRate(double lr) override { convscope::SetLearningRate(*optimizer_, lr); }

 private:
  StepInputs& inputs_;
  std::shared_ptr<torch::optim::Optimizer> optimizer_;
  std::shared_ptr<GradientReducer> reducer_;
  bool onCpu_;
  // [loss sum, correct] stays on the device: reading it back each step would synchronise the GPU.
  at::Tensor stats_;
};

struct Progress {
  int64_t step, steps, seen;
  double loss, correct;
};

struct Outcome {
  int64_t steps = 0, seen = 0;
  double lossSum = 0, correct = 0;
  bool cancelled = false;
  int64_t nonFiniteStep = -1;
};

class EpochWorker : public Napi::AsyncProgressQueueWorker<Progress> {
 public:
  EpochWorker(Napi::Env env, EpochJob job, Napi::Function onProgress, std::shared_ptr<std::atomic<bool>> cancel)
      : Napi::AsyncProgressQueueWorker<Progress>(env, "convscope.trainEpoch"),
        job_(std::move(job)), deferred_(Napi::Promise::Deferred::New(env)), cancel_(std::move(cancel)) {
    if (!onProgress.IsEmpty()) onProgress_ = Napi::Persistent(onProgress);
  }

  Napi::Promise Promise() { return deferred_.Promise(); }

 protected:
  // Runs on a libuv worker thread: libtorch only, no N-API.
  void Execute(const ExecutionProgress& progress) override {
    try {
      RunEpoch(progress);
    } catch (...) {
      // Described here, thrown as its JS class in OnError, back on the main thread.
      failure_ = Describe(std::current_exception());
      SetError(failure_->message);
    }
  }

  void OnProgress(const Progress* data, size_t count) override {
    if (onProgress_.IsEmpty()) return;
    Napi::HandleScope scope(Env());
    for (size_t i = 0; i < count; ++i) {
      auto report = Napi::Object::New(Env());
      report.Set("step", static_cast<double>(data[i].step));
      report.Set("steps", static_cast<double>(data[i].steps));
      report.Set("seen", static_cast<double>(data[i].seen));
      report.Set("loss", data[i].loss);
      report.Set("correct", data[i].correct);
      // A throwing callback must not take the epoch down with it.
      try {
        onProgress_.Call({report});
      } catch (const Napi::Error& e) {
        e.Env().GetAndClearPendingException();
      }
    }
  }

  void OnOK() override {
    auto result = Napi::Object::New(Env());
    result.Set("steps", static_cast<double>(outcome_.steps));
    result.Set("seen", static_cast<double>(outcome_.seen));
    result.Set("lossSum", outcome_.lossSum);
    result.Set("correct", outcome_.correct);
    result.Set("cancelled", outcome_.cancelled);
    result.Set("nonFiniteStep", static_cast<double>(outcome_.nonFiniteStep));
    deferred_.Resolve(result);
  }

  void OnError(const Napi::Error& error) override {
    deferred_.Reject(failure_ ? ToJsError(Env(), *failure_).Value() : error.Value());
  }

 private:
  std::unique_ptr<StepRunner> OpenSteps() {
#ifdef CONVSCOPE_CUDA_SOURCES
    if (job_.graph) return OpenGraphedSegment(job_.graph, job_.inputs, job_.optimizer, job_.batchSize, job_.reducer);
#endif
    return std::make_unique<PlainSteps>(job_.inputs, job_.optimizer, job_.reducer);
  }

  void RunEpoch(const ExecutionProgress& progress) {
    auto& job = job_;
    at::set_num_threads(job.threads);
    const int64_t total = job.order.size(0);
    const int64_t steps = job.Steps();
    at::Tensor order = job.order.to(job.inputs.images.device());
    job.inputs.module.train(true);
    std::unique_ptr<StepRunner> runner = OpenSteps();
    auto readStats = [&runner] {
      at::Tensor host = runner->Stats().to(torch::kCPU);
      return std::make_pair(host[0].item<double>(), host[1].item<double>());
    };
    int64_t seen = 0;
    for (int64_t step = 0; step < steps; ++step) {
      if (cancel_->load()) {
        outcome_.cancelled = true;
        break;
      }
      const int64_t start = step * job.batchSize;
      const int64_t end = std::min(total, start + job.batchSize);
      if (!job.learningRates.empty()) runner->SetLearningRate(job.learningRates[step]);
      if (!runner->Step(order.slice(0, start, end))) {
        outcome_.nonFiniteStep = step;
        break;
      }
      job.ema.AfterStep(step);
      seen += end - start;
      outcome_.steps = step + 1;
      const bool last = step + 1 == steps;
      if ((step + 1) % job.progressEvery == 0 || last) {
        const auto [lossNow, correctNow] = readStats();
        if (!std::isfinite(lossNow)) {
          outcome_.nonFiniteStep = step;
          break;
        }
        // Send() copies the record into the queue.
        const Progress report{step + 1, steps, seen, lossNow, correctNow};
        progress.Send(&report, 1);
      }
    }
    runner->Finish();
    outcome_.seen = seen;
    std::tie(outcome_.lossSum, outcome_.correct) = readStats();
  }

  EpochJob job_;
  Napi::Promise::Deferred deferred_;
  Napi::FunctionReference onProgress_;
  std::shared_ptr<std::atomic<bool>> cancel_;
  Outcome outcome_;
  // Set by Execute when the epoch failed; OnError throws it as its JS class.
  std::optional<ErrorDescription> failure_;
};

// trainEpoch(job, onProgress?) -> { promise, cancel }
Napi::Value TrainEpoch(const Napi::CallbackInfo& info) {
  return Guarded(info.Env(), [&]() -> Napi::Value {
    auto env = info.Env();
    if (!info[0].IsObject()) throw TypeMismatch("Expected an object for job but received " + DescribeValue(info[0]));
    auto o = info[0].As<Napi::Object>();
    EpochJob job;
    // Tensor and module handles are reference-counted: the worker keeps them alive even if JS
    // disposes its wrappers meanwhile.
    StepInputs& in = job.inputs;
    in.module = ScriptModelWrap::From(o.Get("model"), "model");
    job.optimizer = OptimizerWrap::From(o.Get("optimizer"), "optimizer");
    in.images = TensorWrap::From(o.Get("images"), "images");
    in.labels = TensorWrap::From(o.Get("labels"), "labels");
    job.order = TensorWrap::From(o.Get("order"), "order");
    job.batchSize = ReadInt(o.Get("batchSize"), "batchSize", 1, INT64_C(1) << 31);
    in.mean = OptionalNumbers(o, "mean", {0.0});
    in.std = OptionalNumbers(o, "std", {1.0});
    for (double s : in.std) {
      if (!(s > 0)) throw OutOfRange("Expected positive numbers for std");
    }
    in.l1 = OptionalNumber(o, "l1", 0.0);
    in.labelSmoothing = CheckLabelSmoothing(OptionalNumber(o, "labelSmoothing", 0.0));
    in.shift = OptionalInt(o, "shift", 0, 0, 1024);
    in.flip = OptionalBool(o, "flip", false);
    in.padValues = OptionalNumbers(o, "padValues", {0.0});
    job.progressEvery = OptionalInt(o, "progressEvery", 1, 1, INT64_C(1) << 31);
    job.dropLast = OptionalBool(o, "dropLast", false);
    job.threads = at::get_num_threads();
    const std::string precision = OptionalString(o, "precision", "fp32");
    if (precision != "fp32" && precision != "bf16") throw OutOfRange("Expected fp32 or bf16 for precision but received \"" + precision + "\"");
    in.bf16 = precision == "bf16";
    const bool grey = in.images.dim() == 3 && in.images.scalar_type() == at::kByte;
    const bool planar = in.images.dim() == 4 && (in.images.scalar_type() == at::kByte || in.images.scalar_type() == at::kFloat);
    if (!grey && !planar) throw OutOfRange("Expected uint8 images [N, H, W] or uint8 or float32 images [N, C, H, W] for images");
    const int64_t channels = grey ? 1 : in.images.size(1);
    CheckChannelValues(in.mean, channels, "mean");
    CheckChannelValues(in.std, channels, "std");
    CheckChannelValues(in.padValues, channels, "padValues");
    if (in.labels.dim() != 1 || in.labels.size(0) != in.images.size(0)) throw OutOfRange("Expected one label per image for labels");
    if (job.order.dim() != 1 || job.order.scalar_type() != at::kLong) throw OutOfRange("Expected an int64 vector for order");
    if (job.order.size(0) == 0) throw OutOfRange("Expected at least one row in order");
    Napi::Value rates = o.Get("learningRates");
    if (!rates.IsUndefined()) {
      if (!rates.IsTypedArray() || rates.As<Napi::TypedArray>().TypedArrayType() != napi_float64_array) {
        throw TypeMismatch("Expected a Float64Array for learningRates but received " + DescribeValue(rates));
      }
      auto array = rates.As<Napi::Float64Array>();
      const int64_t steps = job.Steps();
      if (static_cast<int64_t>(array.ElementLength()) != steps) {
        throw OutOfRange("Expected one learning rate per step (" + std::to_string(steps) + ") for learningRates but received " +
                         std::to_string(array.ElementLength()));
      }
      // Copied: the worker thread must not read a JS-owned buffer.
      job.learningRates.assign(array.Data(), array.Data() + array.ElementLength());
      for (double lr : job.learningRates) {
        if (!(lr >= 0.0) || !std::isfinite(lr)) throw OutOfRange("Expected finite learning rates >= 0 for learningRates");
      }
    }
    job.ema = ReadWeightAverage(o.Get("ema"), "ema");
    Napi::Value list = o.Get("l1Params");
    if (list.IsArray()) {
      auto array = list.As<Napi::Array>();
      for (uint32_t i = 0; i < array.Length(); ++i) in.l1Params.push_back(TensorWrap::From(array.Get(i), Element("l1Params", i).c_str()));
    }
    if (in.l1 > 0 && in.l1Params.empty()) throw OutOfRange("Expected l1Params when l1 > 0");
    Napi::Value graph = o.Get("graph");
    if (!graph.IsUndefined() && !graph.IsNull()) {
#ifdef CONVSCOPE_CUDA_SOURCES
      job.graph = GraphedStepFrom(graph, "graph");
      if (!in.images.is_cuda()) throw OutOfRange("Expected training data on a CUDA device for graph (a CUDA graph step)");
#else
      throw OutOfRange("Expected no graph: this build of convscope has no CUDA sources (torchInfo().cudaSources is false)");
#endif
    }
    Napi::Value reducer = o.Get("reducer");
    if (!reducer.IsUndefined() && !reducer.IsNull()) {
      // With a graph the gradients are averaged beside it over the reducer's group (graph_step.h).
      job.reducer = ReducerFrom(reducer, "reducer");
    }
    Napi::Function onProgress = info[1].IsFunction() ? info[1].As<Napi::Function>() : Napi::Function();
    auto cancel = std::make_shared<std::atomic<bool>>(false);
    auto* worker = new EpochWorker(env, std::move(job), onProgress, cancel);
    auto result = Napi::Object::New(env);
    result.Set("promise", worker->Promise());
    result.Set("cancel", Napi::Function::New(env, [cancel](const Napi::CallbackInfo& i) {
      cancel->store(true);
      return i.Env().Undefined();
    }, "cancel"));
    worker->Queue();
    return result;
  });
}

}  // namespace

void RegisterTrainer(Napi::Env env, Napi::Object exports) {
  exports.Set("trainEpoch", Napi::Function::New(env, TrainEpoch, "trainEpoch"));
}

}  // namespace convscope
