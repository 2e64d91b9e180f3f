// explain(): attribution maps for a batch of images, by any method, on eager and scripted models.
// One entry for every method (each in its own file behind AttributionMethod), images taken as
// predict() takes them, options checked before any native work, and the images processed in
// blocks of chunkSize so that memory stays bounded over a whole split. Colour models too: images are
// N x C x H x W, and the gradient methods' maps keep a value per channel (see method.ts).
import type { CnnModel } from '../nn/model';
import { gradCam, hiresCam } from './grad-cam';
import { gradientXInput } from './gradient-x-input';
import { checkProbeImages as checkImages, imageGeometry, pixelMaps, unitPixels } from './images';
import { integratedGradients } from './integrated-gradients';
import type { AttributionMethod, ImageBlock } from './method';
import { occlusion } from './occlusion';
import { ExplainOptions, MethodName, MethodSettings, resolveExplainOptions } from './options';
import { ProbeRunner } from './runner';
import { saliency } from './saliency';
import { scoreCam } from './score-cam';

const METHOD_TABLE: Record<MethodName, AttributionMethod> = {
  'saliency': saliency,
  'gradient-x-input': gradientXInput,
  'integrated-gradients': integratedGradients,
  'occlusion': occlusion,
  'grad-cam': gradCam,
  'hires-cam': hiresCam,
  'score-cam': scoreCam,
};

/** What {@link explain} returns. */
export interface Explanation {
  method: MethodName;
  /** n * mapChannels * H * W attributions, image after image (channel-planar, row-major), with respect to pixels in [0, 1]. */
  maps: Float32Array;
  /** [n, H, W] for a grey model; [n, mapChannels, H, W] for a model of more channels (as Captum's attributions: one map per channel). */
  shape: ExplanationShape;
  /** The channels of the images explained (the model's inputChannels). */
  inputChannels: number;
  /** Values per pixel in a map: inputChannels for saliency, gradient-x-input and IG; 1 for occlusion and the CAMs (a map per pixel). */
  mapChannels: number;
  /** The class each map explains. */
  targets: Int32Array;
  /** The model's predicted class for each (clean) image. */
  predictions: Int32Array;
  /** integrated-gradients: per image, sum of the map - (f(x) - f(baseline)), f the target's logit. */
  deltas?: Float64Array;
  /** The method's settings with their defaults filled in. */
  settings: MethodSettings;
}

/** An explanation's maps: [n, H, W] (a grey model) or [n, C, H, W]. */
export type ExplanationShape = [number, number, number] | [number, number, number, number];

/** The images and pixels of an explanation's maps: [count, H, W] whatever its channels. */
export function mapSize(e: Pick<Explanation, 'shape'>): { count: number; height: number; width: number } {
  const s = e.shape;
  return { count: s[0], height: s[s.length - 2], width: s[s.length - 1] };
}

/**
 * The per-pixel maps (n * H * W) of an explanation: its maps for one channel, else the sum over its
 * channels (see pixelMaps in images.ts): what pictures, faithfulness checks, summaries and rank
 * correlations rank and draw.
 * @example explanationPixelMaps(await explain(colourModel, images, { method: 'integrated-gradients' })) // n * H * W
 */
export function explanationPixelMaps(e: Pick<Explanation, 'maps' | 'shape' | 'mapChannels'>): Float32Array {
  const { count, height, width } = mapSize(e);
  return pixelMaps(e.maps, count, e.mapChannels, height * width);
}

function argmaxRows(logits: Float32Array, rows: number, classes: number): Int32Array {
  const out = new Int32Array(rows);
  for (let r = 0; r < rows; ++r) {
    let best = 0;
    for (let c = 1; c < classes; ++c) if (logits[r * classes + c] > logits[r * classes + best]) best = c;
    out[r] = best;
  }
  return out;
}

/**
 * Attribution maps of `images` for a model (eager or scripted: the same maps), one per image, of
 * the target class's logit (pre-softmax) with respect to the pixels in [0, 1] (the model's input
 * standardisation is part of the differentiated function). Methods: saliency (with SmoothGrad and
 * VarGrad), gradient-x-input, integrated-gradients (with its completeness deltas), occlusion,
 * grad-cam, hires-cam and score-cam; see docs/probing.md. The event loop runs between batches.
 * Images are N x C x H x W (channel-planar) for a C-channel model; its gradient methods' maps are
 * [n, C, H, W] (a value per channel), occlusion's and the CAMs' [n, 1, H, W] (a value per pixel).
 * @example
 * const { maps, targets, deltas } = await explain(model, test.images.subarray(0, 8 * 784), { method: 'integrated-gradients', steps: 128 });
 */
export async function explain(model: CnnModel, images: Uint8Array | Float32Array, options: ExplainOptions = {}): Promise<Explanation> {
  model.check('explain');
  const count = checkImages(images, model);
  const { method, target, chunkSize, settings } = resolveExplainOptions(options, model, count);
  const { channels, height: h, width: w, plane, values } = imageGeometry(model);
  const attribution = METHOD_TABLE[method];
  const mapChannels = attribution.perPixel ? 1 : channels;
  const mapValues = mapChannels * plane;
  const maps = new Float32Array(count * mapValues);
  const targets = new Int32Array(count);
  const predictions = new Int32Array(count);
  const deltas = method === 'integrated-gradients' ? new Float64Array(count) : undefined;
  const runner = new ProbeRunner(model, chunkSize);
  try {
    for (let first = 0; first < count; first += chunkSize) {
      const blockCount = Math.min(count, first + chunkSize) - first;
      const blockPixels = unitPixels(images.subarray(first * values, (first + blockCount) * values));
      const logits = await runner.logits(blockCount, (row, into) => into.set(blockPixels.subarray(row * values, (row + 1) * values)));
      const predicted = argmaxRows(logits, blockCount, model.classes);
      const blockTargets = target === 'predicted' ? predicted : target.subarray(first, first + blockCount);
      const block: ImageBlock = {
        pixels: blockPixels, first, count: blockCount, targets: blockTargets,
        scores: Float32Array.from(blockTargets, (t, i) => logits[i * model.classes + t]),
      };
      const result = await attribution.attribute(runner, block, settings);
      maps.set(result.maps, first * mapValues);
      targets.set(blockTargets, first);
      predictions.set(predicted, first);
      if (deltas && result.deltas) deltas.set(result.deltas, first);
    }
  } finally {
    runner.dispose();
  }
  const shape: ExplanationShape = channels === 1 ? [count, h, w] : [count, mapChannels, h, w];
  return { method, maps, shape, inputChannels: channels, mapChannels, targets, predictions, ...(deltas ? { deltas } : {}), settings };
}
