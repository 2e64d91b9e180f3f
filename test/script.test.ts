// The scripted path: same weights and numbers as the eager path, a native epoch, .pt export.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { spawnSync } from 'child_process';
import { createModel, evaluate, loadTorchScript, trainCnn, defaultSpec } from '../src/index';
import type { CnnSpec } from '../src/index';
import { CnnModel } from '../src/nn/model';
import { native, NativeTensor, OptimizerSettings } from '../src/core/native';
import { ops } from '../src/core/ops';
import { tidy } from '../src/core/tidy';
import { fashion, smallSpec, specVariants } from './fixtures';
import { PYTHON, testWithPython } from './helpers';

const withTorch = testWithPython(['torch']);

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'convscope-script-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

const noDropout = () => ({ ...smallSpec(), dropout: 0 });

function relativeDiff(a: Float32Array, b: Float32Array): number {
  let worst = 0;
  for (let i = 0; i < a.length; ++i) worst = Math.max(worst, Math.abs(a[i] - b[i]) / Math.max(Math.abs(a[i]), Math.abs(b[i]), 1e-6));
  return worst;
}

/** Uploads the first n training images and labels as the native loop wants them. */
function batchTensors(n: number): { images: NativeTensor; labels: NativeTensor; order: NativeTensor } {
  const train = fashion().train;
  return {
    images: new (native().Tensor)(train.images.subarray(0, n * 784), [n, 28, 28]),
    labels: new (native().Tensor)(train.labels.subarray(0, n), [n]),
    order: new (native().Tensor)(BigInt64Array.from({ length: n }, (_, i) => BigInt(i)), [n]),
  };
}

function eagerStep(model: CnnModel, settings: OptimizerSettings, data: ReturnType<typeof batchTensors>, n: number): number {
  const optimizer = new (native().Optimizer)(model.parameterTensors(), settings);
  const loss = tidy(() => {
    const [x, y] = ops().gatherBatch(data.images, data.labels, data.order, 0, n, 0, 1);
    const l = ops().crossEntropy(model.forward(x, { training: true }), y);
    optimizer.zeroGrad();
    l.backward();
    optimizer.step();
    return l.item();
  });
  optimizer.dispose();
  return loss;
}

async function scriptStep(model: CnnModel, settings: OptimizerSettings, data: ReturnType<typeof batchTensors>, n: number): Promise<number> {
  const optimizer = new (native().Optimizer)(model.parameterTensors(), settings);
  const outcome = await native().trainEpoch({ model: model.scriptModule!, optimizer, ...data, batchSize: n }).promise;
  optimizer.dispose();
  return outcome.lossSum / outcome.seen;
}

/**
 * One step on each path from the same weights and batch (no dropout): the losses and the updated
 * weights must agree to 1e-5. Returns the scripted model's updated weights.
 */
async function expectSameStep(spec: CnnSpec, seed: number, settings: OptimizerSettings, n: number): Promise<ReturnType<CnnModel['parameters']>> {
  const data = batchTensors(n);
  const eager = createModel(spec, { seed });
  const script = eager.toScript();
  try {
    const eagerLoss = eagerStep(eager, settings, data, n);
    const scriptLoss = await scriptStep(script, settings, data, n);
    expect(Math.abs(eagerLoss - scriptLoss) / eagerLoss).toBeLessThan(1e-5);
    const after = script.parameters();
    eager.parameters().forEach((p, i) => expect(relativeDiff(p.values, after[i].values)).toBeLessThan(1e-5));
    return after;
  } finally {
    for (const m of [eager, script]) m.dispose();
    Object.values(data).forEach((t) => t.dispose());
  }
}

describe('parity between the eager and the scripted path', () => {
  test('the same seed gives identical initial weights in both modes', () => {
    const eager = createModel(defaultSpec(), { seed: 21, mode: 'eager' });
    const script = createModel(defaultSpec(), { seed: 21, mode: 'script' });
    expect(script.parameters().map((p) => Array.from(p.values))).toEqual(eager.parameters().map((p) => Array.from(p.values)));
    eager.dispose();
    script.dispose();
  });

  test.each([
    ['SGD', { kind: 'sgd', learningRate: 0.1, momentum: 0.9 }],
    ['Adam', { kind: 'adam', learningRate: 1e-3 }],
    ['AdamW', { kind: 'adamw', learningRate: 1e-3, weightDecay: 0.05 }],
  ] as [string, OptimizerSettings][])('one %s step gives the same loss and weights within 1e-5', async (_name, settings) => {
    const after = await expectSameStep(noDropout(), 4, settings, 64);
    // The step really moved the weights.
    const fresh = createModel(noDropout(), { seed: 4 });
    expect(relativeDiff(fresh.parameters()[0].values, after[0].values)).toBeGreaterThan(1e-4);
    fresh.dispose();
  });

  // The graph pools in channels-last layout and moves ReLU and leaky ReLU after the pooling; smooth
  // activations keep their place. Each variant must still take the eager path's exact step, including
  // odd sizes where pooling drops a row and even kernels with asymmetric 'same' padding.
  test.each(specVariants())('one Adam step agrees in both paths: %s', async (_name, spec) => {
    await expectSameStep(spec, 9, { kind: 'adam', learningRate: 1e-3 }, 48);
  });

  test('one epoch on a fixed subset gives the same test accuracy within 0.5 points', async () => {
    const common = { dataset: fashion(), spec: smallSpec(), limit: 2000, testLimit: 2000, batchSize: 64, seed: 8 };
    const eager = await trainCnn({ ...common, mode: 'eager' });
    const script = await trainCnn({ ...common, mode: 'script' });
    expect(Math.abs(eager.testAccuracy - script.testAccuracy)).toBeLessThanOrEqual(0.005);
    expect(script.testAccuracy).toBeGreaterThan(0.5);
    expect(script.model.mode).toBe('script');
    eager.model.dispose();
    script.model.dispose();
  });

  test('toScript and toEager keep the weights and the logits', async () => {
    const eager = createModel(smallSpec(), { seed: 2 });
    const script = eager.toScript();
    const back = script.toEager();
    const images = fashion().test.images.subarray(0, 20 * 784);
    const p = eager.predict(images);
    expect(relativeDiff(p, script.predict(images))).toBeLessThan(1e-5);
    expect(Array.from(back.predict(images))).toEqual(Array.from(p));
    const split = { images, labels: fashion().test.labels.subarray(0, 20), count: 20 };
    expect((await evaluate(script, split)).accuracy).toBe((await evaluate(eager, split)).accuracy);
    for (const m of [eager, script, back]) m.dispose();
  });
});

describe('TorchScript export', () => {
  withTorch('Python torch.jit.load runs the export and returns the same logits within 1e-5', () => {
    const model = createModel(defaultSpec(), { seed: 6 });
    const file = path.join(tmp, 'model.ts.pt');
    model.exportTorchScript(file);
    const image = fashion().test.images.subarray(0, 784);
    const ours = tidy(() => model.logits(ops().affine(ops().to(new (native().Tensor)(image, [1, 1, 28, 28]), null, 'float32'), 1 / 255, 0)).toTypedArray() as Float32Array);
    const script = [
      'import sys, json, torch',
      'm = torch.jit.load(sys.argv[1])',
      'x = torch.tensor(json.loads(sys.argv[2]), dtype=torch.float32).reshape(1, 1, 28, 28) / 255',
      'print(json.dumps(m(x).flatten().tolist()))',
    ].join('\n');
    const run = spawnSync(PYTHON, ['-c', script, file, JSON.stringify(Array.from(image))], { encoding: 'utf8' });
    expect(run.stderr).toBe('');
    const theirs = JSON.parse(run.stdout) as number[];
    expect(theirs).toHaveLength(10);
    expect(relativeDiff(ours, Float32Array.from(theirs))).toBeLessThan(1e-5);
    model.dispose();
  });

  withTorch('loadTorchScript reads a module saved from Python and evaluates it as Python does', async () => {
    const file = path.join(tmp, 'from-python.pt');
    const test = fashion().test;
    const count = 500;
    // Python saves the module and reports its own answers on the same images: the accuracy and the
    // first image's probabilities that convscope must reproduce. The images go through stdin: one
    // command-line argument may not exceed 128 KiB.
    const script = [
      'import sys, json, torch',
      "sys.path.insert(0, 'bench')",
      'from pytorch_reference import Net',
      'torch.manual_seed(0)',
      'm = torch.jit.script(Net().eval())',
      'torch.jit.save(m, sys.argv[1])',
      'data = json.load(sys.stdin)',
      `x = torch.tensor(data['images'], dtype=torch.float32).reshape(${count}, 1, 28, 28) / 255`,
      "y = torch.tensor(data['labels'])",
      'with torch.no_grad(): logits = m(x)',
      'print(json.dumps({"accuracy": float((logits.argmax(1) == y).float().mean()), "first": torch.softmax(logits[0], 0).tolist()}))',
    ].join('\n');
    const input = JSON.stringify({ images: Array.from(test.images.subarray(0, count * 784)), labels: Array.from(test.labels.subarray(0, count)) });
    const run = spawnSync(PYTHON, ['-c', script, file], { input, encoding: 'utf8', cwd: path.join(__dirname, '..') });
    expect(run.stderr).toBe('');
    const python = JSON.parse(run.stdout) as { accuracy: number; first: number[] };
    const model = loadTorchScript(file);
    expect(model.parameters().map((p) => p.name)).toContain('conv1.weight');
    const result = await evaluate(model, { images: test.images.subarray(0, count * 784), labels: test.labels.subarray(0, count), count });
    expect(result.count).toBe(count);
    expect(result.accuracy).toBeCloseTo(python.accuracy, 6);
    const probs = model.predict(test.images.subarray(0, 784));
    probs.forEach((p, i) => expect(Math.abs(p - python.first[i])).toBeLessThan(1e-5));
    model.dispose();
  });

  test('loadTorchScript refuses a file that is not TorchScript', () => {
    const bad = path.join(tmp, 'bad.pt');
    fs.writeFileSync(bad, 'nope');
    expect(() => loadTorchScript(bad)).toThrow(/not a loadable TorchScript file/);
  });
});
