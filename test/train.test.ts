// trainCnn on the eager path: learning, chunked evaluation, determinism, checkpoints, the event loop.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { spawnSync } from 'child_process';
import { createModel, loadModel, trainCnn, evaluate, defaultSpec } from '../src/index';
import { native } from '../src/core/native';
import { fashion, smallSpec } from './fixtures';
import { PYTHON, rejected, testWithPython, settledLiveTensors } from './helpers';

const withTorch = testWithPython(['torch']);

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'convscope-train-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

describe('eager training', () => {
  test('the loss falls and accuracy on a 2,000-image subset is clearly above chance', async () => {
    const losses: number[] = [];
    const result = await trainCnn({
      dataset: fashion(), spec: smallSpec(), limit: 2000, testLimit: 2000, epochs: 2, batchSize: 64, seed: 1,
      onProgress: (e) => { if (e.type === 'step') losses.push(e.loss); },
    });
    expect(result.history).toHaveLength(2);
    expect(result.history[1].trainLoss).toBeLessThan(result.history[0].trainLoss);
    expect(losses[losses.length - 1]).toBeLessThan(losses[0]);
    expect(result.testAccuracy).toBeGreaterThan(0.6); // chance is 0.1
    expect(result.confusion.flat().reduce((a, b) => a + b, 0)).toBe(2000);
    result.model.dispose();
  });

  test('a fixed seed gives identical weights on the CPU', async () => {
    const run = async () => {
      const r = await trainCnn({ dataset: fashion(), spec: smallSpec(), limit: 512, testLimit: 256, batchSize: 64, seed: 5 });
      const weights = r.model.parameters().map((p) => Array.from(p.values));
      r.model.dispose();
      return weights;
    };
    const [a, b] = [await run(), await run()];
    expect(a).toEqual(b);
  });

  test('different seeds give different weights', async () => {
    const m1 = createModel(smallSpec(), { seed: 1 });
    const m2 = createModel(smallSpec(), { seed: 2 });
    expect(Array.from(m1.parameters()[0].values)).not.toEqual(Array.from(m2.parameters()[0].values));
    m1.dispose();
    m2.dispose();
  });

  test('the event loop keeps turning during an epoch', async () => {
    let ticks = 0;
    const timer = setInterval(() => { ticks += 1; }, 5);
    const started = Date.now();
    const r = await trainCnn({ dataset: fashion(), spec: defaultSpec(), limit: 1024, testLimit: 100, batchSize: 64 });
    clearInterval(timer);
    const elapsed = Date.now() - started;
    // At least one tick per ~step: a blocked loop would give ~0 ticks.
    expect(ticks).toBeGreaterThan(Math.min(10, elapsed / 200));
    r.model.dispose();
  });

  test('a scripted epoch runs off the main thread: its steps reach JS while it runs, and timers fire between them', async () => {
    // One native job for the whole epoch (no snapshots). Run on the main thread, the job would hold
    // the event loop: its step events would all arrive in a burst at its end, not spread over it.
    const ticks: number[] = [];
    const steps: number[] = [];
    let epochSeconds = 0;
    const timer = setInterval(() => { ticks.push(Date.now()); }, 2);
    const r = await trainCnn({
      dataset: fashion(), spec: defaultSpec(), mode: 'script', limit: 1024, testLimit: 100, batchSize: 64,
      onProgress: (e) => { if (e.type === 'step') steps.push(Date.now()); else epochSeconds = e.record.seconds; },
    });
    clearInterval(timer);
    const [first, last] = [steps[0], steps[steps.length - 1]];
    expect((last - first) / 1000).toBeGreaterThan(epochSeconds * 0.5);
    expect(ticks.filter((t) => t > first && t < last).length).toBeGreaterThanOrEqual(3);
    r.model.dispose();
  });
});

describe('statistics read back every N steps (the GPU logic, run on the CPU)', () => {
  test('gives the same weights and history as reading every step, and still catches divergence', async () => {
    const { SYNC_EVERY } = require('../src/train/train-cnn');
    const common = { dataset: fashion(), spec: { ...smallSpec(), dropout: 0 }, limit: 1000, testLimit: 200, batchSize: 64, seed: 2, epochs: 2 };
    const everyStep = await trainCnn(common);
    SYNC_EVERY.cpu = 7;
    try {
      const batched = await trainCnn(common);
      expect(batched.model.parameters().map((p) => Array.from(p.values))).toEqual(everyStep.model.parameters().map((p) => Array.from(p.values)));
      batched.history.forEach((h, i) => {
        expect(h.trainLoss).toBeCloseTo(everyStep.history[i].trainLoss, 5);
        expect(h.trainAccuracy).toBe(everyStep.history[i].trainAccuracy);
      });
      batched.model.dispose();
      await expect(trainCnn({ ...common, spec: defaultSpec(), limit: 2048, optimizer: 'sgd', learningRate: 1e4 })).rejects.toThrow(/diverged/);
    } finally {
      SYNC_EVERY.cpu = 1;
    }
    everyStep.model.dispose();
  });
});

describe('chunked evaluation', () => {
  test('gives the same accuracy, loss and confusion for any chunk size', async () => {
    const model = createModel(smallSpec(), { seed: 3 });
    const test = fashion().test;
    const split = { images: test.images.subarray(0, 2500 * 784), labels: test.labels.subarray(0, 2500), count: 2500 };
    const whole = await evaluate(model, split, { chunkSize: 2500 });
    for (const chunkSize of [1000, 333, 1]) {
      const chunked = await evaluate(model, split, { chunkSize });
      expect(chunked.accuracy).toBe(whole.accuracy);
      expect(chunked.confusion).toEqual(whole.confusion);
      expect(chunked.loss).toBeCloseTo(whole.loss, 5);
    }
    model.dispose();
  });
});

describe('checkpoints', () => {
  test('save and load round-trip the weights, spec and predictions', () => {
    const model = createModel(smallSpec(), { seed: 9 });
    const file = path.join(tmp, 'round.pt');
    model.save(file);
    const loaded = loadModel(file);
    expect(loaded.spec).toEqual(model.spec);
    expect(loaded.parameters().map((p) => Array.from(p.values))).toEqual(model.parameters().map((p) => Array.from(p.values)));
    const images = fashion().test.images.subarray(0, 10 * 784);
    expect(Array.from(loaded.predict(images))).toEqual(Array.from(model.predict(images)));
    model.dispose();
    loaded.dispose();
  });

  test('includeOptimizer stores the optimizer state trainCnn kept with the model', async () => {
    const common = { dataset: fashion(), spec: smallSpec(), limit: 512, testLimit: 128, batchSize: 64, seed: 12 };
    const first = await trainCnn(common);
    const file = path.join(tmp, 'with-optimizer.pt');
    first.model.save(file, { includeOptimizer: true });
    const { loadCheckpoint } = require('../src/train/checkpoint');
    const loaded = loadCheckpoint(file);
    expect(loaded.optimizerState.length).toBeGreaterThan(1000);
    expect(loaded.meta.optimizer.kind).toBe('adam');
    loaded.model.dispose();
    const fresh = createModel(smallSpec(), { seed: 1 });
    expect(() => fresh.save(path.join(tmp, 'no-optimizer.pt'), { includeOptimizer: true })).toThrow(/no optimizer state/);
    fresh.dispose();
    first.model.dispose();
  });

  test('a missing or corrupt checkpoint is a clear error', () => {
    expect(() => loadModel(path.join(tmp, 'nope.pt'))).toThrow(/no such checkpoint file/);
    const bad = path.join(tmp, 'bad.pt');
    fs.writeFileSync(bad, 'not a checkpoint');
    expect(() => loadModel(bad)).toThrow(/is not a readable PyTorch checkpoint/);
  });

  withTorch('PyTorch reads the checkpoint as a state dict with PyTorch names', () => {
    const model = createModel(defaultSpec(), { seed: 11 });
    const file = path.join(tmp, 'for-python.pt');
    model.save(file);
    const script = [
      'import sys, torch, json',
      'sd = torch.load(sys.argv[1], weights_only=True)',
      "weights = {k: v for k, v in sd.items() if not k.startswith('convscope.')}",
      "print(json.dumps({k: [list(v.shape), float(v.double().sum())] for k, v in weights.items()}))",
    ].join('\n');
    const run = spawnSync(PYTHON, ['-c', script, file], { encoding: 'utf8' });
    expect(run.stderr).toBe('');
    const fromPython = JSON.parse(run.stdout);
    expect(Object.keys(fromPython)).toEqual(['conv1.weight', 'conv1.bias', 'conv2.weight', 'conv2.bias', 'fc1.weight', 'fc1.bias', 'fc2.weight', 'fc2.bias']);
    for (const p of model.parameters()) {
      expect(fromPython[p.name][0]).toEqual(p.shape);
      expect(fromPython[p.name][1]).toBeCloseTo(p.values.reduce((a, b) => a + b, 0), 2);
    }
    model.dispose();
  });

  withTorch('initial weights equal PyTorch\'s for the same seed', () => {
    const model = createModel(defaultSpec(), { seed: 123 });
    const script = [
      'import sys, json, torch',
      "sys.path.insert(0, 'bench')",
      'from pytorch_reference import Net',
      'torch.manual_seed(123)',
      'net = Net()',
      'print(json.dumps({k: v.flatten()[:5].tolist() for k, v in net.state_dict().items()}))',
    ].join('\n');
    const run = spawnSync(PYTHON, ['-c', script], { encoding: 'utf8', cwd: path.join(__dirname, '..') });
    expect(run.stderr).toBe('');
    const fromPython = JSON.parse(run.stdout);
    for (const p of model.parameters()) {
      Array.from(p.values.subarray(0, 5)).forEach((v, i) => expect(v).toBeCloseTo(fromPython[p.name][i], 6));
    }
    model.dispose();
  });

  test('a run folder holds config, history and a loadable checkpoint with optimizer state', async () => {
    const runDir = path.join(tmp, 'run');
    const r = await trainCnn({ dataset: fashion(), spec: smallSpec(), limit: 256, testLimit: 128, runDir, pictures: false });
    for (const f of ['config.json', 'history.json', 'model.pt']) expect(fs.existsSync(path.join(runDir, f))).toBe(true);
    const history = JSON.parse(fs.readFileSync(path.join(runDir, 'history.json'), 'utf8'));
    expect(history[0].testAccuracy).toBe(r.testAccuracy);
    const config = JSON.parse(fs.readFileSync(path.join(runDir, 'config.json'), 'utf8'));
    expect(config.options.limit).toBe(256);
    const { loadCheckpoint } = require('../src/train/checkpoint');
    const loaded = loadCheckpoint(path.join(runDir, 'model.pt'));
    expect(loaded.optimizerState.length).toBeGreaterThan(0);
    expect(loaded.meta.training.epoch).toBe(1);
    loaded.model.dispose();
    r.model.dispose();
  });
});

describe('liveTensors', () => {
  test('training and disposing the model leaves no native tensors behind', async () => {
    const baseline = await settledLiveTensors();
    const r = await trainCnn({ dataset: fashion(), spec: smallSpec(), limit: 256, testLimit: 128 });
    r.model.dispose();
    expect(native().liveTensors()).toBe(baseline);
  });
});

describe('validation on an in-memory dataset', () => {
  const data = () => {
    const f = fashion();
    const split = { images: f.train.images.subarray(0, 600 * 784), labels: f.train.labels.subarray(0, 600), count: 600 };
    return { name: 'fashion-600', train: split, test: { ...split, count: 100, images: split.images.subarray(0, 100 * 784), labels: split.labels.subarray(0, 100) }, classNames: f.classNames };
  };

  test('holds out the last n training images, as for a named dataset', async () => {
    let steps = 0;
    const r = await trainCnn({ dataset: data(), validation: 100, batchSize: 100, spec: smallSpec(), mode: 'script', onProgress: (e) => { if (e.type === 'step') steps = e.steps; } });
    expect(steps).toBe(5);
    expect(r.history[0].validationAccuracy).toBeGreaterThan(0);
    r.model.dispose();
  });

  test('must leave training images and cannot replace a given validation split', async () => {
    expect((await rejected(trainCnn({ dataset: data(), validation: 600 }))).message).toMatch(/validation but received 600/);
    const withSplit = { ...data(), validation: data().test };
    expect((await rejected(trainCnn({ dataset: withSplit, validation: 10 }))).message).toMatch(/either dataset.validation or the validation option/);
  });
});
