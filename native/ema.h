// An exponential moving average of a model's weights (and of its batch-norm buffers), kept in
// tensors of their own: `average = decay * average + (1 - decay) * weight` after every `every`
// optimizer steps. The eager path calls ema.update from JS after its steps; the native epoch loop
// (trainer.cc) updates it after each step it runs, on the step's stream (so after a CUDA graph's
// replay too, in order).
#pragma once

#include <napi.h>
#include <torch/torch.h>

#include <cstdint>
#include <vector>

namespace convscope {

// One update: floating tensors move towards their source by (1 - decay); others (batch-norm's int64
// batch counts) are copied. Without gradient tracking; the lists are checked by the caller.
void UpdateAverage(const std::vector<at::Tensor>& averages, const std::vector<at::Tensor>& sources, double decay);

// The decay of the run's update number `update` (1, 2, ...): `decay`, or with `warmup` at most
// (1 + update) / (10 + update), as TensorFlow's ExponentialMovingAverage with num_updates, so that the
// first updates do not hold on to the untrained starting weights. src/train/ema.ts has the same formula.
double EffectiveDecay(double decay, bool warmup, int64_t update);

// The average a native epoch segment keeps up to date; empty when the run keeps none.
struct WeightAverage {
  std::vector<at::Tensor> averages, sources;
  double decay = 0;
  bool warmup = true;
  int64_t every = 1;
  // The run's index of the segment's first step: `every` counts the run's steps, not the segment's.
  int64_t firstStep = 0;

  bool Active() const { return !averages.empty(); }
  // After the segment's step `step` (0-based) has updated the weights.
  void AfterStep(int64_t step) const {
    const int64_t runSteps = firstStep + step + 1;
    if (Active() && runSteps % every == 0) UpdateAverage(averages, sources, EffectiveDecay(decay, warmup, runSteps / every));
  }
};

// A job's `ema` field ({ averages, sources, decay, warmup, every, firstStep }) or an inactive average when it
// is undefined; throws TypeMismatch / OutOfRange naming `name`.
WeightAverage ReadWeightAverage(const Napi::Value& value, const char* name);

// exports.ema = { update(averages, sources, decay), swap(a, b) }.
void RegisterEma(Napi::Env env, Napi::Object exports);

}  // namespace convscope
