// One convscope contender of the training benchmark, in its own process so that each can load a
// different build of the addon ($CONVSCOPE_ADDON: libtorch 2.x or 1.13). Prints one JSON line.
// usage: node dist/bench/convscope-worker.js MODE PRECISION BATCH WARMUP STEPS [PRESET]
// PRESET trains that preset's network (with the same Adam 1e-3 as the other rows) instead of the tutorial's.
import { loadDataset } from '../src/data/datasets';
import { presetOptions, PresetName } from '../src/train/presets';
import { torchInfo } from '../src/index';
import { trainCnn } from '../src/train/train-cnn';
import type { InMemoryDataset } from '../src/train/options';

async function main(): Promise<void> {
  const [mode, precision, batch, warmup, steps, preset] = process.argv.slice(2);
  const batchSize = Number(batch);
  const warmupSteps = Number(warmup);
  const measured = Number(steps);
  const dataset = loadDataset('fashion-mnist') as unknown as InMemoryDataset;
  const stamps: number[] = [];
  const result = await trainCnn({
    dataset, mode: mode as 'eager' | 'script', ...(preset ? { spec: presetOptions(preset as PresetName, 'fashion-mnist').spec } : {}), precision: precision as 'fp32' | 'bf16', batchSize,
    limit: (warmupSteps + measured) * batchSize, testLimit: 100, seed: 1,
    onProgress: (e) => { if (e.type === 'step') stamps[e.step] = performance.now(); },
  });
  result.model.dispose();
  const seconds = (stamps[warmupSteps + measured] - stamps[warmupSteps]) / 1000;
  process.stdout.write(JSON.stringify({ imagesPerSecond: (measured * batchSize) / seconds, torch: torchInfo().version }) + '\n');
}

main().catch((err) => {
  process.stderr.write(`${(err as Error).message}\n`);
  process.exitCode = 1;
});
