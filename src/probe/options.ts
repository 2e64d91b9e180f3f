// explain()'s options: every default in one place, every value checked before a native tensor is
// made, and each method's own settings refused for a method that would ignore them (a `steps` given
// to saliency is a mistake, not a no-op).
import type { CnnModel } from '../nn/model';
import { checkInteger, checkKnownKeys, checkNumber, checkObject, checkOneOf, checkString, describe, expected } from '../util/validate';

export const METHODS = ['saliency', 'gradient-x-input', 'integrated-gradients', 'occlusion', 'grad-cam', 'hires-cam', 'score-cam'] as const;
export type MethodName = (typeof METHODS)[number];

/** Methods that look at a conv layer's feature maps (the `layer` option). */
export const LAYER_METHODS: readonly MethodName[] = ['grad-cam', 'hires-cam', 'score-cam'];

/** Saliency's noise variants: none, SmoothGrad (mean |gradient| over noisy copies), VarGrad (their variance). */
export const SMOOTHINGS = ['none', 'smoothgrad', 'vargrad'] as const;
export type Smoothing = (typeof SMOOTHINGS)[number];

/** Named baselines: all-zero pixels, a Gaussian blur of the image, uniform noise in [0, 1]. */
export const BASELINES = ['black', 'blur', 'uniform'] as const;
/** A named baseline or a constant pixel value in [0, 1]. */
export type Baseline = (typeof BASELINES)[number] | number;

/** Which class each image's map explains: the model's prediction, the true label, one class, or one class per image. */
export type Target = 'predicted' | 'label' | number | ArrayLike<number>;

/**
 * Options of {@link explain}. Each method takes the common options and its own (others are refused).
 * @example await explain(model, images, { method: 'integrated-gradients', steps: 128, baseline: 'blur' })
 */
export interface ExplainOptions {
  /** Default 'saliency'. */
  method?: MethodName;
  /** Default 'predicted'. 'label' needs `labels`. */
  target?: Target;
  /** One true class per image (what target 'label' explains). */
  labels?: ArrayLike<number>;
  /** Network inputs per forward/backward pass (noisy copies, path points and occluded images count one each): bounds memory. Default 64. */
  chunkSize?: number;
  /** saliency: 'none' (default), 'smoothgrad' or 'vargrad'. */
  smoothing?: Smoothing;
  /** saliency with smoothing: noisy copies per image (default 16). */
  samples?: number;
  /** saliency with smoothing: the noise's standard deviation as a fraction of the pixel range [0, 1] (default 0.15). */
  sigma?: number;
  /** Seed of the noise (saliency's smoothing, the 'uniform' baseline). Default 0. */
  seed?: number;
  /** integrated-gradients: gradient evaluations along the path (default 64, midpoint rule). */
  steps?: number;
  /** integrated-gradients and occlusion: what a pixel is compared with. Default 'black' (0). */
  baseline?: Baseline;
  /** The 'blur' baseline's Gaussian standard deviation in pixels (default 3). */
  blurSigma?: number;
  /** occlusion: the patch [height, width] (a number: square). Default 4. */
  window?: number | [number, number];
  /** occlusion: the step between patches (a number: both directions). Default 2. */
  stride?: number | [number, number];
  /** grad-cam, hires-cam, score-cam: the layer whose feature maps are weighted (default: the last conv layer's activation, before its pooling). */
  layer?: string;
}

export const DEFAULT_CHUNK = 64;
export const MAX_CHUNK = 1 << 16;
export const DEFAULT_SAMPLES = 16;
export const DEFAULT_SIGMA = 0.15;
export const DEFAULT_STEPS = 64;
/** More steps than this is a typo more likely than a need: 64-300 is what the IG paper recommends. */
export const MAX_STEPS = 1 << 16;
export const DEFAULT_BLUR_SIGMA = 3;
export const DEFAULT_WINDOW = 4;
export const DEFAULT_STRIDE = 2;

const COMMON_KEYS = ['method', 'target', 'labels', 'chunkSize'];
const METHOD_KEYS: Record<MethodName, string[]> = {
  'saliency': ['smoothing', 'samples', 'sigma', 'seed'],
  'gradient-x-input': [],
  'integrated-gradients': ['steps', 'baseline', 'blurSigma', 'seed'],
  'occlusion': ['window', 'stride', 'baseline', 'blurSigma', 'seed'],
  'grad-cam': ['layer'],
  'hires-cam': ['layer'],
  'score-cam': ['layer'],
};

/** The settings a method runs with (its defaults filled in); what explain.json records. */
export interface MethodSettings {
  smoothing?: Smoothing;
  samples?: number;
  sigma?: number;
  seed?: number;
  steps?: number;
  baseline?: Baseline;
  blurSigma?: number;
  window?: [number, number];
  stride?: [number, number];
  layer?: string;
}

export interface ResolvedOptions {
  method: MethodName;
  /** Resolved against the images: 'predicted', 'label' (labels checked) or one class per image. */
  target: 'predicted' | Int32Array;
  chunkSize: number;
  settings: MethodSettings;
}

function checkPair(value: unknown, name: string, max: [number, number]): [number, number] {
  if (typeof value === 'number') return [checkInteger(value, name, 1, Math.min(...max)), checkInteger(value, name, 1, Math.min(...max))];
  if (!Array.isArray(value) || value.length !== 2) throw new TypeError(expected('a positive integer or [height, width]', name, value));
  return [checkInteger(value[0], `${name}[0]`, 1, max[0]), checkInteger(value[1], `${name}[1]`, 1, max[1])];
}

function checkBaseline(value: unknown, name: string): Baseline {
  if (typeof value === 'number') return checkNumber(value, name, 0, 1);
  if (typeof value === 'string' && /^-?\d*\.?\d+(e-?\d+)?$/i.test(value)) return checkNumber(Number(value), name, 0, 1);
  return checkOneOf(value, name, BASELINES) as Baseline;
}

/** A class index of a model with `classes` outputs. */
function checkClass(value: unknown, name: string, classes: number): number {
  return checkInteger(value, name, 0, classes - 1);
}

function checkClassList(value: unknown, name: string, count: number, classes: number): Int32Array {
  if (typeof value !== 'object' || value === null || typeof (value as ArrayLike<number>).length !== 'number') {
    throw new TypeError(expected(`an array of ${count} class indices`, name, value));
  }
  const list = value as ArrayLike<unknown>;
  if (list.length !== count) throw new RangeError(expected(`${count} class indices (one per image)`, name, value) + ` with ${list.length}`);
  const out = new Int32Array(count);
  for (let i = 0; i < count; ++i) out[i] = checkClass(list[i], `${name}[${i}]`, classes);
  return out;
}

/** The layers a layer method can weigh: every layer before the flatten (or global pooling), whose output is a stack of feature maps. */
export function featureMapLayers(model: CnnModel): string[] {
  const names = model.layerNames();
  const end = names.findIndex((n) => n === 'flatten' || n === 'global_avg_pool');
  return names.slice(0, end < 0 ? names.length : end);
}

/** The default layer of the layer methods: the last conv layer's activation, after it and before its pooling. */
export function defaultLayer(model: CnnModel, method: MethodName): string {
  const conv = model.plan.conv;
  if (conv.length === 0) throw new RangeError(`Expected a model with a conv layer for method ${method} but its spec has none (spec.conv is empty)`);
  return `${conv[conv.length - 1].name}.act`;
}

function checkLayer(value: unknown, model: CnnModel, method: MethodName): string {
  if (value === undefined) return defaultLayer(model, method);
  const name = checkString(value, 'layer');
  const all = model.layerNames();
  const maps = featureMapLayers(model);
  if (!all.includes(name)) throw new RangeError(expected(`one of ${all.join(', ')}`, 'layer', value));
  if (!maps.includes(name)) {
    throw new RangeError(`Expected a conv layer (one of ${maps.join(', ') || 'none: the spec has no conv layer'}) for layer of method ${method} but received "${name}", whose output is not a stack of feature maps`);
  }
  return name;
}

function checkSettings(o: Record<string, unknown>, method: MethodName, model: CnnModel): MethodSettings {
  const [h, w] = model.inputSize;
  const seed = () => (o.seed === undefined ? 0 : checkInteger(o.seed, 'seed', 0, 0xffffffff));
  const baseline = () => (o.baseline === undefined ? 'black' : checkBaseline(o.baseline, 'baseline'));
  const blurSigma = () => (o.blurSigma === undefined ? DEFAULT_BLUR_SIGMA : checkNumber(o.blurSigma, 'blurSigma', 0, Math.max(h, w), { exclusiveMin: true }));
  switch (method) {
    case 'saliency': {
      const smoothing = o.smoothing === undefined ? 'none' : checkOneOf(o.smoothing, 'smoothing', SMOOTHINGS);
      if (smoothing === 'none') {
        for (const key of ['samples', 'sigma', 'seed']) {
          if (o[key] !== undefined) throw new TypeError(`Expected no ${key} for saliency without smoothing but received ${describe(o[key])}; set smoothing: 'smoothgrad' or 'vargrad'`);
        }
        return { smoothing };
      }
      return {
        smoothing,
        samples: o.samples === undefined ? DEFAULT_SAMPLES : checkInteger(o.samples, 'samples', smoothing === 'vargrad' ? 2 : 1, MAX_STEPS),
        sigma: o.sigma === undefined ? DEFAULT_SIGMA : checkNumber(o.sigma, 'sigma', 0, 10, { exclusiveMin: true }),
        seed: seed(),
      };
    }
    case 'gradient-x-input': return {};
    case 'integrated-gradients': {
      const settings: MethodSettings = { steps: o.steps === undefined ? DEFAULT_STEPS : checkInteger(o.steps, 'steps', 1, MAX_STEPS), baseline: baseline() };
      if (settings.baseline === 'blur') settings.blurSigma = blurSigma();
      else if (o.blurSigma !== undefined) throw new TypeError(`Expected no blurSigma for baseline ${describe(settings.baseline)} (only 'blur' uses it) but received ${describe(o.blurSigma)}`);
      if (settings.baseline === 'uniform') settings.seed = seed();
      return settings;
    }
    case 'occlusion': {
      const settings: MethodSettings = {
        window: o.window === undefined ? [Math.min(DEFAULT_WINDOW, h), Math.min(DEFAULT_WINDOW, w)] : checkPair(o.window, 'window', [h, w]),
        stride: o.stride === undefined ? [DEFAULT_STRIDE, DEFAULT_STRIDE] : checkPair(o.stride, 'stride', [h, w]),
        baseline: baseline(),
      };
      if (settings.baseline === 'blur') settings.blurSigma = blurSigma();
      if (settings.baseline === 'uniform') settings.seed = seed();
      return settings;
    }
    default: return { layer: checkLayer(o.layer, model, method) };
  }
}

/**
 * Checks explain()'s options against the model and the image count (before any native work) and
 * fills in the defaults.
 */
export function resolveExplainOptions(input: unknown, model: CnnModel, count: number): ResolvedOptions {
  const o = checkObject(input ?? {}, 'options');
  const method = o.method === undefined ? 'saliency' : checkOneOf(o.method, 'method', METHODS);
  checkKnownKeys(o, `explain options of method ${method}`, [...COMMON_KEYS, ...METHOD_KEYS[method]]);
  const chunkSize = o.chunkSize === undefined ? DEFAULT_CHUNK : checkInteger(o.chunkSize, 'chunkSize', 1, MAX_CHUNK);
  const classes = model.classes;
  const targetInput = o.target ?? 'predicted';
  let target: ResolvedOptions['target'];
  if (targetInput === 'predicted') target = 'predicted';
  else if (targetInput === 'label') {
    if (o.labels === undefined) throw new TypeError('Expected labels (one class per image) for target \'label\' but received undefined');
    target = checkClassList(o.labels, 'labels', count, classes);
  } else if (typeof targetInput === 'number') target = new Int32Array(count).fill(checkClass(targetInput, 'target', classes));
  else if (typeof targetInput === 'string') throw new RangeError(expected(`'predicted', 'label', a class in [0, ${classes - 1}] or one class per image`, 'target', targetInput));
  else target = checkClassList(targetInput, 'target', count, classes);
  if (o.labels !== undefined && targetInput !== 'label') checkClassList(o.labels, 'labels', count, classes);
  return { method, target, chunkSize, settings: checkSettings(o, method, model) };
}
