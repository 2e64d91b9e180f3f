// Probing colour models: every method on C-channel images, with closed forms that hold per channel
// (a linear colour model with a per-channel standardisation), a model that looks only at red getting
// no attribution in green or blue, the eager and the scripted path giving the same maps, the checks
// removing whole pixels (all channels) in the order of the per-pixel map, feature visualisation of
// a colour image, colour pictures (and the report's section for a colour explanation), the CLI on a
// colour checkpoint, and images of the wrong channel count refused before any native work. Small data made here; nothing downloads.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { zipSync } from 'fflate';
import { buildReport, createModel, explain } from '../src/index';
import type { CnnSpec, ExplainOptions, Explanation } from '../src/index';
import { native } from '../src/core/native';
import { fromHost, noGrad } from '../src/core/ops';
import { tidy } from '../src/core/tidy';
import { CnnModel, modelFromParameters } from '../src/nn/model';
import { buildProgram } from '../src/cli/main';
import { decodeNpy, encodeNpy } from '../src/formats/npy';
import { explanationPixelMaps } from '../src/probe/explain';
import { faithfulness } from '../src/probe/faithfulness';
import { road } from '../src/probe/road';
import { randomisationCheck } from '../src/probe/randomisation';
import { attributionSummary, writeSummary } from '../src/probe/summary';
import { mapsAcrossTraining, writeAcrossTraining } from '../src/probe/across-training';
import { maximize, shiftImage, totalVariation, unshiftGradient } from '../src/probe/maximize';
import { datasetExamples } from '../src/probe/dataset-examples';
import { embeddings, writeProjector } from '../src/probe/embeddings';
import { cropTiles, writeDatasetExamples, writeVisualisation } from '../src/probe/probe-folders';
import { writeExplanation } from '../src/probe/folder';
import { overlayGeometry } from '../src/probe/render';
import { featureMapLayers } from '../src/probe/options';
import { leakFree, maxAbs, maxAbsDiff, spread } from './probe-helpers';
import { settledLiveTensors } from './helpers';
import { decodePng } from './png-pixels';

const C = 3;
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'convscope-probe-colour-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

/** Whether a picture has saturated pixels (some pixel whose channels differ by more than `by`). */
function hasColour(png: Buffer, by = 40): boolean {
  const { data } = decodePng(png);
  for (let i = 0; i < data.length; i += 4) {
    if (Math.max(data[i], data[i + 1], data[i + 2]) - Math.min(data[i], data[i + 1], data[i + 2]) > by) return true;
  }
  return false;
}

// A linear colour model on 8x10 images (not square: a swapped height and width shows). conv1 is three
// 1x1 filters, filter k the identity on channel k, bias 3, then ReLU: the identity plus 3 on
// standardised pixels above -3 (all of [0, 1] under NORM; gradient 1 there); fc1 then gives logit k
// = sum over channel c and pixel p of W[k][c * N + p] (z_cp + 3) + b_k, z = (x - mean_c) / std_c
// (flatten is channel-major).
const LH = 8;
const LW = 10;
const LN = LH * LW;
const LINEAR_SPEC: CnnSpec = { conv: [{ filters: C, kernelSize: 1, activation: 'relu' }], dense: [], dropout: 0, classes: 2, inputChannels: C, inputSize: [LH, LW] };
/** Per-channel standardisation: a probe that standardised every channel alike would miss it. */
const NORM = { mean: [0.3, 0.4, 0.1], std: [0.5, 0.25, 1] };

function linearModel(weights: Float32Array, mode: 'eager' | 'script' = 'eager', inputNorm: { mean: number[] | number; std: number[] | number } = NORM): CnnModel {
  const identity = new Float32Array(C * C);
  for (let k = 0; k < C; ++k) identity[k * C + k] = 1;
  return modelFromParameters(LINEAR_SPEC, [
    { name: 'conv1.weight', shape: [C, C, 1, 1], values: identity },
    { name: 'conv1.bias', shape: [C], values: new Float32Array(C).fill(3) },
    { name: 'fc1.weight', shape: [2, C * LN], values: weights },
    { name: 'fc1.bias', shape: [2], values: new Float32Array([0.25, -0.5]) },
  ], { mode, inputNorm });
}

// A small conv net on 12x12 colour images, 4 classes.
const H = 12;
const W = 12;
const N = H * W;
const CONV_SPEC: CnnSpec = {
  conv: [{ filters: 4, kernelSize: 3, padding: 'same', pool: true }, { filters: 6, kernelSize: 3, padding: 'same', pool: true }],
  dense: [8], dropout: 0, classes: 4, inputChannels: C, inputSize: [H, W],
};
const BN_SPEC: CnnSpec = {
  conv: [{ filters: 4, kernelSize: 3, activation: 'tanh', pool: false }, { filters: 6, kernelSize: 3, pool: true }],
  dense: [8], dropout: 0, classes: 4, inputChannels: C, inputSize: [H, W], batchNorm: true, globalAvgPool: true,
};
const COLOUR_IMAGES = spread(4 * C * N, 9);

/** CONV_SPEC's model with conv1's weights on channels `blind` set to 0: it cannot see them. */
function blindModel(blind: number[], mode: 'eager' | 'script' = 'eager'): CnnModel {
  const fresh = createModel(CONV_SPEC, { seed: 3 });
  const parameters = fresh.parameters().map((p) => {
    if (p.name !== 'conv1.weight') return p;
    const values = Float32Array.from(p.values);
    const [out, inC, kh, kw] = p.shape;
    for (let o = 0; o < out; ++o) for (const c of blind) for (let k = 0; k < kh * kw; ++k) values[((o * inC) + c) * kh * kw + k] = 0;
    return { ...p, values };
  });
  fresh.dispose();
  return modelFromParameters(CONV_SPEC, parameters, { mode, inputNorm: NORM });
}

describe('closed forms per channel on a linear colour model', () => {
  const weights = spread(2 * C * LN, 1, -1, 1);
  const images = spread(3 * C * LN, 2);
  const std = (v: number) => NORM.std[Math.floor((v % (C * LN)) / LN)];
  // Class 1's weight on each value, over its channel's std: the exact contribution per unit of pixel.
  const pixelWeight = Float32Array.from({ length: images.length }, (_, v) => weights[C * LN + (v % (C * LN))] / std(v));
  const wx = Float32Array.from(images, (x, v) => pixelWeight[v] * x);

  test.each(['eager', 'script'] as const)('%s: IG (black) = gradient x input = w * x per channel; saliency = |w|; 1x1 occlusion with 0 = the pixel\'s sum over channels', async (mode) => {
    const model = linearModel(weights, mode);
    const target = 1;
    const ig = await leakFree(() => explain(model, images, { method: 'integrated-gradients', target, steps: 4 }));
    const gxi = await leakFree(() => explain(model, images, { method: 'gradient-x-input', target }));
    const sal = await leakFree(() => explain(model, images, { method: 'saliency', target }));
    const occ = await leakFree(() => explain(model, images, { method: 'occlusion', target, window: 1, stride: 1, baseline: 0 }));
    expect(ig.shape).toEqual([3, C, LH, LW]);
    expect(gxi.shape).toEqual([3, C, LH, LW]);
    expect(sal.shape).toEqual([3, C, LH, LW]);
    expect([ig.inputChannels, ig.mapChannels]).toEqual([C, C]);
    // Occlusion's window covers every channel of a pixel: one value per pixel.
    expect(occ.shape).toEqual([3, 1, LH, LW]);
    expect(occ.mapChannels).toBe(1);
    expect(maxAbsDiff(ig.maps, wx)).toBeLessThan(1e-5);
    expect(maxAbsDiff(gxi.maps, wx)).toBeLessThan(1e-5);
    expect(maxAbsDiff(sal.maps, pixelWeight.map(Math.abs))).toBeLessThan(1e-5);
    const perPixel = new Float32Array(3 * LN);
    wx.forEach((v, i) => { perPixel[Math.floor(i / (C * LN)) * LN + (i % LN)] += v; });
    expect(maxAbsDiff(occ.maps, perPixel)).toBeLessThan(3e-4);
    // The per-pixel map of a signed method is the sum over channels: here occlusion's map.
    expect(maxAbsDiff(explanationPixelMaps(gxi), perPixel)).toBeLessThan(1e-5);
    // Completeness holds exactly on a linear function: the sum over every channel and pixel.
    expect(maxAbs(ig.deltas!)).toBeLessThan(1e-3);
    model.dispose();
  });

  test('SmoothGrad of a linear colour model is |w| per channel, its VarGrad 0', async () => {
    const model = linearModel(weights);
    const smooth = await explain(model, images.subarray(0, C * LN), { method: 'saliency', target: 1, smoothing: 'smoothgrad', samples: 4, seed: 2 });
    const vargrad = await explain(model, images.subarray(0, C * LN), { method: 'saliency', target: 1, smoothing: 'vargrad', samples: 4, seed: 2 });
    expect(maxAbsDiff(smooth.maps, pixelWeight.subarray(0, C * LN).map(Math.abs))).toBeLessThan(1e-5);
    expect(maxAbs(vargrad.maps)).toBeLessThan(1e-8);
    model.dispose();
  });

  test('deletion and insertion move whole pixels (all channels), in the order of the per-pixel map (the sum over channels)', async () => {
    const model = linearModel(weights);
    const image = images.subarray(0, C * LN);
    // A hand-made map: channel 0 ranks pixel 0 first, but channels 1 and 2 together rank pixel 1 above it.
    const maps = new Float32Array(C * LN);
    maps[0] = 5;
    maps[LN + 1] = 3;
    maps[2 * LN + 1] = 3;
    const e: Explanation = { method: 'gradient-x-input', maps, shape: [1, C, LH, LW], inputChannels: C, mapChannels: C, targets: new Int32Array([1]), predictions: new Int32Array([1]), settings: {} };
    const f = await leakFree(() => faithfulness(model, image, e, { steps: LN }));
    const points = LN + 1;
    const removed = (pixels: number[]) => {
      const x = Float32Array.from(image);
      for (const p of pixels) for (let c = 0; c < C; ++c) x[c * LN + p] = 0;
      return model.predict(x)[1];
    };
    // Deletion: step 1 removes pixel 1 in every channel, step 2 pixel 0 as well.
    expect(f.curves[1]).toBeCloseTo(removed([1]), 6);
    expect(f.curves[2]).toBeCloseTo(removed([1, 0]), 6);
    // The end of deletion is the black image (every channel of every pixel).
    expect(f.curves[points - 1]).toBeCloseTo(model.predict(new Float32Array(C * LN))[1], 6);
    // Insertion: step 1 puts back pixel 1 (all channels) into the black image.
    const inserted = new Float32Array(C * LN);
    for (let c = 0; c < C; ++c) inserted[c * LN + 1] = image[c * LN + 1];
    expect(f.curves[points + 1]).toBeCloseTo(model.predict(inserted)[1], 6);
    expect(f.curves[2 * points - 1]).toBeCloseTo(model.predict(image)[1], 6);
    model.dispose();
  });
});

describe('Score-CAM by hand on a colour image', () => {
  test('each feature map, min-max scaled, masks every channel of the image; the target\'s probability on it weighs the map', async () => {
    const spec: CnnSpec = { conv: [{ filters: 3, kernelSize: 5, padding: 'same', activation: 'relu' }], dense: [], dropout: 0, globalAvgPool: true, inputChannels: C, inputSize: [H, W], classes: 4 };
    const model = createModel(spec, { seed: 21, inputNorm: NORM });
    try {
      const x = COLOUR_IMAGES.subarray(C * N, 2 * C * N);
      const target = 2;
      const e = await leakFree(() => explain(model, x, { method: 'score-cam', target }));
      expect(e.shape).toEqual([1, 1, H, W]);
      const standardised = Float32Array.from(x, (v, i) => (v - NORM.mean[Math.floor(i / N)]) / NORM.std[Math.floor(i / N)]);
      const activations = tidy(() => noGrad(() => {
        const layers = model.forwardWithActivations(fromHost(standardised, [1, C, H, W]));
        return layers.find((l) => l.name === 'conv1.act')!.output.toTypedArray() as Float32Array;
      }));
      const cam = new Float32Array(N);
      for (let k = 0; k < 3; ++k) {
        const a = activations.subarray(k * N, (k + 1) * N);
        const lo = Math.min(...a);
        const hi = Math.max(...a);
        const masked = Float32Array.from(x, (v, i) => (hi > lo ? v * (a[i % N] - lo) / (hi - lo) : 0));
        const weight = model.predict(masked)[target];
        for (let i = 0; i < N; ++i) cam[i] += weight * a[i];
      }
      const expected = cam.map((v) => Math.max(v, 0));
      expect(maxAbs(expected)).toBeGreaterThan(0);
      expect(maxAbsDiff(e.maps, expected)).toBeLessThan(1e-5 * maxAbs(expected));
    } finally {
      model.dispose();
    }
  });
});

describe('a model that only sees red', () => {
  let model: CnnModel;
  beforeAll(() => { model = blindModel([1, 2]); });
  afterAll(() => model?.dispose());
  const images = COLOUR_IMAGES;

  test.each([
    ['saliency', { method: 'saliency' }],
    ['smoothgrad', { method: 'saliency', smoothing: 'smoothgrad', samples: 3 }],
    ['vargrad', { method: 'saliency', smoothing: 'vargrad', samples: 3 }],
    ['gradient-x-input', { method: 'gradient-x-input' }],
    ['integrated-gradients', { method: 'integrated-gradients', steps: 8 }],
    ['integrated-gradients from a blur', { method: 'integrated-gradients', steps: 8, baseline: 'blur', blurSigma: 1 }],
  ] as [string, ExplainOptions][])('%s: no attribution in green or blue, some in red', async (_name, options) => {
    const e = await leakFree(() => explain(model, images, options));
    expect(e.shape).toEqual([4, C, H, W]);
    for (let i = 0; i < 4; ++i) {
      expect(maxAbs(e.maps.subarray((i * C + 0) * N, (i * C + 1) * N))).toBeGreaterThan(1e-6);
      expect(maxAbs(e.maps.subarray((i * C + 1) * N, (i * C + 3) * N))).toBe(0);
    }
  });

  test('ROAD removes a pixel in every channel: on a model that sees only green, its MoRF probabilities move', async () => {
    const greenOnly = blindModel([0, 2]);
    try {
      // Imputing red alone would leave this model's probabilities exactly as they were.
      const e = await explain(greenOnly, images.subarray(0, 2 * C * N), { method: 'saliency' });
      const r = await leakFree(() => road(greenOnly, images.subarray(0, 2 * C * N), e, { fractions: [0.5] }));
      const p = greenOnly.predict(images.subarray(0, 2 * C * N));
      for (let i = 0; i < 2; ++i) expect(Math.abs(r.morf[i] - p[i * 4 + e.targets[i]])).toBeGreaterThan(1e-4);
    } finally {
      greenOnly.dispose();
    }
  });
});

describe('eager = script on 3-channel specs, for every method', () => {
  const METHODS: ExplainOptions[] = [
    { method: 'saliency' },
    { method: 'saliency', smoothing: 'smoothgrad', samples: 3, seed: 1 },
    { method: 'saliency', smoothing: 'vargrad', samples: 3, seed: 1 },
    { method: 'gradient-x-input' },
    { method: 'integrated-gradients', steps: 6 },
    { method: 'integrated-gradients', steps: 6, baseline: 'uniform', seed: 4 },
    { method: 'occlusion', window: 3, stride: 2 },
    { method: 'occlusion', window: 2, stride: 2, baseline: 'blur', blurSigma: 1 },
    { method: 'score-cam' },
  ];

  test.each([['plain', CONV_SPEC], ['batch norm, global average pooling', BN_SPEC]] as [string, CnnSpec][])('%s', async (_name, spec) => {
    const fresh = createModel(spec, { seed: 5 });
    const buffers = fresh.buffers().map((b) => ({ ...b, values: b.name.endsWith('running_mean') ? b.values.map((_, i) => 0.05 * (i % 3))
      : b.name.endsWith('running_var') ? b.values.map((_, i) => 0.6 + 0.2 * (i % 4)) : b.values }));
    const eager = modelFromParameters(spec, [...fresh.parameters(), ...buffers], { inputNorm: NORM });
    fresh.dispose();
    const script = eager.toScript();
    try {
      const images = COLOUR_IMAGES.subarray(0, 2 * C * N);
      const runs: ExplainOptions[] = [...METHODS, ...featureMapLayers(eager).flatMap((layer) => [{ method: 'grad-cam', layer }, { method: 'hires-cam', layer }] as ExplainOptions[])];
      for (const options of runs) {
        const a = await explain(eager, images, options);
        const b = await leakFree(() => explain(script, images, options));
        expect(b.shape).toEqual(a.shape);
        expect(a.shape[1]).toBe(['occlusion', 'grad-cam', 'hires-cam', 'score-cam'].includes(options.method!) ? 1 : C);
        expect(maxAbsDiff(a.maps, b.maps)).toBeLessThanOrEqual(1e-5 * Math.max(1, maxAbs(a.maps)));
        if (a.deltas) expect(maxAbsDiff(a.deltas, b.deltas!)).toBeLessThanOrEqual(1e-4 * Math.max(1, maxAbs(a.deltas)));
      }
      // Feature visualisation, dataset examples and embeddings on both paths.
      const va = await maximize(eager, { layer: 'conv2.act', channel: [0, 1] }, { steps: 4, seed: 2 });
      const vb = await leakFree(() => maximize(script, { layer: 'conv2.act', channel: [0, 1] }, { steps: 4, seed: 2 }));
      expect(maxAbsDiff(va.images, vb.images)).toBeLessThan(1e-4);
      const xa = await datasetExamples(eager, COLOUR_IMAGES, { layer: 'conv1.act', top: 2 });
      const xb = await leakFree(() => datasetExamples(script, COLOUR_IMAGES, { layer: 'conv1.act', top: 2 }));
      expect(xb.examples.map((l) => l.map((e) => e.index))).toEqual(xa.examples.map((l) => l.map((e) => e.index)));
      const ea = await embeddings(eager, COLOUR_IMAGES);
      const eb = await leakFree(() => embeddings(script, COLOUR_IMAGES));
      expect(maxAbsDiff(ea.vectors, eb.vectors)).toBeLessThan(1e-5 * Math.max(1, maxAbs(ea.vectors)));
    } finally {
      eager.dispose();
      script.dispose();
    }
  });

  test('chunking does not change a colour model\'s maps (noise drawn per image)', async () => {
    const model = createModel(CONV_SPEC, { seed: 6 });
    try {
      const options: ExplainOptions = { method: 'saliency', smoothing: 'smoothgrad', samples: 3, seed: 5 };
      const a = await explain(model, COLOUR_IMAGES, { ...options, chunkSize: 64 });
      const b = await explain(model, COLOUR_IMAGES, { ...options, chunkSize: 5 });
      expect(maxAbsDiff(a.maps, b.maps)).toBeLessThan(1e-6);
    } finally {
      model.dispose();
    }
  });
});

describe('the checks, summaries and maps across training on a colour model', () => {
  let model: CnnModel;
  beforeAll(() => { model = createModel(CONV_SPEC, { seed: 8 }); });
  afterAll(() => model?.dispose());
  const images = COLOUR_IMAGES;
  const labels = new Int32Array([0, 1, 2, 1]);

  test('the randomisation check compares per-pixel maps; the maps change as the layers go', async () => {
    const stages = await leakFree(() => randomisationCheck(model, images, { method: 'saliency' }, 3));
    expect(stages.map((s) => s.randomised[s.randomised.length - 1])).toEqual(['fc2', 'fc1', 'conv2', 'conv1']);
    expect(stages[stages.length - 1].spearman).toBeLessThan(0.9);
    for (const s of stages) expect(s.perImage).toHaveLength(4);
  });

  test('a summary: mean |per-pixel map| per class and cell, the mean image per class in colour', async () => {
    const s = await leakFree(() => attributionSummary(model, images, labels, { method: 'gradient-x-input', target: 'label', blockSize: 3 }));
    const e = await explain(model, images, { method: 'gradient-x-input', target: 'label', labels });
    const perPixel = explanationPixelMaps(e);
    expect(s.channels).toBe(C);
    expect(s.perClass).toHaveLength(4 * N);
    expect(s.meanImage).toHaveLength(4 * C * N);
    // Class 1 holds images 1 and 3.
    const expectedMap = Float32Array.from({ length: N }, (_, p) => (Math.abs(perPixel[N + p]) + Math.abs(perPixel[3 * N + p])) / 2);
    expect(maxAbsDiff(s.perClass.subarray(N, 2 * N), expectedMap)).toBeLessThan(1e-6);
    const expectedImage = Float32Array.from({ length: C * N }, (_, v) => (images[C * N + v] + images[3 * C * N + v]) / 2);
    expect(maxAbsDiff(s.meanImage.subarray(C * N, 2 * C * N), expectedImage)).toBeLessThan(1e-6);
    const files = writeSummary(path.join(tmp, 'summary'), s);
    expect(decodeNpy(fs.readFileSync(files.perClass)).shape).toEqual([4, H, W]);
    if (files.classes) expect(hasColour(fs.readFileSync(files.classes), 20)).toBe(true);
  });

  test('maps across training keep their channels; the correlations are of per-pixel maps', async () => {
    const other = createModel(CONV_SPEC, { seed: 9 });
    try {
      const t = await leakFree(() => mapsAcrossTraining([other, model], images, { method: 'saliency' }));
      expect(t.shape).toEqual([4, C, H, W]);
      expect(t.withLast[1]).toBeCloseTo(1, 6);
      const files = writeAcrossTraining(path.join(tmp, 'across'), t, [1, 2]);
      expect(decodeNpy(fs.readFileSync(files.maps)).shape).toEqual([2, 4, C, H, W]);
    } finally {
      other.dispose();
    }
  });
});

describe('feature visualisation of a colour model', () => {
  test('a class logit and a conv channel rise; C-channel images; deterministic for a seed; a colour mosaic', async () => {
    const model = createModel(CONV_SPEC, { seed: 10 });
    try {
      const v = await leakFree(() => maximize(model, { class: [0, 1] }, { steps: 24, seed: 3 }));
      expect(v.shape).toEqual([2, C, H, W]);
      expect(v.channels).toBe(C);
      for (let i = 0; i < 2; ++i) expect(v.final[i]).toBeGreaterThan(v.initial[i] + 0.01);
      const again = await maximize(model, { class: [0, 1] }, { steps: 24, seed: 3 });
      expect(Array.from(again.images)).toEqual(Array.from(v.images));
      const other = await maximize(model, { class: [0, 1] }, { steps: 24, seed: 4 });
      expect(maxAbsDiff(other.images, v.images)).toBeGreaterThan(1e-3);
      // The channels differ (each is its own parameter plane).
      expect(maxAbsDiff(v.images.subarray(0, N), v.images.subarray(N, 2 * N))).toBeGreaterThan(1e-3);
      const c = await maximize(model, { layer: 'conv2.act', channel: [0, 1, 2] }, { steps: 24, seed: 1 });
      expect(c.units.filter((_, i) => c.final[i] > c.initial[i]).length).toBeGreaterThanOrEqual(2);
      const files = writeVisualisation(path.join(tmp, 'viz'), v);
      expect(decodeNpy(fs.readFileSync(files.images)).shape).toEqual([2, C, H, W]);
      if (files.mosaic) expect(hasColour(fs.readFileSync(files.mosaic), 20)).toBe(true);
    } finally {
      model.dispose();
    }
  });
});

describe('the regularisers on C channels', () => {
  const h = 6;
  const w = 5;
  const n = C * h * w;

  test('the jitter moves every channel alike, and its gradient is the shift\'s adjoint: <S x, g> = <x, S^T g>', () => {
    const x = spread(n, 1);
    const g = spread(n, 2);
    for (const [dy, dx] of [[0, 0], [1, -2], [-3, 2]]) {
      const shifted = new Float32Array(n);
      shiftImage(x, h, w, dy, dx, shifted, C);
      for (let c = 0; c < C; ++c) {
        const plane = new Float32Array(h * w);
        shiftImage(x.subarray(c * h * w, (c + 1) * h * w), h, w, dy, dx, plane);
        expect(Array.from(shifted.subarray(c * h * w, (c + 1) * h * w))).toEqual(Array.from(plane));
      }
      const back = new Float64Array(n);
      unshiftGradient(g, h, w, dy, dx, back, C);
      const left = shifted.reduce((s, v, i) => s + v * g[i], 0);
      const right = x.reduce((s, v, i) => s + v * back[i], 0);
      expect(right).toBeCloseTo(left, 5);
    }
  });

  test('total variation sums every channel over the value count, and its gradient matches finite differences', () => {
    const x = Array.from(spread(n, 3));
    const perPlane = [0, 1, 2].map((c) => totalVariation(x.slice(c * h * w, (c + 1) * h * w), h, w));
    expect(totalVariation(x, h, w, undefined, C)).toBeCloseTo(perPlane.reduce((a, b) => a + b, 0) / C, 10);
    const gradient = new Float64Array(n);
    totalVariation(x, h, w, gradient, C);
    const eps = 1e-6;
    for (let p = 0; p < n; ++p) {
      const up = x.slice(); up[p] += eps;
      const down = x.slice(); down[p] -= eps;
      expect(gradient[p]).toBeCloseTo((totalVariation(up, h, w, undefined, C) - totalVariation(down, h, w, undefined, C)) / (2 * eps), 5);
    }
  });
});

describe('colour pictures: overlays, dataset examples, the projector\'s sprite', () => {
  // Images with a strong colour: red on the left half, blue on the right (0.9 as float32, drawn as 229).
  const R = Math.round(255 * Math.fround(0.9));
  const vivid = new Float32Array(4 * C * N);
  for (let i = 0; i < 4; ++i) for (let p = 0; p < N; ++p) vivid[(i * C + ((p % W) < W / 2 ? 0 : 2)) * N + p] = 0.9;

  test('writeExplanation: [n, 3, H, W] in attributions.npy, the channels in explain.json, the image in colour in the overlay', async () => {
    const model = createModel(CONV_SPEC, { seed: 11 });
    try {
      const e = await explain(model, vivid, { method: 'integrated-gradients', steps: 4 });
      const dir = path.join(tmp, 'explain');
      const files = writeExplanation(dir, e, { indices: [0, 1, 2, 3], pixels: vivid });
      const npy = decodeNpy(fs.readFileSync(files.attributions));
      expect(npy.shape).toEqual([4, C, H, W]);
      expect(Array.from(npy.data as Float32Array)).toEqual(Array.from(e.maps));
      const json = JSON.parse(fs.readFileSync(files.json, 'utf8'));
      expect(json).toMatchObject({ shape: [4, C, H, W], inputChannels: C, mapChannels: C });
      expect(json.pixelMaps).toMatch(/sum over the map's channels/);
      if (files.overlay) {
        const png = decodePng(fs.readFileSync(files.overlay));
        const g = overlayGeometry(4, H, W, 4, true);
        const left = g.tile(0, 0);
        expect(png.rgb(left.x + 2, left.y + 2)).toEqual([R, 0, 0]);
        expect(png.rgb(left.x + g.tileW - 2, left.y + 2)).toEqual([0, 0, R]);
      }
      // The report's section for the folder: what it is, and the colour overlay.
      const report = buildReport([], { out: path.join(tmp, 'report'), explanations: [dir] });
      expect(fs.readFileSync(report.markdown, 'utf8')).toMatch(/## Explanation 1: explain\n\nFolder .*explain: attribution maps; method "integrated-gradients"/);
      if (files.overlay) expect(report.assets.map((a) => path.basename(a))).toEqual(['overlay.png']);
      expect(report.missing).toEqual([]);
      expect(() => writeExplanation(dir, e, { indices: [0, 1, 2, 3], pixels: vivid.subarray(0, 4 * N) }))
        .toThrow(/^Expected a Float32Array of 4 images of 3x12x12 in \[0, 1\] for source.pixels/);
    } finally {
      model.dispose();
    }
  });

  test('dataset examples crop every channel; examples.png and crops.png are in colour; so is the sprite', async () => {
    const model = createModel(CONV_SPEC, { seed: 12 });
    try {
      const ex = await datasetExamples(model, vivid, { layer: 'conv1.act', channels: [0, 1], top: 2 });
      expect(ex.imageChannels).toBe(C);
      const crops = cropTiles(ex, vivid, [H, W], C);
      const [fh, fw] = ex.field!.size;
      const first = ex.examples[0][0];
      const top = first.y * ex.field!.jump[0] + ex.field!.offset[0];
      const left = first.x * ex.field!.jump[1] + ex.field!.offset[1];
      for (let c = 0; c < C; ++c) {
        for (let y = first.crop.y0; y < first.crop.y1; ++y) {
          for (let x = first.crop.x0; x < first.crop.x1; ++x) {
            expect(crops.data[(c * fh + y - top) * fw + x - left]).toBe(vivid[(first.index * C + c) * N + y * W + x]);
          }
        }
      }
      const files = writeDatasetExamples(path.join(tmp, 'examples'), ex, vivid, [H, W]);
      if (files.examples) expect(hasColour(fs.readFileSync(files.examples))).toBe(true);
      if (files.crops) expect(hasColour(fs.readFileSync(files.crops))).toBe(true);
      const e = await embeddings(model, vivid);
      const projector = writeProjector(path.join(tmp, 'projector'), e, { images: vivid, imageSize: [H, W], channels: C, labels: [0, 1, 2, 3] });
      if (projector.sprite) {
        const sprite = decodePng(fs.readFileSync(projector.sprite));
        expect(sprite.rgb(1, 1)).toEqual([R, 0, 0]);
      }
      expect(() => writeProjector(path.join(tmp, 'projector'), e, { images: vivid, imageSize: [H, W], labels: [0, 1, 2, 3] }))
        .toThrow(/^Expected 4 images of 12x12 \(one per vector\) for source.images/);
    } finally {
      model.dispose();
    }
  });
});

describe('bad input: images of the wrong channel count, before any native work and with no leaked tensors', () => {
  let model: CnnModel;
  beforeAll(() => { model = createModel(CONV_SPEC, { seed: 13 }); });
  afterAll(() => model?.dispose());
  // Two grey 12x12 images given to a 3-channel model.
  const grey = new Float32Array(2 * N).fill(0.5);
  const WRONG = /^Expected whole 3-channel 12x12 images \(3x12x12, channel-planar: a non-zero multiple of 432 values\) for images but received a Float32Array of 288 values: that is 2 one-channel 12x12 images, but the model takes 3-channel images \(spec.inputChannels 3\)$/;

  const CASES: [string, () => Promise<unknown>, RegExp][] = [
    ['explain', () => explain(model, grey, { method: 'integrated-gradients' }), WRONG],
    ['dataset examples', () => datasetExamples(model, grey, { layer: 'conv1.act' }), WRONG],
    ['embeddings', () => embeddings(model, grey), WRONG],
    ['a summary', () => attributionSummary(model, grey, [0, 1]), WRONG],
    ['maps across training', () => mapsAcrossTraining([model, model], grey), WRONG],
    ['the randomisation check', () => randomisationCheck(model, grey), WRONG],
    ['a part of an image', () => explain(model, new Float32Array(C * N + 5)), /^Expected whole 3-channel 12x12 images .* for images but received a Float32Array of 437 values$/],
  ];

  test.each(CASES)('%s', async (_what, call, message) => {
    const before = await settledLiveTensors();
    const err = await call().then(() => { throw new Error('expected a rejection'); }, (e: Error) => e);
    expect(err.name).toBe('RangeError');
    expect(err.message).toMatch(message);
    expect(native().liveTensors()).toBe(before);
  });

  test('faithfulness and ROAD: the images explained must be the colour images, the explanation a colour model\'s', async () => {
    const e = await explain(model, COLOUR_IMAGES.subarray(0, 2 * C * N));
    const before = await settledLiveTensors();
    const wrong = await faithfulness(model, grey, e).catch((err: Error) => err);
    expect((wrong as Error).message).toBe('Expected the 2 3x12x12 images explained (864 values) for images but received a Float32Array of 288 values');
    const greyModel = createModel({ ...CONV_SPEC, inputChannels: 1 }, { seed: 1 });
    try {
      const other = await road(greyModel, grey, e).catch((err: Error) => err);
      expect((other as Error).message).toBe('Expected maps of 12x12 images (the model\'s input) for explanation but received shape [2,3,12,12] of 3-channel images');
    } finally {
      greyModel.dispose();
    }
    expect(native().liveTensors()).toBe(before);
  });
});

describe('convscope explain on a colour checkpoint', () => {
  const checkpoint = path.join(tmp, 'colour.pt');
  const dataset = path.join(tmp, 'colour.npz');
  beforeAll(() => {
    const model = createModel(CONV_SPEC, { seed: 14 });
    model.save(checkpoint);
    model.dispose();
    const npy = (data: Float32Array | Uint8Array, shape: number[]) => new Uint8Array(encodeNpy({ data, shape }));
    const labels = new Uint8Array([0, 1, 2, 3]);
    fs.writeFileSync(dataset, zipSync({
      'x_train.npy': npy(COLOUR_IMAGES, [4, C, H, W]), 'y_train.npy': npy(labels, [4]),
      'x_test.npy': npy(COLOUR_IMAGES, [4, C, H, W]), 'y_test.npy': npy(labels, [4]),
    }));
  });

  async function run(...args: string[]): Promise<string> {
    const printed: string[] = [];
    const write = jest.spyOn(process.stdout, 'write').mockImplementation((chunk) => { printed.push(String(chunk)); return true; });
    try {
      const program = buildProgram().exitOverride().configureOutput({ writeErr: () => undefined, writeOut: () => undefined });
      for (const command of program.commands) command.exitOverride().configureOutput({ writeErr: () => undefined, writeOut: () => undefined });
      await program.parseAsync(['node', 'convscope', ...args]);
    } finally {
      write.mockRestore();
    }
    return printed.join('');
  }

  test('explain --check writes [n, 3, H, W] maps (explain()\'s), the channels in explain.json, and the checks', async () => {
    const out = path.join(tmp, 'cli-ig');
    await run('explain', checkpoint, '--dataset', dataset, '--method', 'integrated-gradients', '--steps', '4', '--images', '1:4', '--out', out, '--check');
    const npy = decodeNpy(fs.readFileSync(path.join(out, 'attributions.npy')));
    expect(npy.shape).toEqual([3, C, H, W]);
    const { loadModel } = require('../src/index') as typeof import('../src/index');
    const model = loadModel(checkpoint);
    try {
      const direct = await explain(model, COLOUR_IMAGES.subarray(C * N, 4 * C * N), { method: 'integrated-gradients', steps: 4 });
      expect(maxAbsDiff(npy.data as Float32Array, direct.maps)).toBeLessThan(1e-6);
    } finally {
      model.dispose();
    }
    const json = JSON.parse(fs.readFileSync(path.join(out, 'explain.json'), 'utf8'));
    expect(json).toMatchObject({ inputChannels: C, mapChannels: C, indices: [1, 2, 3] });
    const checks = JSON.parse(fs.readFileSync(path.join(out, 'faithfulness.json'), 'utf8'));
    expect(checks.images).toHaveLength(3);
    expect(checks.randomisation.stages).toHaveLength(4);
  });

  test('explain --summary and grad-cam; visualize, examples and embeddings on the colour checkpoint', async () => {
    const summary = path.join(tmp, 'cli-summary');
    await run('explain', checkpoint, '--dataset', dataset, '--method', 'saliency', '--images', ':', '--summary', '--out', summary);
    expect(decodeNpy(fs.readFileSync(path.join(summary, 'per-class.npy'))).shape).toEqual([4, H, W]);
    const cam = path.join(tmp, 'cli-cam');
    await run('explain', checkpoint, '--dataset', dataset, '--method', 'grad-cam', '--images', '0:2', '--out', cam);
    expect(decodeNpy(fs.readFileSync(path.join(cam, 'attributions.npy'))).shape).toEqual([2, 1, H, W]);
    const viz = path.join(tmp, 'cli-viz');
    const printed = await run('visualize', checkpoint, '--classes', '0:2', '--steps', '16', '--out', viz);
    expect(printed).toMatch(/objective rose for 2 of 2/);
    expect(decodeNpy(fs.readFileSync(path.join(viz, 'visualisations.npy'))).shape).toEqual([2, C, H, W]);
    const examples = path.join(tmp, 'cli-examples');
    await run('examples', checkpoint, '--dataset', dataset, '--layer', 'conv1.act', '--channels', '0:2', '--top', '2', '--out', examples);
    expect(JSON.parse(fs.readFileSync(path.join(examples, 'examples.json'), 'utf8')).channels).toHaveLength(2);
    const projector = path.join(tmp, 'cli-embeddings');
    await run('embeddings', checkpoint, '--dataset', dataset, '--out', projector);
    expect(fs.readFileSync(path.join(projector, 'projector_config.pbtxt'), 'utf8')).toMatch(/single_image_dim: 12/);
  });
});
