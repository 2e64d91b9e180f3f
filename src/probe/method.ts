// The one shape every attribution method has (as Captum's `attribute`): a block of images with one
// target each in, one map per image out (and, where the method has one, its completeness delta).
// explain.ts picks the method by name; each method lives in its own file.
//
// A map has a value per input value (C x H x W, as Captum's input attributions: the gradient
// methods) or one per pixel (H x W: occlusion, whose window covers every channel of a pixel, and
// the CAMs, whose maps come from a layer's positions); `perPixel` says which.
import type { MethodName, MethodSettings } from './options';
import type { ProbeRunner } from './runner';

/** Images explained together: pixels in [0, 1], their targets and their target logits. */
export interface ImageBlock {
  /** count * C * H * W values in [0, 1] (channel-planar). */
  pixels: Float32Array;
  /** Index of the block's first image among explain()'s images: noise is drawn per image index, so chunking does not change a map. */
  first: number;
  count: number;
  /** The class each image's map explains. */
  targets: Int32Array;
  /** Each image's target logit, f(x). */
  scores: Float32Array;
}

export interface Attribution {
  /** count * C * H * W values, or count * H * W for a perPixel method. */
  maps: Float32Array;
  /** Per image: sum of the map - (f(x) - f(baseline)); methods that promise completeness only. */
  deltas?: Float64Array;
}

export interface AttributionMethod {
  readonly name: MethodName;
  /** One value per pixel (all its channels together) rather than one per input value. */
  readonly perPixel: boolean;
  attribute(runner: ProbeRunner, block: ImageBlock, settings: MethodSettings): Promise<Attribution>;
}

/** A fill function (runner.ts) that copies image `image(row)` of the block (`values` = C * H * W per image). */
export function copyImage(block: ImageBlock, values: number, image: (row: number) => number = (row) => row) {
  return (row: number, into: Float32Array): void => {
    const i = image(row);
    into.set(block.pixels.subarray(i * values, (i + 1) * values));
  };
}

/** A 32-bit seed for image `index` (among explain()'s images) and draw `draw`, from the user's seed. */
export function imageSeed(seed: number, index: number, draw = 0): number {
  let h = (seed ^ Math.imul(index + 1, 0x9e3779b1)) >>> 0;
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b) ^ Math.imul(draw + 1, 0xc2b2ae35);
  return (h ^ (h >>> 13)) >>> 0;
}
