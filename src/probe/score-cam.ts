// Score-CAM (Wang et al. 2020), gradient-free: each feature map A_k of the layer, resized to the
// input (bilinear, align_corners=False) and scaled to [0, 1] (min-max per map; a constant map masks
// everything), masks the image; the target's softmax probability on the masked image, p_k, weighs
// the map: ReLU(sum_k p_k A_k), resized to the input. These are the reference implementation's
// weights (no baseline score subtracted). One forward pass per channel and image, batched. A
// colour image is masked in every channel alike.
import { upsampleBilinear } from './image-ops';
import { AttributionMethod, copyImage } from './method';

function softmaxAt(logits: Float32Array, offset: number, classes: number, target: number): number {
  let max = -Infinity;
  for (let c = 0; c < classes; ++c) max = Math.max(max, logits[offset + c]);
  let total = 0;
  for (let c = 0; c < classes; ++c) total += Math.exp(logits[offset + c] - max);
  return Math.exp(logits[offset + target] - max) / total;
}

/** A map resized to the input and min-max scaled to [0, 1] (all zeros if it is constant). */
function unitMask(map: Float32Array, inH: number, inW: number, outH: number, outW: number): Float32Array {
  const up = upsampleBilinear(map, 1, inH, inW, outH, outW);
  let lo = Infinity;
  let hi = -Infinity;
  for (const v of up) { lo = Math.min(lo, v); hi = Math.max(hi, v); }
  if (!(hi > lo)) return up.fill(0);
  for (let p = 0; p < up.length; ++p) up[p] = (up[p] - lo) / (hi - lo);
  return up;
}

export const scoreCam: AttributionMethod = {
  name: 'score-cam',
  perPixel: true,
  async attribute(runner, block, settings) {
    const n = runner.plane;
    const values = runner.values;
    let channels = 0;
    let fh = 0;
    let fw = 0;
    let activations = new Float32Array(0);
    await runner.featureMaps(settings.layer!, block.count, copyImage(block, values), (start, maps) => {
      if (start === 0) {
        ({ channels, height: fh, width: fw } = maps);
        activations = new Float32Array(block.count * channels * fh * fw);
      }
      activations.set(maps.values, start * channels * fh * fw);
    });
    const area = fh * fw;
    const logits = await runner.logits(block.count * channels, (row, into) => {
      const image = Math.floor(row / channels);
      const mask = unitMask(activations.subarray(row * area, (row + 1) * area), fh, fw, runner.height, runner.width);
      for (let v = 0; v < values; ++v) into[v] = block.pixels[image * values + v] * mask[v % n];
    });
    const maps = new Float32Array(block.count * n);
    for (let i = 0; i < block.count; ++i) {
      const cam = new Float64Array(area);
      for (let k = 0; k < channels; ++k) {
        const row = i * channels + k;
        const weight = softmaxAt(logits, row * runner.classes, runner.classes, block.targets[i]);
        for (let p = 0; p < area; ++p) cam[p] += weight * activations[row * area + p];
      }
      maps.set(upsampleBilinear(Float32Array.from(cam, (v) => Math.max(v, 0)), 1, fh, fw, runner.height, runner.width), i * n);
    }
    return { maps };
  },
};
