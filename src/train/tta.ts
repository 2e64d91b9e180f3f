// Test-time augmentation: the model's logits averaged over a few views of each image (the image, its
// left-right mirror, the image moved by a pixel or two), as the CIFAR-10 speed records evaluate
// (airbench's "TTA level 2"). Flips suit Fashion-MNIST's clothes, not MNIST's digits (a mirrored 2
// is no digit); shifts suit both.
import { native, NativeTensor } from '../core/native';
import { fromHost, ops } from '../core/ops';
import { track } from '../core/tidy';
import { withPrecision, Precision } from '../core/precision';
import { Classifier } from '../nn/model';
import { channelNorm, isUniformNorm } from '../nn/model-options';
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
  const norm = model.inputNorm;
  let view: (dy: number, dx: number, flip: boolean) => NativeTensor;
  if (isUniformNorm(norm)) {
    const blank = -norm.mean / norm.std;
    view = (dy, dx, flip) => track(native().tta.view(x, dy, dx, flip, blank));
  } else {
    // Each channel its own blank: the view pads with 0 a batch whose channels are moved so that
    // their blank is 0, and moves them back.
    const { mean, std } = channelNorm(norm, model.inputChannels);
    const blanks = mean.map((m, c) => -m / std[c]);
    const offset = (sign: number): NativeTensor => track(ops().to(fromHost(Float32Array.from(blanks, (b) => sign * b), [1, blanks.length, 1, 1]), model.device));
    const centred = track(ops().add(x, offset(-1)));
    const back = offset(1);
    view = (dy, dx, flip) => track(ops().add(track(native().tta.view(centred, dy, dx, flip, 0)), back));
  }
  let sum: NativeTensor | undefined;
  for (const v of views) {
    const input = v.dy === 0 && v.dx === 0 && !v.flip ? x : view(v.dy, v.dx, v.flip);
    const logits = logitsOf(input);
    sum = sum ? ops().add(sum, logits) : logits;
  }
  return ops().mulScalar(sum!, 1 / views.length);
}
