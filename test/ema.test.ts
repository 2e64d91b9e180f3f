// The moving average of the weights (trainCnn's `ema`): the native update and swap do the promised
// arithmetic, training keeps the average on both paths alike (batch-norm statistics too, across the
// native loop's segments), evaluation and the returned model use it, and bad settings are refused.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { native, valuesOf } from '../src/core/native';
import { CnnModel, createModel, evaluate, loadModel, trainCnn } from '../src/index';
import { resolveTrainOptions } from '../src/train/options';
import { fashion, smallSpec } from './fixtures';
import { expectError } from './helpers';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'convscope-ema-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

const tensor = (values: number[]) => new (native().Tensor)(Float32Array.from(values), [values.length]);
const values = (m: CnnModel): number[][] => [...m.parameters(), ...m.buffers()].map((p) => Array.from(p.values));
const maxDiff = (a: number[][], b: number[][]): number => Math.max(...a.map((w, i) => Math.max(...w.map((v, j) => Math.abs(v - b[i][j])))));
/** d^2 w0 + d(1 - d) w1 + (1 - d) w2: the average after two updates, from w0. */
const twoUpdates = (d: number, w0: number[][], w1: number[][], w2: number[][]) => w0.map((w, i) => w.map((v, j) => d * d * v + d * (1 - d) * w1[i][j] + (1 - d) * w2[i][j]));

const BN_SPEC = { conv: [{ filters: 6, kernelSize: 3, padding: 'same' as const, pool: true }], dense: [16], dropout: 0, batchNorm: true };

describe('ema', () => {
  test('ema.update moves each average towards its source by 1 - decay and copies integer tensors; ema.swap exchanges contents', () => {
    const a = tensor([1, 2, 3]);
    const s = tensor([3, 2, 1]);
    const count = new (native().Tensor)(BigInt64Array.from([0n]), [1]);
    const counted = new (native().Tensor)(BigInt64Array.from([7n]), [1]);
    native().ema.update([a, count], [s, counted], 0.75);
    expect(Array.from(valuesOf(a, 'float32'))).toEqual([1.5, 2, 2.5]);
    expect(Array.from(valuesOf(count, 'int64'))).toEqual([7n]);
    native().ema.swap([a], [s]);
    expect([Array.from(valuesOf(a, 'float32')), Array.from(valuesOf(s, 'float32'))]).toEqual([[3, 2, 1], [1.5, 2, 2.5]]);
    for (const t of [a, s, count, counted]) t.dispose();
  });

  test('ema.update refuses lists that do not pair up', () => {
    const a = tensor([1, 2]);
    const b = tensor([1, 2, 3]);
    expectError(() => native().ema.update([a], [a, b], 0.5), 'RangeError', /Expected as many sources as averages \(1\) for averages but received 2/);
    expectError(() => native().ema.update([a], [b], 0.5), 'RangeError', /Expected the shape, dtype and device of its source for averages\[0\]/);
    expectError(() => native().ema.update([a], [a], 1), 'RangeError', /Expected a number in \[0, 1\) for decay but received 1/);
    a.dispose();
    b.dispose();
  });

  // One step per epoch (64 images, batch 64, no dropout, constant rate): the weights after epoch 1
  // and 2 come from runs without the average.
  const start = () => createModel({ ...smallSpec(), dropout: 0 }, { seed: 8 });
  const common = { dataset: fashion(), optimizer: 'sgd' as const, learningRate: 0.1, limit: 64, batchSize: 64, testLimit: 100, seed: 4 };

  test.each(['eager', 'script'] as const)('(%s) after two steps the returned model holds d^2 w0 + d(1 - d) w1 + (1 - d) w2, and each epoch was evaluated with the average', async (mode) => {
    const w0model = start();
    const w0 = values(w0model);
    const one = await trainCnn({ ...common, mode, initialModel: w0model, epochs: 1 });
    const two = await trainCnn({ ...common, mode, initialModel: w0model, epochs: 2 });
    const decay = 0.6;
    const averaged = await trainCnn({ ...common, mode, initialModel: w0model, epochs: 2, ema: { decay, warmup: false } });
    const values2 = values(two.model);
    expect(maxDiff(values(averaged.model), twoUpdates(decay, w0, values(one.model), values2))).toBeLessThan(1e-6);
    expect(maxDiff(values(averaged.model), values(two.model))).toBeGreaterThan(1e-3);
    // The figures describe the returned model (the average), and the records say so.
    const again = await evaluate(averaged.model, { ...fashion().test, images: fashion().test.images.subarray(0, 100 * 784), labels: fashion().test.labels.subarray(0, 100), count: 100 });
    expect(averaged.testLoss).toBeCloseTo(again.loss, 6);
    expect(averaged.history[1].evaluatedWith).toEqual({ ema: { decay, every: 1, warmup: false } });
    // With the warm-up the two updates decay by min(d, 2/11) and min(d, 3/12).
    const warm = await trainCnn({ ...common, mode, initialModel: w0model, epochs: 2, ema: { decay } });
    const [d1, d2] = [2 / 11, 3 / 12];
    const w1 = values(one.model);
    const wantWarm = w0.map((w, i) => w.map((v, j) => d2 * (d1 * v + (1 - d1) * w1[i][j]) + (1 - d2) * values2[i][j]));
    expect(maxDiff(values(warm.model), wantWarm)).toBeLessThan(1e-6);
    warm.model.dispose();
    for (const m of [w0model, one.model, two.model, averaged.model]) m.dispose();
  });

  test('every: 2 updates after the run\'s second step, also when the native loop runs one step per segment', async () => {
    const w0model = start();
    const w0 = values(w0model);
    const two = await trainCnn({ ...common, mode: 'script', initialModel: w0model, epochs: 2 });
    const decay = 0.3;
    const averaged = await trainCnn({ ...common, mode: 'script', initialModel: w0model, epochs: 2, snapshotEvery: 1, ema: { decay, every: 2, warmup: false } });
    const w2 = values(two.model);
    const want = w0.map((w, i) => w.map((v, j) => decay * v + (1 - decay) * w2[i][j]));
    expect(maxDiff(values(averaged.model), want)).toBeLessThan(1e-6);
    for (const m of [w0model, two.model, averaged.model]) m.dispose();
  });

  test('with batch norm, eager and script keep the same average of weights and running statistics; the run folder\'s model.pt holds it', async () => {
    const options = { dataset: fashion(), spec: BN_SPEC, limit: 64 * 5, batchSize: 64, testLimit: 100, seed: 6, epochs: 2, optimizer: 'adamw' as const, learningRate: 3e-3, ema: { decay: 0.8 } };
    const runDir = path.join(tmp, 'bn');
    const eager = await trainCnn({ ...options, mode: 'eager', runDir, pictures: false });
    const script = await trainCnn({ ...options, mode: 'script' });
    const plain = await trainCnn({ ...options, mode: 'script', ema: undefined });
    expect(maxDiff(values(eager.model), values(script.model))).toBeLessThan(1e-4);
    // The running means are averaged too: they differ from the plain run's last ones.
    const runningMean = (m: CnnModel) => m.buffers().find((b) => b.name.endsWith('running_mean'))!.values;
    expect(Math.max(...Array.from(runningMean(script.model), (v, i) => Math.abs(v - runningMean(plain.model)[i])))).toBeGreaterThan(1e-4);
    const saved = loadModel(path.join(runDir, 'model.pt'));
    expect(maxDiff(values(saved), values(eager.model))).toBe(0);
    for (const m of [eager.model, script.model, plain.model, saved]) m.dispose();
  });

  test('resuming an ema run keeps the records of how its epochs were evaluated, and trains on from the saved average', async () => {
    const runDir = path.join(tmp, 'resume');
    const options = { dataset: fashion(), spec: BN_SPEC, limit: 128, batchSize: 64, testLimit: 50, ema: { decay: 0.9 }, tta: { flip: true } };
    const first = await trainCnn({ ...options, runDir, pictures: false });
    first.model.dispose();
    const resumed = await trainCnn({ ...options, epochs: 2, resumeFrom: path.join(runDir, 'model.pt') });
    expect(resumed.history[0]).toEqual(first.history[0]);
    expect(resumed.history[0].evaluatedWith).toEqual({ tta: { flip: true, shift: 0 }, ema: { decay: 0.9, every: 1, warmup: true } });
    expect(resumed.history[1].evaluatedWith).toEqual(resumed.history[0].evaluatedWith);
    resumed.model.dispose();
  });

  test('bad ema options are refused before any work, naming the option', () => {
    expectError(() => resolveTrainOptions({ ema: { decay: 1 } }), 'RangeError', /for ema.decay but received 1/);
    expectError(() => resolveTrainOptions({ ema: { decay: 0 } }), 'RangeError', /for ema.decay but received 0/);
    expectError(() => resolveTrainOptions({ ema: { every: 0 } }), 'RangeError', /for ema.every but received 0/);
    expectError(() => resolveTrainOptions({ ema: { decay: '0.9' } as never }), 'TypeError', /for ema.decay but received "0.9"/);
    expectError(() => resolveTrainOptions({ ema: { rate: 0.9 } as never }), 'TypeError', /Unknown option "rate" in ema; expected one of decay, every, warmup/);
    expect(resolveTrainOptions({ ema: {} }).ema).toEqual({ decay: 0.99, every: 1, warmup: true });
    expectError(() => resolveTrainOptions({ ema: { warmup: 1 } as never }), 'TypeError', /Expected a boolean for ema.warmup but received 1/);
    expect(resolveTrainOptions({}).ema).toBeUndefined();
  });
});
