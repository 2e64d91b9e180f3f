// npm run bench -- distributed: data-parallel scaling on this machine. One process against 1 and 2
// local ranks (c10d, Gloo over 127.0.0.1), the same global batch (strong scaling: 2 ranks at half the
// batch each) and the same batch per rank (weak scaling), interleaved rounds; images/s over the whole
// group (every rank's images, rank 0's epoch time, training only). The communication per step is
// computed: every step averages the gradients (4 bytes per parameter) in DDP's Reducer's buckets
// (their count reported by the ranks), plus one small allreduce of the loss; a ring moves 2 (n - 1) / n
// of each buffer out of every rank. On a machine with GPUs, `--device cuda --ranks 2,4,8` gives each
// rank the GPU of its LOCAL_RANK (rows of 2, 4 and 8 ranks; without the CUDA graph in every row
// alike). `--batch-norm` trains the tutorial network with batch norms in every row and adds, for each
// group size, the same-global-batch row with the batch norms synced (SyncBatchNorm): its cost.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { launchLocalRanks } from '../src/distributed/launcher';
import { median } from './stats';

export interface DistributedSettings {
  rounds: number; steps: number; batchSize: number; mode: 'eager' | 'script'; device: 'cpu' | 'cuda';
  /** The group sizes above one, each measured at the same global batch and at the same batch per rank. */
  ranks: number[];
  /** The tutorial network with batch norms, and rows with them synced over the ranks. */
  batchNorm: boolean;
}
export const DEFAULT_DISTRIBUTED: DistributedSettings = { rounds: 3, steps: 100, batchSize: 128, mode: 'script', device: 'cpu', ranks: [2], batchNorm: false };
/** Fashion-MNIST's training split: a wide group's epoch is shorter than `steps` rather than repeating images. */
const TRAINING_IMAGES = 60_000;

export interface DistributedRow { name: string; ranks: number; batchPerRank: number; syncBatchNorm: boolean; imagesPerSecond: number[] }
export interface DistributedReport {
  settings: DistributedSettings; rows: DistributedRow[]; parameters: number; gradientBytesPerStep: number; ringBytesSentPerRankPerStep: number;
  /** The Reducer's buckets after its rebuild (a run of several ranks; 0 when none ran). */
  reducerBuckets: number;
}

const WORKER = path.join(__dirname, 'distributed-worker.js');

/** One measurement: `ranks` ranks (0: a single process, no group) at `batchPerRank`, `steps` steps. */
async function measure(row: DistributedRow, s: DistributedSettings): Promise<{ imagesPerSecond: number; parameters: number; buckets?: number }> {
  const { ranks, batchPerRank, syncBatchNorm } = row;
  const out = path.join(os.tmpdir(), `convscope-bench-distributed-${process.pid}.json`);
  const limit = Math.min(TRAINING_IMAGES, s.steps * batchPerRank * Math.max(1, ranks));
  const env = {
    ...process.env, BENCH_OUT: out,
    BENCH_DISTRIBUTED: JSON.stringify({ limit, batchSize: batchPerRank, mode: s.mode, device: s.device, distributed: ranks > 0, batchNorm: s.batchNorm, syncBatchNorm }),
  };
  // The single process is started the same way; without `distributed` it ignores the rank variables.
  const { code } = await launchLocalRanks({ ranks: Math.max(1, ranks), command: [process.execPath, WORKER], env });
  if (code !== 0) throw new Error(`the ${ranks}-rank run failed (exit code ${code})`);
  const result = JSON.parse(fs.readFileSync(out, 'utf8')) as { imagesPerSecond: number; parameters: number; buckets?: number };
  fs.rmSync(out, { force: true });
  return result;
}

export async function benchDistributed(s: DistributedSettings): Promise<DistributedReport> {
  const bad = s.ranks.find((n) => !Number.isInteger(n) || n < 2 || n > s.batchSize);
  if (bad !== undefined) throw new RangeError(`--ranks takes group sizes from 2 to the batch size (${s.batchSize}), not ${bad}`);
  const rows: DistributedRow[] = [
    { name: 'one process (no group)', ranks: 0, batchPerRank: s.batchSize, syncBatchNorm: false, imagesPerSecond: [] },
    { name: '1 rank (a group of one)', ranks: 1, batchPerRank: s.batchSize, syncBatchNorm: false, imagesPerSecond: [] },
  ];
  for (const n of s.ranks) {
    const share = Math.floor(s.batchSize / n);
    rows.push({ name: `${n} ranks, ${share} each (same global batch)`, ranks: n, batchPerRank: share, syncBatchNorm: false, imagesPerSecond: [] });
    if (s.batchNorm) rows.push({ name: `${n} ranks, ${share} each, batch norms synced`, ranks: n, batchPerRank: share, syncBatchNorm: true, imagesPerSecond: [] });
    rows.push({ name: `${n} ranks, ${s.batchSize} each`, ranks: n, batchPerRank: s.batchSize, syncBatchNorm: false, imagesPerSecond: [] });
  }
  let parameters = 0;
  let reducerBuckets = 0;
  for (let round = 0; round < s.rounds; ++round) {
    for (const row of rows) {
      const r = await measure(row, s);
      row.imagesPerSecond.push(r.imagesPerSecond);
      parameters = r.parameters;
      if (row.ranks > 1 && r.buckets !== undefined) reducerBuckets = r.buckets;
    }
  }
  const gradientBytesPerStep = 4 * parameters;
  const n = s.ranks[0] ?? 2;
  return { settings: s, rows, parameters, gradientBytesPerStep, ringBytesSentPerRankPerStep: gradientBytesPerStep * 2 * (n - 1) / n, reducerBuckets };
}

export function printDistributed(r: DistributedReport, write: (line: string) => void): void {
  write(`data-parallel scaling (${r.settings.mode} on ${r.settings.device}${r.settings.batchNorm ? ', the tutorial network with batch norms' : ''}, ${r.settings.steps} steps, ${r.settings.rounds} interleaved rounds; images/s of the whole group, training only)\n`);
  const base = median(r.rows[0].imagesPerSecond);
  for (const row of r.rows) {
    const m = median(row.imagesPerSecond);
    write(`  ${row.name.padEnd(36)} ${m.toFixed(0).padStart(8)} images/s  ${(m / base).toFixed(2)}x  (rounds: ${row.imagesPerSecond.map((v) => v.toFixed(0)).join(', ')})\n`);
  }
  write(`  communication per step: ${r.parameters} parameters -> ${(r.gradientBytesPerStep / 1024).toFixed(1)} KiB of gradients allreduced ` +
    `in ${r.reducerBuckets} Reducer bucket(s); ` +
    `with ${r.settings.ranks[0] ?? 2} ranks a ring sends ${(r.ringBytesSentPerRankPerStep / 1024).toFixed(1)} KiB out of each rank per step\n\n`);
}
