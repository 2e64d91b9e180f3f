// Integrated gradients (Sundararajan et al. 2017): attr = (x - b) * integral over a in [0, 1] of
// d f / d x at b + a (x - b), the straight path from a baseline b to the image x.
//
// Quadrature: the midpoint rule. With m = steps, the gradient is taken at a_k = (k + 1/2) / m for
// k = 0..m-1 and averaged: m network evaluations, error O(1/m^2) where f is smooth along the path
// (ReLU networks are piecewise linear: the error then comes from the kinks and falls as O(1/m)
// in the worst case). The completeness delta, sum(attr) - (f(x) - f(b)), measures that error for
// each image and is always returned.
import { baselineImage } from './image-ops';
import { AttributionMethod, imageSeed } from './method';

export const integratedGradients: AttributionMethod = {
  name: 'integrated-gradients',
  perPixel: false,
  async attribute(runner, block, settings) {
    const n = runner.values;
    const steps = settings.steps!;
    const baselines = new Float32Array(block.count * n);
    for (let i = 0; i < block.count; ++i) {
      const image = block.pixels.subarray(i * n, (i + 1) * n);
      baselines.set(baselineImage(image, runner.channels, runner.height, runner.width, settings.baseline ?? 'black', settings.blurSigma ?? 0,
        imageSeed(settings.seed ?? 0, block.first + i)), i * n);
    }
    const gradientSum = new Float64Array(block.count * n);
    await runner.gradients(block.count * steps, (row, into) => {
      const at = Math.floor(row / steps) * n;
      const alpha = ((row % steps) + 0.5) / steps;
      for (let p = 0; p < n; ++p) into[p] = baselines[at + p] + alpha * (block.pixels[at + p] - baselines[at + p]);
    }, (row) => block.targets[Math.floor(row / steps)], (row, gradient) => {
      const at = Math.floor(row / steps) * n;
      for (let p = 0; p < n; ++p) gradientSum[at + p] += gradient[p];
    });
    const baselineLogits = await runner.logits(block.count, (row, into) => into.set(baselines.subarray(row * n, (row + 1) * n)));
    const maps = new Float32Array(block.count * n);
    const deltas = new Float64Array(block.count);
    for (let i = 0; i < block.count; ++i) {
      let total = 0;
      for (let p = i * n; p < (i + 1) * n; ++p) {
        const value = (block.pixels[p] - baselines[p]) * (gradientSum[p] / steps);
        maps[p] = value;
        total += value;
      }
      const fBaseline = baselineLogits[i * runner.classes + block.targets[i]];
      deltas[i] = total - (block.scores[i] - fBaseline);
    }
    return { maps, deltas };
  },
};
