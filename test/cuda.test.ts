// The CUDA path. Runs where the loaded libtorch has CUDA and a GPU; elsewhere it says it skipped.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { CnnModel, createModel, evaluate, explain, ExplainOptions, torchInfo, trainCnn } from '../src/index';
import { METHODS } from '../src/probe/options';
import { native } from '../src/core/native';
import { ops } from '../src/core/ops';
import { tidy } from '../src/core/tidy';
import { SYNC_EVERY } from '../src/train/train-cnn';
import { fashion, smallSpec } from './fixtures';
import { maxAbsDiff, rejected, skipBecause, settledLiveTensors } from './helpers';

const cuda = torchInfo().cuda;
const describeCuda = cuda ? describe : describe.skip;
if (!cuda) skipBecause(`CUDA tests: the libtorch at ${torchInfo().libtorchPath} has no CUDA or sees no GPU`);

const weightsOf = (m: CnnModel): Float32Array[] => m.parameters().map((p) => p.values);

function largestWeightDifference(a: CnnModel, b: CnnModel): number {
  const [wa, wb] = [weightsOf(a), weightsOf(b)];
  return Math.max(...wa.map((w, i) => maxAbsDiff(w, wb[i])));
}

function batchLoss(model: ReturnType<typeof createModel>, n: number): number {
  const t = fashion().train;
  return tidy(() => {
    const images = ops().to(new (native().Tensor)(t.images.subarray(0, n * 784), [n, 28, 28]), model.device);
    const labels = ops().to(new (native().Tensor)(t.labels.subarray(0, n), [n]), model.device);
    const order = ops().to(new (native().Tensor)(BigInt64Array.from({ length: n }, (_, i) => BigInt(i)), [n]), model.device);
    const [x, y] = ops().gatherBatch(images, labels, order, 0, n, 0, 1);
    return ops().crossEntropy(model.forward(x, { training: false }), y).item();
  });
}

describeCuda('CUDA', () => {
  test.each(['eager', 'script'] as const)('training on CUDA learns (%s)', async (mode) => {
    const r = await trainCnn({ dataset: fashion(), spec: smallSpec(), device: 'cuda', mode, limit: 4000, testLimit: 1000, epochs: 2 });
    expect(r.model.device).toBe('cuda');
    expect(r.history[1].trainLoss).toBeLessThan(r.history[0].trainLoss);
    expect(r.testAccuracy).toBeGreaterThan(0.6);
    r.model.dispose();
  });

  test('the CUDA graph is used by default in script mode and only there', async () => {
    const common = { dataset: fashion(), spec: smallSpec(), device: 'cuda' as const, limit: 128 * 8, testLimit: 200, batchSize: 128 };
    const scripted = await trainCnn({ ...common, mode: 'script' });
    // 3 plain warm-up steps, then the captured step and every later full batch are replays.
    expect(scripted.cudaGraphReplays).toBe(5);
    const plain = await trainCnn({ ...common, mode: 'script', cudaGraph: false });
    expect(plain.cudaGraphReplays).toBe(0);
    const eager = await trainCnn({ ...common, mode: 'eager' });
    expect(eager.cudaGraphReplays).toBe(0);
    for (const r of [scripted, plain, eager]) r.model.dispose();
    expect(native().cuda!.liveGraphs()).toBe(0);
  });

  test.each([
    ['Adam', {}],
    ['SGD with Nesterov momentum, one-cycle schedule', { optimizer: 'sgd', momentum: 0.9, nesterov: true, learningRate: 0.05, schedule: 'one-cycle' }],
    ['Adam, cosine schedule after warm-up, label smoothing', { schedule: 'cosine', warmupSteps: 5, labelSmoothing: 0.1 }],
    ['AdamW', { optimizer: 'adamw', weightDecay: 0.05 }],
    ['Adam, augmentation (shifts and flips drawn inside the graph)', { augment: { shift: 2, flip: true } }],
    // Issue 33's tricks: two parameter groups in the captured update, the weight average after each replay.
    ['AdamW, no weight decay on biases (two parameter groups)', { optimizer: 'adamw', weightDecay: 0.05, weightDecayOn: 'weights' }],
    ['SGD with momentum, weight decay on weights only', { optimizer: 'sgd', momentum: 0.9, learningRate: 0.05, weightDecay: 0.01, weightDecayOn: 'weights' }],
    ['Adam, a weight average (after each replay, on the graph\'s stream) and TTA', { ema: { decay: 0.9 }, tta: { flip: true, shift: 1 } }],
  ] as const)(
    'graph and plain steps give the same weights within 1e-5 from the same weights and batches (%s, dropout on)', async (_name, optimizer) => {
      const start = createModel(smallSpec(), { mode: 'script', device: 'cuda', seed: 11 });
      const run = (cudaGraph: boolean) => trainCnn({
        dataset: fashion(), initialModel: start, mode: 'script', device: 'cuda', cudaGraph, ...optimizer,
        // 12 full batches and a partial one: warm-ups, the capture, replays, and the step outside the graph.
        limit: 128 * 12 + 40, batchSize: 128, testLimit: 500, epochs: 2, seed: 5,
      });
      const graphed = await run(true);
      const plain = await run(false);
      expect(graphed.cudaGraphReplays).toBe(2 * 12 - 3);
      expect(largestWeightDifference(graphed.model, plain.model)).toBeLessThan(1e-5);
      expect(largestWeightDifference(graphed.model, start)).toBeGreaterThan(1e-3);
      expect(Math.abs(graphed.history[1].trainLoss - plain.history[1].trainLoss)).toBeLessThan(1e-5);
      for (const m of [graphed.model, plain.model, start]) m.dispose();
    });

  test('batch norm: graph and plain steps give the same weights, running statistics and batch counts (the graph updates them in place)', async () => {
    const spec = { ...smallSpec(), batchNorm: true };
    const start = createModel(spec, { mode: 'script', device: 'cuda', seed: 12 });
    const run = (cudaGraph: boolean) => trainCnn({
      dataset: fashion(), initialModel: start, mode: 'script', device: 'cuda', cudaGraph, limit: 128 * 12 + 40, batchSize: 128, testLimit: 500, epochs: 2, seed: 5,
    });
    const graphed = await run(true);
    const plain = await run(false);
    expect(graphed.cudaGraphReplays).toBe(2 * 12 - 3);
    expect(largestWeightDifference(graphed.model, plain.model)).toBeLessThan(1e-5);
    const [a, b] = [graphed.model.buffers(), plain.model.buffers()];
    expect(a.map((x) => x.name)).toEqual(b.map((x) => x.name));
    a.forEach((x, i) => expect([x.name, maxAbsDiff(x.values, b[i].values) < 1e-4]).toEqual([x.name, true]));
    expect(Array.from(a.find((x) => x.name === 'conv1_bn.num_batches_tracked')!.values)).toEqual([26]);
    for (const m of [graphed.model, plain.model, start]) m.dispose();
  });

  test('a graphed run checkpoints the optimizer state a plain run would (the step count comes back from the device)', async () => {
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'convscope-cuda-'));
    const start = createModel(smallSpec(), { mode: 'script', device: 'cuda', seed: 12 });
    const common = { dataset: fashion(), mode: 'script' as const, device: 'cuda' as const, limit: 128 * 6, batchSize: 128, testLimit: 200, seed: 2, pictures: false };
    const endWeights: CnnModel[] = [];
    for (const cudaGraph of [true, false]) {
      const runDir = path.join(tmp, `graph-${cudaGraph}`);
      const first = await trainCnn({ ...common, initialModel: start, cudaGraph, runDir });
      first.model.dispose();
      // Resumed plainly: a step count left at the warm-ups' would change Adam's bias correction.
      const resumed = await trainCnn({ ...common, cudaGraph: false, epochs: 2, resumeFrom: path.join(runDir, 'model.pt') });
      endWeights.push(resumed.model);
    }
    expect(largestWeightDifference(endWeights[0], endWeights[1])).toBeLessThan(1e-5);
    for (const m of [...endWeights, start]) m.dispose();
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  test.each([['eager', undefined], ['script', false], ['script', true]] as const)('an abort stops training on CUDA within one step (%s, cudaGraph %s)', async (mode, cudaGraph) => {
    const previous = SYNC_EVERY.device;
    SYNC_EVERY.device = 1;
    try {
      const controller = new AbortController();
      let stepsAfterAbort = -1;
      const err = (await rejected(trainCnn({
        dataset: fashion(), spec: smallSpec(), device: 'cuda', mode, cudaGraph, limit: 128 * 40, batchSize: 128, testLimit: 100, signal: controller.signal,
        onProgress: (e) => {
          if (stepsAfterAbort >= 0 && e.type === 'step') stepsAfterAbort += 1;
          if (e.type === 'step' && e.step === 10) { controller.abort(); stepsAfterAbort = 0; }
        },
      }))) as Error & { model?: CnnModel; step?: number };
      expect(err.name).toBe('AbortError');
      expect(stepsAfterAbort).toBeLessThanOrEqual(1);
      expect(err.step).toBeLessThanOrEqual(12);
      expect(err.model!.predict(fashion().test.images.subarray(0, 784))).toHaveLength(10);
      err.model!.dispose();
    } finally {
      SYNC_EVERY.device = previous;
    }
    expect(native().cuda!.liveGraphs()).toBe(0);
  });

  test('training on CUDA leaves no native tensor, graph or GPU memory behind', async () => {
    // One run first: libtorch keeps a cuBLAS workspace per stream for the process's life.
    (await trainCnn({ dataset: fashion(), spec: smallSpec(), device: 'cuda', mode: 'script', limit: 128 * 6, testLimit: 300 })).model.dispose();
    const baseline = await settledLiveTensors();
    // emptyCache also drops cuBLAS's workspaces, which libtorch keeps per thread and stream: which
    // libuv thread runs an epoch varies, so they would come and go between measurements.
    native().cuda!.emptyCache();
    const before = native().cuda!.memory().allocated;
    for (const cudaGraph of [true, false]) {
      const r = await trainCnn({ dataset: fashion(), spec: smallSpec(), device: 'cuda', mode: 'script', cudaGraph, limit: 128 * 6 + 3, testLimit: 300 });
      r.model.dispose();
    }
    const e = await trainCnn({ dataset: fashion(), spec: smallSpec(), device: 'cuda', mode: 'eager', limit: 128 * 6 + 3, testLimit: 300 });
    e.model.dispose();
    expect(native().liveTensors()).toBe(baseline);
    expect(native().cuda!.liveGraphs()).toBe(0);
    native().cuda!.emptyCache();
    expect(native().cuda!.memory().allocated).toBe(before);
  });

  test('CPU and CUDA give the same loss for the same weights and batch within 1e-4', () => {
    const cpu = createModel(smallSpec(), { seed: 5 });
    const gpu = cpu.toDevice('cuda');
    expect(Math.abs(batchLoss(cpu, 256) - batchLoss(gpu, 256))).toBeLessThan(1e-4);
    cpu.dispose();
    gpu.dispose();
  });

  test('chunked evaluation on the GPU matches the CPU', async () => {
    const cpu = createModel(smallSpec(), { seed: 6 });
    const gpu = cpu.toDevice('cuda');
    const t = fashion().test;
    const split = { images: t.images.subarray(0, 2000 * 784), labels: t.labels.subarray(0, 2000), count: 2000 };
    const a = await evaluate(cpu, split);
    const b = await evaluate(gpu, split);
    expect(Math.abs(a.accuracy - b.accuracy)).toBeLessThanOrEqual(0.001);
    cpu.dispose();
    gpu.dispose();
  });

  // Issue 28: every attribution method on CUDA, both paths, gives the CPU's maps (not yet run on a GPU).
  test.each(['eager', 'script'] as const)('explain() on CUDA gives the CPU\'s maps for every method (%s)', async (mode) => {
    const cpu = createModel(smallSpec(), { seed: 7, mode });
    const gpu = cpu.toDevice('cuda');
    const images = fashion().test.images.subarray(0, 6 * 784);
    const settings: Record<string, ExplainOptions> = { 'integrated-gradients': { steps: 16 }, 'occlusion': { window: 4, stride: 4 } };
    for (const method of METHODS) {
      const [a, b] = [await explain(cpu, images, { method, ...settings[method] }), await explain(gpu, images, { method, ...settings[method] })];
      expect(b.targets).toEqual(a.targets);
      const scale = Math.max(...a.maps.map(Math.abs), 1e-12);
      expect([method, maxAbsDiff(a.maps, b.maps) / scale < 1e-3]).toEqual([method, true]);
    }
    cpu.dispose();
    gpu.dispose();
  });

  test.each([['eager', false], ['script', false], ['script', true]] as const)('a batch of 1,000,000 that does not fit is a clear error; the process and the model live on (%s, cudaGraph %s)', async (mode, cudaGraph) => {
    const count = 1_000_000;
    // Blank images: only their number matters. A 256-filter first layer needs 800 GB for one batch.
    const huge = { images: new Uint8Array(count * 784), labels: new Uint8Array(count), count };
    const dataset = { name: 'blank', train: huge, test: { ...huge, images: huge.images.subarray(0, 784), labels: huge.labels.subarray(0, 1), count: 1 }, classNames: fashion().classNames };
    const model = createModel({ conv: [{ filters: 256, kernelSize: 5, padding: 'same', pool: true }], dense: [], dropout: 0 }, { mode, device: 'cuda', seed: 1 });
    const baseline = await settledLiveTensors();
    const err = await rejected(trainCnn({ dataset, initialModel: model, mode, device: 'cuda', cudaGraph: mode === 'script' ? cudaGraph : undefined, batchSize: count }));
    expect(err.message).toMatch(/out of memory/i);
    expect(native().liveTensors()).toBe(baseline);
    native().cuda!.emptyCache();
    expect(model.predict(fashion().test.images.subarray(0, 784))).toHaveLength(10);
    const again = await trainCnn({ dataset: fashion(), initialModel: model, mode, device: 'cuda', limit: 1000, testLimit: 200 });
    expect(again.testAccuracy).toBeGreaterThan(0.3);
    again.model.dispose();
    model.dispose();
  });

  test('running out of GPU memory is a clear error and the process lives on', async () => {
    const huge = createModel({ conv: [{ filters: 4096, kernelSize: 3, padding: 'same' }], dense: [], dropout: 0 }, { device: 'cuda', seed: 1 });
    const t = fashion().test;
    const err = await rejected(evaluate(huge, { images: t.images, labels: t.labels, count: 10000 }, { chunkSize: 10000 }));
    expect(err.message).toMatch(/out of memory/i);
    huge.dispose();
    const small = createModel(smallSpec(), { device: 'cuda', seed: 1 });
    expect(small.predict(t.images.subarray(0, 784))).toHaveLength(10);
    small.dispose();
  });
});
