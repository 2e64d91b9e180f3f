// One convscope contender of the inference benchmark (bench/inference-throughput.ts), in its own
// process so that each can load a different build of the addon ($CONVSCOPE_ADDON). Prints one JSON line.
// usage: node dist/bench/convscope-inference-worker.js MODE TASK CHUNK IMAGES [PRECISION]
// TASK: evaluate (accuracy, loss and confusion over the first IMAGES test images, evaluate()) or
// predict (their class probabilities into a Float32Array, model.predict()), in chunks of CHUNK. One
// untimed pass first (the same call), then one timed pass: the figure is what a caller waits for.
// PRECISION: fp32 (default) or bf16 (the forward pass under bfloat16 autocast).
import { loadDataset } from '../src/data/datasets';
import { defaultSpec } from '../src/nn/spec';
import { createModel } from '../src/nn/model';
import { evaluate, takeImages } from '../src/train/evaluate';
import { torchInfo } from '../src/index';
import type { InMemoryDataset } from '../src/train/options';

async function main(): Promise<void> {
  const [mode, task, chunk, images, precisionArg] = process.argv.slice(2);
  const precision = (precisionArg ?? 'fp32') as 'fp32' | 'bf16';
  if (task !== 'evaluate' && task !== 'predict') throw new Error(`TASK must be evaluate or predict, not ${task}`);
  const chunkSize = Number(chunk);
  const test = takeImages((loadDataset('fashion-mnist') as unknown as InMemoryDataset).test, Number(images));
  const model = createModel(defaultSpec(), { mode: mode as 'eager' | 'script', seed: 1 });
  const pass = async (): Promise<number> => task === 'evaluate'
    ? (await evaluate(model, test, { chunkSize, precision })).accuracy
    : model.predict(test.images, { chunkSize, precision }).length;
  await pass();
  const started = performance.now();
  const result = await pass();
  const seconds = (performance.now() - started) / 1000;
  model.dispose();
  process.stdout.write(JSON.stringify({ imagesPerSecond: test.count / seconds, seconds, images: test.count, result, torch: torchInfo().version }) + '\n');
}

main().catch((err) => {
  process.stderr.write(`${(err as Error).message}\n`);
  process.exitCode = 1;
});
