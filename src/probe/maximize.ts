// Feature visualisation (Erhan et al. 2009; Olah et al. 2017, "Feature Visualization"): the image
// in [0, 1] that a unit responds to most, found by gradient ascent on the pixels from seeded noise.
// Made for small images: the pixels are the parameters (no Fourier or colour decorrelation, no
// upsampling to 224 px), and two regularisers keep the result readable at 28x28 or 32x32:
//   - jitter: before each step the image is shifted by a random (dy, dx) in [-jitter, jitter]
//     (edges replicated; every channel alike); the gradient is mapped back through the shift's
//     adjoint, so a pattern only survives if it works at every nearby position (no per-pixel
//     adversarial noise);
//   - total variation: the ascended objective is f(x) - tvWeight * TV(x), TV(x) the sum over
//     horizontally and vertically neighbouring pixels of each channel of their squared difference
//     divided by the value count (C * H * W; a smooth penalty: its gradient is defined everywhere).
// A colour model's image has C channels, each a parameter plane (its own noise at the start).
// After each step the pixels are clipped to [0, 1]. The noise and the shifts come from the seed
// and the unit (not from its position in the request), so a unit's picture is the same whichever
// units are asked with it, on every path. Objectives: one channel of a layer (its mean over
// positions; a vector layer's unit itself) or one class logit (pre-softmax).
import type { CnnModel } from '../nn/model';
import { checkInteger, checkKnownKeys, checkNumber, checkObject, checkOneOf, checkString, expected } from '../util/validate';
import { layerShapes } from './layer-geometry';
import { imageSeed } from './method';
import { normalSource, uniformSource } from './random';
import { ProbeRunner } from './runner';

/** What to maximise: channel(s) of a layer, or class logit(s). One picture per channel or class. */
export type MaximizeObjective = { layer: string; channel: number | readonly number[] } | { class: number | readonly number[] };

export const MAXIMIZE_OPTIMIZERS = ['adam', 'sgd'] as const;

/**
 * Options of {@link maximize}.
 * @example await maximize(model, { layer: 'conv2.act', channel: [0, 1, 2] }, { steps: 256, seed: 1 })
 */
export interface MaximizeOptions {
  /** Gradient steps (default 128). */
  steps?: number;
  /** 'adam' (default: steps of about learningRate per pixel whatever the gradient's scale) or 'sgd' (plain x += learningRate * gradient). */
  optimizer?: (typeof MAXIMIZE_OPTIMIZERS)[number];
  /** Step size (default 0.05 for adam, 1 for sgd). */
  learningRate?: number;
  /** Largest random shift in pixels before each step (default 1; 0 turns jitter off). */
  jitter?: number;
  /** Weight of the total-variation penalty (default 0.25; 0 turns it off). */
  tvWeight?: number;
  /** The starting noise's standard deviation around grey 0.5 (default 0.1). */
  noise?: number;
  /** Seed of the starting noise and the shifts (default 0). */
  seed?: number;
  /** Images per forward/backward pass (default 64). */
  chunkSize?: number;
}

/** The settings a visualisation ran with (defaults filled in). */
export interface MaximizeSettings {
  steps: number; optimizer: 'adam' | 'sgd'; learningRate: number; jitter: number; tvWeight: number; noise: number; seed: number; chunkSize: number;
}

/** What {@link maximize} returns. */
export interface Visualisation {
  /** n * C * H * W pixels in [0, 1], one image per unit (channel-planar). */
  images: Float32Array;
  /** [n, H, W] for a grey model, [n, C, H, W] for a C-channel one. */
  shape: [number, number, number] | [number, number, number, number];
  /** The images' channels (the model's inputChannels). */
  channels: number;
  /** The layer (null: class logits) and, per image, its channel or class. */
  layer: string | null;
  units: number[];
  /** n * steps: each image's objective f (unregularised) at each step, on that step's shifted image, before the update. */
  trace: Float32Array;
  /** Per image: f at the starting noise and at the result (both unshifted). */
  initial: Float32Array;
  final: Float32Array;
  /** Per image: the result's total variation TV(x). */
  totalVariation: Float32Array;
  settings: MaximizeSettings;
}

const DEFAULT_STEPS = 128;
const MAX_STEPS = 1 << 16;
const DEFAULT_CHUNK = 64;
const MAX_CHUNK = 1 << 16;
const DEFAULT_LEARNING_RATE = { adam: 0.05, sgd: 1 };
const DEFAULT_JITTER = 1;
const DEFAULT_TV_WEIGHT = 0.25;
const DEFAULT_NOISE = 0.1;
const START_GREY = 0.5;
const ADAM_BETA1 = 0.9;
const ADAM_BETA2 = 0.999;
const ADAM_EPSILON = 1e-8;
/** Seed draws: the starting noise and the shifts, per unit. */
const NOISE_DRAW = 0;
const JITTER_DRAW = 1;

interface ResolvedObjective { layer: string | null; units: number[] }

function checkUnits(value: unknown, name: string, count: number, what: string): number[] {
  const list = typeof value === 'number' ? [value] : value;
  if (!Array.isArray(list) || list.length === 0) throw new TypeError(expected(`${what} or a non-empty array of them`, name, value));
  return list.map((v, i) => checkInteger(v, Array.isArray(value) ? `${name}[${i}]` : name, 0, count - 1));
}

function resolveObjective(input: unknown, model: CnnModel): ResolvedObjective {
  const o = checkObject(input, 'objective');
  if ('class' in o) {
    checkKnownKeys(o, 'objective', ['class']);
    return { layer: null, units: checkUnits(o.class, 'objective.class', model.classes, `a class index in [0, ${model.classes - 1}]`) };
  }
  checkKnownKeys(o, 'objective', ['layer', 'channel']);
  const shapes = layerShapes(model.plan);
  const layer = checkString(o.layer, 'objective.layer');
  const shape = shapes.find((s) => s.name === layer);
  if (!shape) throw new RangeError(expected(`one of ${shapes.map((s) => s.name).join(', ')}`, 'objective.layer', layer));
    return { layer, units: checkUnits(o.channel, 'objective.channel', shape.channels, `a channel index in [0, ${shape.channels - 1}] of ${layer}`) };
}

function resolveOptions(input: unknown): MaximizeSettings {
  const o = checkObject(input ?? {}, 'options');
  checkKnownKeys(o, 'maximize options', ['steps', 'optimizer', 'learningRate', 'jitter', 'tvWeight', 'noise', 'seed', 'chunkSize']);
  const optimizer = o.optimizer === undefined ? 'adam' : checkOneOf(o.optimizer, 'optimizer', MAXIMIZE_OPTIMIZERS);
  return {
    steps: o.steps === undefined ? DEFAULT_STEPS : checkInteger(o.steps, 'steps', 1, MAX_STEPS),
    optimizer,
    learningRate: o.learningRate === undefined ? DEFAULT_LEARNING_RATE[optimizer] : checkNumber(o.learningRate, 'learningRate', 0, 1e6, { exclusiveMin: true }),
    jitter: o.jitter === undefined ? DEFAULT_JITTER : checkInteger(o.jitter, 'jitter', 0, 64),
    tvWeight: o.tvWeight === undefined ? DEFAULT_TV_WEIGHT : checkNumber(o.tvWeight, 'tvWeight', 0, 1e6),
    noise: o.noise === undefined ? DEFAULT_NOISE : checkNumber(o.noise, 'noise', 0, 1),
    seed: o.seed === undefined ? 0 : checkInteger(o.seed, 'seed', 0, 0xffffffff),
    chunkSize: o.chunkSize === undefined ? DEFAULT_CHUNK : checkInteger(o.chunkSize, 'chunkSize', 1, MAX_CHUNK),
  };
}

/** image (`channels` planes) shifted by (dy, dx): out[c][y][x] = image[c][clamp(y - dy)][clamp(x - dx)] (edges replicated). */
export function shiftImage(image: Float32Array, h: number, w: number, dy: number, dx: number, out: Float32Array, channels = 1): void {
  for (let c = 0; c < channels; ++c) {
    const at = c * h * w;
    for (let y = 0; y < h; ++y) {
      const sy = Math.min(h - 1, Math.max(0, y - dy));
      for (let x = 0; x < w; ++x) out[at + y * w + x] = image[at + sy * w + Math.min(w - 1, Math.max(0, x - dx))];
    }
  }
}

/** The adjoint of shiftImage: each shifted pixel's gradient goes back to the source pixel it copied (in its channel). */
export function unshiftGradient(gradient: Float32Array, h: number, w: number, dy: number, dx: number, out: Float64Array, channels = 1): void {
  out.fill(0);
  for (let c = 0; c < channels; ++c) {
    const at = c * h * w;
    for (let y = 0; y < h; ++y) {
      const sy = Math.min(h - 1, Math.max(0, y - dy));
      for (let x = 0; x < w; ++x) out[at + sy * w + Math.min(w - 1, Math.max(0, x - dx))] += gradient[at + y * w + x];
    }
  }
}

/**
 * TV(x) = sum over neighbouring pairs of each of the `channels` planes of (a - b)^2, over the value
 * count (channels * h * w); `gradient` (if given) receives dTV/dx.
 */
export function totalVariation(image: ArrayLike<number>, h: number, w: number, gradient?: Float64Array, channels = 1): number {
  const n = channels * h * w;
  let sum = 0;
  if (gradient) gradient.fill(0);
  const pair = (p: number, q: number) => {
    const d = image[p] - image[q];
    sum += d * d;
    if (gradient) {
      gradient[p] += (2 * d) / n;
      gradient[q] -= (2 * d) / n;
    }
  };
  for (let c = 0; c < channels; ++c) {
    const at = c * h * w;
    for (let y = 0; y < h; ++y) {
      for (let x = 0; x < w; ++x) {
        if (x + 1 < w) pair(at + y * w + x, at + y * w + x + 1);
        if (y + 1 < h) pair(at + y * w + x, at + (y + 1) * w + x);
      }
    }
  }
  return sum / n;
}

/** A random integer in [-max, max] from a uniform source. */
const shiftFrom = (uniform: () => number, max: number) => Math.min(max, Math.floor(uniform() * (2 * max + 1)) - max);

/**
 * Feature visualisation: for each channel of a layer (or each class), the image in [0, 1] that
 * maximises it, by gradient ascent from seeded noise with jitter and total-variation
 * regularisation (see the file's header and docs/probing.md). Eager and scripted models give the
 * same images (a scripted model's layer is reached through the split TorchScript). The objective per
 * step is returned: check that it rose (`final` against `initial`).
 * @example
 * const v = await maximize(model, { layer: 'conv2.act', channel: [0, 1, 2, 3] }, { steps: 256 });
 * v.images; // 4 * 28 * 28 pixels in [0, 1] (4 * 3 * 32 * 32 for a colour model)
 */
export async function maximize(model: CnnModel, objective: MaximizeObjective, options: MaximizeOptions = {}): Promise<Visualisation> {
  model.check('maximize');
  const { layer, units } = resolveObjective(objective, model);
  const settings = resolveOptions(options);
  const [h, w] = model.inputSize;
  const channels = model.inputChannels;
  // Values per image: every channel of every pixel is a parameter.
  const pixels = channels * h * w;
  const count = units.length;
  const images = new Float32Array(count * pixels);
  const jitters = units.map((u) => uniformSource(imageSeed(settings.seed, u, JITTER_DRAW)));
  units.forEach((u, i) => {
    const normal = normalSource(imageSeed(settings.seed, u, NOISE_DRAW));
    for (let p = 0; p < pixels; ++p) images[i * pixels + p] = Math.min(1, Math.max(0, START_GREY + settings.noise * normal()));
  });
  const trace = new Float32Array(count * settings.steps);
  const initial = new Float32Array(count);
  const final = new Float32Array(count);
  const momentum = new Float64Array(count * pixels);
  const velocity = new Float64Array(count * pixels);
  const shifts = new Int32Array(count * 2);
  const back = new Float64Array(pixels);
  const tvGradient = new Float64Array(pixels);
  const runner = new ProbeRunner(model, settings.chunkSize);
  const run = (fill: (row: number, into: Float32Array) => void, use: (row: number, gradient: Float32Array, value: number) => void) => (layer === null
    ? runner.gradients(count, fill, (row) => units[row], (row, gradient, logits) => use(row, gradient, logits[units[row]]))
    : runner.unitGradients(layer, count, fill, (row) => units[row], use));
  const unshifted = (row: number, into: Float32Array) => into.set(images.subarray(row * pixels, (row + 1) * pixels));
  try {
    await run(unshifted, (row, _g, value) => { initial[row] = value; });
    for (let step = 0; step < settings.steps; ++step) {
      for (let i = 0; i < count; ++i) {
        shifts[2 * i] = settings.jitter > 0 ? shiftFrom(jitters[i], settings.jitter) : 0;
        shifts[2 * i + 1] = settings.jitter > 0 ? shiftFrom(jitters[i], settings.jitter) : 0;
      }
      const t = step + 1;
      await run(
        (row, into) => shiftImage(images.subarray(row * pixels, (row + 1) * pixels), h, w, shifts[2 * row], shifts[2 * row + 1], into, channels),
        (row, gradient, value) => {
          trace[row * settings.steps + step] = value;
          const x = images.subarray(row * pixels, (row + 1) * pixels);
          unshiftGradient(gradient, h, w, shifts[2 * row], shifts[2 * row + 1], back, channels);
          if (settings.tvWeight > 0) totalVariation(x, h, w, tvGradient, channels);
          for (let p = 0; p < pixels; ++p) {
            // Ascent on f - tvWeight * TV.
            const g = back[p] - (settings.tvWeight > 0 ? settings.tvWeight * tvGradient[p] : 0);
            let move: number;
            if (settings.optimizer === 'adam') {
              const k = row * pixels + p;
              momentum[k] = ADAM_BETA1 * momentum[k] + (1 - ADAM_BETA1) * g;
              velocity[k] = ADAM_BETA2 * velocity[k] + (1 - ADAM_BETA2) * g * g;
              const mHat = momentum[k] / (1 - ADAM_BETA1 ** t);
              const vHat = velocity[k] / (1 - ADAM_BETA2 ** t);
              move = (settings.learningRate * mHat) / (Math.sqrt(vHat) + ADAM_EPSILON);
            } else {
              move = settings.learningRate * g;
            }
            x[p] = Math.min(1, Math.max(0, x[p] + move));
          }
        },
      );
      await new Promise((resolve) => setImmediate(resolve));
    }
    await run(unshifted, (row, _g, value) => { final[row] = value; });
  } finally {
    runner.dispose();
  }
  const totalVariations = Float32Array.from({ length: count }, (_, i) => totalVariation(images.subarray(i * pixels, (i + 1) * pixels), h, w, undefined, channels));
  const shape: Visualisation['shape'] = channels === 1 ? [count, h, w] : [count, channels, h, w];
  return { images, shape, channels, layer, units, trace, initial, final, totalVariation: totalVariations, settings };
}
