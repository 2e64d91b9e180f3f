// The model-randomisation sanity check (Adebayo et al. 2018, "Sanity checks for saliency maps"):
// a map that explains the model must change when the model's weights are destroyed. The layers are
// re-initialised from the top (the output layer first), cascading: stage k has the top k layers with
// weights (and biases) drawn afresh, PyTorch's initialisation from `seed`. At each stage the same
// images are explained for the same targets, and each map is compared with the trained model's by
// Spearman's rank correlation of |attribution| (ties get their mean rank). A map whose correlation
// stays near 1 as the layers go is showing the image, not the model. On a colour model the maps
// compared are the per-pixel ones (explanationPixelMaps: the sum over the map's channels).
import { CnnModel, createModel, modelFromParameters } from '../nn/model';
import { checkInteger } from '../util/validate';
import { explain, explanationPixelMaps, mapSize } from './explain';
import type { ExplainOptions } from './options';

/** One stage of the cascade: which layers were re-initialised, and the mean rank correlation with the trained model's maps. */
export interface RandomisationStage {
  /** The layers with fresh weights at this stage (top first), e.g. ['fc2', 'fc1']. */
  randomised: string[];
  /** Mean over the images of Spearman's correlation of |map| with the trained model's. */
  spearman: number;
  /** Per image. */
  perImage: Float64Array;
}

/** Ranks 1..n of `values`, ties sharing their mean rank. */
export function ranks(values: ArrayLike<number>): Float64Array {
  const order = Array.from({ length: values.length }, (_, i) => i).sort((a, b) => values[a] - values[b]);
  const out = new Float64Array(values.length);
  for (let i = 0; i < order.length;) {
    let j = i;
    while (j + 1 < order.length && values[order[j + 1]] === values[order[i]]) ++j;
    const mean = (i + j) / 2 + 1;
    for (let k = i; k <= j; ++k) out[order[k]] = mean;
    i = j + 1;
  }
  return out;
}

/** Spearman's rank correlation: Pearson's of the ranks (0 when either side is constant). */
export function spearman(a: ArrayLike<number>, b: ArrayLike<number>): number {
  const ra = ranks(a);
  const rb = ranks(b);
  const n = ra.length;
  const mean = (n + 1) / 2;
  let num = 0;
  let da = 0;
  let db = 0;
  for (let i = 0; i < n; ++i) {
    num += (ra[i] - mean) * (rb[i] - mean);
    da += (ra[i] - mean) ** 2;
    db += (rb[i] - mean) ** 2;
  }
  return da > 0 && db > 0 ? num / Math.sqrt(da * db) : 0;
}

/** The layers with weights, top first (fc2, fc1, conv2, conv1 on the tutorial network). */
function layersTopDown(model: CnnModel): string[] {
  return [...model.plan.conv.map((c) => c.name), ...model.plan.dense.map((d) => d.name)].reverse();
}

/**
 * Runs the cascading randomisation check for one method's settings: the trained model's maps, then
 * the maps with the top 1, 2, ... layers re-initialised.
 * @example const stages = await randomisationCheck(model, images, { method: 'grad-cam' });
 */
export async function randomisationCheck(model: CnnModel, images: Uint8Array | Float32Array, options: ExplainOptions = {},
  seed = 0): Promise<RandomisationStage[]> {
  checkInteger(seed, 'seed', 0, Number.MAX_SAFE_INTEGER);
  const original = await explain(model, images, options);
  const { count, height: h, width: w } = mapSize(original);
  const n = h * w;
  const originalPixels = explanationPixelMaps(original);
  const targets = { ...options, target: original.targets };
  delete (targets as ExplainOptions).labels;
  const trained = model.parameters();
  const fresh = createModel(model.spec, { seed, mode: 'eager' });
  const freshParameters = (() => {
    try {
      return fresh.parameters();
    } finally {
      fresh.dispose();
    }
  })();
  const layers = layersTopDown(model);
  const stages: RandomisationStage[] = [];
  for (let k = 1; k <= layers.length; ++k) {
    const randomised = new Set(layers.slice(0, k));
    // A layer's weight and bias are replaced; batch normalisations keep their learnt scale and statistics.
    const parameters = trained.map((p, i) => (randomised.has(p.name.split('.')[0]) ? freshParameters[i] : p));
    const stage = modelFromParameters(model.spec, [...parameters, ...model.buffers()], { mode: model.mode, device: model.device, inputNorm: model.inputNorm });
    try {
      const e = await explain(stage, images, targets);
      const stagePixels = explanationPixelMaps(e);
      const perImage = Float64Array.from({ length: count }, (_, i) => spearman(
        originalPixels.subarray(i * n, (i + 1) * n).map(Math.abs), stagePixels.subarray(i * n, (i + 1) * n).map(Math.abs)));
      stages.push({ randomised: [...randomised], spearman: perImage.reduce((a, b) => a + b, 0) / count, perImage });
    } finally {
      stage.dispose();
    }
  }
  return stages;
}
