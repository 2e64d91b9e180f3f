#include "train_step.h"

#include <string>

#include "batch.h"
#include "errors.h"
#include "precision.h"

namespace convscope {

double CheckLabelSmoothing(double value) {
  if (!(value >= 0.0 && value < 1.0)) {
    throw OutOfRange("Expected a number in [0, 1) for labelSmoothing but received " + std::to_string(value));
  }
  return value;
}

StepTensors Forward(StepInputs& inputs, const at::Tensor& rows) {
  Batch batch = GatherBatch(inputs.images, inputs.labels, rows, inputs.mean, inputs.std);
  if (inputs.shift > 0 || inputs.flip) batch.x = AugmentBatch(batch.x, inputs.shift, inputs.flip, inputs.padValues);
  StepTensors out;
  {
    AutocastScope autocast(inputs.bf16, inputs.images.device());
    out.logits = inputs.module.forward({batch.x}).toTensor();
    out.loss = at::cross_entropy_loss(out.logits, batch.y, {}, at::Reduction::Mean, -100, inputs.labelSmoothing);
  }
  out.objective = inputs.l1 > 0 ? out.loss + SumOfAbs(inputs.l1Params) * inputs.l1 : out.loss;
  out.labels = batch.y;
  return out;
}

StepTensors ForwardBackward(StepInputs& inputs, const at::Tensor& rows) {
  StepTensors out = Forward(inputs, rows);
  out.objective.backward();
  return out;
}

}  // namespace convscope
