// Occlusion (Zeiler & Fergus 2014): a window slides over the image, its pixels replaced by the
// baseline's (default 0); each pixel's attribution is the drop of the target logit, f(x) -
// f(x occluded), averaged over the windows that cover it (Captum's definition). Windows start at
// 0, stride, 2 stride, ...; where the stride does not reach the last row or column, one more window
// is placed flush with that edge, so that every pixel is covered. A 1x1 window with baseline 0 on a
// linear model gives w * x exactly.
//
// On a colour image the window covers every channel of its pixels (a pixel is removed whole, as a
// Captum window of shape (C, h, w)), so the map has one value per pixel: on a linear model, a 1x1
// window gives sum over channels of w_c * x_c (Captum repeats that value in each channel).
import { baselineImage } from './image-ops';
import { AttributionMethod, imageSeed } from './method';

/** Window starts along one side: 0, stride, ... and, if the last misses the edge, one flush with it. */
export function windowStarts(size: number, window: number, stride: number): number[] {
  const starts: number[] = [];
  for (let s = 0; s + window <= size; s += stride) starts.push(s);
  if (starts[starts.length - 1] + window < size) starts.push(size - window);
  return starts;
}

export const occlusion: AttributionMethod = {
  name: 'occlusion',
  perPixel: true,
  async attribute(runner, block, settings) {
    const { channels, height: h, width: w, values } = runner;
    const n = runner.plane;
    const [wh, ww] = settings.window!;
    const [sh, sw] = settings.stride!;
    const windows = windowStarts(h, wh, sh).flatMap((y) => windowStarts(w, ww, sw).map((x) => [y, x] as const));
    const coverage = new Float32Array(n);
    for (const [y0, x0] of windows) for (let y = y0; y < y0 + wh; ++y) for (let x = x0; x < x0 + ww; ++x) coverage[y * w + x] += 1;
    const baselines = new Float32Array(block.count * values);
    for (let i = 0; i < block.count; ++i) {
      baselines.set(baselineImage(block.pixels.subarray(i * values, (i + 1) * values), channels, h, w, settings.baseline ?? 'black', settings.blurSigma ?? 0,
        imageSeed(settings.seed ?? 0, block.first + i)), i * values);
    }
    const per = windows.length;
    const logits = await runner.logits(block.count * per, (row, into) => {
      const at = Math.floor(row / per) * values;
      const [y0, x0] = windows[row % per];
      into.set(block.pixels.subarray(at, at + values));
      for (let c = 0; c < channels; ++c) {
        const plane = c * n;
        for (let y = y0; y < y0 + wh; ++y) for (let x = x0; x < x0 + ww; ++x) into[plane + y * w + x] = baselines[at + plane + y * w + x];
      }
    });
    const maps = new Float32Array(block.count * n);
    for (let row = 0; row < block.count * per; ++row) {
      const image = Math.floor(row / per);
      const [y0, x0] = windows[row % per];
      const drop = block.scores[image] - logits[row * runner.classes + block.targets[image]];
      for (let y = y0; y < y0 + wh; ++y) for (let x = x0; x < x0 + ww; ++x) maps[image * n + y * w + x] += drop;
    }
    for (let p = 0; p < maps.length; ++p) maps[p] /= coverage[p % n];
    return { maps };
  },
};
