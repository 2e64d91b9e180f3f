// Gradient x input (Shrikumar et al. 2016): each pixel's value times the target logit's gradient at
// it. For a linear model it is each pixel's exact contribution w * x (the bias aside).
import { AttributionMethod, copyImage } from './method';

export const gradientXInput: AttributionMethod = {
  name: 'gradient-x-input',
  perPixel: false,
  async attribute(runner, block) {
    const n = runner.values;
    const maps = new Float32Array(block.count * n);
    await runner.gradients(block.count, copyImage(block, n), (row) => block.targets[row], (row, gradient) => {
      for (let p = 0; p < n; ++p) maps[row * n + p] = gradient[p] * block.pixels[row * n + p];
    });
    return { maps };
  },
};
