// The optimizer state a model was last trained or loaded with, kept beside the model rather than on
// it: the model knows nothing of training, yet `model.save(path, { includeOptimizer: true })` can
// store the state so that `trainCnn({ resumeFrom })` continues exactly. trainCnn and loadCheckpoint
// record it; the entry goes when the model is collected.
import type { OptimizerSnapshot } from '../formats/checkpoint';

const snapshots = new WeakMap<object, OptimizerSnapshot>();

export function recordOptimizerState(model: object, snapshot: OptimizerSnapshot): void {
  snapshots.set(model, snapshot);
}

export function recordedOptimizerState(model: object): OptimizerSnapshot | undefined {
  return snapshots.get(model);
}
