// Which parameters weight decay reaches (trainCnn's weightDecayOn): all of them (PyTorch's default),
// or only the convolution and dense weights, leaving biases and batch normalisation's scales and
// shifts alone, as most fast recipes do: decaying a batch norm's scale only fights its rescaling.
import type { CnnModel } from '../nn/model';
import type { NativeTensor } from '../core/native';

export const WEIGHT_DECAY_ON = ['all', 'weights'] as const;
export type WeightDecayOn = (typeof WEIGHT_DECAY_ON)[number];

/** The Optimizer settings' `undecayed` list for a model: empty object when decay reaches every parameter. */
export function undecayedParameters(model: CnnModel, on: WeightDecayOn): { undecayed?: NativeTensor[] } {
  if (on === 'all') return {};
  // weightTensors() are the conv and dense weights (what L1 penalises too); the rest keep no decay.
  const decayed = new Set(model.weightTensors());
  return { undecayed: model.parameterTensors().filter((p) => !decayed.has(p)) };
}
