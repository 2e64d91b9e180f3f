// The images every probing function takes, checked as predict() takes them: uint8 (0..255) or
// float ([0, 1]), whole images of the model's input size, finite.
import type { CnnModel } from '../nn/model';
import { checkFinitePixels } from '../nn/model-options';
import { expected } from '../util/validate';

/**
 * Probing (explain, examples, embeddings, summaries, maximisation) handles grey models so far: a
 * colour model is refused here, before any native work, instead of giving maps of the wrong shape.
 */
export function checkGreyModel(model: CnnModel, what: string): void {
  if (model.inputChannels !== 1) {
    throw new RangeError(`Expected a 1-channel (grey) model for ${what} but the model takes ${model.inputChannels}-channel images: ` +
      'probing does not handle colour models yet (training, evaluation, predict, mosaics and exports do)');
  }
}

/** Checks `images` against the model's input size; returns how many there are. */
export function checkProbeImages(images: unknown, model: CnnModel): number {
  checkGreyModel(model, 'probing');
  const [h, w] = model.inputSize;
  if (!(images instanceof Uint8Array) && !(images instanceof Float32Array)) {
    throw new TypeError(expected('a Uint8Array or Float32Array of images', 'images', images));
  }
  if (images.length === 0 || images.length % (h * w) !== 0) {
    throw new RangeError(expected(`whole ${h}x${w} images (a non-zero multiple of ${h * w} values)`, 'images', images) + ` of ${images.length} values`);
  }
  checkFinitePixels(images, 'images');
  return images.length / (h * w);
}

/**
 * Pixels in [0, 1] as float32: uint8 images divided by 255, float images copied. A plain loop:
 * `Float32Array.from(images, mapFn)` calls its function per pixel and took a sixth of Grad-CAM's
 * time on 10,000 images (profiled 2026-12-02).
 */
export function unitPixels(images: Uint8Array | Float32Array): Float32Array {
  const out = new Float32Array(images.length);
  if (images instanceof Float32Array) {
    out.set(images);
    return out;
  }
  const scale = 1 / 255;
  for (let i = 0; i < images.length; ++i) out[i] = images[i] * scale;
  return out;
}
