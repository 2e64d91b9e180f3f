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
#include "errors.h"
#include "optimizer.h"
#include "precision.h"
#include "script_model.h"
#include "tensor.h"

namespace convscope {
namespace {

struct EpochJob {
  torch::jit::Module module;
  std::shared_ptr<torch::optim::Optimizer> optimizer;
  at::Tensor images;  // uint8 [N, H, W] on the training device
  at::Tensor labels;  // uint8 [N]
  at::Tensor order;   // int64 permutation of the rows this epoch visits
  int64_t batchSize = 0;
  double mean = 0, std = 1, l1 = 0;
  std::vector<at::Tensor> l1Params;
  int64_t progressEvery = 1;
  bool dropLast = false;
  // OpenMP's thread count is per calling thread: the worker thread must be told the main thread's
  // setting, or it starts as many threads as the host has cores and oversubscribes the CPU.
  int threads = 1;
  bool bf16 = false;
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
  void RunEpoch(const ExecutionProgress& progress) {
    auto& job = job_;
    at::set_num_threads(job.threads);
    const int64_t total = job.order.size(0);
    const int64_t steps = job.dropLast ? total / job.batchSize : (total + job.batchSize - 1) / job.batchSize;
    at::Tensor order = job.order.to(job.images.device());
    job.module.train(true);
    const bool onCpu = job.images.device().is_cpu();
    // [loss sum, correct] stays on the device: reading it back each step would synchronise the GPU.
    at::Tensor stats = torch::zeros({2}, torch::TensorOptions().dtype(at::kDouble).device(job.images.device()));
    auto readStats = [&stats] {
      at::Tensor host = stats.to(torch::kCPU);
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
      const Batch batch = GatherBatch(job.images, job.labels, order.slice(0, start, end), job.mean, job.std);

      ClearGradients(*job.optimizer);
      at::Tensor logits, loss;
      {
        AutocastScope autocast(job.bf16, job.images.device());
        logits = job.module.forward({batch.x}).toTensor();
        loss = at::cross_entropy_loss(logits, batch.y);
      }
      at::Tensor objective = job.l1 > 0 ? loss + SumOfAbs(job.l1Params) * job.l1 : loss;
      objective.backward();
      // On the CPU reading the loss costs nothing; stop before a non-finite loss corrupts the weights.
      if (onCpu && !std::isfinite(objective.item<double>())) {
        outcome_.nonFiniteStep = step;
        break;
      }
      job.optimizer->step();
      stats.add_(BatchStats(logits, batch.y, loss));
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
    job.module = ScriptModelWrap::From(o.Get("model"), "model");
    job.optimizer = OptimizerWrap::From(o.Get("optimizer"), "optimizer");
    job.images = TensorWrap::From(o.Get("images"), "images");
    job.labels = TensorWrap::From(o.Get("labels"), "labels");
    job.order = TensorWrap::From(o.Get("order"), "order");
    job.batchSize = ReadInt(o.Get("batchSize"), "batchSize", 1, INT64_C(1) << 31);
    job.mean = OptionalNumber(o, "mean", 0.0);
    job.std = OptionalNumber(o, "std", 1.0);
    job.l1 = OptionalNumber(o, "l1", 0.0);
    job.progressEvery = OptionalInt(o, "progressEvery", 1, 1, INT64_C(1) << 31);
    job.dropLast = OptionalBool(o, "dropLast", false);
    job.threads = at::get_num_threads();
    const std::string precision = OptionalString(o, "precision", "fp32");
    if (precision != "fp32" && precision != "bf16") throw OutOfRange("Expected fp32 or bf16 for precision but received \"" + precision + "\"");
    job.bf16 = precision == "bf16";
    if (job.images.dim() != 3 || job.images.scalar_type() != at::kByte) throw OutOfRange("Expected uint8 images of shape [N, H, W] for images");
    if (job.labels.dim() != 1 || job.labels.size(0) != job.images.size(0)) throw OutOfRange("Expected one label per image for labels");
    if (job.order.dim() != 1 || job.order.scalar_type() != at::kLong) throw OutOfRange("Expected an int64 vector for order");
    if (job.order.size(0) == 0) throw OutOfRange("Expected at least one row in order");
    Napi::Value list = o.Get("l1Params");
    if (list.IsArray()) {
      auto array = list.As<Napi::Array>();
      for (uint32_t i = 0; i < array.Length(); ++i) job.l1Params.push_back(TensorWrap::From(array.Get(i), Element("l1Params", i).c_str()));
    }
    if (job.l1 > 0 && job.l1Params.empty()) throw OutOfRange("Expected l1Params when l1 > 0");
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
