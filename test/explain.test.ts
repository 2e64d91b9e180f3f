// explain(): attribution maps that can be checked against closed forms (a linear model, the IG
// paper's sensitivity example, CAM on a global-average-pooling network, occlusion of a summed
// region), IG's completeness on the tutorial network, the same maps on the eager and the scripted
// path, no native tensor left behind, and bad input refused before any native work.
import { createModel, defaultSpec, explain } from '../src/index';
import type { CnnSpec, ExplainOptions } from '../src/index';
import { native } from '../src/core/native';
import { fromHost, noGrad } from '../src/core/ops';
import { tidy } from '../src/core/tidy';
import { CnnModel, modelFromParameters } from '../src/nn/model';
import { scriptLayers, splitScriptSources } from '../src/nn/split-script';
import { planModel } from '../src/nn/spec';
import { upsampleBilinear } from '../src/probe/image-ops';
import { windowStarts } from '../src/probe/occlusion';
import { imageSeed } from '../src/probe/method';
import { normalSource } from '../src/probe/random';
import { featureMapLayers as featureMapLayersOf } from '../src/probe/options';
import { fashion, FASHION_INPUT_NORM, specVariants } from './fixtures';
import { PYTHON, testWithPython, settledLiveTensors } from './helpers';
import { leakFree, maxAbs, maxAbsDiff, spread } from './probe-helpers';
import { spawnSync } from 'child_process';

const H = 28;
const W = 28;
const N = H * W;
const withTorch = testWithPython(['torch']);

/**
 * A model whose logits are linear in the pixels: conv1 is a 1x1 filter of weight 1 and bias 1
 * followed by ReLU, which is the identity plus 1 on pixels >= 0 (and has gradient 1 there, even at
 * 0); fc1 then gives logit c = sum_p weights[c][p] (x_p + 1) + bias_c.
 */
const LINEAR_SPEC: CnnSpec = { conv: [{ filters: 1, kernelSize: 1, activation: 'relu' }], dense: [], dropout: 0, classes: 2 };

function linearModel(weights: Float32Array, mode: 'eager' | 'script' = 'eager', inputNorm = { mean: 0, std: 1 }): CnnModel {
  return modelFromParameters(LINEAR_SPEC, [
    { name: 'conv1.weight', shape: [1, 1, 1, 1], values: new Float32Array([1]) },
    { name: 'conv1.bias', shape: [1], values: new Float32Array([1]) },
    { name: 'fc1.weight', shape: [2, N], values: weights },
    { name: 'fc1.bias', shape: [2], values: new Float32Array([0.25, -0.5]) },
  ], { mode, inputNorm });
}

describe('closed forms on a linear model', () => {
  const weights = spread(2 * N, 1, -1, 1);
  const images = spread(3 * N, 2);
  // Class 1's weights times the pixels: the exact contribution of each pixel to logit 1.
  const wx = Float32Array.from(images, (x, i) => weights[N + (i % N)] * x);

  test.each(['eager', 'script'] as const)('%s: IG (black) = gradient x input = 1x1 occlusion with 0 = w * x; saliency = |w|', async (mode) => {
    const model = linearModel(weights, mode, { mean: 0.3, std: 0.5 });
    // Standardisation (x - 0.3) / 0.5 is part of the function, so the model's weights on the
    // standardised input are the ones above and their pixel weights are w / 0.5.
    const scaled = Float32Array.from(wx, (v) => v / 0.5);
    const target = 1;
    const ig = await leakFree(() => explain(model, images, { method: 'integrated-gradients', target, steps: 4 }));
    const gxi = await leakFree(() => explain(model, images, { method: 'gradient-x-input', target }));
    const occ = await leakFree(() => explain(model, images, { method: 'occlusion', target, window: 1, stride: 1, baseline: 0 }));
    const sal = await leakFree(() => explain(model, images, { method: 'saliency', target }));
    expect(maxAbsDiff(ig.maps, scaled)).toBeLessThan(1e-5);
    expect(maxAbsDiff(gxi.maps, scaled)).toBeLessThan(1e-5);
    // Occlusion subtracts two logits of a 784-term float32 sum (|f| ~ 10): a few float32 steps of f apart.
    expect(maxAbsDiff(occ.maps, scaled)).toBeLessThan(3e-4);
    expect(maxAbsDiff(sal.maps, Float32Array.from(images, (_, i) => Math.abs(weights[N + (i % N)]) / 0.5))).toBeLessThan(1e-5);
    // Completeness holds exactly on a linear function, whatever the step count.
    expect(maxAbs(ig.deltas!)).toBeLessThan(1e-3);
    expect(Array.from(ig.targets)).toEqual([1, 1, 1]);
    model.dispose();
  });

  test('the IG paper\'s sensitivity example f(x) = 1 - ReLU(1 - x) at x = 2: saliency 0, IG 1', async () => {
    // conv1: ReLU(1 - x) per pixel; fc1: logit 0 = 1 - ReLU(1 - x_p) for one pixel p.
    const p = 300;
    const fc = new Float32Array(2 * N);
    fc[p] = -1;
    const model = modelFromParameters(LINEAR_SPEC, [
      { name: 'conv1.weight', shape: [1, 1, 1, 1], values: new Float32Array([-1]) },
      { name: 'conv1.bias', shape: [1], values: new Float32Array([1]) },
      { name: 'fc1.weight', shape: [2, N], values: fc },
      { name: 'fc1.bias', shape: [2], values: new Float32Array([1, 0]) },
    ]);
    const image = new Float32Array(N);
    image[p] = 2;
    const sal = await explain(model, image, { method: 'saliency', target: 0 });
    const ig = await explain(model, image, { method: 'integrated-gradients', target: 0, steps: 64 });
    expect(sal.maps[p]).toBe(0);
    expect(ig.maps[p]).toBeCloseTo(1, 6);
    expect(maxAbs(ig.deltas!)).toBeLessThan(1e-6);
    model.dispose();
  });

  test('occlusion of a model that sums a region returns the region', async () => {
    // Logit 0 sums rows 8..15, columns 4..11 (2x2-aligned); the image is all ones.
    const region = new Float32Array(N);
    for (let y = 8; y < 16; ++y) for (let x = 4; x < 12; ++x) region[y * W + x] = 1;
    const fc = new Float32Array(2 * N);
    fc.set(region, 0);
    const model = linearModel(fc);
    const ones = new Float32Array(N).fill(1);
    const one = await explain(model, ones, { method: 'occlusion', target: 0, window: 1, stride: 1 });
    expect(Array.from(one.maps)).toEqual(Array.from(region));
    // A 2x2 window on a stride of 2: each window inside the region drops the logit by 4.
    const two = await explain(model, ones, { method: 'occlusion', target: 0, window: 2, stride: 2 });
    expect(Array.from(two.maps)).toEqual(Array.from(region, (v) => 4 * v));
    model.dispose();
  });

  test('IG takes the midpoint rule\'s points (k + 1/2) / steps: at steps = 3 the sensitivity example gives 2/3', async () => {
    // f = 1 - ReLU(1 - x_p) from 0 to x_p = 2: the path points x = 1/3, 1, 5/3 have gradients 1, 0
    // (ReLU'(0) = 0), 0, so IG = 2 * (1/3). A left Riemann sum (x = 0, 2/3, 4/3) would give 4/3.
    const p = 300;
    const fc = new Float32Array(2 * N);
    fc[p] = -1;
    const model = modelFromParameters(LINEAR_SPEC, [
      { name: 'conv1.weight', shape: [1, 1, 1, 1], values: new Float32Array([-1]) },
      { name: 'conv1.bias', shape: [1], values: new Float32Array([1]) },
      { name: 'fc1.weight', shape: [2, N], values: fc },
      { name: 'fc1.bias', shape: [2], values: new Float32Array([1, 0]) },
    ]);
    const image = new Float32Array(N);
    image[p] = 2;
    const ig = await explain(model, image, { method: 'integrated-gradients', target: 0, steps: 3 });
    expect(ig.maps[p]).toBeCloseTo(2 / 3, 6);
    expect(ig.deltas![0]).toBeCloseTo(2 / 3 - 1, 6);
    model.dispose();
  });

  test('occlusion averages the drops of every window covering a pixel (overlapping windows)', async () => {
    const model = linearModel(weights);
    const image = images.subarray(0, N);
    const e = await explain(model, image, { method: 'occlusion', target: 1, window: 3, stride: 2 });
    const expected = new Float64Array(N);
    const covering = new Float64Array(N);
    for (const y0 of windowStarts(H, 3, 2)) {
      for (const x0 of windowStarts(W, 3, 2)) {
        let drop = 0;
        for (let y = y0; y < y0 + 3; ++y) for (let x = x0; x < x0 + 3; ++x) drop += weights[N + y * W + x] * image[y * W + x];
        for (let y = y0; y < y0 + 3; ++y) for (let x = x0; x < x0 + 3; ++x) { expected[y * W + x] += drop; covering[y * W + x] += 1; }
      }
    }
    expect(maxAbsDiff(e.maps, expected.map((v, i) => v / covering[i]))).toBeLessThan(3e-4);
    model.dispose();
  });

  test('VarGrad is the variance of the signed gradients, SmoothGrad the mean of their absolute values (at a kink where the gradient flips sign)', async () => {
    // Two 1x1 filters: ReLU(x - 1) and ReLU(x + 1) = x + 1; logit 0 = 2 ReLU(x_p - 1) - (x_p + 1), whose
    // gradient is -1 below x_p = 1 and +1 above. At x_p = 1 the noise picks the sign.
    const spec: CnnSpec = { conv: [{ filters: 2, kernelSize: 1, activation: 'relu' }], dense: [], dropout: 0, classes: 2 };
    const p = 123;
    const fc = new Float32Array(2 * 2 * N);
    fc[p] = 2;
    fc[N + p] = -1;
    const model = modelFromParameters(spec, [
      { name: 'conv1.weight', shape: [2, 1, 1, 1], values: new Float32Array([1, 1]) },
      { name: 'conv1.bias', shape: [2], values: new Float32Array([-1, 1]) },
      { name: 'fc1.weight', shape: [2, 2 * N], values: fc },
      { name: 'fc1.bias', shape: [2], values: new Float32Array(2) },
    ]);
    const image = new Float32Array(N);
    image[p] = 1;
    const samples = 16;
    const settings = { method: 'saliency', target: 0, samples, sigma: 0.2, seed: 3 } as const;
    const vargrad = await explain(model, image, { ...settings, smoothing: 'vargrad' });
    const smooth = await explain(model, image, { ...settings, smoothing: 'smoothgrad' });
    // The same noise, drawn as the method draws it: the signs of the samples' gradients at p.
    const signs = Array.from({ length: samples }, (_, s) => {
      const noise = normalSource(imageSeed(3, 0, s));
      for (let q = 0; q < p; ++q) noise();
      return 1 + 0.2 * noise() > 1 ? 1 : -1;
    });
    const mean = signs.reduce((a, b) => a + b, 0) / samples;
    expect(1 - mean * mean).toBeGreaterThan(0.1);
    expect(vargrad.maps[p]).toBeCloseTo(1 - mean * mean, 6);
    expect(smooth.maps[p]).toBeCloseTo(1, 6);
    expect(maxAbs(vargrad.maps.filter((_, i) => i !== p))).toBe(0);
    model.dispose();
  });

  test('SmoothGrad of a linear model is |w| and its VarGrad is 0 (the gradient does not depend on the noise); seeded', async () => {
    const model = linearModel(weights);
    const image = images.subarray(0, N);
    const smooth = await leakFree(() => explain(model, image, { method: 'saliency', target: 1, smoothing: 'smoothgrad', samples: 3, sigma: 0.2, seed: 5, chunkSize: 2 }));
    expect(maxAbsDiff(smooth.maps, Float32Array.from({ length: N }, (_, i) => Math.abs(weights[N + i])))).toBeLessThan(1e-6);
    const vargrad = await explain(model, image, { method: 'saliency', target: 1, smoothing: 'vargrad', samples: 3 });
    expect(maxAbs(vargrad.maps)).toBeLessThan(1e-10);
    model.dispose();
  });
});

describe('on the tutorial network', () => {
  let eager: CnnModel;
  let script: CnnModel;
  let images: Uint8Array;
  beforeAll(() => {
    eager = createModel(defaultSpec(), { seed: 3, inputNorm: FASHION_INPUT_NORM });
    script = eager.toScript();
    images = fashion().test.images.subarray(0, 3 * N);
  });
  afterAll(() => { eager?.dispose(); script?.dispose(); });

  test('IG with 256 steps is complete to 1% of f(x) - f(baseline), and its delta shrinks as steps grow', async () => {
    const coarse = await explain(eager, images, { method: 'integrated-gradients', steps: 8 });
    const fine = await leakFree(() => explain(script, images, { method: 'integrated-gradients', steps: 256, chunkSize: 128 }));
    for (let i = 0; i < 3; ++i) {
      const sum = fine.maps.subarray(i * N, (i + 1) * N).reduce((s, v) => s + v, 0);
      const gap = sum - fine.deltas![i]; // f(x) - f(baseline)
      expect(Math.abs(gap)).toBeGreaterThan(1e-3);
      expect(Math.abs(fine.deltas![i])).toBeLessThan(0.01 * Math.abs(gap));
    }
    expect(maxAbs(fine.deltas!)).toBeLessThan(maxAbs(coarse.deltas!));
  });

  const METHOD_OPTIONS: ExplainOptions[] = [
    { method: 'saliency' },
    { method: 'saliency', smoothing: 'smoothgrad', samples: 3, seed: 2 },
    { method: 'saliency', smoothing: 'vargrad', samples: 3, seed: 2 },
    { method: 'gradient-x-input' },
    { method: 'integrated-gradients', steps: 8, baseline: 'blur' },
    { method: 'integrated-gradients', steps: 8, baseline: 'uniform', seed: 4 },
    { method: 'occlusion', window: 7, stride: 7 },
    { method: 'grad-cam' },
    { method: 'grad-cam', layer: 'conv1.pool' },
    { method: 'hires-cam', layer: 'conv2' },
    { method: 'score-cam', layer: 'conv2.pool' },
  ];

  test.each(METHOD_OPTIONS.map((o) => [JSON.stringify(o), o] as const))('eager = script for %s (to 1e-5 of the map\'s scale), no tensor leaked', async (_name, options) => {
    // Small chunks on one side: blocks and batches split differently on the two paths.
    const a = await leakFree(() => explain(eager, images, { ...options, chunkSize: options.method === 'score-cam' ? 40 : 2 }));
    const b = await leakFree(() => explain(script, images, options));
    expect(maxAbs(a.maps)).toBeGreaterThan(0);
    expect(maxAbsDiff(a.maps, b.maps)).toBeLessThanOrEqual(1e-5 * Math.max(1, maxAbs(a.maps)));
    expect(Array.from(a.targets)).toEqual(Array.from(b.targets));
    expect(Array.from(a.predictions)).toEqual(Array.from(b.predictions));
  });

  test('targets: predicted by default, the labels, one class, or one per image', async () => {
    const labels = fashion().test.labels.subarray(0, 3);
    const predicted = await explain(eager, images, { method: 'gradient-x-input' });
    const probs = eager.predict(images);
    for (let i = 0; i < 3; ++i) {
      const row = Array.from(probs.subarray(i * 10, (i + 1) * 10));
      expect(predicted.predictions[i]).toBe(row.indexOf(Math.max(...row)));
    }
    expect(Array.from(predicted.targets)).toEqual(Array.from(predicted.predictions));
    expect(Array.from((await explain(eager, images, { method: 'gradient-x-input', target: 'label', labels })).targets)).toEqual(Array.from(labels));
    expect(Array.from((await explain(eager, images, { method: 'gradient-x-input', target: 7 })).targets)).toEqual([7, 7, 7]);
    const perImage = await explain(eager, images, { method: 'gradient-x-input', target: [1, 2, 3] });
    expect(Array.from(perImage.targets)).toEqual([1, 2, 3]);
    // Each map is its own target's: the first image alone with target 1 gives the same map.
    const alone = await explain(eager, images.subarray(0, N), { method: 'gradient-x-input', target: 1 });
    expect(maxAbsDiff(alone.maps, perImage.maps.subarray(0, N))).toBeLessThan(1e-6);
  });

  test('chunking does not change the maps (noise is drawn per image)', async () => {
    const options: ExplainOptions = { method: 'saliency', smoothing: 'smoothgrad', samples: 2, seed: 9 };
    const whole = await explain(eager, images, { ...options, chunkSize: 64 });
    const chunked = await explain(eager, images, { ...options, chunkSize: 1 });
    expect(maxAbsDiff(whole.maps, chunked.maps)).toBeLessThan(1e-6);
    const other = await explain(eager, images, { ...options, seed: 10 });
    expect(maxAbsDiff(whole.maps, other.maps)).toBeGreaterThan(0);
  });

  test('no pass runs more than chunkSize inputs, whatever the steps, samples, windows or channels', async () => {
    for (const model of [eager, script]) {
      const sizes: number[] = [];
      const logits = model.logits.bind(model);
      const spy = jest.spyOn(model, 'logits').mockImplementation((x) => { sizes.push(x.shape[0]); return logits(x); });
      try {
        await explain(model, images, { method: 'integrated-gradients', steps: 10, chunkSize: 7 });
        await explain(model, images, { method: 'saliency', smoothing: 'smoothgrad', samples: 5, chunkSize: 7 });
        await explain(model, images, { method: 'occlusion', window: 7, stride: 7, chunkSize: 7 });
        await explain(model, images, { method: 'score-cam', layer: 'conv1.pool', chunkSize: 7 });
      } finally {
        spy.mockRestore();
      }
      expect(Math.max(...sizes)).toBe(7);
      // Every row of IG's 3 x 10 path points, SmoothGrad's 3 x 5 copies, 3 x 16 windows and 3 x 32 masked images went through.
      expect(sizes.reduce((a, b) => a + b, 0)).toBe(4 * 3 + 30 + 3 + 15 + 48 + 96);
    }
  });

  test('the model keeps its gradients as they were (parameters take none during explain)', async () => {
    await explain(eager, images, { method: 'saliency' });
    await explain(eager, images, { method: 'grad-cam' });
    for (const p of eager.parameterTensors()) {
      expect(p.grad()).toBeNull();
      expect(p.requiresGrad).toBe(true);
    }
  });
});

describe('eager = script for the layer methods on every kind of spec (the split TorchScript against the eager layers)', () => {
  test.each(specVariants())('%s', async (_name, spec) => {
    // Batch-norm statistics other than the fresh ones (0 and 1), so that a split that skipped a batch norm would differ.
    const fresh = createModel(spec, { seed: 5 });
    const buffers = fresh.buffers().map((b) => ({ ...b, values: b.name.endsWith('running_mean') ? b.values.map((_, i) => 0.05 * (i % 3))
      : b.name.endsWith('running_var') ? b.values.map((_, i) => 0.6 + 0.2 * (i % 4)) : b.values }));
    const eager = modelFromParameters(spec, [...fresh.parameters(), ...buffers], { inputNorm: FASHION_INPUT_NORM });
    fresh.dispose();
    const script = eager.toScript();
    const images = fashion().test.images.subarray(0, 2 * N);
    // Grad-CAM at every cut; Score-CAM (a forward pass per channel) at the default one.
    const runs = [...featureMapLayersOf(eager).map((layer) => ['grad-cam', layer] as const), ['score-cam', undefined] as const];
    for (const [method, layer] of runs) {
      const a = await explain(eager, images, { method, layer });
      const b = await leakFree(() => explain(script, images, { method, layer }));
      expect(maxAbsDiff(a.maps, b.maps)).toBeLessThanOrEqual(1e-5 * Math.max(1, maxAbs(a.maps)));
    }
    eager.dispose();
    script.dispose();
  });
});

describe('Grad-CAM on conv -> global average pooling -> linear', () => {
  const spec: CnnSpec = { conv: [{ filters: 5, kernelSize: 3, padding: 'same', activation: 'relu' }], dense: [], dropout: 0, globalAvgPool: true };

  test.each(['eager', 'script'] as const)('%s: Grad-CAM and HiRes-CAM equal ReLU(CAM) / (h w), CAM = sum_k w_ck A_k', async (mode) => {
    const model = createModel(spec, { seed: 11, mode });
    const image = fashion().test.images.subarray(0, N);
    const target = 4;
    const grad = await leakFree(() => explain(model, image, { method: 'grad-cam', target }));
    const hires = await explain(model, image, { method: 'hires-cam', target });
    const x = Float32Array.from(image, (v) => v / 255);
    const activations = tidy(() => noGrad(() => {
      const layers = model.forwardWithActivations(fromHost(x, [1, 1, H, W]));
      return layers.find((l) => l.name === 'conv1.act')!.output.toTypedArray() as Float32Array;
    }));
    const fc = model.parameters().find((p) => p.name === 'fc1.weight')!.values;
    const cam = new Float32Array(N);
    for (let k = 0; k < 5; ++k) for (let p = 0; p < N; ++p) cam[p] += fc[target * 5 + k] * activations[k * N + p];
    const expected = Float32Array.from(cam, (v) => Math.max(v, 0) / N);
    expect(maxAbs(expected)).toBeGreaterThan(0);
    expect(maxAbsDiff(grad.maps, expected)).toBeLessThan(1e-6 * maxAbs(expected) + 1e-9);
    expect(maxAbsDiff(hires.maps, expected)).toBeLessThan(1e-6 * maxAbs(expected) + 1e-9);
    model.dispose();
  });
});

describe('Score-CAM by hand', () => {
  test('each feature map, min-max scaled, masks the image; the target\'s probability on the masked image weighs the map', async () => {
    const spec: CnnSpec = { conv: [{ filters: 3, kernelSize: 5, padding: 'same', activation: 'relu' }], dense: [], dropout: 0, globalAvgPool: true };
    const model = createModel(spec, { seed: 21, inputNorm: FASHION_INPUT_NORM });
    const image = fashion().test.images.subarray(N, 2 * N);
    const x = Float32Array.from(image, (v) => v / 255);
    const target = 2;
    const e = await leakFree(() => explain(model, image, { method: 'score-cam', target }));
    const activations = tidy(() => noGrad(() => {
      const norm = model.inputNorm;
      const layers = model.forwardWithActivations(fromHost(Float32Array.from(x, (v) => (v - norm.mean) / norm.std), [1, 1, H, W]));
      return layers.find((l) => l.name === 'conv1.act')!.output.toTypedArray() as Float32Array;
    }));
    const cam = new Float32Array(N);
    for (let k = 0; k < 3; ++k) {
      const a = activations.subarray(k * N, (k + 1) * N);
      const lo = Math.min(...a);
      const hi = Math.max(...a);
      const masked = Float32Array.from(x, (v, i) => (hi > lo ? v * (a[i] - lo) / (hi - lo) : 0));
      const weight = model.predict(masked)[target];
      for (let i = 0; i < N; ++i) cam[i] += weight * a[i];
    }
    const expected = cam.map((v) => Math.max(v, 0));
    expect(maxAbs(expected)).toBeGreaterThan(0);
    expect(maxAbsDiff(e.maps, expected)).toBeLessThan(1e-5 * maxAbs(expected));
    model.dispose();
  });
});

describe('helpers', () => {
  test('occlusion windows cover every pixel', () => {
    expect(windowStarts(28, 4, 2)).toEqual([0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24]);
    expect(windowStarts(28, 5, 4)).toEqual([0, 4, 8, 12, 16, 20, 23]);
    expect(windowStarts(7, 7, 3)).toEqual([0]);
  });

  test('bilinear upsampling follows align_corners=False: a 2x2 map to 4x4', () => {
    // PyTorch: F.interpolate(torch.tensor([[[[0., 1.], [2., 3.]]]]), size=(4, 4), mode='bilinear', align_corners=False)
    const up = upsampleBilinear([0, 1, 2, 3], 1, 2, 2, 4, 4);
    expect(Array.from(up)).toEqual([0, 0.25, 0.75, 1, 0.5, 0.75, 1.25, 1.5, 1.5, 1.75, 2.25, 2.5, 2, 2.25, 2.75, 3]);
  });

  withTorch('bilinear upsampling matches PyTorch\'s interpolate on odd sizes', () => {
    const cases = [[7, 7, 28, 28], [5, 3, 28, 28], [6, 6, 25, 13]];
    const maps = cases.map(([h, w], i) => Array.from(spread(h * w, i + 3, -1, 1)));
    const script = [
      'import json, sys, torch',
      'import torch.nn.functional as F',
      'cases, maps = json.load(sys.stdin)',
      'out = [F.interpolate(torch.tensor(m, dtype=torch.float32).reshape(1, 1, h, w), size=(oh, ow), mode="bilinear", align_corners=False).flatten().tolist() for (h, w, oh, ow), m in zip(cases, maps)]',
      'print(json.dumps(out))',
    ].join('\n');
    const run = spawnSync(PYTHON, ['-c', script], { input: JSON.stringify([cases, maps]), encoding: 'utf8' });
    expect(run.stderr).toBe('');
    const theirs = JSON.parse(run.stdout) as number[][];
    cases.forEach(([h, w, oh, ow], i) => {
      expect(maxAbsDiff(upsampleBilinear(maps[i], 1, h, w, oh, ow), theirs[i])).toBeLessThan(1e-6);
    });
  });

  test('the split TorchScript names its layers as the eager model does, and cuts where asked', () => {
    const plan = planModel({ ...defaultSpec(), batchNorm: true });
    const model = createModel({ ...defaultSpec(), batchNorm: true });
    expect(scriptLayers(plan).map((l) => l.name)).toEqual(model.layerNames());
    const { prefix, suffix } = splitScriptSources(plan, 'conv2.act');
    expect(prefix).toMatch(/torch\.relu\(x\)\n {4}return x\n$/);
    expect(suffix).toMatch(/^def forward\(self, x\):\n {4}x = torch\.max_pool2d/);
    model.dispose();
  });
});

describe('bad input: a clear error naming what was wrong and what was expected, before any native work', () => {
  let model: CnnModel;
  beforeAll(() => { model = createModel(defaultSpec(), { seed: 1 }); });
  afterAll(() => model?.dispose());
  const image = new Uint8Array(N);

  const CASES: [string, () => Promise<unknown>, string, RegExp][] = [
    ['an unknown method', () => explain(model, image, { method: 'lime' as never }), 'RangeError',
      /^Expected one of saliency, gradient-x-input, integrated-gradients, occlusion, grad-cam, hires-cam, score-cam for method but received "lime" of type string$/],
    ['an unknown layer', () => explain(model, image, { method: 'grad-cam', layer: 'conv9' }), 'RangeError',
      /^Expected one of conv1, conv1.act, conv1.pool, conv2, conv2.act, conv2.pool, flatten, fc1, fc1.act, fc1.dropout, fc2 for layer but received "conv9" of type string$/],
    ['a dense layer for Grad-CAM', () => explain(model, image, { method: 'grad-cam', layer: 'fc1' }), 'RangeError',
      /^Expected a conv layer \(one of conv1, conv1.act, conv1.pool, conv2, conv2.act, conv2.pool\) for layer of method grad-cam but received "fc1", whose output is not a stack of feature maps$/],
    ['the flatten layer for Score-CAM', () => explain(model, image, { method: 'score-cam', layer: 'flatten' }), 'RangeError', /for layer of method score-cam but received "flatten"/],
    ['a target outside the classes', () => explain(model, image, { target: 10 }), 'RangeError', /^Expected integer in \[0, 9\] for target but received 10 of type number$/],
    ['a negative class in a per-image list', () => explain(model, image, { target: [-1] }), 'RangeError', /^Expected integer in \[0, 9\] for target\[0\] but received -1 of type number$/],
    ['a per-image list of the wrong length', () => explain(model, image, { target: [1, 2] }), 'RangeError', /^Expected 1 class indices \(one per image\) for target but received an array of length 2 with 2$/],
    ['an unknown target word', () => explain(model, image, { target: 'true' as never }), 'RangeError', /^Expected 'predicted', 'label', a class in \[0, 9\] or one class per image for target but received "true"/],
    ['target label without labels', () => explain(model, image, { target: 'label' }), 'TypeError', /^Expected labels \(one class per image\) for target 'label' but received undefined$/],
    ['a label outside the classes', () => explain(model, image, { target: 'label', labels: [12] }), 'RangeError', /^Expected integer in \[0, 9\] for labels\[0\] but received 12/],
    ['steps < 1', () => explain(model, image, { method: 'integrated-gradients', steps: 0 }), 'RangeError', /^Expected integer in \[1, 65536\] for steps but received 0 of type number$/],
    ['fractional steps', () => explain(model, image, { method: 'integrated-gradients', steps: 2.5 }), 'TypeError', /^Expected positive integer for steps but received 2.5/],
    ['an unknown baseline', () => explain(model, image, { method: 'integrated-gradients', baseline: 'white' as never }), 'RangeError', /^Expected one of black, blur, uniform for baseline but received "white"/],
    ['a baseline value outside [0, 1]', () => explain(model, image, { method: 'occlusion', baseline: 2 }), 'RangeError', /^Expected a number in \[0, 1\] for baseline but received 2/],
    ['a window larger than the image', () => explain(model, image, { method: 'occlusion', window: [29, 2] }), 'RangeError', /^Expected integer in \[1, 28\] for window\[0\] but received 29/],
    ['a zero stride', () => explain(model, image, { method: 'occlusion', stride: 0 }), 'RangeError', /^Expected integer in \[1, 28\] for stride but received 0/],
    ['an image of the wrong size', () => explain(model, new Uint8Array(100), {}), 'RangeError',
      /^Expected whole 28x28 images \(a non-zero multiple of 784 values\) for images but received a Uint8Array of 100 values$/],
    ['no images', () => explain(model, new Float32Array(0), {}), 'RangeError', /for images but received a Float32Array of 0 values$/],
    ['images of another type', () => explain(model, [0, 1] as never, {}), 'TypeError', /^Expected a Uint8Array or Float32Array of images for images but received an array of length 2$/],
    ['a NaN pixel', () => explain(model, new Float32Array(N).fill(NaN), {}), 'RangeError', /^Expected finite pixel values for images but images\[0\] is NaN$/],
    ['an option of another method', () => explain(model, image, { method: 'saliency', steps: 10 }), 'TypeError',
      /^Unknown option "steps" in explain options of method saliency; expected one of method, target, labels, chunkSize, smoothing, samples, sigma, seed$/],
    ['noise settings without smoothing', () => explain(model, image, { method: 'saliency', samples: 10 }), 'TypeError', /^Expected no samples for saliency without smoothing but received 10 of type number; set smoothing/],
    ['a single sample for VarGrad', () => explain(model, image, { method: 'saliency', smoothing: 'vargrad', samples: 1 }), 'RangeError', /^Expected integer in \[2, 65536\] for samples but received 1/],
    ['a zero chunk', () => explain(model, image, { chunkSize: 0 }), 'RangeError', /^Expected integer in \[1, 65536\] for chunkSize but received 0/],
  ];

  test.each(CASES)('%s', async (_what, call, name, message) => {
    const before = await settledLiveTensors();
    const err = await call().then(() => { throw new Error('expected a rejection'); }, (e: Error) => e);
    expect(err.name).toBe(name);
    expect(err.message).toMatch(message);
    expect(native().liveTensors()).toBe(before);
  });

  test('a model without conv layers has no default layer for the CAM methods', async () => {
    const dense = createModel({ conv: [], dense: [8], dropout: 0 });
    const err = await explain(dense, image, { method: 'grad-cam' }).catch((e: Error) => e);
    expect((err as Error).message).toBe('Expected a model with a conv layer for method grad-cam but its spec has none (spec.conv is empty)');
    dense.dispose();
  });

  test('a disposed model', async () => {
    const gone = createModel({ conv: [], dense: [8], dropout: 0 });
    gone.dispose();
    const err = await explain(gone, image).catch((e: Error) => e);
    expect((err as Error).name).toBe('ModelDisposedError');
  });
});
