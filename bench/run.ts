// npm run bench: every speed and memory goal of the project, measured side by side in one run on
// this machine, printed as one table with ratios (and written to bench/results/latest.json).
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { loadDataset } from '../src/data/datasets';
import { torchInfo } from '../src/index';
import type { InMemoryDataset } from '../src/train/options';
import { benchEvalMemory } from './eval-memory';
import { benchLoadData } from './load-data';
import { median } from './stats';
import { benchTrainingThroughput, DEFAULT_THROUGHPUT } from './training-throughput';

// On a shared machine noise only ever slows a run, so the best of the interleaved rounds is the
// steadiest estimate of what each contender can do (as timeit advises); the median is shown too.
const best = (values: number[]): number => Math.max(...values);

async function main(): Promise<void> {
  const only = process.argv.slice(2);
  const wants = (name: string) => only.length === 0 || only.includes(name);
  const machine = `${os.cpus()[0]?.model ?? 'cpu'}, ${os.availableParallelism()} cores, libtorch ${torchInfo().version}`;
  const report: Record<string, unknown> = { date: new Date().toISOString(), machine, settings: DEFAULT_THROUGHPUT };
  process.stdout.write(`convscope benchmark on ${machine}\n\n`);

  if (wants('data')) {
    const d = await benchLoadData();
    report.data = d;
    process.stdout.write(`load Fashion-MNIST (.gz, verified)  ${d.loadMs.toFixed(0)} ms vs plain gunzip ${d.gunzipMs.toFixed(0)} ms: ${d.ratio.toFixed(2)}x (goal <= 1.25x)\n\n`);
  }

  if (wants('train')) {
    const dataset = loadDataset('fashion-mnist') as unknown as InMemoryDataset;
    const { rows, pytorchError } = await benchTrainingThroughput(dataset);
    report.training = rows;
    const reference = rows.find((r) => r.contender === 'pytorch' && r.precision === 'fp32')?.imagesPerSecond ?? [NaN];
    const referenceBest = best(reference);
    const referenceMedian = median(reference);
    process.stdout.write(`training throughput, batch ${DEFAULT_THROUGHPUT.batchSize}, Adam, ${DEFAULT_THROUGHPUT.threads} threads, ${DEFAULT_THROUGHPUT.rounds} interleaved rounds\n`);
    process.stdout.write('  path              precision   best images/s   vs PyTorch fp32   (median   vs median)   median of per-round ratios\n');
    for (const r of rows) {
      const top = best(r.imagesPerSecond);
      const mid = median(r.imagesPerSecond);
      process.stdout.write(`  ${r.contender.padEnd(16)}  ${r.precision.padEnd(9)}  ${top.toFixed(0).padStart(13)}   ${(top / referenceBest).toFixed(2).padStart(14)}x   (${mid.toFixed(0).padStart(6)}   ${(mid / referenceMedian).toFixed(2)}x)   ${(r.pairedRatio ?? NaN).toFixed(2).padStart(10)}x\n`);
    }
    if (pytorchError) process.stdout.write(`  (PyTorch reference: ${pytorchError})\n`);
    process.stdout.write('  goals (read from the per-round ratios): eager fp32 >= 0.95x, script fp32 >= 1.0x, bf16 >= 2.5x PyTorch fp32\n\n');
  }

  if (wants('eval-memory')) {
    const rows = benchEvalMemory();
    report.evalMemory = rows;
    process.stdout.write('chunked evaluation of the 10,000 test images (default network, fresh process each)\n');
    for (const r of rows) {
      process.stdout.write(`  chunk ${String(r.chunkSize).padStart(5)}: peak RSS ${r.peakRssMb.toFixed(0)} MB (${(r.peakRssMb - r.baselineRssMb).toFixed(0)} MB above the loaded process), accuracy ${r.accuracy}, ${r.seconds.toFixed(1)} s\n`);
    }
    process.stdout.write('\n');
  }

  const out = path.join(__dirname, '..', '..', 'bench', 'results');
  fs.mkdirSync(out, { recursive: true });
  fs.writeFileSync(path.join(out, 'latest.json'), JSON.stringify(report, null, 2) + '\n');
  process.stdout.write(`written to bench/results/latest.json\n`);
}

main().catch((err) => {
  process.stderr.write(`bench: ${(err as Error).stack}\n`);
  process.exitCode = 1;
});
