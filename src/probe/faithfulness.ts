// Deletion and insertion curves (Petsiuk et al. 2018, RISE): does the map rank the pixels the model
// actually uses first? Pixels are taken in the map's order (largest attribution first) and, in `steps`
// equal slices, either removed from the image (set to the baseline's value: deletion) or put into
// the baseline (insertion); the target's softmax probability is read after every slice. A faithful
// map makes the deletion curve fall fast (a small area under it) and the insertion curve rise fast
// (a large area). The same curves for a random order of the pixels (seeded, per image) are the
// reference a map must beat: a map no better than random says nothing about the model.
//
// The area is the trapezoid rule over the fraction of pixels moved, x in [0, 1] (RISE's formula:
// the mean of neighbouring heights, times the slice width).
//
// On a colour image a pixel is moved whole (all its channels), in the order of the per-pixel map
// (explanationPixelMaps: the sum over the map's channels).
import { baselineImage } from './image-ops';
import { imageSeed } from './method';
import { imageGeometry, imageSizeText, unitPixels } from './images';
import { ProbeRunner } from './runner';
import { uniformSource } from './random';
import type { CnnModel } from '../nn/model';
import { explanationPixelMaps, mapSize, type Explanation } from './explain';
import { BASELINES, type Baseline } from './options';
import { checkInteger, checkKnownKeys, checkNumber, checkObject, checkOneOf, expected } from '../util/validate';

/** Options of {@link faithfulness}. */
export interface FaithfulnessOptions {
  /** Slices the pixels are moved in (default 28: one curve point per 28 pixels on 28x28 images). */
  steps?: number;
  /** What a removed pixel becomes, and where insertion starts: 'black' (default), 'blur', 'uniform' or a value in [0, 1]. */
  baseline?: Baseline;
  /** The 'blur' baseline's sigma in pixels (default 3). */
  blurSigma?: number;
  /** Seed of the random orders (and of a 'uniform' baseline). Default 0. */
  seed?: number;
  /** Network inputs per pass (default 64). */
  chunkSize?: number;
}

/** Per image: the area under each curve. */
export interface FaithfulnessResult {
  steps: number;
  deletion: Float64Array;
  insertion: Float64Array;
  /** The same curves for a random pixel order. */
  randomDeletion: Float64Array;
  randomInsertion: Float64Array;
  /** [image][curve][step + 1] probabilities, curve order: deletion, insertion, random deletion, random insertion. */
  curves: Float32Array;
}

const DEFAULT_STEPS = 28;

/** The area under a curve sampled at x = 0, 1/(k-1), ..., 1: the trapezoid rule. */
export function trapezoidArea(heights: ArrayLike<number>): number {
  const slices = heights.length - 1;
  let area = 0;
  for (let i = 0; i < slices; ++i) area += (heights[i] + heights[i + 1]) / 2;
  return area / slices;
}

/** Pixel indices by decreasing attribution (ties by index, so the order is deterministic). */
export function attributionOrder(map: ArrayLike<number>): Int32Array {
  const order = Int32Array.from({ length: map.length }, (_, i) => i);
  return order.sort((a, b) => (map[b] - map[a]) || (a - b));
}

/** A random permutation of 0..n-1 (Fisher-Yates over uniformSource). */
function randomOrder(n: number, seed: number): Int32Array {
  const order = Int32Array.from({ length: n }, (_, i) => i);
  const uniform = uniformSource(seed);
  for (let i = n - 1; i > 0; --i) {
    const j = Math.floor(uniform() * (i + 1));
    [order[i], order[j]] = [order[j], order[i]];
  }
  return order;
}

/** The images explained, in [0, 1], with their geometry and the per-pixel maps that order their pixels. */
export interface ExplainedImages {
  channels: number;
  h: number;
  w: number;
  /** Pixels per image (h * w). */
  n: number;
  /** Values per image (channels * n). */
  values: number;
  count: number;
  /** count * values pixels in [0, 1]. */
  pixels: Float32Array;
  /** count * n: the per-pixel maps (explanationPixelMaps). */
  order: Float32Array;
}

/**
 * The images an explanation explains, checked against its maps and the model's input size and
 * channels, as pixels in [0, 1] (what deletion, insertion and ROAD all start from).
 */
export function explainedImages(model: CnnModel, images: Uint8Array | Float32Array, explanation: Explanation): ExplainedImages {
  const { channels, height: h, width: w, plane: n, values } = imageGeometry(model);
  const { count, height: eh, width: ew } = mapSize(explanation);
  const mapChannels = explanation.mapChannels ?? 1;
  const inputChannels = explanation.inputChannels ?? 1;
  if (eh !== h || ew !== w || inputChannels !== channels || explanation.maps.length !== count * mapChannels * n) {
    throw new RangeError(`Expected maps of ${imageSizeText(channels, h, w)} images (the model's input) for explanation but received shape [${explanation.shape}]` +
      ` of ${inputChannels}-channel images`);
  }
  if (!(images instanceof Uint8Array) && !(images instanceof Float32Array)) throw new TypeError(expected('a Uint8Array or Float32Array of images', 'images', images));
  if (images.length !== count * values) {
    const which = channels === 1 ? `the ${count} images` : `the ${count} ${imageSizeText(channels, h, w)} images`;
    throw new RangeError(expected(`${which} explained (${count * values} values)`, 'images', images) + ` of ${images.length} values`);
  }
  return { channels, h, w, n, values, count, pixels: unitPixels(images), order: explanationPixelMaps({ ...explanation, mapChannels }) };
}

/** The softmax probability of class `target` in the row of `classes` logits at `offset` (also ROAD's). */
export function softmaxAt(logits: Float32Array, offset: number, classes: number, target: number): number {
  let max = -Infinity;
  for (let c = 0; c < classes; ++c) max = Math.max(max, logits[offset + c]);
  let total = 0;
  for (let c = 0; c < classes; ++c) total += Math.exp(logits[offset + c] - max);
  return Math.exp(logits[offset + target] - max) / total;
}

/**
 * Deletion and insertion AUCs of an explanation's maps, beside those of a random pixel order.
 * `images` are the images explained (as given to explain()).
 * @example const f = await faithfulness(model, images, await explain(model, images, { method: 'integrated-gradients' }));
 */
export async function faithfulness(model: CnnModel, images: Uint8Array | Float32Array, explanation: Explanation, options: FaithfulnessOptions = {}): Promise<FaithfulnessResult> {
  model.check('faithfulness');
  const o = checkObject(options, 'options');
  checkKnownKeys(o, 'faithfulness options', ['steps', 'baseline', 'blurSigma', 'seed', 'chunkSize']);
  const { channels, h, w, n, values, count, pixels, order: pixelMap } = explainedImages(model, images, explanation);
  const steps = o.steps === undefined ? DEFAULT_STEPS : checkInteger(o.steps, 'steps', 1, n);
  const baseline: Baseline = o.baseline === undefined ? 'black' : typeof o.baseline === 'number' ? checkNumber(o.baseline, 'baseline', 0, 1) : checkOneOf(o.baseline, 'baseline', BASELINES);
  const blurSigma = o.blurSigma === undefined ? 3 : checkNumber(o.blurSigma, 'blurSigma', 0, Math.max(h, w), { exclusiveMin: true });
  const seed = o.seed === undefined ? 0 : checkInteger(o.seed, 'seed', 0, 0xffffffff);
  const chunkSize = o.chunkSize === undefined ? 64 : checkInteger(o.chunkSize, 'chunkSize', 1, 1 << 16);

  const points = steps + 1;
  const CURVES = 4;
  const runner = new ProbeRunner(model, chunkSize);
  const curves = new Float32Array(count * CURVES * points);
  try {
    const orders = Array.from({ length: count }, (_, i) => [attributionOrder(pixelMap.subarray(i * n, (i + 1) * n)), randomOrder(n, imageSeed(seed, i, 1))]);
    const baselines = Array.from({ length: count }, (_, i) => baselineImage(pixels.subarray(i * values, (i + 1) * values), channels, h, w, baseline, blurSigma, imageSeed(seed, i)));
    // Row r: image, curve (deletion, insertion, random deletion, random insertion), step.
    const logits = await runner.logits(count * CURVES * points, (row, into) => {
      const step = row % points;
      const curve = Math.floor(row / points) % CURVES;
      const image = Math.floor(row / (points * CURVES));
      const order = orders[image][curve < 2 ? 0 : 1];
      const deleting = curve % 2 === 0;
      const x = pixels.subarray(image * values, (image + 1) * values);
      const b = baselines[image];
      into.set(deleting ? x : b);
      const moved = Math.round((step * n) / steps);
      // A pixel moves with all its channels.
      const from = deleting ? b : x;
      for (let c = 0; c < channels; ++c) for (let k = 0; k < moved; ++k) into[c * n + order[k]] = from[c * n + order[k]];
    });
    for (let row = 0; row < count * CURVES * points; ++row) {
      const image = Math.floor(row / (points * CURVES));
      curves[row] = softmaxAt(logits, row * model.classes, model.classes, explanation.targets[image]);
    }
  } finally {
    runner.dispose();
  }
  const area = (curve: number) => Float64Array.from({ length: count }, (_, i) => trapezoidArea(curves.subarray((i * CURVES + curve) * points, (i * CURVES + curve + 1) * points)));
  return { steps, deletion: area(0), insertion: area(1), randomDeletion: area(2), randomInsertion: area(3), curves };
}
