// Data-parallel training on c10d (Gloo over 127.0.0.1): each rank is a child process running
// test/fixtures/distributed-rank.js on dist/ (npx tsc builds it), one thread per rank, small data.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as url from 'url';
import { spawn, spawnSync } from 'child_process';
import { trainCnn } from '../src/train/train-cnn';
import { loadCheckpoint } from '../src/train/checkpoint';
import { evaluationShard, resumedOrder, shardOrder } from '../src/distributed/sampler';
import { rankEnvironment, storeFileOf, threadsPerRank } from '../src/distributed/environment';
import { freePort, withoutFlag } from '../src/distributed/launcher';
import { native } from '../src/core/native';
import { rejected, testIfInstalled } from './helpers';

const root = path.join(__dirname, '..');
const RANK_SCRIPT = path.join(__dirname, 'fixtures', 'distributed-rank.js');
const AVERAGE_SCRIPT = path.join(__dirname, 'fixtures', 'distributed-average-rank.js');
const CLI = path.join(root, 'dist', 'src', 'cli', 'main.js');
const TORCHRUN = path.join(root, '.venv', 'bin', 'torchrun');
/** No dropout and no augmentation: 2 ranks at batch 64 then compute exactly what 1 process at batch 128 does. */
const SPEC = { conv: [{ filters: 4, kernelSize: 3, padding: 'same', pool: true }], dense: [16], dropout: 0 };
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'convscope-distributed-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

interface RankOutput {
  weights: number[][];
  buffers: number[][];
  history: { trainLoss: number; testAccuracy: number; testLoss: number }[];
  testAccuracy: number;
  testLoss: number;
  whole: { accuracy: number; loss: number };
  live: { tensors: number; groups: number; reducers: number };
  /** TrainResult.distributed: absent in a single process. */
  distributed?: { rank: number; worldSize: number; buckets: number; reducedSteps: number; syncBatchNorm: boolean };
}
interface RankExit { rank: number; code: number | null; signal: string | null; stderr: string; seconds: number; out?: RankOutput; file: string }

let outputs = 0;
const single = (options: Record<string, unknown>): RankOutput => {
  const out = path.join(tmp, `single-${++outputs}.json`);
  const run = spawnSync(process.execPath, [RANK_SCRIPT], { encoding: 'utf8', env: { ...process.env, OMP_NUM_THREADS: '1', TEST_OPTIONS: JSON.stringify(options), TEST_OUT: out } });
  expect(run.stderr).toBe('');
  return JSON.parse(fs.readFileSync(out, 'utf8'));
};

/** Starts `world` ranks (or only those in `started`) with torchrun's variables; resolves when all have exited. */
async function ranks(world: number, options: (rank: number) => Record<string, unknown>, started = [...Array(world).keys()],
  extraEnv: (rank: number) => NodeJS.ProcessEnv = () => ({}), port?: number, script = RANK_SCRIPT): Promise<RankExit[]> {
  port ??= await freePort();
  const begin = Date.now();
  return Promise.all(started.map((rank) => new Promise<RankExit>((resolve) => {
    const out = path.join(tmp, `rank-${++outputs}.json`);
    const env = { ...process.env, RANK: String(rank), WORLD_SIZE: String(world), MASTER_ADDR: '127.0.0.1', MASTER_PORT: String(port), TEST_OPTIONS: JSON.stringify(options(rank)), TEST_OUT: out, ...extraEnv(rank) };
    const child = spawn(process.execPath, [script], { env, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d) => { stderr += d; });
    child.on('close', (code, signal) => resolve({
      rank, code, signal, stderr, file: out, seconds: (Date.now() - begin) / 1000, out: fs.existsSync(out) ? JSON.parse(fs.readFileSync(out, 'utf8')) : undefined,
    }));
  })));
}

function maxDiff(a: number[][], b: number[][]): number {
  let m = 0;
  a.forEach((w, i) => w.forEach((v, j) => { m = Math.max(m, Math.abs(v - b[i][j])); }));
  return m;
}

function expectAllSucceeded(exits: RankExit[]): RankOutput[] {
  for (const e of exits) {
    expect({ rank: e.rank, stderr: e.stderr, code: e.code }).toEqual({ rank: e.rank, stderr: '', code: 0 });
    // Every native object a rank made is freed (its model disposed at the end), the group and its Reducer too.
    expect(e.out!.live).toEqual({ tensors: 0, groups: 0, reducers: 0 });
  }
  return exits.map((e) => e.out!);
}

describe('the rank arithmetic (DistributedSampler\'s split, torchrun\'s environment)', () => {
  test('each rank takes every world-th index of the permutation, padded with its first ones to equal length', () => {
    const order = BigInt64Array.from([5n, 3n, 0n, 1n, 4n]);
    expect([0, 1, 2].map((r) => Array.from(shardOrder(order, r, 3)))).toEqual([[5n, 1n], [3n, 4n], [0n, 5n]]);
    expect([0, 1].map((r) => Array.from(shardOrder(order, r, 2)))).toEqual([[5n, 0n, 4n], [3n, 1n, 5n]]);
  });
  test('a resume at a global sample: the images not yet seen, split between the ranks, ending where the epoch ends', () => {
    const permutation = BigInt64Array.from([5n, 3n, 0n, 1n, 4n, 2n, 7n, 6n]);
    // 2 of 8 done; 3 ranks of batch 1 (3 steps an epoch): 6 left, 2 each, from step 1; rows before it unread.
    expect(resumedOrder(permutation, 2, 1, 3, 1, 3, false)).toEqual({ firstStep: 1, order: BigInt64Array.from([0n, 1n, 7n]) });
    expect(resumedOrder(permutation, 2, 0, 1, 4, 2, false)).toEqual({ firstStep: 0, order: BigInt64Array.from([0n, 1n, 4n, 2n, 7n, 6n]) });
    expect(resumedOrder(permutation, 2, 0, 1, 4, 2, true)).toEqual({ firstStep: 1, order: BigInt64Array.from([0n, 0n, 0n, 0n, 0n, 1n, 4n, 2n, 7n, 6n]) });
    // Everything seen: the epoch has no step left.
    expect(resumedOrder(permutation, 8, 0, 2, 2, 2, false).firstStep).toBe(2);
  });
  test('the evaluation shards cover the split once, in order', () => {
    expect([0, 1, 2].map((r) => evaluationShard(101, r, 3))).toEqual([[0, 33], [33, 67], [67, 101]]);
    expect(evaluationShard(1, 1, 2)).toEqual([0, 1]);
  });
  test('torchrun\'s variables are read and checked, each named in its error', () => {
    const env = { RANK: '1', WORLD_SIZE: '2', MASTER_ADDR: 'node7', MASTER_PORT: '29500', TORCHELASTIC_USE_AGENT_STORE: 'True', TORCHELASTIC_RESTART_COUNT: '2' };
    expect(rankEnvironment(env)).toEqual({ rank: 1, worldSize: 2, localRank: 1, localWorldSize: 2, host: 'node7', port: 29500, agentStore: true, agentPrefix: '/worker/attempt_2' });
    expect(() => rankEnvironment({ ...env, RANK: '2' })).toThrow(/Expected an integer in \[0, 1\] for the environment variable RANK but received "2"/);
    expect(() => rankEnvironment({ ...env, MASTER_PORT: undefined })).toThrow(/MASTER_PORT.*torchrun/);
    // A FileStore needs neither MASTER_ADDR nor MASTER_PORT.
    expect(rankEnvironment({ RANK: '1', WORLD_SIZE: '2' }, 'file:///shared/rdzv')).toMatchObject({ rank: 1, worldSize: 2, host: '', port: 0 });
    expect(storeFileOf('file:///shared/rdzv')).toBe('/shared/rdzv');
    expect(storeFileOf('env://')).toBeUndefined();
    expect(() => storeFileOf('file:///shared/')).toThrow(/Expected "env:\/\/" or a file URL .* for distributed.initMethod but received "file:\/\/\/shared\/"/);
    expect(threadsPerRank(2, 2)).toBe(1);
    expect(threadsPerRank(3, 2)).toBe(1);
    expect(threadsPerRank(2, 16)).toBe(8);
    expect(withoutFlag(['train', '--nproc-per-node', '2', '--epochs', '1', '--nproc-per-node=3'], '--nproc-per-node')).toEqual(['train', '--epochs', '1']);
  });
  test('trainCnn({ distributed }) is checked before any work: its options and the environment', async () => {
    const err = await rejected(trainCnn({ distributed: { timeout: -1 } }));
    expect(err.message).toMatch(/Expected .* for distributed.timeout but received -1/);
    expect((await rejected(trainCnn({ distributed: { ranks: 2 } as never }))).message).toMatch(/ranks/);
    expect((await rejected(trainCnn({ distributed: { syncBatchNorm: 'yes' as never } }))).message).toBe('Expected a boolean for distributed.syncBatchNorm but received "yes" of type string');
    const graphed = await rejected(trainCnn({ mode: 'script', cudaGraph: true, distributed: { syncBatchNorm: true } }));
    expect(graphed.message).toMatch(/^Expected cudaGraph left unset or false with distributed.syncBatchNorm .* but received true/);
    const badInit = await rejected(trainCnn({ distributed: { initMethod: 'tcp://10.0.0.1:23456' } }));
    expect({ name: badInit.name, message: badInit.message }).toEqual({
      name: 'RangeError', message: 'Expected "env://" or a file URL (file:///shared/path, an absolute path to a file) for distributed.initMethod but received "tcp://10.0.0.1:23456" of type string',
    });
    const saved = process.env.WORLD_SIZE;
    delete process.env.WORLD_SIZE;
    try {
      expect((await rejected(trainCnn({ distributed: true }))).message).toMatch(/WORLD_SIZE.*torchrun/);
    } finally {
      if (saved !== undefined) process.env.WORLD_SIZE = saved;
    }
  });
  test('a ProcessGroup is made by joinGroup only', () => {
    expect(() => new (native().distributed as unknown as { ProcessGroup: new () => unknown }).ProcessGroup()).toThrow(/joinGroup/);
  });
});

describe('data-parallel training over 127.0.0.1', () => {
  test.each(['eager', 'script'] as const)('%s: 2 ranks at batch 64 end with the weights of 1 process at batch 128 (8 steps, to 1e-4)', async (mode) => {
    const common = { spec: SPEC, seed: 3, mode, count: 1024 };
    const alone = single({ ...common, batchSize: 128 });
    const [r0, r1] = expectAllSucceeded(await ranks(2, () => ({ ...common, batchSize: 64, distributed: { timeout: 20 } })));
    expect(maxDiff(r0.weights, alone.weights)).toBeLessThan(1e-4);
    // Every rank returns the same weights and reports the same (whole-run) figures.
    expect(maxDiff(r0.weights, r1.weights)).toBe(0);
    const figures = (o: RankOutput) => o.history.map(({ trainLoss, testAccuracy, testLoss }) => ({ trainLoss, testAccuracy, testLoss }));
    expect(figures(r1)).toEqual(figures(r0));
    expect(r0.history[0].trainLoss).toBeCloseTo(alone.history[0].trainLoss, 5);
    expect(r0.testAccuracy).toBeCloseTo(alone.testAccuracy, 10);
    // DDP's Reducer averaged every step's gradients during backward (its end-of-backward callback ran
    // 8 times on each rank), in one bucket: this model's 12,770 parameters (51 KB) fit DDP's first one of 1 MiB.
    expect(alone.distributed).toBeUndefined();
    for (const [rank, r] of [r0, r1].entries()) expect(r.distributed).toEqual({ rank, worldSize: 2, buckets: 1, reducedSteps: 8, syncBatchNorm: false });
  });

  test('a network of several buckets (1.6 MB of dense weights): the Reducer rebuilds them after the first step and 2 ranks still end as 1 process', async () => {
    // 1568 x 256 dense weights: the first rebuilt bucket (the output layer's gradients and these,
    // which arrive first) passes DDP's 1 MiB and closes; the convolution's go in the next.
    const common = { spec: { conv: [{ filters: 8, kernelSize: 3, padding: 'same', pool: true }], dense: [256], dropout: 0 }, seed: 13, mode: 'eager', count: 512 };
    const alone = single({ ...common, batchSize: 128 });
    const outs = expectAllSucceeded(await ranks(2, () => ({ ...common, batchSize: 64, distributed: { timeout: 20 } })));
    for (const o of outs) expect(maxDiff(o.weights, alone.weights)).toBeLessThan(1e-4);
    expect(outs.map((o) => o.distributed)).toEqual([0, 1].map((rank) => ({ rank, worldSize: 2, buckets: 2, reducedSteps: 4, syncBatchNorm: false })));
  });

  test.each(['eager', 'script'] as const)('%s, batch norms synced (SyncBatchNorm): 2 ranks at batch 64 end with the weights and running statistics of 1 process at batch 128; each rank\'s own statistics do not', async (mode) => {
    // A batch norm after the convolution and after the dense layer: [N, C, H, W] and [N, C].
    const common = { spec: { ...SPEC, batchNorm: true }, seed: 5, mode, count: 1024 };
    const alone = single({ ...common, batchSize: 128 });
    const synced = expectAllSucceeded(await ranks(2, () => ({ ...common, batchSize: 64, distributed: { timeout: 20, syncBatchNorm: true } })));
    for (const o of synced) {
      expect(maxDiff(o.weights, alone.weights)).toBeLessThan(1e-4);
      // The running means and (unbiased, over the 128 images) variances, and the batch counts.
      expect(maxDiff(o.buffers, alone.buffers)).toBeLessThan(1e-4);
    }
    expect(maxDiff(synced[1].weights, synced[0].weights)).toBe(0);
    expect(maxDiff(synced[1].buffers, synced[0].buffers)).toBe(0);
    expect(synced.map((o) => o.distributed!.syncBatchNorm)).toEqual([true, true]);
    // Without the sync every rank normalises its own 64 images: the statistics, and so the weights, differ.
    const own = expectAllSucceeded(await ranks(2, () => ({ ...common, batchSize: 64, distributed: { timeout: 20 } })));
    expect(maxDiff(own[0].buffers, alone.buffers)).toBeGreaterThan(1e-3);
    expect(maxDiff(own[0].weights, alone.weights)).toBeGreaterThan(1e-4);
  });

  test('the averaging beside the CUDA graph (flat buckets of at most 25 MiB, one allreduce each): each rank ends with the mean of the ranks\' gradients', async () => {
    // Backward order is the reverse of these: [10, 16] and [8, 1, 3, 3] share a bucket, the 6.6
    // million weights (26.4 MB, over DDP's cap) take one of their own, and [10] the last.
    const shapes = [[10], [6_600_000], [8, 1, 3, 3], [10, 16]];
    const exits = await ranks(2, () => ({ shapes }), undefined, undefined, undefined, AVERAGE_SCRIPT);
    const outs = expectAllSucceeded(exits) as unknown as { buckets: number; reducedSteps: number }[];
    expect(outs.map((o) => ({ buckets: o.buckets, reducedSteps: o.reducedSteps }))).toEqual([{ buckets: 3, reducedSteps: 1 }, { buckets: 3, reducedSteps: 1 }]);
    const read = (file: string) => { const b = fs.readFileSync(file); return new Float32Array(b.buffer, b.byteOffset, b.byteLength / 4); };
    const files = exits.map((e) => e.file);
    const [local0, local1] = files.map((f) => read(`${f}.local`));
    const averaged = files.map((f) => read(`${f}.averaged`));
    expect(local0.length).toBe(10 + 6_600_000 + 72 + 160);
    // The ranks' own gradients differ (else the test would prove nothing); the averages are their mean, everywhere.
    let differing = 0;
    let worst = 0;
    for (let i = 0; i < local0.length; ++i) {
      if (local0[i] !== local1[i]) ++differing;
      const mean = (local0[i] + local1[i]) / 2;
      worst = Math.max(worst, Math.abs(averaged[0][i] - mean), Math.abs(averaged[1][i] - mean));
    }
    expect(differing).toBeGreaterThan(local0.length / 4);
    expect(worst).toBe(0);
  });

  test('a FileStore rendezvous (initMethod file://): 2 ranks meet through a file, without MASTER_ADDR or MASTER_PORT, and train as 1 process', async () => {
    const file = path.join(tmp, 'rendezvous');
    const common = { spec: SPEC, seed: 11, mode: 'script', count: 256 };
    const alone = single({ ...common, batchSize: 64 });
    const distributed = { timeout: 20, initMethod: url.pathToFileURL(file).href };
    const outs = expectAllSucceeded(await ranks(2, () => ({ ...common, batchSize: 32, distributed }), [0, 1], () => ({ MASTER_ADDR: '', MASTER_PORT: '' })));
    for (const o of outs) expect(maxDiff(o.weights, alone.weights)).toBeLessThan(1e-4);
    expect(outs.map((o) => o.distributed!.reducedSteps)).toEqual([4, 4]);
    // The last rank to close the store removes its file, so the next run starts from an empty one.
    expect(fs.existsSync(file)).toBe(false);
  });

  test('3 ranks with an uneven split (1000 images: 334 each, 2 padded) stay in step; the sharded evaluation adds up to the whole split\'s', async () => {
    const outs = expectAllSucceeded(await ranks(3, () => ({ spec: SPEC, seed: 5, mode: 'script', count: 1000, batchSize: 50, epochs: 2, distributed: { timeout: 20 } })));
    for (const o of outs.slice(1)) expect(maxDiff(o.weights, outs[0].weights)).toBe(0);
    for (const o of outs) {
      expect(o.history).toHaveLength(2);
      expect(o.testAccuracy).toBeCloseTo(o.whole.accuracy, 10);
      expect(o.testLoss).toBeCloseTo(o.whole.loss, 5);
    }
  });

  test('a killed rank makes the other fail with a clear error within the timeout; the last checkpoint resumes on 3 ranks', async () => {
    const runDir = path.join(tmp, 'killed');
    const options = { spec: SPEC, seed: 7, mode: 'eager', count: 512, batchSize: 32, epochs: 2, runDir, pictures: false, distributed: { timeout: 5 } };
    const [rank0, rank1] = await ranks(2, (rank) => ({ ...options, ...(rank === 1 ? { dieAt: [2, 3] } : {}) }));
    expect(rank1.signal).toBe('SIGKILL');
    expect({ code: rank0.code, stderr: rank0.stderr }).toEqual({ code: 1, stderr: expect.any(String) });
    expect(rank0.stderr).toMatch(/^DistributedError: rank 0 of 2: the gradient average failed \(a peer stopped, or did not answer within 5 s\)/);
    // Start-up included; the failure itself is immediate (the peer's socket closes) or at most the timeout.
    expect(rank0.seconds).toBeLessThan(20);
    const checkpoint = path.join(runDir, 'model.pt');
    const loaded = loadCheckpoint(checkpoint);
    expect(loaded.meta.training?.epoch).toBe(1);
    loaded.model.dispose();
    const resumed = expectAllSucceeded(await ranks(3, () => ({ ...options, runDir: undefined, resumeFrom: checkpoint })));
    for (const o of resumed) {
      expect(o.history.map((h) => h.testAccuracy)).toHaveLength(2);
      expect(maxDiff(o.weights, resumed[0].weights)).toBe(0);
    }
  });

  test.each([['eager', 'batch-norm statistics sum'], ['script', 'epoch']] as const)('%s, batch norms synced: a killed rank makes the other fail in its %s with a clear error within the timeout', async (mode, what) => {
    // Eager, the forward's sums run on the main thread: they too must fail, not hang.
    const options = { spec: { ...SPEC, batchNorm: true }, seed: 7, mode, count: 512, batchSize: 32, distributed: { timeout: 5, syncBatchNorm: true } };
    const [rank0, rank1] = await ranks(2, (rank) => ({ ...options, ...(rank === 1 ? { dieAt: [1, 3] } : {}) }));
    expect(rank1.signal).toBe('SIGKILL');
    expect(rank0.code).toBe(1);
    expect(rank0.stderr).toMatch(new RegExp(`^DistributedError: rank 0 of 2: the ${what} failed \\(a peer stopped, or did not answer within 5 s\\)`));
    expect(rank0.seconds).toBeLessThan(20);
  });

  test('a mid-epoch abort checkpoint of 2 ranks continues at its global sample on 2 ranks, on 4, and in 1 process', async () => {
    const runDir = path.join(tmp, 'aborted');
    // 512 images: 256 per rank, 8 steps of 32 an epoch; both ranks abort after step 3 (as Ctrl-C
    // from the terminal): 192 images of the epoch's permutation done.
    const options = { spec: SPEC, seed: 9, mode: 'eager', count: 512, epochs: 2, pictures: false, distributed: { timeout: 20 } };
    const aborted = await ranks(2, () => ({ ...options, batchSize: 32, runDir, abortAt: [1, 3] }));
    for (const e of aborted) expect({ code: e.code, stderr: e.stderr }).toEqual({ code: 1, stderr: 'AbortError: training was aborted at epoch 1, step 3\n' });
    const checkpoint = path.join(runDir, 'model.pt');
    const loaded = loadCheckpoint(checkpoint);
    expect(loaded.meta.training?.partial).toMatchObject({ step: 3, samples: 192, worldSize: 2, seen: 192 });
    loaded.model.dispose();
    const resume = { ...options, resumeFrom: checkpoint };
    // The same 2 ranks: epoch 1's last 5 steps, then epoch 2's 8, each averaged by the Reducer.
    const same = expectAllSucceeded(await ranks(2, () => ({ ...resume, batchSize: 32 })));
    expect(same.map((o) => o.distributed!.reducedSteps)).toEqual([13, 13]);
    // 4 ranks of 32 continue with the 320 images left (80 each: steps of 128 images, 128 and 64), as
    // 1 process at batch 128 does from the same checkpoint (both end epoch 1 at its step 4), with its weights.
    const four = expectAllSucceeded(await ranks(4, () => ({ ...resume, batchSize: 32 })));
    const alone = single({ ...resume, distributed: undefined, batchSize: 128 });
    for (const o of four) expect(maxDiff(o.weights, alone.weights)).toBeLessThan(1e-4);
    expect(four.map((o) => o.distributed!.reducedSteps)).toEqual([7, 7, 7, 7]);
    // Epoch 1's training figures cover its 512 images: the 192 before the abort (the checkpoint's) and the 320 after.
    expect(four[0].history).toHaveLength(2);
    expect(four[0].history[0].trainLoss).toBeCloseTo(alone.history[0].trainLoss, 5);
  });

  test('a peer that never comes: the rank that came fails with a clear error after the timeout, not forever', async () => {
    const [alone] = await ranks(2, () => ({ spec: SPEC, count: 128, batchSize: 32, distributed: { timeout: 2 } }), [0]);
    expect(alone.code).toBe(1);
    expect(alone.stderr).toMatch(/^DistributedError: rank 0 of 2 \(store 127\.0\.0\.1:\d+\) could not join its group within 2 s/);
    expect(alone.seconds).toBeLessThan(15);
  });

  test('a wrong world size: both ranks fail with a DistributedError within the timeout', async () => {
    const exits = await ranks(2, () => ({ spec: SPEC, count: 128, batchSize: 32, distributed: { timeout: 2 } }), [0, 1], (rank) => (rank === 1 ? { WORLD_SIZE: '3' } : {}));
    for (const e of exits) {
      expect(e.code).toBe(1);
      // Gloo's mesh may even connect (the store's keys do not say the size), so the failure is the
      // rendezvous's or the first collective's, each within the timeout.
      expect(e.stderr).toMatch(/^DistributedError: rank \d of [23]\b.*within 2 s/m);
      expect(e.seconds).toBeLessThan(25);
    }
  });

  test('a port in use: rank 0 cannot serve the store and says so at once', async () => {
    const net = await import('net');
    const server = net.createServer();
    await new Promise<void>((resolve) => server.listen(0, '0.0.0.0', resolve));
    const { port } = server.address() as import('net').AddressInfo;
    try {
      const [rank0] = await ranks(1, () => ({ spec: SPEC, count: 128, batchSize: 32, distributed: { timeout: 30 } }), [0], () => ({}), port);
      expect(rank0.code).toBe(1);
      // (libtorch's own warnings come first on stderr.)
      expect(rank0.stderr).toMatch(/^DistributedError: rank 0 of 1 \(store 127\.0\.0\.1:\d+\) could not join its group within 30 s .*Address already in use/m);
      expect(rank0.seconds).toBeLessThan(15);
    } finally {
      server.close();
    }
  });
});

describe('the libtorch 1.13 fallback build', () => {
  const fallback = path.join(root, 'build-libtorch1', 'Release', 'convscope.node');
  testIfInstalled(fs.existsSync(fallback), `no ${fallback}: scripts/setup-tests.sh builds it with npm run build:libtorch1`)(
    'has no distributed training and says so when asked for it', () => {
      // A fresh process: one process cannot load two copies of the addon.
      const script = `const a = require(${JSON.stringify(fallback)}); let message = 'resolved';
        try { a.distributed.joinGroup({ host: '127.0.0.1', port: 29500, rank: 0, size: 1, timeoutMs: 1000 }); } catch (e) { message = e.message; }
        process.stdout.write(JSON.stringify({ available: a.distributed.available, backends: a.distributed.backends, message }));`;
      const run = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8' });
      expect(run.stderr).toBe('');
      const answer = JSON.parse(run.stdout);
      expect(answer).toEqual({ available: false, backends: [], message: expect.stringMatching(/^distributed training needs the libtorch 2\.x build of convscope: this addon is built against libtorch 1\./) });
    });
});

describe('launching ranks', () => {
  const cliArgs = (runs: string) => ['train', '--limit', '256', '--test-limit', '64', '--batch-size', '32', '--filters', '4', '--no-pictures', '--runs', runs, '--dist-timeout', '30'];
  const runFolders = (runs: string) => (fs.existsSync(runs) ? fs.readdirSync(runs) : []);

  test('convscope train --nproc-per-node 2: both ranks exit 0, rank 0 alone writes a run folder and prints the summary', () => {
    const runs = path.join(tmp, 'launcher-runs');
    // A batch-norm network, its batch norms synced: the flag reaches every rank through the launcher.
    const spec = path.join(tmp, 'launcher-spec.json');
    fs.writeFileSync(spec, JSON.stringify({ ...SPEC, batchNorm: true }));
    const run = spawnSync(process.execPath, [CLI, ...cliArgs(runs), '--spec', spec, '--sync-batch-norm', '--nproc-per-node', '2'], { encoding: 'utf8', timeout: 120000 });
    expect(run.status).toBe(0);
    expect(runFolders(runs)).toHaveLength(1);
    expect(fs.existsSync(path.join(runs, runFolders(runs)[0], 'model.pt'))).toBe(true);
    expect(run.stdout.match(/test accuracy/gi) ?? []).toHaveLength(1);
    expect(run.stdout).toMatch(/^data-parallel: 2 ranks, the gradients of 4 step\(s\) averaged by DDP's Reducer \(1 bucket\(s\)\); batch norms synced over the ranks$/m);
    const alone = spawnSync(process.execPath, [CLI, ...withoutFlag(cliArgs(runs), '--dist-timeout'), '--sync-batch-norm'], { encoding: 'utf8', timeout: 60000 });
    expect(alone.status).not.toBe(0);
    expect(alone.stderr).toMatch(/--sync-batch-norm: only for distributed runs/);
  });

  test('--dist-init-method file://: the launcher\'s ranks meet through the file; a bad one is refused before any rank starts', () => {
    const runs = path.join(tmp, 'launcher-file-store');
    const file = path.join(tmp, 'launcher-rendezvous');
    const run = spawnSync(process.execPath, [CLI, ...cliArgs(runs), '--nproc-per-node', '2', '--dist-init-method', url.pathToFileURL(file).href], { encoding: 'utf8', timeout: 120000 });
    expect(run.status).toBe(0);
    expect(runFolders(runs)).toHaveLength(1);
    expect(fs.existsSync(file)).toBe(false);
    const bad = spawnSync(process.execPath, [CLI, ...withoutFlag(cliArgs(runs), '--dist-timeout'), '--dist-init-method', 'file:///tmp/'], { encoding: 'utf8', timeout: 60000 });
    expect(bad.status).not.toBe(0);
    expect(bad.stderr).toMatch(/--dist-init-method: only for distributed runs/);
  });

  test('the launcher stops the other ranks and exits with the failing rank\'s code', () => {
    const runs = path.join(tmp, 'launcher-fails');
    // Rank 1 cannot create its store client before rank 0's store refuses: a bad option fails every rank at once.
    const run = spawnSync(process.execPath, [CLI, ...cliArgs(runs), '--epochs', '0', '--nproc-per-node', '2'], { encoding: 'utf8', timeout: 60000 });
    expect(run.status).not.toBe(0);
    expect(run.stderr).toMatch(/epochs/);
  });

  testIfInstalled(fs.existsSync(TORCHRUN), `no ${TORCHRUN}: scripts/setup.sh installs PyTorch (and torchrun) into .venv`)(
    'torchrun --no-python --nproc-per-node 2 node main.js train: the ranks join through torchrun\'s agent store', async () => {
      const runs = path.join(tmp, 'torchrun-runs');
      const port = await freePort();
      const run = spawnSync(TORCHRUN, ['--no-python', '--nproc-per-node', '2', '--master-port', String(port), process.execPath, CLI, ...cliArgs(runs)],
        { encoding: 'utf8', timeout: 120000 });
      expect(run.status).toBe(0);
      expect(runFolders(runs)).toHaveLength(1);
      expect(run.stdout.match(/test accuracy/gi) ?? []).toHaveLength(1);
    });
});
