// The images every probing function takes, checked as predict() takes them: uint8 (0..255) or
// float ([0, 1]), whole images of the model's input size, finite.
import type { CnnModel } from '../nn/model';
import { checkFinitePixels } from '../nn/model-options';
import { expected } from '../util/validate';

/** Checks `images` against the model's input size; returns how many there are. */
export function checkProbeImages(images: unknown, model: CnnModel): number {
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
