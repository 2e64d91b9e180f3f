// Batch normalisation, global average pooling and conv dropout (issue 18's spec): the plan names the
// state as PyTorch does, both paths compute PyTorch's function in training and evaluation mode, the
// running statistics move as PyTorch's do, and every file (checkpoint, TorchScript, ONNX) carries them.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { spawnSync } from 'child_process';
import { createModel, loadModel, trainCnn } from '../src/index';
import type { CnnModel, CnnSpec, ExecutionMode, InMemoryDataset } from '../src/index';
import { planModel } from '../src/nn/spec';
import { fashion } from './fixtures';
import { expectError, maxAbsDiff, PYTHON, testWithPython } from './helpers';

const withTorch = testWithPython(['torch']);
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'convscope-bn-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

/** Batch norm after every conv and the hidden dense layer, a two-conv block, conv dropout off (PyTorch draws other masks). */
const BN_SPEC: CnnSpec = {
  conv: [{ filters: 4, kernelSize: 3, pool: false }, { filters: 6, kernelSize: 5, pool: true }, { filters: 8, kernelSize: 3, pool: true }],
  dense: [16], dropout: 0, batchNorm: true,
};
const GAP_SPEC: CnnSpec = { ...BN_SPEC, globalAvgPool: true };

/** A dataset of the first `count` Fashion-MNIST images, as train and test split. */
function subset(count: number): InMemoryDataset {
  const split = { images: fashion().train.images.subarray(0, count * 784), labels: fashion().train.labels.subarray(0, count), count };
  return { name: `fashion-${count}`, train: split, test: split, classNames: fashion().classNames };
}

/**
 * PyTorch's side: the spec as a module of PyTorch's own layers, built from convscope's plan
 * (bench/plan_net.py, an independent implementation), computing batch-norm convolutions
 * channels-last as convscope does on the CPU: PyTorch's own NCHW answers differ from its
 * channels-last ones by up to 2e-4 after the step below (batch norm's backward over the 3x3 maps
 * before global pooling amplifies rounding).
 */
const PYTHON_NET = `
import json, sys, torch, torch.nn.functional as F
sys.path.insert(0, 'bench')
from plan_net import PlanNet as Net
def state(file):
    return {k: v for k, v in torch.load(file).items() if not k.startswith('convscope.')}
`;

/** Runs a snippet after PYTHON_NET; its sys.argv[1:] are `args` (big arrays travel on stdin, as one JSON list, in `inputs`). */
function runPython(body: string, args: string[], stdin: unknown[] = []): unknown {
  const script = PYTHON_NET + 'inputs = json.loads(sys.stdin.read() or "[]")\n' + body;
  const run = spawnSync(PYTHON, ['-c', script, ...args], { encoding: 'utf8', maxBuffer: 64 << 20, input: JSON.stringify(stdin), cwd: path.join(__dirname, '..') });
  expect(run.error).toBeUndefined();
  expect(run.stderr).toBe('');
  return JSON.parse(run.stdout);
}

const stateOf = (model: CnnModel) => [...model.parameters(), ...model.buffers()];

describe('the batch-norm plan', () => {
  test('conv and hidden dense layers lose their bias and gain PyTorch-named scale, shift and statistics', () => {
    const plan = planModel(BN_SPEC);
    expect(plan.stateNames.slice(0, 7)).toEqual([
      'conv1.weight', 'conv1_bn.weight', 'conv1_bn.bias', 'conv1_bn.running_mean', 'conv1_bn.running_var', 'conv1_bn.num_batches_tracked', 'conv2.weight',
    ]);
    expect(plan.parameters.map((p) => p.name)).not.toContain('conv1.bias');
    // The output layer keeps its bias and has no normalisation.
    expect(plan.stateNames.slice(-2)).toEqual(['fc2.weight', 'fc2.bias']);
    expect(plan.buffers.find((b) => b.name === 'fc1_bn.num_batches_tracked')).toEqual({ name: 'fc1_bn.num_batches_tracked', shape: [], dtype: 'int64', fill: 0 });
    expect(planModel(GAP_SPEC).dense[0].inFeatures).toBe(8);
    expect(planModel(BN_SPEC).dense[0].inFeatures).toBe(8 * 7 * 7);
  });

  test('a fresh model starts with scale 1, shift 0, mean 0, variance 1 and no batch counted', () => {
    const model = createModel(BN_SPEC, { seed: 1 });
    const byName = new Map(stateOf(model).map((p) => [p.name, Array.from(p.values)]));
    expect(byName.get('conv2_bn.weight')).toEqual([1, 1, 1, 1, 1, 1]);
    expect(byName.get('conv2_bn.bias')).toEqual([0, 0, 0, 0, 0, 0]);
    expect(byName.get('fc1_bn.running_mean')).toEqual(new Array(16).fill(0));
    expect(byName.get('fc1_bn.running_var')).toEqual(new Array(16).fill(1));
    expect(byName.get('fc1_bn.num_batches_tracked')).toEqual([0]);
    model.dispose();
  });

  test('bad batch-norm, pooling and dropout fields are refused, naming them', () => {
    expectError(() => planModel({ ...BN_SPEC, batchNorm: 'yes' as never }), 'TypeError', /spec\.batchNorm/);
    expectError(() => planModel({ conv: [], dense: [8], dropout: 0, globalAvgPool: true }), 'RangeError', /spec\.globalAvgPool/);
    expectError(() => planModel({ ...BN_SPEC, conv: [{ filters: 4, kernelSize: 3, dropout: 1 }] }), 'RangeError', /spec\.conv\[0\]\.dropout/);
  });
});

describe('batch norm in both paths', () => {
  test.each(['eager', 'script'] as ExecutionMode[])('%s: training mode moves the running statistics and counts the batch; evaluation mode reads them', (mode) => {
    const model = createModel(BN_SPEC, { seed: 2, mode });
    const images = fashion().test.images.subarray(0, 10 * 784);
    const before = model.predict(images);
    const { noGrad, ops, fromHost } = require('../src/core/ops') as typeof import('../src/core/ops');
    const { tidy } = require('../src/core/tidy') as typeof import('../src/core/tidy');
    tidy(() => noGrad(() => model.forward(ops().to(fromHost(images, [10, 1, 28, 28]), null, 'float32'), { training: true })));
    const buffers = new Map(model.buffers().map((b) => [b.name, Array.from(b.values)]));
    expect(buffers.get('conv1_bn.num_batches_tracked')).toEqual([1]);
    expect(buffers.get('fc1_bn.num_batches_tracked')).toEqual([1]);
    expect(buffers.get('conv1_bn.running_mean')!.some((v) => v !== 0)).toBe(true);
    // Evaluation mode reads the moved statistics: other answers than before, and no further counting.
    expect(maxAbsDiff(before, model.predict(images))).toBeGreaterThan(1e-3);
    expect(new Map(model.buffers().map((b) => [b.name, Array.from(b.values)])).get('conv1_bn.num_batches_tracked')).toEqual([1]);
    model.dispose();
  });

  // Twenty plain SGD steps at a small rate: the paths add in different orders (the graph pools before
  // its ReLU, in channels-last layout), and Adam's normalised steps or a large rate with momentum let
  // such rounding differences grow to 1e-3 within twenty steps; here they stay near 1e-7 (on the
  // default 2.x build; Debian's 1.13 rounds its channels-last mean otherwise, 1e-4 after 20 steps).
  test.each([['batch norm', BN_SPEC], ['batch norm and global average pooling', GAP_SPEC]] as [string, CnnSpec][])(
    'two epochs give the same weights, statistics and answers in eager and script mode: %s', async (_name, spec) => {
      const common = { dataset: subset(600), spec, epochs: 2, batchSize: 64, seed: 4, testLimit: 200, optimizer: 'sgd' as const, learningRate: 0.01 };
      const eager = await trainCnn({ ...common, mode: 'eager' });
      const script = await trainCnn({ ...common, mode: 'script' });
      const a = stateOf(eager.model);
      const b = stateOf(script.model);
      expect(b.map((p) => p.name)).toEqual(a.map((p) => p.name));
      const differing = a.map((p, i) => [p.name, maxAbsDiff(p.values, b[i].values)] as const).filter(([, d]) => !(d < 1e-5));
      expect(differing).toEqual([]);
      // 10 batches per epoch, two epochs: every normalisation counted 20.
      expect(Array.from(a.find((p) => p.name === 'conv1_bn.num_batches_tracked')!.values)).toEqual([20]);
      expect(Math.abs(eager.testAccuracy - script.testAccuracy)).toBeLessThanOrEqual(0.01);
      eager.model.dispose();
      script.model.dispose();
    });
});

describe('dropout after conv blocks', () => {
  test.each(['eager', 'script'] as ExecutionMode[])('%s: draws new masks in training and none in evaluation', (mode) => {
    const model = createModel({ ...BN_SPEC, batchNorm: false, conv: BN_SPEC.conv.map((c) => ({ ...c, dropout: 0.5 })) }, { seed: 3, mode });
    const images = fashion().test.images.subarray(0, 4 * 784);
    const { noGrad, ops, fromHost } = require('../src/core/ops') as typeof import('../src/core/ops');
    const { tidy } = require('../src/core/tidy') as typeof import('../src/core/tidy');
    const { valuesOf } = require('../src/core/native') as typeof import('../src/core/native');
    const run = (training: boolean) => tidy(() => noGrad(() => valuesOf(model.forward(ops().affine(ops().to(fromHost(images, [4, 1, 28, 28]), null, 'float32'), 1 / 255, 0), { training }), 'float32')));
    expect(maxAbsDiff(run(true), run(true))).toBeGreaterThan(1e-4);
    expect(maxAbsDiff(run(false), run(false))).toBe(0);
    expect(model.layerNames()).toContain('conv2.dropout');
    model.dispose();
  });
});

describe('batch norm against PyTorch', () => {
  withTorch('torch.manual_seed(seed); Net() gives createModel\'s state dict, key for key', () => {
    const model = createModel(GAP_SPEC, { seed: 11 });
    const file = path.join(tmp, 'init.pt');
    model.save(file);
    const theirs = runPython(`
plan = json.loads(sys.argv[2]); torch.manual_seed(11); net = Net(plan); ours = state(sys.argv[1])
print(json.dumps({'keys': list(net.state_dict().keys()), 'ourKeys': list(ours.keys()),
  'diff': max((net.state_dict()[k].double() - ours[k].double()).abs().max().item() for k in ours)}))`, [file, JSON.stringify(model.plan)]) as { keys: string[]; ourKeys: string[]; diff: number };
    expect(theirs.keys).toEqual(model.plan.stateNames);
    expect(theirs.ourKeys).toEqual(model.plan.stateNames);
    expect(theirs.diff).toBe(0);
    model.dispose();
  });

  // One SGD step over one batch of 64 (the order trainCnn shuffles it into changes neither the batch
  // statistics nor the mean loss), then evaluation-mode answers from the moved running statistics.
  const stepCases: [ExecutionMode, string, CnnSpec][] = [['eager', 'flattened', BN_SPEC], ['script', 'flattened', BN_SPEC], ['script', 'global average pooling', GAP_SPEC]];
  withTorch.each(stepCases)('%s, %s: one training step gives PyTorch\'s weights, running statistics and evaluation answers', async (mode, _name, spec) => {
    const start = createModel(spec, { seed: 12 });
    const startFile = path.join(tmp, `start-${mode}.pt`);
    start.save(startFile);
    const data = subset(64);
    const result = await trainCnn({ dataset: data, spec, initialModel: start, mode, epochs: 1, batchSize: 64, optimizer: 'sgd', learningRate: 0.1, standardize: false });
    const images = fashion().test.images.subarray(0, 20 * 784);
    const theirs = runPython(`
plan = json.loads(sys.argv[2]); net = Net(plan); net.load_state_dict(state(sys.argv[1]))
x = torch.tensor(inputs[0], dtype=torch.float32).reshape(-1, 1, 28, 28) / 255
y = torch.tensor(inputs[1], dtype=torch.long)
opt = torch.optim.SGD(net.parameters(), lr=0.1); net.train()
F.cross_entropy(net(x), y).backward(); opt.step(); net.eval()
test = torch.tensor(inputs[2], dtype=torch.float32).reshape(-1, 1, 28, 28) / 255
with torch.no_grad(): probs = torch.softmax(net(test), 1)
print(json.dumps({'state': {k: v.double().flatten().tolist() for k, v in net.state_dict().items()}, 'probs': probs.flatten().tolist()}))`,
    [startFile, JSON.stringify(start.plan)], [Array.from(data.train.images), Array.from(data.train.labels), Array.from(images)],
    ) as { state: Record<string, number[]>; probs: number[] };
    const differing = stateOf(result.model).map((p) => [p.name, maxAbsDiff(p.values, Float32Array.from(theirs.state[p.name]))] as const).filter(([, d]) => !(d < 1e-4));
    expect(differing).toEqual([]);
    expect(Object.keys(theirs.state)).toEqual(start.plan.stateNames);
    expect(maxAbsDiff(result.model.predict(images), Float32Array.from(theirs.probs))).toBeLessThan(1e-4);
    start.dispose();
    result.model.dispose();
  });
});

describe('batch norm in every file', () => {
  let trained: CnnModel;
  beforeAll(async () => {
    trained = (await trainCnn({ dataset: subset(512), spec: GAP_SPEC, epochs: 1, batchSize: 64, seed: 5, testLimit: 100 })).model;
  });
  afterAll(() => trained.dispose());
  const images = () => fashion().test.images.subarray(0, 16 * 784);

  test('a checkpoint keeps the running statistics and batch counts; the loaded model answers the same', () => {
    const file = path.join(tmp, 'trained.pt');
    trained.save(file);
    for (const mode of ['eager', 'script'] as ExecutionMode[]) {
      const loaded = loadModel(file, { mode });
      expect(loaded.buffers()).toEqual(trained.buffers());
      expect(maxAbsDiff(loaded.predict(images()), trained.predict(images()))).toBeLessThan(1e-6);
      loaded.dispose();
    }
  });

  test('a checkpoint without a buffer is refused, naming it', () => {
    const file = path.join(tmp, 'no-stats.pt');
    const { native } = require('../src/core/native') as typeof import('../src/core/native');
    const entries = Object.fromEntries(trained.parameters().map((p) => [p.name, new (native().Tensor)(p.values, p.shape)]));
    fs.writeFileSync(file, native().encodeStateDict(entries));
    Object.values(entries).forEach((t) => t.dispose());
    expectError(() => loadModel(file, { spec: GAP_SPEC }), 'CheckpointError', /lacks the tensor conv1_bn\.running_mean/);
  });

  test('a checkpoint whose parameter or buffer has another dtype is refused, naming it and the dtype expected', () => {
    const { native } = require('../src/core/native') as typeof import('../src/core/native');
    const cases: [string, RegExp][] = [
      ['conv1.weight', /has conv1\.weight of dtype float64, expected float32/],
      ['conv1_bn.running_var', /has conv1_bn\.running_var of dtype float64, expected float32/],
      ['conv1_bn.num_batches_tracked', /has conv1_bn\.num_batches_tracked of dtype float64, expected int64/],
    ];
    for (const [name, message] of cases) {
      const file = path.join(tmp, 'wrong-dtype.pt');
      const entries = Object.fromEntries([...trained.parameters(), ...trained.buffers()].map((p) => [p.name,
        new (native().Tensor)(p.name === name ? Float64Array.from(p.values) : p.name.endsWith('num_batches_tracked') ? BigInt64Array.from(p.values, BigInt) : p.values, p.shape)]));
      fs.writeFileSync(file, native().encodeStateDict(entries));
      Object.values(entries).forEach((t) => t.dispose());
      expectError(() => loadModel(file, { spec: GAP_SPEC }), 'CheckpointError', message);
    }
  });

  withTorch('the TorchScript export evaluates with the running statistics, as predict does', () => {
    const file = path.join(tmp, 'trained.ts.pt');
    trained.exportTorchScript(file);
    const run = spawnSync(PYTHON, ['-c', `import sys, json, torch
m = torch.jit.load(sys.argv[1]); x = torch.tensor(json.loads(sys.argv[2]), dtype=torch.float32).reshape(-1, 1, 28, 28) / 255
print(json.dumps({'probs': torch.softmax(m(x), 1).flatten().tolist(), 'buffers': sorted(n for n, _ in m.named_buffers())}))`, file, JSON.stringify(Array.from(images())),
    ], { encoding: 'utf8' });
    expect(run.stderr).toBe('');
    const theirs = JSON.parse(run.stdout) as { probs: number[]; buffers: string[] };
    expect(theirs.buffers).toEqual(trained.plan.buffers.map((b) => b.name).sort());
    expect(maxAbsDiff(trained.predict(images()), Float32Array.from(theirs.probs))).toBeLessThan(1e-5);
  });

  test('the ONNX export evaluates with the running statistics, as predict does (onnxruntime)', () => {
    const file = path.join(tmp, 'trained.onnx');
    trained.exportOnnx(file);
    const script = `
      const ort = require('onnxruntime-node');
      const input = Float32Array.from(JSON.parse(process.argv[2]), (v) => v / 255);
      ort.InferenceSession.create(process.argv[1]).then(async (session) => {
        const result = await session.run({ pixels: new ort.Tensor('float32', input, [16, 1, 28, 28]) });
        process.stdout.write(JSON.stringify(Array.from(result.logits.data)));
      });`;
    const run = spawnSync(process.execPath, ['-e', script, file, JSON.stringify(Array.from(images()))], { encoding: 'utf8', cwd: path.join(__dirname, '..') });
    expect(run.stderr).toBe('');
    const logits = JSON.parse(run.stdout) as number[];
    const probs = new Float32Array(logits.length);
    for (let r = 0; r < 16; ++r) {
      const row = logits.slice(r * 10, r * 10 + 10);
      const top = Math.max(...row);
      const sum = row.reduce((s, v) => s + Math.exp(v - top), 0);
      row.forEach((v, i) => { probs[r * 10 + i] = Math.exp(v - top) / sum; });
    }
    expect(maxAbsDiff(trained.predict(images()), probs)).toBeLessThan(1e-5);
  });
});
