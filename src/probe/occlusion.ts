// Occlusion (Zeiler & Fergus 2014): a window slides over the image, its pixels replaced by the
// baseline's (default 0); each pixel's attribution is the drop of the target logit, f(x) -
// f(x occluded), averaged over the windows that cover it (Captum's definition). Windows start at
// 0, stride, 2 stride, ...; where the stride does not reach the last row or column, one more window
// is placed flush with that edge, so that every pixel is covered. A 1x1 window with baseline 0 on a
// linear model gives w * x exactly.
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
  async attribute(runner, block, settings) {
    const { height: h, width: w } = runner;
    const n = runner.pixels;
    const [wh, ww] = settings.window!;
    const [sh, sw] = settings.stride!;
    const windows = windowStarts(h, wh, sh).flatMap((y) => windowStarts(w, ww, sw).map((x) => [y, x] as const));
    const coverage = new Float32Array(n);
    for (const [y0, x0] of windows) for (let y = y0; y < y0 + wh; ++y) for (let x = x0; x < x0 + ww; ++x) coverage[y * w + x] += 1;
    const baselines = new Float32Array(block.count * n);
    for (let i = 0; i < block.count; ++i) {
      baselines.set(baselineImage(block.pixels.subarray(i * n, (i + 1) * n), h, w, settings.baseline ?? 'black', settings.blurSigma ?? 0,
        imageSeed(settings.seed ?? 0, block.first + i)), i * n);
    }
    const per = windows.length;
    const logits = await runner.logits(block.count * per, (row, into) => {
      const at = Math.floor(row / per) * n;
      const [y0, x0] = windows[row % per];
      into.set(block.pixels.subarray(at, at + n));
      for (let y = y0; y < y0 + wh; ++y) for (let x = x0; x < x0 + ww; ++x) into[y * w + x] = baselines[at + y * w + x];
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
