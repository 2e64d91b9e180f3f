// Host-side image arithmetic of the probing methods: maps are small (a few channels of a few hundred
// to a few thousand pixels), so they are computed in JS memory, where every rule is visible and the
// same on every device.
import type { Baseline } from './options';
import { uniformSource } from './random';

/**
 * PyTorch's source coordinate of output pixel `o` for bilinear resizing with align_corners=False
 * (aten's area_pixel_compute_source_index): the centres of the two grids aligned, negative
 * coordinates clamped to 0.
 */
function sourceIndex(o: number, scale: number): number {
  return Math.max(scale * (o + 0.5) - 0.5, 0);
}

/**
 * Bilinear resize of `count` maps of inH x inW to outH x outW, as torch.nn.functional.interpolate(
 * mode='bilinear', align_corners=False) without a scale factor (scale = in / out).
 * @example upsampleBilinear(cam, 1, 7, 7, 28, 28)
 */
export function upsampleBilinear(maps: ArrayLike<number>, count: number, inH: number, inW: number, outH: number, outW: number): Float32Array {
  const out = new Float32Array(count * outH * outW);
  const rows = axisWeights(inH, outH);
  const cols = axisWeights(inW, outW);
  for (let m = 0; m < count; ++m) {
    const src = m * inH * inW;
    const dst = m * outH * outW;
    for (let y = 0; y < outH; ++y) {
      const r0 = src + rows.i0[y] * inW;
      const r1 = src + rows.i1[y] * inW;
      const wy = rows.lambda[y];
      for (let x = 0; x < outW; ++x) {
        const c0 = cols.i0[x];
        const c1 = cols.i1[x];
        const wx = cols.lambda[x];
        const top = (1 - wx) * maps[r0 + c0] + wx * maps[r0 + c1];
        const bottom = (1 - wx) * maps[r1 + c0] + wx * maps[r1 + c1];
        out[dst + y * outW + x] = (1 - wy) * top + wy * bottom;
      }
    }
  }
  return out;
}

function axisWeights(inSize: number, outSize: number): { i0: Int32Array; i1: Int32Array; lambda: Float64Array } {
  const scale = inSize / outSize;
  const i0 = new Int32Array(outSize);
  const i1 = new Int32Array(outSize);
  const lambda = new Float64Array(outSize);
  for (let o = 0; o < outSize; ++o) {
    const src = sourceIndex(o, scale);
    const lo = Math.min(Math.floor(src), inSize - 1);
    i0[o] = lo;
    i1[o] = lo < inSize - 1 ? lo + 1 : lo;
    lambda[o] = src - lo;
  }
  return { i0, i1, lambda };
}

/**
 * A Gaussian blur of one h x w image: separable, the kernel cut at 3 sigma and normalised, edges
 * replicated (the image's border pixels extend outwards).
 */
export function gaussianBlur(image: ArrayLike<number>, h: number, w: number, sigma: number): Float32Array {
  const radius = Math.max(1, Math.ceil(3 * sigma));
  const kernel = new Float64Array(2 * radius + 1);
  let total = 0;
  for (let k = -radius; k <= radius; ++k) total += (kernel[k + radius] = Math.exp(-(k * k) / (2 * sigma * sigma)));
  for (let k = 0; k < kernel.length; ++k) kernel[k] /= total;
  const clamp = (v: number, hi: number) => (v < 0 ? 0 : v > hi ? hi : v);
  const across = new Float64Array(h * w);
  for (let y = 0; y < h; ++y) {
    for (let x = 0; x < w; ++x) {
      let sum = 0;
      for (let k = -radius; k <= radius; ++k) sum += kernel[k + radius] * image[y * w + clamp(x + k, w - 1)];
      across[y * w + x] = sum;
    }
  }
  const out = new Float32Array(h * w);
  for (let y = 0; y < h; ++y) {
    for (let x = 0; x < w; ++x) {
      let sum = 0;
      for (let k = -radius; k <= radius; ++k) sum += kernel[k + radius] * across[clamp(y + k, h - 1) * w + x];
      out[y * w + x] = sum;
    }
  }
  return out;
}

/**
 * A baseline image for `image` (`channels` planes of h x w, pixels in [0, 1]): a constant, each
 * channel blurred on its own, or uniform noise (one draw per value) drawn from `noiseSeed` (the
 * caller derives it from the image's index, so that an image gets the same baseline whatever chunk
 * it falls in).
 */
export function baselineImage(image: Float32Array, channels: number, h: number, w: number, baseline: Baseline, blurSigma: number, noiseSeed: number): Float32Array {
  const values = channels * h * w;
  if (baseline === 'black') return new Float32Array(values);
  if (typeof baseline === 'number') return new Float32Array(values).fill(baseline);
  if (baseline === 'blur') {
    const out = new Float32Array(values);
    for (let c = 0; c < channels; ++c) out.set(gaussianBlur(image.subarray(c * h * w, (c + 1) * h * w), h, w, blurSigma), c * h * w);
    return out;
  }
  return Float32Array.from({ length: values }, uniformSource(noiseSeed));
}
