// Peak memory and time of chunked evaluation: the full 10,000-image test set evaluated with chunks of
// 128 (the CPU default), 1,000 and 10,000, each in a fresh process so that the peak RSS belongs to
// that chunk size alone.
import { spawnSync } from 'child_process';
import * as path from 'path';

export interface EvalMemoryRow { chunkSize: number; peakRssMb: number; baselineRssMb: number; accuracy: number; seconds: number }

const CHILD = `
const { createModel, evaluate, defaultSpec, loadDataset } = require(${JSON.stringify(path.join(__dirname, '..', 'src', 'index.js'))});
const chunkSize = Number(process.argv[1]);
const data = loadDataset('fashion-mnist');
const model = createModel(defaultSpec(), { seed: 1 });
const baseline = process.resourceUsage().maxRSS;
const started = Date.now();
evaluate(model, data.test, { chunkSize }).then((r) => {
  process.stdout.write(JSON.stringify({ peak: process.resourceUsage().maxRSS, baseline, accuracy: r.accuracy, seconds: (Date.now() - started) / 1000 }));
});`;

export function benchEvalMemory(chunkSizes = [128, 1000, 10000]): EvalMemoryRow[] {
  return chunkSizes.map((chunkSize) => {
    const run = spawnSync(process.execPath, ['-e', CHILD, String(chunkSize)], { encoding: 'utf8' });
    if (run.status !== 0) throw new Error(`eval-memory child failed: ${run.stderr}`);
    const r = JSON.parse(run.stdout);
    return { chunkSize, peakRssMb: r.peak / 1024, baselineRssMb: r.baseline / 1024, accuracy: r.accuracy, seconds: r.seconds };
  });
}
