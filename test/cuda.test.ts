// The CUDA path. Runs where the loaded libtorch has CUDA and a GPU; elsewhere it says it skipped.
import { createModel, evaluate, torchInfo, trainCnn } from '../src/index';
import { native } from '../src/core/native';
import { ops } from '../src/core/ops';
import { tidy } from '../src/core/tidy';
import { fashion, smallSpec } from './fixtures';
import { rejected, skipBecause } from './helpers';

const cuda = torchInfo().cuda;
const describeCuda = cuda ? describe : describe.skip;
if (!cuda) skipBecause(`CUDA tests: the libtorch at ${torchInfo().libtorchPath} has no CUDA or sees no GPU`);

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
