// A trial's trainCnn options: the search's base options with the trial's hyperparameters put in
// (some go into the spec: filters, kernel size, dropout).
import type { CnnSpec } from '../nn/spec';
import { presetOptions } from '../train/presets';
import type { TrainOptions } from '../train/options';
import { expected } from '../util/validate';
import type { TrialParams } from './space';

/** The trainCnn options a search passes on to every trial (and to the retraining of the best). */
export const BASE_KEYS = [
  'dataset', 'dataDir', 'data', 'spec', 'mode', 'device', 'seed', 'augment', 'optimizer', 'momentum', 'nesterov', 'l1', 'precision',
  'labelSmoothing', 'warmupSteps', 'standardize', 'dropLast', 'evalChunkSize', 'batchSize', 'learningRate', 'weightDecay', 'schedule',
  'cudaGraph', 'preset',
] as const;
export type BaseKey = (typeof BASE_KEYS)[number];
export type TuneBaseOptions = Pick<TrainOptions, BaseKey>;

/**
 * The base spec with a trial's filters, kernel size and dropout. A filters scale multiplies every
 * conv layer's count (rounded, at least 1); a list gives each conv layer's count and must have one
 * per conv layer.
 * @example trialSpec(defaultSpec(), { filters: 0.5, kernelSize: 3 }).conv.map((c) => [c.filters, c.kernelSize]) // [[16, 3], [32, 5]]
 */
export function trialSpec(base: CnnSpec, params: TrialParams): CnnSpec {
  const spec: CnnSpec = structuredClone(base);
  const { filters, kernelSize, dropout } = params;
  if (Array.isArray(filters)) {
    if (filters.length !== spec.conv.length) {
      throw new RangeError(expected(`one filter count per conv layer of spec (${spec.conv.length})`, 'space.filters value', filters));
    }
    spec.conv.forEach((c, i) => { c.filters = filters[i]; });
  } else if (filters !== undefined) {
    spec.conv.forEach((c) => { c.filters = Math.max(1, Math.round(c.filters * filters)); });
  }
  if (kernelSize !== undefined) {
    if (spec.conv.length === 0) throw new RangeError(expected('a spec with a conv layer to search kernelSize', 'spec.conv', spec.conv));
    spec.conv[0].kernelSize = kernelSize;
  }
  if (dropout !== undefined) spec.dropout = dropout;
  return spec;
}

/**
 * The spec trials start from: the one given, else the preset's, else the tutorial network; the last
 * two without an input shape or classes, which trainCnn takes from the data (any size, channels, classes).
 */
function baseSpec(base: TuneBaseOptions): CnnSpec {
  if (base.spec) return base.spec;
  const dataset = typeof base.dataset === 'object' ? base.dataset.name : base.dataset ?? 'fashion-mnist';
  return presetOptions(base.preset ?? 'tutorial', dataset).spec;
}

/** A trial's options for trainCnn, without the data, the callbacks and the signal that the runner adds. */
export function trialTrainOptions(base: TuneBaseOptions, params: TrialParams, epochs: number): TrainOptions {
  const options: TrainOptions = { ...base, spec: trialSpec(baseSpec(base), params), epochs };
  if (params.learningRate !== undefined) options.learningRate = params.learningRate;
  if (params.batchSize !== undefined) options.batchSize = params.batchSize;
  if (params.weightDecay !== undefined) options.weightDecay = params.weightDecay;
  if (params.schedule !== undefined) options.schedule = params.schedule;
  return options;
}
