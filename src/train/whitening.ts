// Patch-whitening initialisation of the first convolution (trainCnn's `whiten`), as airbench and
// hlb-CIFAR10 start theirs: its filters become the whitening filters of the training images' k x k
// patches (native/whitening.h), in pairs of opposite sign so that the ReLU after it keeps both halves.
// The layer then starts out passing on decorrelated, unit-variance components of every patch,
// smoothest first. Filters beyond 2 k^2 keep their random start; the layer trains on as usual.
import { channelNorm } from '../nn/model-options';
import { native, valuesOf } from '../core/native';
import { ops } from '../core/ops';
import { tidy, track } from '../core/tidy';
import type { CnnModel } from '../nn/model';
import { checkInteger, checkKnownKeys, checkNumber, checkObject, expected } from '../util/validate';
import type { LabelledImages } from './evaluate';

export interface WhitenOptions {
  /** Added to each eigenvalue before its square root: bounds the gain of the faintest components (default 5e-4). */
  eps?: number;
  /** Training images the patch covariance is measured on (default 5000, the first ones). */
  images?: number;
}

export type ResolvedWhiten = Required<WhitenOptions>;
export const DEFAULT_WHITEN: ResolvedWhiten = { eps: 5e-4, images: 5000 };

/** `value` as whitening options: true for the defaults, false or undefined for none. */
export function checkWhiten(value: unknown, name: string): ResolvedWhiten | undefined {
  if (value === undefined || value === false) return undefined;
  if (value === true) return DEFAULT_WHITEN;
  const w = checkObject(value, name);
  checkKnownKeys(w, name, ['eps', 'images']);
  return {
    eps: checkNumber(w.eps ?? DEFAULT_WHITEN.eps, `${name}.eps`, 0, Infinity, { exclusiveMin: true }),
    images: checkInteger(w.images ?? DEFAULT_WHITEN.images, `${name}.images`, 1),
  };
}

/**
 * The whitening filters of `train`'s patches for the model's first convolution, as [filters, 1, k, k]
 * values in the order the layer takes them: v1, -v1, v2, -v2, ... by decreasing variance.
 */
export function whiteningFilters(model: CnnModel, train: LabelledImages, settings: ResolvedWhiten): { values: Float32Array; count: number } {
  const conv = model.plan.conv[0];
  if (!conv || conv.inChannels !== 1) {
    throw new RangeError(expected('a spec whose first layer is a convolution of one-channel images', 'whiten', settings) + (conv ? ` (its first convolution takes ${conv.inChannels} channels)` : ' (the spec has no convolution)'));
  }
  const [h, w] = model.inputSize;
  const k = conv.kernelSize;
  const n = Math.min(train.count, settings.images);
  // One input channel (checked above): the norm's one value.
  const { mean: [mean], std: [std] } = channelNorm(model.inputNorm, 1);
  const both = tidy(() => {
    // The sampled images are copied into libtorch memory once, for the covariance.
    const images = track(new (native().Tensor)(train.images.subarray(0, n * h * w), [n, h, w]));
    return valuesOf(track(native().whitening.filters(images, k, mean, std, settings.eps)), 'float32');
  });
  const size = k * k;
  const count = Math.min(conv.outChannels, 2 * size);
  const values = new Float32Array(count * size);
  // native: [v1..vK, -v1..-vK]; the layer: pairs, so that fewer filters than 2 k^2 still get both signs.
  for (let f = 0; f < count; ++f) {
    const source = (f >> 1) + (f % 2 === 1 ? size : 0);
    values.set(both.subarray(source * size, (source + 1) * size), f * size);
  }
  return { values, count };
}

/** Sets the model's first convolution's first filters to the whitening filters of `train`'s patches (in place). */
export function whitenFirstConvolution(model: CnnModel, train: LabelledImages, settings: ResolvedWhiten): void {
  const conv = model.plan.conv[0];
  const { values } = whiteningFilters(model, train, settings);
  const weight = model.tensor(`${conv.name}.weight`);
  const all = valuesOf(weight, 'float32').slice();
  all.set(values, 0);
  tidy(() => {
    // The new values go into the weight's own tensor (shared with the TorchScript module): exchanging
    // contents with a tensor of them does that in place, and the old values leave with the temporary.
    const fresh = ops().to(track(new (native().Tensor)(all, [...weight.shape])), model.device);
    native().ema.swap([weight], [fresh]);
  });
}
