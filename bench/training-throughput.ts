// Training throughput, side by side in one run: convscope's eager and scripted paths against
// PyTorch's own loop in Python (Debian's python3-torch): same network, batch, optimizer (Adam 1e-3),
// threads and data; fp32 and bf16. Rounds are interleaved so that machine noise hits all alike.
// 'pytorch-rewrite' is PyTorch running the scripted graph's rewrite (channels-last pooling, ReLU
// after pooling; bench/pytorch_reference.py --graph-rewrite), to show how much of the lead it explains.
import { spawnSync } from 'child_process';
import * as os from 'os';
import * as path from 'path';
import { trainCnn } from '../src/train/train-cnn';
import type { InMemoryDataset } from '../src/train/options';
import { DEBIAN_FASHION_MNIST_DIR } from '../src/data/datasets';
import { median } from './stats';

export interface ThroughputSettings { batchSize: number; warmupSteps: number; steps: number; rounds: number; threads: number }
export const DEFAULT_THROUGHPUT: ThroughputSettings = { batchSize: 128, warmupSteps: 5, steps: 40, rounds: 8, threads: os.availableParallelism() };

export type Contender = 'pytorch' | 'pytorch-rewrite' | 'eager' | 'script';
export interface ThroughputRow {
  contender: Contender;
  precision: 'fp32' | 'bf16';
  imagesPerSecond: number[];
  /** Median over rounds of this row's images/s divided by PyTorch fp32's in the same round. */
  pairedRatio?: number;
}

/** Steady-state images/s of one convscope path: timestamps of step events after the warm-up. */
export async function convscopeThroughput(dataset: InMemoryDataset, mode: 'eager' | 'script', precision: 'fp32' | 'bf16', s: ThroughputSettings): Promise<number> {
  const stamps: number[] = [];
  const result = await trainCnn({
    dataset, mode, precision, batchSize: s.batchSize, limit: (s.warmupSteps + s.steps) * s.batchSize, testLimit: 100, seed: 1,
    onProgress: (e) => { if (e.type === 'step') stamps[e.step] = performance.now(); },
  });
  result.model.dispose();
  const seconds = (stamps[s.warmupSteps + s.steps] - stamps[s.warmupSteps]) / 1000;
  return (s.steps * s.batchSize) / seconds;
}

/** PyTorch's images/s from bench/pytorch_reference.py, or the reason (a string) when it cannot run. */
export function pytorchThroughput(precision: 'fp32' | 'bf16', s: ThroughputSettings, graphRewrite = false, python = '/usr/bin/python3'): number | string {
  const script = path.join(__dirname, '..', '..', 'bench', 'pytorch_reference.py');
  const args = [script, '--images', path.join(DEBIAN_FASHION_MNIST_DIR, 'train-images-idx3-ubyte.gz'),
    '--labels', path.join(DEBIAN_FASHION_MNIST_DIR, 'train-labels-idx1-ubyte.gz'), '--steps', String(s.steps),
    '--warmup', String(s.warmupSteps), '--batch', String(s.batchSize), '--threads', String(s.threads), '--precision', precision];
  if (precision === 'bf16') args.push('--channels-last');
  if (graphRewrite) args.push('--graph-rewrite');
  // The same OpenMP settings as convscope (native.ts sets OMP_WAIT_POLICY before libtorch loads).
  const run = spawnSync(python, args, { encoding: 'utf8', env: { ...process.env, OMP_WAIT_POLICY: process.env.OMP_WAIT_POLICY ?? 'PASSIVE' } });
  if (run.status !== 0) return `PyTorch reference failed: ${run.stderr.trim().split('\n').pop()}`;
  return JSON.parse(run.stdout.trim().split('\n').pop()!).imagesPerSecond;
}

export async function benchTrainingThroughput(dataset: InMemoryDataset, s: ThroughputSettings = DEFAULT_THROUGHPUT): Promise<{ rows: ThroughputRow[]; pytorchError?: string }> {
  const rows: ThroughputRow[] = [];
  const row = (contender: Contender, precision: 'fp32' | 'bf16'): ThroughputRow => {
    let r = rows.find((x) => x.contender === contender && x.precision === precision);
    if (!r) rows.push((r = { contender, precision, imagesPerSecond: [] }));
    return r;
  };
  let pytorchError: string | undefined;
  for (let round = 0; round < s.rounds; ++round) {
    for (const precision of ['fp32', 'bf16'] as const) {
      const reference = pytorchThroughput(precision, s);
      if (typeof reference === 'number') row('pytorch', precision).imagesPerSecond.push(reference);
      else pytorchError = reference;
      if (precision === 'fp32') {
        const rewritten = pytorchThroughput(precision, s, true);
        if (typeof rewritten === 'number') row('pytorch-rewrite', precision).imagesPerSecond.push(rewritten);
        else pytorchError = rewritten;
      }
      row('eager', precision).imagesPerSecond.push(await convscopeThroughput(dataset, 'eager', precision, s));
      row('script', precision).imagesPerSecond.push(await convscopeThroughput(dataset, 'script', precision, s));
    }
  }
  // Each round runs every contender back to back, so the ratio within a round cancels the slow
  // drifts of a shared machine; its median over rounds is the figure the goals are read from.
  const reference = rows.find((r) => r.contender === 'pytorch' && r.precision === 'fp32')?.imagesPerSecond ?? [];
  for (const r of rows) {
    r.pairedRatio = reference.length === r.imagesPerSecond.length ? median(r.imagesPerSecond.map((v, i) => v / reference[i])) : NaN;
  }
  return { rows, pytorchError };
}
