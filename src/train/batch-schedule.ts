// Progressive batch sizes: trainCnn's `batchSizes` gives each epoch its own batch size (small batches
// early, while the weights move most, larger and faster ones later). The steps of an epoch, and where
// an epoch's steps start in the run (what the learning-rate schedule, the weight average and
// snapshots count), follow from it; without `batchSizes` every epoch takes `batchSize`.
import { checkInteger, expected } from '../util/validate';

/** What the helpers below read of the resolved options. */
export interface BatchPlan { batchSize: number; batchSizes?: number[]; dropLast: boolean }

/** The largest batch (trainCnn's bound on batchSize). */
const MAX_BATCH = 1 << 24;

/** `value` as a list of batch sizes, one per epoch (the last one for every later epoch); undefined: none. */
export function checkBatchSizes(value: unknown, name: string): number[] | undefined {
  if (value === undefined) return undefined;
  if (!Array.isArray(value) || value.length === 0) throw new TypeError(expected('a non-empty array of batch sizes, one per epoch', name, value));
  return value.map((v, i) => checkInteger(v, `${name}[${i}]`, 1, MAX_BATCH));
}

/** The batch size of epoch `epoch` (1-based). */
export function epochBatchSize(plan: BatchPlan, epoch: number): number {
  if (!plan.batchSizes) return plan.batchSize;
  return plan.batchSizes[Math.min(epoch, plan.batchSizes.length) - 1];
}

/** Steps of epoch `epoch` over `count` training images. */
export function epochSteps(plan: BatchPlan, count: number, epoch: number): number {
  const batch = epochBatchSize(plan, epoch);
  return plan.dropLast ? Math.floor(count / batch) : Math.ceil(count / batch);
}

/** The run's index of epoch `epoch`'s first step: the steps of the epochs before it. */
export function epochStepBase(plan: BatchPlan, count: number, epoch: number): number {
  let base = 0;
  for (let e = 1; e < epoch; ++e) base += epochSteps(plan, count, e);
  return base;
}

/** Steps of the whole run of `epochs` epochs. */
export function runSteps(plan: BatchPlan, count: number, epochs: number): number {
  return epochStepBase(plan, count, epochs + 1);
}

/** The largest batch of the run's epochs: the one that must still leave a step with dropLast. */
export function largestBatch(plan: BatchPlan, epochs: number): number {
  let largest = 0;
  for (let e = 1; e <= epochs; ++e) largest = Math.max(largest, epochBatchSize(plan, e));
  return largest;
}
