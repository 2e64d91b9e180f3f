// maximize(): feature visualisation raises its objective (a channel's mean, a dense unit, a class
// logit), keeps the pixels in [0, 1], is deterministic for a seed and per unit, gives the same
// images on the eager and the scripted path, leaks no tensor, and refuses bad input before any
// native work. The jitter's gradient is the shift's adjoint and the total variation's gradient its
// derivative (checked numerically).
import { createModel, defaultSpec } from '../src/index';
import { native } from '../src/core/native';
import type { CnnModel } from '../src/nn/model';
import { maximize, shiftImage, totalVariation, unshiftGradient } from '../src/probe/maximize';
import { FASHION_INPUT_NORM } from './fixtures';
import { settledLiveTensors } from './helpers';

const H = 28;
const W = 28;
const N = H * W;

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; ++i) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

describe('maximize on the tutorial network', () => {
  let eager: CnnModel;
  let script: CnnModel;
  beforeAll(() => {
    eager = createModel(defaultSpec(), { seed: 5, inputNorm: FASHION_INPUT_NORM });
    script = eager.toScript();
  });
  afterAll(() => { eager?.dispose(); script?.dispose(); });

  test.each([
    ['a conv channel (mean over positions)', { layer: 'conv2', channel: [0, 1, 2, 3] }],
    ['a dense unit', { layer: 'fc1', channel: [0, 5] }],
    ['a class logit', { class: [0, 7] }],
  ] as const)('raises %s, pixels stay in [0, 1], no tensor leaked', async (_what, objective) => {
    const before = await settledLiveTensors();
    const v = await maximize(eager, objective, { steps: 24, seed: 1 });
    expect(native().liveTensors()).toBe(before);
    const n = v.units.length;
    expect(v.shape).toEqual([n, H, W]);
    expect(v.trace.length).toBe(n * 24);
    for (let i = 0; i < n; ++i) {
      expect(v.final[i]).toBeGreaterThan(v.initial[i] + 0.05 * Math.max(1, Math.abs(v.initial[i])));
      // The trace rose too: the last steps' mean above the first steps'.
      const mean = (from: number, to: number) => v.trace.subarray(i * 24 + from, i * 24 + to).reduce((a, b) => a + b, 0) / (to - from);
      expect(mean(18, 24)).toBeGreaterThan(mean(0, 6));
    }
    expect(Math.min(...v.images)).toBeGreaterThanOrEqual(0);
    expect(Math.max(...v.images)).toBeLessThanOrEqual(1);
  });

  test('plain gradient steps raise it too', async () => {
    const v = await maximize(eager, { class: 3 }, { steps: 16, optimizer: 'sgd', learningRate: 0.01 });
    expect(v.final[0]).toBeGreaterThan(v.initial[0]);
    expect(v.settings.optimizer).toBe('sgd');
  });

  test('deterministic for a seed, per unit (whatever else is asked with it), different for another seed', async () => {
    const a = await maximize(eager, { layer: 'conv2.act', channel: [3, 9] }, { steps: 6, seed: 2 });
    const b = await maximize(eager, { layer: 'conv2.act', channel: [9] }, { steps: 6, seed: 2, chunkSize: 1 });
    const c = await maximize(eager, { layer: 'conv2.act', channel: [9] }, { steps: 6, seed: 3 });
    expect(maxAbsDiff(a.images.subarray(N, 2 * N), b.images)).toBe(0);
    expect(maxAbsDiff(b.images, c.images)).toBeGreaterThan(0.01);
  });

  test.each([
    ['a conv channel', { layer: 'conv1.pool', channel: [0, 4] }],
    ['a dense unit', { layer: 'fc1.act', channel: [2] }],
    ['a class logit', { class: [1, 8] }],
  ] as const)('eager = script for %s (the scripted layer through the split TorchScript)', async (_what, objective) => {
    const before = await settledLiveTensors();
    const a = await maximize(eager, objective, { steps: 8, seed: 4 });
    const b = await maximize(script, objective, { steps: 8, seed: 4 });
    expect(native().liveTensors()).toBe(before);
    expect(maxAbsDiff(a.images, b.images)).toBeLessThan(1e-4);
    expect(maxAbsDiff(a.trace, b.trace)).toBeLessThan(1e-4 * Math.max(1, ...Array.from(a.trace, Math.abs)));
  });
});

test('any input size: a 20x24 network with global average pooling (its images 20x24, its objective rises)', async () => {
  const model = createModel({ conv: [{ filters: 6, kernelSize: 3, pool: true }, { filters: 5, kernelSize: 3 }], dense: [], dropout: 0, inputSize: [20, 24], globalAvgPool: true }, { seed: 8 });
  const before = await settledLiveTensors();
  const v = await maximize(model, { layer: 'conv2', channel: [0, 4] }, { steps: 12 });
  const c = await maximize(model, { class: 2 }, { steps: 12 });
  expect(native().liveTensors()).toBe(before);
  expect(v.shape).toEqual([2, 20, 24]);
  expect(v.images).toHaveLength(2 * 20 * 24);
  for (let i = 0; i < 2; ++i) expect(v.final[i]).toBeGreaterThan(v.initial[i]);
  expect(c.final[0]).toBeGreaterThan(c.initial[0]);
  model.dispose();
});

describe('the regularisers\' gradients', () => {
  const spread = (count: number, seed: number) => Float32Array.from({ length: count }, (_, i) => (((Math.sin(i * 12.9898 + seed * 78.233) * 43758.5453) % 1) + 1) % 1);

  test('the jitter\'s gradient is the shift\'s adjoint: <S x, g> = <x, S^T g>', () => {
    const h = 7;
    const w = 5;
    const x = spread(h * w, 1);
    const g = spread(h * w, 2);
    for (const [dy, dx] of [[0, 0], [1, -2], [-3, 2], [6, 4]]) {
      const shifted = new Float32Array(h * w);
      shiftImage(x, h, w, dy, dx, shifted);
      const back = new Float64Array(h * w);
      unshiftGradient(g, h, w, dy, dx, back);
      const left = shifted.reduce((s, v, i) => s + v * g[i], 0);
      const right = x.reduce((s, v, i) => s + v * back[i], 0);
      expect(right).toBeCloseTo(left, 5);
    }
  });

  test('total variation\'s gradient matches finite differences', () => {
    const h = 6;
    const w = 4;
    const x = Array.from(spread(h * w, 3));
    const gradient = new Float64Array(h * w);
    totalVariation(x, h, w, gradient);
    const eps = 1e-6;
    for (let p = 0; p < h * w; ++p) {
      const up = x.slice(); up[p] += eps;
      const down = x.slice(); down[p] -= eps;
      expect(gradient[p]).toBeCloseTo((totalVariation(up, h, w) - totalVariation(down, h, w)) / (2 * eps), 5);
    }
    expect(totalVariation(new Array(h * w).fill(0.3), h, w)).toBe(0);
  });
});

describe('bad input: a clear error naming what was wrong and what was expected, before any native work', () => {
  let model: CnnModel;
  beforeAll(() => { model = createModel(defaultSpec(), { seed: 1 }); });
  afterAll(() => model?.dispose());

  const CASES: [string, () => Promise<unknown>, string, RegExp][] = [
    ['an unknown layer', () => maximize(model, { layer: 'conv9', channel: 0 }), 'RangeError',
      /^Expected one of conv1, conv1.act, conv1.pool, conv2, conv2.act, conv2.pool, flatten, fc1, fc1.act, fc1.dropout, fc2 for objective.layer but received "conv9" of type string$/],
    ['a channel the layer does not have', () => maximize(model, { layer: 'conv2.act', channel: [0, 64] }), 'RangeError',
      /^Expected integer in \[0, 63\] for objective.channel\[1\] but received 64 of type number$/],
    ['no channel', () => maximize(model, { layer: 'conv1' } as never), 'TypeError',
      /^Expected a channel index in \[0, 31\] of conv1 or a non-empty array of them for objective.channel but received undefined$/],
    ['an empty channel list', () => maximize(model, { layer: 'conv1', channel: [] }), 'TypeError', /^Expected a channel index in \[0, 31\] of conv1 or a non-empty array of them for objective.channel but received an array of length 0$/],
    ['a class outside the classes', () => maximize(model, { class: 10 }), 'RangeError', /^Expected integer in \[0, 9\] for objective.class but received 10 of type number$/],
    ['class and layer together', () => maximize(model, { class: 1, layer: 'conv1' } as never), 'TypeError', /^Unknown option "layer" in objective; expected one of class$/],
    ['no objective', () => maximize(model, undefined as never), 'TypeError', /^Expected an object for objective but received undefined$/],
    ['steps < 1', () => maximize(model, { class: 1 }, { steps: 0 }), 'RangeError', /^Expected integer in \[1, 65536\] for steps but received 0 of type number$/],
    ['an unknown optimizer', () => maximize(model, { class: 1 }, { optimizer: 'lbfgs' as never }), 'RangeError', /^Expected one of adam, sgd for optimizer but received "lbfgs"/],
    ['a negative TV weight', () => maximize(model, { class: 1 }, { tvWeight: -1 }), 'RangeError', /^Expected a number in \[0, 1000000\] for tvWeight but received -1/],
    ['a fractional jitter', () => maximize(model, { class: 1 }, { jitter: 1.5 }), 'TypeError', /^Expected integer for jitter but received 1.5/],
    ['an unknown option', () => maximize(model, { class: 1 }, { lr: 0.1 } as never), 'TypeError',
      /^Unknown option "lr" in maximize options; expected one of steps, optimizer, learningRate, jitter, tvWeight, noise, seed, chunkSize$/],
  ];

  test.each(CASES)('%s', async (_what, call, name, message) => {
    const before = await settledLiveTensors();
    const err = await call().then(() => { throw new Error('expected a rejection'); }, (e: Error) => e);
    expect(err.name).toBe(name);
    expect(err.message).toMatch(message);
    expect(native().liveTensors()).toBe(before);
  });

  test('a disposed model', async () => {
    const gone = createModel({ conv: [], dense: [8], dropout: 0 });
    gone.dispose();
    const err = await maximize(gone, { class: 0 }).catch((e: Error) => e);
    expect((err as Error).name).toBe('ModelDisposedError');
  });
});
