// One experiment's trainings: the trainCnn options they share, the warm-up, and what is read off a
// finished training (seconds per epoch, a layer's weights, the log line).
import type { CnnModel } from '../nn/model';
import { ConvLayerSpec, CnnSpec } from '../nn/spec';
import { LabelledImages, takeImages } from '../train/evaluate';
import type { TrainOptions } from '../train/options';
import type { TrainResult } from '../train/train-cnn';
import { expected } from '../util/validate';
import { percent } from './markdown';
import type { ResolvedExperiment } from './options';

/** The test images every evaluation of the experiment uses. @example await evaluate(model, testImages(base)) */
export function testImages(base: ResolvedExperiment): LabelledImages {
  return takeImages(base.dataset.test, base.testLimit);
}

/** trainCnn options for one training of the experiment: same data, budget and seed; no run folder. @example await trainCnn(trainOptions(base, { l1: 1e-4 })) */
export function trainOptions(base: ResolvedExperiment, overrides: Partial<TrainOptions> = {}): TrainOptions {
  return {
    dataset: base.dataset, spec: base.spec, epochs: base.epochs, seed: base.seed, batchSize: base.batchSize,
    learningRate: base.learningRate, optimizer: base.optimizer, mode: base.mode, device: base.device,
    ...(base.limit !== undefined ? { limit: base.limit } : {}),
    ...(base.testLimit !== undefined ? { testLimit: base.testLimit } : {}),
    ...overrides,
  };
}

/** A deep copy of a spec with the first conv layer changed. @example withFirstLayer(defaultSpec(), { kernelSize: 9 }) */
export function withFirstLayer(spec: CnnSpec, change: Partial<ConvLayerSpec>): CnnSpec {
  const copy: CnnSpec = JSON.parse(JSON.stringify(spec));
  copy.conv[0] = { ...copy.conv[0], ...change };
  return copy;
}

/**
 * One throw-away training on two batches. The first training of a process pays one-off costs
 * (thread pools, the TorchScript executor's first compilations, page faults on the dataset) that
 * would otherwise inflate the seconds per epoch of whichever configuration happens to run first.
 * @example await warmUp(base); // then time the real trainings
 */
export async function warmUp(base: ResolvedExperiment): Promise<void> {
  const { trainCnn } = require('../train/train-cnn') as typeof import('../train/train-cnn');
  const result = await trainCnn(trainOptions(base, { limit: Math.min(2 * base.batchSize, base.dataset.train.count), testLimit: Math.min(100, base.dataset.test.count), epochs: 1 }));
  result.model.dispose();
}

/** Mean seconds per epoch of a training. @example secondsPerEpoch(await trainCnn(options)) // 7.3 */
export function secondsPerEpoch(result: TrainResult): number {
  return result.history.reduce((sum, r) => sum + r.seconds, 0) / Math.max(result.history.length, 1);
}

/** A layer's weights as a host tensor, e.g. conv1's [filters, 1, kh, kw]. @example renderFilterMosaic(layerWeights(model, 'conv1')) */
export function layerWeights(model: CnnModel, layer: string): { data: Float32Array; shape: number[] } {
  const names = model.plan.conv.map((c) => c.name);
  if (!names.includes(layer)) throw new RangeError(expected(`one of ${names.join(', ')}`, 'layer', layer));
  const p = model.parameters().find((q) => q.name === `${layer}.weight`)!;
  return { data: p.values, shape: p.shape };
}

/** One line for the log after a training. @example trainingLine('kernel 5x5', result) // 'kernel 5x5: test accuracy 85.10%, 7.3 s/epoch' */
export function trainingLine(what: string, result: TrainResult): string {
  return `${what}: test accuracy ${percent(result.testAccuracy)}, ${secondsPerEpoch(result).toFixed(1)} s/epoch`;
}
