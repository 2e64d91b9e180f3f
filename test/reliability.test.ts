// What must hold whatever users do: no leaks, abort, crash-safe checkpoints and resume, divergence,
// concurrency, disposed models.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { spawn, spawnSync } from 'child_process';
import { createModel, defaultSpec, evaluate, loadModel, trainCnn } from '../src/index';
import { native } from '../src/core/native';
import { loadCheckpoint } from '../src/train/checkpoint';
import type { CnnSpec } from '../src/nn/spec';
import { fashion } from './fixtures';
import { rejected, settledLiveTensors } from './helpers';
import { FAULT_ENV } from '../src/util/fs-atomic';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'convscope-reliability-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));
const tiny = (): CnnSpec => ({ conv: [{ filters: 4, kernelSize: 3, padding: 'same', pool: true }], dense: [16], dropout: 0.25 });
const base = () => ({ dataset: fashion(), spec: tiny(), limit: 512, testLimit: 128, batchSize: 64, seed: 3 });
const weightsOf = (m: { parameters(): { values: Float32Array }[] }) => m.parameters().map((p) => Array.from(p.values));

describe('leaks', () => {
  test('5 epochs then dispose: liveTensors back at baseline, RSS grows < 5% from epoch 2 to 5', async () => {
    const baseline = await settledLiveTensors();
    const rss: number[] = [];
    const r = await trainCnn({ ...base(), limit: 2048, epochs: 5, onProgress: (e) => { if (e.type === 'epoch') rss.push(process.memoryUsage().rss); } });
    r.model.dispose();
    expect(native().liveTensors()).toBe(baseline);
    expect(rss).toHaveLength(5);
    expect(rss[4] / rss[1]).toBeLessThan(1.05);
  });

  test('1,000 evaluate calls: no native tensor left, RSS grows < 5% after warm-up', () => {
    // In a clean process: jest's own allocations would otherwise dominate a few-MB measurement.
    const run = spawnSync(process.execPath, [path.join(__dirname, 'fixtures', 'evaluate-loop.js')], { encoding: 'utf8' });
    expect(run.stderr).toBe('');
    const r = JSON.parse(run.stdout);
    expect(r.live).toBe(r.baseline);
    expect(r.end / r.warm).toBeLessThan(1.05);
  });
});

describe('abort', () => {
  test.each(['eager', 'script'] as const)('an abort mid-epoch rejects with AbortError within one step (%s), the model stays usable and the last checkpoint is intact', async (mode) => {
    const runDir = path.join(tmp, `abort-${mode}`);
    const controller = new AbortController();
    let stepsAfterAbort = -1;
    const promise = trainCnn({
      ...base(), mode, epochs: 3, runDir, pictures: false, signal: controller.signal,
      onProgress: (e) => {
        if (stepsAfterAbort >= 0 && e.type === 'step') stepsAfterAbort += 1;
        if (e.type === 'step' && e.epoch === 2 && e.step === 3) { controller.abort(); stepsAfterAbort = 0; }
      },
    });
    const err = (await rejected(promise)) as Error & { model?: import('../src/index').CnnModel; epoch?: number };
    expect(err.name).toBe('AbortError');
    expect(err.message).toMatch(/aborted at epoch 2/);
    expect(stepsAfterAbort).toBeLessThanOrEqual(1);
    // The model is still usable.
    expect(err.model!.predict(fashion().test.images.subarray(0, 784))).toHaveLength(10);
    err.model!.dispose();
    // The checkpoint holds epoch 1 and where epoch 2 stopped (see failure-paths.test.ts for resuming from it).
    const saved = loadCheckpoint(path.join(runDir, 'model.pt'));
    expect(saved.meta.training!.epoch).toBe(1);
    expect(saved.meta.training!.partial!.step).toBeGreaterThanOrEqual(3);
    saved.model.dispose();
  });
});

describe('crash safety and resume', () => {
  test('resumeFrom a checkpoint ends with the same weights as an uninterrupted run (CPU, fixed seed)', async () => {
    for (const mode of ['eager', 'script'] as const) {
      const whole = await trainCnn({ ...base(), mode, epochs: 3 });
      const runDir = path.join(tmp, `resume-${mode}`);
      const first = await trainCnn({ ...base(), mode, epochs: 1, runDir, pictures: false });
      first.model.dispose();
      const resumed = await trainCnn({ ...base(), mode, epochs: 3, resumeFrom: path.join(runDir, 'model.pt') });
      expect(resumed.history.map((h) => h.epoch)).toEqual([1, 2, 3]);
      expect(weightsOf(resumed.model)).toEqual(weightsOf(whole.model));
      whole.model.dispose();
      resumed.model.dispose();
    }
  });

  test('SIGKILL in the middle of writing the n-th checkpoint (n = 1..4): the previous one loads and resumes', async () => {
    // A fault-injection point between the two halves of every write (src/fs-atomic.ts) kills the child
    // there, so each round really tears a write: a non-atomic write would leave half a model.pt.
    const child = path.join(__dirname, 'fixtures', 'train-child.js');
    for (let n = 1; n <= 4; ++n) {
      const runDir = path.join(tmp, `killed-${n}`); // a fresh folder: no earlier round's model.pt to find
      const proc = spawn(process.execPath, [child, runDir, '10'], { stdio: 'ignore', env: { ...process.env, [FAULT_ENV]: `kill:model.pt:${n}` } });
      const signal = await new Promise((resolve) => proc.on('exit', (_code, sig) => resolve(sig)));
      expect(signal).toBe('SIGKILL');
      const names = fs.readdirSync(runDir);
      // The torn write is there, under a temporary name that no reader looks for.
      expect(names.filter((f) => /^\.model\.pt\.\d+\.[0-9a-f]+\.tmp$/.test(f))).toHaveLength(1);
      const file = path.join(runDir, 'model.pt');
      if (n === 1) {
        expect(names).not.toContain('model.pt');
        continue;
      }
      const loaded = loadCheckpoint(file);
      expect(loaded.meta.training!.epoch).toBe(n - 1);
      loaded.model.dispose();
      const resumed = await trainCnn({ ...base(), epochs: n, resumeFrom: file });
      expect(resumed.history.map((h) => h.epoch)).toEqual(Array.from({ length: n }, (_, i) => i + 1));
      resumed.model.dispose();
    }
  }, 180000);
});

describe('divergence', () => {
  test.each(['eager', 'script'] as const)('a NaN loss stops training with an error naming the step and the learning rate (%s)', async (mode) => {
    const err = await rejected(trainCnn({ ...base(), mode, spec: defaultSpec(), limit: 2048, learningRate: 1e4, optimizer: 'sgd', epochs: 3 })) as Error & { model?: import('../src/index').CnnModel };
    expect(err.name).toBe('TrainingDivergedError');
    expect(err.message).toMatch(/epoch \d+, step \d+ \(learning rate 10000\)/);
    // "Before the weights are updated with it": every weight the caller gets back is finite.
    const nonFinite = err.model!.parameters().map((p) => [p.name, p.values.filter((v) => !Number.isFinite(v)).length]);
    err.model!.dispose();
    expect(nonFinite).toEqual(nonFinite.map(([name]) => [name, 0]));
    expect((err as Error & { weightsFinite?: boolean }).weightsFinite).toBe(true);
  });

  test.each(['eager', 'script'] as const)('Adam at learningRate 1e308: the error says the weights it returns are no longer finite, and they are not (%s)', async (mode) => {
    // The first update, from a finite loss, overflows every weight; the loss shows it one step later.
    const err = await rejected(trainCnn({ ...base(), mode, learningRate: 1e308, optimizer: 'adam' })) as Error & { model?: import('../src/index').CnnModel; weightsFinite?: boolean };
    expect(err.name).toBe('TrainingDivergedError');
    const finite = err.model!.parameters().every((p) => p.values.every(Number.isFinite));
    err.model!.dispose();
    expect(finite).toBe(false);
    expect(err.weightsFinite).toBe(false);
    expect(err.message).toMatch(/\(learning rate 1e\+308\); the weights are no longer finite \(an earlier update overflowed them\)/);
    expect(err.message).not.toMatch(/not updated/);
  });
});

describe('concurrency', () => {
  test('two trainings side by side both finish with the results they get alone', async () => {
    const spec: CnnSpec = { ...tiny(), dropout: 0 };
    const alone = await trainCnn({ ...base(), spec, epochs: 2 });
    const aloneScript = await trainCnn({ ...base(), spec, epochs: 2, mode: 'script', seed: 4 });
    // Which run each step event came from, in order: side by side means interleaved, not one after the other.
    const order: string[] = [];
    const [a, b] = await Promise.all([
      trainCnn({ ...base(), spec, epochs: 2, onProgress: (e) => { if (e.type === 'step') order.push('a'); } }),
      trainCnn({ ...base(), spec, epochs: 2, mode: 'script', seed: 4, onProgress: (e) => { if (e.type === 'step') order.push('b'); } }),
    ]);
    const switches = order.filter((run, i) => i > 0 && run !== order[i - 1]).length;
    expect(switches).toBeGreaterThanOrEqual(3);
    expect(weightsOf(a.model)).toEqual(weightsOf(alone.model));
    expect(weightsOf(b.model)).toEqual(weightsOf(aloneScript.model));
    for (const r of [alone, aloneScript, a, b]) r.model.dispose();
  });

  test('using a disposed model is a clear error', async () => {
    const model = createModel(tiny(), { seed: 1 });
    model.dispose();
    expect(() => model.predict(new Uint8Array(784))).toThrow(/used after dispose/);
    expect(() => model.parameters()).toThrow(/used after dispose/);
    expect(() => model.save(path.join(tmp, 'x.pt'))).toThrow(/used after dispose/);
    const err = await rejected(trainCnn({ ...base(), initialModel: model }));
    expect(err.message).toMatch(/used after dispose/);
    expect(() => model.dispose()).not.toThrow();
  });

  test('a model that is training cannot be fine-tuned from at the same time without copying', async () => {
    const model = createModel(tiny(), { seed: 1 });
    const copy = await trainCnn({ ...base(), initialModel: model });
    // The given model is untouched: initialModel trains a copy.
    expect(weightsOf(model)).not.toEqual(weightsOf(copy.model));
    expect(weightsOf(model)).toEqual(weightsOf(createModel(tiny(), { seed: 1 })));
    copy.model.dispose();
    model.dispose();
    expect(loadModel).toBeDefined();
  });
});
