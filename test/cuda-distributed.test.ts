// Data-parallel training on GPUs (NCCL). Runs where the loaded libtorch sees a GPU and the addon has
// its NCCL backend (a CUDA build that found nccl.h); the two-rank case needs two GPUs (NCCL refuses
// two ranks on one). Elsewhere it says it skipped. Ranks are child processes running
// test/fixtures/distributed-rank.js, as in test/distributed.test.ts.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { spawn } from 'child_process';
import { torchInfo } from '../src/index';
import { native } from '../src/core/native';
import { freePort } from '../src/distributed/launcher';
import { packageRoot } from '../src/util/package-root';
import { skipBecause } from './helpers';

const info = torchInfo();
const nccl = info.cuda && native().distributed.backends.includes('nccl');
const twoGpus = nccl && info.deviceCount >= 2;
if (!info.cuda) skipBecause(`NCCL tests: the libtorch at ${info.libtorchPath} has no CUDA or sees no GPU`);
else if (!nccl) skipBecause('NCCL tests: this addon was built without its NCCL backend (no nccl.h when it was compiled)');
else if (!twoGpus) skipBecause(`NCCL two-rank parity: ${info.deviceCount} GPU here, NCCL needs one GPU per rank`);

const RANK_SCRIPT = path.join(packageRoot(), 'test', 'fixtures', 'distributed-rank.js');
const SPEC = { conv: [{ filters: 4, kernelSize: 3, padding: 'same', pool: true }], dense: [16], dropout: 0 };
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'convscope-nccl-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

interface RankOutput {
  weights: number[][]; buffers: number[][]; live: { tensors: number; groups: number; reducers: number }; cudaGraphReplays: number;
  distributed?: { buckets: number; reducedSteps: number };
}
let outputs = 0;

/** `world` ranks of the fixture with `options` (world 0: one process, no group); each rank's output. */
async function run(world: number, options: Record<string, unknown>): Promise<RankOutput[]> {
  const port = await freePort();
  return Promise.all([...Array(Math.max(1, world)).keys()].map((rank) => new Promise<RankOutput>((resolve, reject) => {
    const out = path.join(tmp, `out-${++outputs}.json`);
    const group = world > 0 ? { RANK: String(rank), WORLD_SIZE: String(world), MASTER_ADDR: '127.0.0.1', MASTER_PORT: String(port) } : {};
    const child = spawn(process.execPath, [RANK_SCRIPT], {
      env: { ...process.env, ...group, TEST_OPTIONS: JSON.stringify({ ...options, distributed: world > 0 ? { timeout: 60, ...(options.distributed as object) } : undefined }), TEST_OUT: out },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (d) => { stderr += d; });
    child.on('close', (code) => (code === 0 ? resolve(JSON.parse(fs.readFileSync(out, 'utf8'))) : reject(new Error(`rank ${rank} exited ${code}: ${stderr}`))));
  })));
}

function maxDiff(a: number[][], b: number[][]): number {
  let m = 0;
  a.forEach((w, i) => w.forEach((v, j) => { m = Math.max(m, Math.abs(v - b[i][j])); }));
  return m;
}

(nccl ? describe : describe.skip)('NCCL (one GPU per rank)', () => {
  test.each(['eager', 'script'] as const)('%s: a group of one on NCCL trains as one process without a group (the collectives run, to 1e-5)', async (mode) => {
    const common = { spec: SPEC, seed: 3, mode, count: 1024, batchSize: 128, device: 'cuda', cudaGraph: false };
    const [alone] = await run(0, common);
    const [ranked] = await run(1, common);
    expect(maxDiff(ranked.weights, alone.weights)).toBeLessThan(1e-5);
    expect(ranked.live).toEqual({ tensors: 0, groups: 0, reducers: 0 });
  });

  (twoGpus ? test.each(['eager', 'script'] as const) : test.skip.each(['eager', 'script'] as const))(
    '%s: 2 ranks at batch 64 (cuda:0, cuda:1) end with the weights of 1 process at batch 128 (8 steps, to 1e-4)', async (mode) => {
      const common = { spec: SPEC, seed: 3, mode, count: 1024, device: 'cuda', cudaGraph: false };
      const [alone] = await run(0, { ...common, batchSize: 128 });
      const [r0, r1] = await run(2, { ...common, batchSize: 64 });
      expect(maxDiff(r0.weights, alone.weights)).toBeLessThan(1e-4);
      expect(maxDiff(r1.weights, r0.weights)).toBe(0);
    });

  (twoGpus ? test.each(['eager', 'script'] as const) : test.skip.each(['eager', 'script'] as const))(
    '%s, batch norms synced over NCCL: 2 ranks at batch 64 end with the weights and running statistics of 1 process at batch 128 (to 1e-4)', async (mode) => {
      const common = { spec: { ...SPEC, batchNorm: true }, seed: 5, mode, count: 1024, device: 'cuda', cudaGraph: false };
      const [alone] = await run(0, { ...common, batchSize: 128 });
      const [r0, r1] = await run(2, { ...common, batchSize: 64, distributed: { syncBatchNorm: true } });
      expect(maxDiff(r0.weights, alone.weights)).toBeLessThan(1e-4);
      expect(maxDiff(r0.buffers, alone.buffers)).toBeLessThan(1e-4);
      expect(maxDiff(r1.buffers, r0.buffers)).toBe(0);
    });

  // 1024 images at 128: 8 full batches, the first 3 plain (the graph's warm-up), the other 5 replays.
  test('a group of one with cudaGraph: true replays the step, averaging beside the graph, as one process replays it (to 1e-5)', async () => {
    const common = { spec: SPEC, seed: 3, mode: 'script', count: 1024, batchSize: 128, device: 'cuda', cudaGraph: true };
    const [alone] = await run(0, common);
    const [ranked] = await run(1, common);
    expect(alone.cudaGraphReplays).toBe(5);
    expect(ranked.cudaGraphReplays).toBe(5);
    expect(ranked.distributed?.reducedSteps).toBe(8);
    expect(maxDiff(ranked.weights, alone.weights)).toBeLessThan(1e-5);
    expect(ranked.live).toEqual({ tensors: 0, groups: 0, reducers: 0 });
  });

  (twoGpus ? test : test.skip)('2 graphed ranks at batch 64 end with the weights of 1 graphed process at batch 128 (8 steps, to 1e-4)', async () => {
    const common = { spec: SPEC, seed: 3, mode: 'script', count: 1024, device: 'cuda', cudaGraph: true };
    const [alone] = await run(0, { ...common, batchSize: 128 });
    const [r0, r1] = await run(2, { ...common, batchSize: 64 });
    expect(r0.cudaGraphReplays).toBe(5);
    expect(maxDiff(r0.weights, alone.weights)).toBeLessThan(1e-4);
    expect(maxDiff(r1.weights, r0.weights)).toBe(0);
  });

  test('a distributed run replays no CUDA graph unless cudaGraph: true asks (the averaging beside it is new)', async () => {
    const [ranked] = await run(1, { spec: SPEC, count: 256, batchSize: 64, device: 'cuda', mode: 'script' });
    expect(ranked.cudaGraphReplays).toBe(0);
  });
});
