// Test-time augmentation: the model's logits averaged over a few views of each image (the image, its
// left-right mirror, the image moved by a pixel or two), as the CIFAR-10 speed records evaluate
// (airbench's "TTA level 2"). Flips suit Fashion-MNIST's clothes, not MNIST's digits (a mirrored 2
// is no digit); shifts suit both.
import { native, NativeTensor } from '../core/native';
import { ops } from '../core/ops';
import { track } from '../core/tidy';
import { withPrecision, Precision } from '../core/precision';
import { Classifier } from '../nn/model';
import { checkBoolean, checkInteger, checkKnownKeys, checkObject } from '../util/validate';

/** Views evaluated per image. */
export interface TtaOptions {
  /** Also the image mirrored left-right (and each shifted view mirrored too). Default false. */
  flip?: boolean;
  /** Also the image moved by `shift` pixels down-right and up-left (blank pixels fill in). Default 0: none. */
  shift?: number;
}

export type ResolvedTta = Required<TtaOptions>;
export const NO_TTA: ResolvedTta = { flip: false, shift: 0 };

/** The largest shift: a view moved further shows too little of a 28 x 28 image to help. */
export const MAX_TTA_SHIFT = 4;

/** `value` as TTA options (undefined or false: none, false also over a preset's); throws TypeError/RangeError naming `name`. */
export function checkTta(value: unknown, name: string): ResolvedTta {
  if (value === undefined || value === false) return NO_TTA;
  const t = checkObject(value, name);
  checkKnownKeys(t, name, ['flip', 'shift']);
  return { flip: checkBoolean(t.flip ?? false, `${name}.flip`), shift: checkInteger(t.shift ?? 0, `${name}.shift`, 0, MAX_TTA_SHIFT) };
}

export function usesTta(tta: ResolvedTta): boolean {
  return tta.flip || tta.shift > 0;
}

/** One view: moved dy pixels down and dx right, mirrored first when `flip`. */
export interface TtaView { dy: number; dx: number; flip: boolean }

/** The views averaged: the image, its shifted copies, and the mirror of each when `flip`. */
export function ttaViews(tta: ResolvedTta): TtaView[] {
  const offsets: [number, number][] = [[0, 0]];
  if (tta.shift > 0) offsets.push([tta.shift, tta.shift], [-tta.shift, -tta.shift]);
  const flips = tta.flip ? [false, true] : [false];
  return flips.flatMap((flip) => offsets.map(([dy, dx]) => ({ dy, dx, flip })));
}

/**
 * Float32 logits of a prepared batch, averaged over the TTA views (just the model's logits without
 * TTA). Call inside noGrad() and tidy(). Blank pixels of a shifted view get the standardised value of
 * a 0 pixel, as the training augmentation pads.
 */
export function ttaLogits(model: Classifier, x: NativeTensor, tta: ResolvedTta, precision: Precision): NativeTensor {
  const logitsOf = (input: NativeTensor): NativeTensor => ops().to(withPrecision(precision, model.device, () => model.logits(input)), null, 'float32');
  if (!usesTta(tta)) return logitsOf(x);
  const views = ttaViews(tta);
  const blank = -model.inputNorm.mean / model.inputNorm.std;
  let sum: NativeTensor | undefined;
  for (const v of views) {
    const input = v.dy === 0 && v.dx === 0 && !v.flip ? x : track(native().tta.view(x, v.dy, v.dx, v.flip, blank));
    const logits = logitsOf(input);
    sum = sum ? ops().add(sum, logits) : logits;
  }
  return ops().mulScalar(sum!, 1 / views.length);
}
