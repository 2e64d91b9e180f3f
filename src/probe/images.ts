// The images every probing function takes, checked as predict() takes them: uint8 (0..255) or
// float ([0, 1]), whole images of the model's input size and channel count (N x C x H x W,
// channel-planar, as predict() and the Split type hold them), finite.
import type { CnnModel } from '../nn/model';
import { checkFinitePixels } from '../nn/model-options';
import { expected } from '../util/validate';

/** The input a model's probes work on: its channels and size, and the values per image. */
export interface ImageGeometry {
  channels: number;
  height: number;
  width: number;
  /** height * width: the pixels of one image (a pixel is all its channels). */
  plane: number;
  /** channels * plane: the values of one image. */
  values: number;
}

export function imageGeometry(model: CnnModel): ImageGeometry {
  const [height, width] = model.inputSize;
  const channels = model.inputChannels;
  return { channels, height, width, plane: height * width, values: channels * height * width };
}

/** "28x28" for a grey image, "3x32x32" (channels x height x width) for a colour one. */
export function imageSizeText(channels: number, height: number, width: number): string {
  return channels === 1 ? `${height}x${width}` : `${channels}x${height}x${width}`;
}

/** Checks `images` against the model's input size and channels; returns how many there are. */
export function checkProbeImages(images: unknown, model: CnnModel): number {
  const { channels, height: h, width: w, plane, values } = imageGeometry(model);
  if (!(images instanceof Uint8Array) && !(images instanceof Float32Array)) {
    throw new TypeError(expected('a Uint8Array or Float32Array of images', 'images', images));
  }
  if (images.length === 0 || images.length % values !== 0) {
    const what = channels === 1
      ? `whole ${h}x${w} images (a non-zero multiple of ${values} values)`
      : `whole ${channels}-channel ${h}x${w} images (${channels}x${h}x${w}, channel-planar: a non-zero multiple of ${values} values)`;
    // A whole number of one-channel images given to a colour model: say so, it is the likely mistake.
    const grey = channels > 1 && images.length > 0 && images.length % plane === 0
      ? `: that is ${images.length / plane} one-channel ${h}x${w} images, but the model takes ${channels}-channel images (spec.inputChannels ${channels})`
      : '';
    throw new RangeError(expected(what, 'images', images) + ` of ${images.length} values${grey}`);
  }
  checkFinitePixels(images, 'images');
  return images.length / values;
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

/** How pictures and checks make a colour map's per-pixel map, as explain.json records it. */
export const PIXEL_REDUCTION = 'sum over the map\'s channels (overlay.png, the faithfulness checks, summaries and rank correlations use it)';

/**
 * The per-pixel map of maps with `channels` channels each ([count, channels, plane]): the sum over
 * the channels (identity for one channel). Signed maps (gradient x input, IG) sum their channels'
 * contributions, as Captum's visualize_image_attr does; saliency's channels are |gradient|, so the
 * sum is the L1 norm of the pixel's gradient. See docs/probing.md ("Colour models").
 */
export function pixelMaps(maps: Float32Array, count: number, channels: number, plane: number): Float32Array {
  if (channels === 1) return maps;
  const out = new Float32Array(count * plane);
  for (let i = 0; i < count; ++i) {
    for (let c = 0; c < channels; ++c) {
      const at = (i * channels + c) * plane;
      for (let p = 0; p < plane; ++p) out[i * plane + p] += maps[at + p];
    }
  }
  return out;
}

/**
 * Images of `channels` channels as a picture can show them: 1 (grey) and 3 (colour) as they are,
 * any other count as the mean of its channels (grey). Values scaled by `scale` (1/255 for uint8).
 */
export function displayImages(images: ArrayLike<number>, count: number, channels: number, plane: number, scale = 1): { data: Float32Array; channels: 1 | 3 } {
  if (channels === 1 || channels === 3) return { data: Float32Array.from(images as ArrayLike<number>, (v) => v * scale), channels };
  const data = new Float32Array(count * plane);
  for (let i = 0; i < count; ++i) {
    for (let c = 0; c < channels; ++c) for (let p = 0; p < plane; ++p) data[i * plane + p] += images[(i * channels + c) * plane + p] * scale / channels;
  }
  return { data, channels: 1 };
}
