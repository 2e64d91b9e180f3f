// Issue 34 #3: a spec such as `dense: [1 << 20]` asks for gigabytes of weights, and training adds
// gradients and optimizer state; allocating them got the process killed. One check, made from the
// plan before any tensor exists, refuses such a model with its parameter count and bytes. createModel,
// loadModel (the spec a checkpoint declares) and trainCnn all make it.
import * as os from 'os';
import { expected } from '../util/validate';
import { countParameters, ModelPlan } from './spec';

const FLOAT32_BYTES = 4;

/** What a training keeps per parameter, in float32 copies, and the optimizer that keeps them (named in the error). */
export interface TrainingFootprint { copies: number; optimizer: string }

/**
 * The most any of convscope's optimizers keeps: the weights, their gradients and Adam's (or AdamW's)
 * two moments. What createModel and loadModel assume when they do not know the training to come.
 */
export const ANY_TRAINING: TrainingFootprint = { copies: 4, optimizer: 'adam, the most any optimizer keeps' };

/** What training with `optimizer` keeps: weights and gradients, SGD's momentum buffer if it has momentum, Adam's two moments. */
export function trainingFootprint(optimizer: 'sgd' | 'adam' | 'adamw', momentum = 0): TrainingFootprint {
  const state = optimizer === 'sgd' ? (momentum > 0 ? 1 : 0) : 2;
  return { copies: 2 + state, optimizer };
}

/**
 * Refuses (RangeError, before any allocation) a model whose parameters, with what `training` adds,
 * need more bytes than the machine has (os.totalmem(): what it could ever give, swap aside; a model
 * that passes may still meet a busier machine's limit, but not ask for many times its memory).
 * On a CUDA device the weights, gradients and optimizer state live in GPU memory, whose shortage
 * libtorch reports as an ordinary error (the model's tensors made so far are then freed); host
 * memory only holds the weights on their way there (made or read on the CPU), so one copy is checked.
 * @example checkModelFits(planModel({ conv: [], dense: [1 << 20] }), 'cpu'); // RangeError: ... parameters need ... bytes
 */
export function checkModelFits(plan: ModelPlan, device: string, training: TrainingFootprint = ANY_TRAINING): void {
  const onCpu = device === 'cpu';
  const parameters = countParameters(plan);
  const bytes = parameters * FLOAT32_BYTES * (onCpu ? training.copies : 1);
  const limit = os.totalmem();
  if (bytes <= limit) return;
  const use = onCpu ? `to train with ${training.optimizer} (weights, gradients and optimizer state)` : `for its weights in host memory on their way to ${device}`;
  throw new RangeError(`${expected('a spec whose training fits in memory', 'spec', plan.spec)}: ${parameters} parameters need ${bytes} bytes ${use}, more than the machine's ${limit}`);
}
