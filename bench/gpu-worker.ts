// One convscope contender of the GPU benchmark (bench/gpu.ts), in its own process so that a crash, a
// CUDA error or leftover device state of one cannot touch the others. Prints one JSON line.
// usage: node dist/bench/gpu-worker.js eager|script|script-graph EPOCHS DEVICE [LIMIT]
//
// Trains the default network on Fashion-MNIST (batch 128, Adam 1e-3, fp32, dropLast) for 1 + EPOCHS
// epochs, the first a warm-up, and reports each epoch's EpochRecord.seconds (the steps only: the
// epoch's evaluation is not in it). Then times chunked evaluation of the test split (chunks of 1000):
// one warm-up, median of 5, with the device synchronised before each clock reading.
import { evaluate, loadDataset, torchInfo, trainCnn } from '../src/index';
import { native } from '../src/core/native';
import type { InMemoryDataset, TrainOptions } from '../src/train/options';
import { median } from './stats';

export const GPU_CONTENDERS = ['eager', 'script', 'script-graph'] as const;
export type GpuContender = (typeof GPU_CONTENDERS)[number];
export const EVAL_RUNS = 5;
export const EVAL_CHUNK = 1000;
export const BATCH = 128;

/** What a worker prints (one JSON line). */
export interface GpuWorkerResult {
  contender: GpuContender;
  secondsPerEpoch: number[];
  median: number;
  warmupSeconds: number;
  evalMs: number;
  evalMsRuns: number[];
  evalAccuracy: number;
  trainLossPerEpoch: number[];
  /** Full batches run by replaying the CUDA graph: 0 unless script-graph. */
  cudaGraphReplays: number;
  steps: number;
  images: number;
  torch: string;
}

/** Waits for every kernel queued on the GPU (CUDA builds only), so that a clock reading is honest. */
function synchronize(device: string): void {
  if (device === 'cuda') native().cuda?.synchronize();
}

async function main(): Promise<void> {
  const [contender, epochsArg, device, limitArg] = process.argv.slice(2) as [GpuContender, string, 'cuda' | 'cpu', string?];
  if (!GPU_CONTENDERS.includes(contender)) throw new Error(`unknown contender ${contender}; one of ${GPU_CONTENDERS.join(', ')}`);
  const epochs = Number(epochsArg);
  const limit = limitArg ? Number(limitArg) : undefined;
  const loaded = loadDataset('fashion-mnist');
  const dataset = loaded as unknown as InMemoryDataset;
  const test = limit ? { images: loaded.test.images.subarray(0, Math.min(limit, loaded.test.count) * 784), labels: loaded.test.labels.subarray(0, Math.min(limit, loaded.test.count)), count: Math.min(limit, loaded.test.count) } : loaded.test;

  const options: TrainOptions = {
    dataset, device, mode: contender === 'eager' ? 'eager' : 'script', precision: 'fp32', optimizer: 'adam', learningRate: 1e-3,
    batchSize: BATCH, dropLast: true, epochs: 1 + epochs, limit, testLimit: 1000, seed: 1, pictures: false,
    // Said explicitly in script mode (its default is on for CUDA); on the CPU, script-graph fails by design.
    ...(contender === 'eager' ? {} : { cudaGraph: contender === 'script-graph' }),
  };
  const { model, history, cudaGraphReplays } = await trainCnn(options);
  const seconds = history.map((r) => r.seconds);

  await evaluate(model, test, { chunkSize: EVAL_CHUNK }); // warm-up
  const evalMsRuns: number[] = [];
  let evalAccuracy = NaN;
  for (let run = 0; run < EVAL_RUNS; run++) {
    synchronize(device);
    const started = process.hrtime.bigint();
    const r = await evaluate(model, test, { chunkSize: EVAL_CHUNK });
    synchronize(device);
    evalMsRuns.push(Number(process.hrtime.bigint() - started) / 1e6);
    evalAccuracy = r.accuracy;
  }
  model.dispose();
  const images = Math.min(limit ?? loaded.train.count, loaded.train.count);
  const out: GpuWorkerResult = {
    contender, secondsPerEpoch: seconds.slice(1), median: median(seconds.slice(1)), warmupSeconds: seconds[0],
    evalMs: median(evalMsRuns), evalMsRuns, evalAccuracy, trainLossPerEpoch: history.map((r) => r.trainLoss), cudaGraphReplays,
    steps: Math.floor(images / BATCH), images, torch: torchInfo().version,
  };
  process.stdout.write(JSON.stringify(out) + '\n');
}

if (require.main === module) {
  main().catch((err) => {
    process.stderr.write(`${(err as Error).stack ?? err}\n`);
    process.exitCode = 1;
  });
}
