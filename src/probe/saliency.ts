// Saliency (Simonyan et al. 2014): |d logit / d pixel|. With smoothing, the gradient is taken at
// `samples` noisy copies x + N(0, sigma^2) of each image (sigma a fraction of the pixel range
// [0, 1]; the copies are not clipped): SmoothGrad (Smilkov et al. 2017) averages their absolute
// values, as Captum's NoiseTunnel over Saliency does; VarGrad (Adebayo et al. 2018) takes the
// population variance of the signed gradients. The noise is drawn per image index from the seed,
// one draw per input value (every channel of a colour image gets its own noise). The map has a
// value per input value, as Captum's Saliency (|gradient| per channel).
import { AttributionMethod, copyImage, imageSeed } from './method';
import { normalSource } from './random';

export const saliency: AttributionMethod = {
  name: 'saliency',
  perPixel: false,
  async attribute(runner, block, settings) {
    const n = runner.values;
    const maps = new Float32Array(block.count * n);
    if (settings.smoothing === 'none' || settings.smoothing === undefined) {
      await runner.gradients(block.count, copyImage(block, n), (row) => block.targets[row], (row, gradient) => {
        for (let p = 0; p < n; ++p) maps[row * n + p] = Math.abs(gradient[p]);
      });
      return { maps };
    }
    const samples = settings.samples!;
    const sigma = settings.sigma!;
    const seed = settings.seed ?? 0;
    const sum = new Float64Array(block.count * n);
    const sumSquares = new Float64Array(block.count * n);
    const vargrad = settings.smoothing === 'vargrad';
    await runner.gradients(block.count * samples, (row, into) => {
      const image = Math.floor(row / samples);
      const noise = normalSource(imageSeed(seed, block.first + image, row % samples));
      const source = block.pixels.subarray(image * n, (image + 1) * n);
      for (let p = 0; p < n; ++p) into[p] = source[p] + sigma * noise();
    }, (row) => block.targets[Math.floor(row / samples)], (row, gradient) => {
      const at = Math.floor(row / samples) * n;
      for (let p = 0; p < n; ++p) {
        const g = gradient[p];
        sum[at + p] += vargrad ? g : Math.abs(g);
        sumSquares[at + p] += g * g;
      }
    });
    for (let i = 0; i < maps.length; ++i) {
      const mean = sum[i] / samples;
      maps[i] = vargrad ? Math.max(sumSquares[i] / samples - mean * mean, 0) : mean;
    }
    return { maps };
  },
};
