// One step of the native epoch loop, up to the optimizer: gather the batch, forward (under bf16
// autocast when asked), loss (+ L1), backward. The plain loop (trainer.cc) and the CUDA-graph step
// (cuda/graph_step.cc, which captures this very function) share it, so the two cannot drift apart.
#pragma once

#include <torch/script.h>
#include <torch/torch.h>

#include <vector>

#include "batch.h"

namespace convscope {

// What every step of an epoch reads; fixed for the epoch.
struct StepInputs {
  torch::jit::Module module;
  at::Tensor images;  // uint8 [N, H, W], uint8 [N, C, H, W] or float32 [N, C, H, W] on the training device
  at::Tensor labels;  // uint8 [N]
  ChannelValues mean{0.0}, std{1.0};  // standardisation, per channel or one for all (batch.h)
  ChannelValues padValues{0.0};       // the augmentation's padding, per channel or one for all
  double l1 = 0, labelSmoothing = 0;
  std::vector<at::Tensor> l1Params;
  bool bf16 = false;
  int64_t shift = 0;  // augmentation (batch.h's AugmentBatch); 0 and false: none
  bool flip = false;
};

struct StepTensors {
  at::Tensor logits, loss, objective, labels;
};

// `value` when it is a label smoothing (in [0, 1)); else throws OutOfRange naming it.
double CheckLabelSmoothing(double value);

// Up to the objective, without backward (a data-parallel step runs its backward through the
// Reducer: reducer.h).
StepTensors Forward(StepInputs& inputs, const at::Tensor& rows);

// Forward, then backward. Gradients are written, not accumulated, only when the caller cleared them
// first (ClearGradients).
StepTensors ForwardBackward(StepInputs& inputs, const at::Tensor& rows);

// Runs the steps of one segment of an epoch: plainly (trainer.cc) or by replaying a captured CUDA
// graph (cuda/graph_step.h). Created and used on the epoch's worker thread only.
class StepRunner {
 public:
  virtual ~StepRunner() = default;
  // One batch: forward, backward and the optimizer's update. False when the loss was not finite and
  // the weights were left alone (checked only where reading the loss is free: on the CPU).
  virtual bool Step(const at::Tensor& rows) = 0;
  // The learning rate of the next steps (a schedule sets it before each step).
  virtual void SetLearningRate(double lr) = 0;
  // [loss sum, correct] over the segment's steps so far, on the training device.
  virtual const at::Tensor& Stats() const = 0;
  // After the last step: waits for the device and hands the optimizer its step count back.
  virtual void Finish() {}
};

}  // namespace convscope
