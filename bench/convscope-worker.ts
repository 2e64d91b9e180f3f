// One convscope contender of the training benchmark, in its own process so that each can load a
// different build of the addon ($CONVSCOPE_ADDON: libtorch 2.x or 1.13). Prints one JSON line.
// usage: node dist/bench/convscope-worker.js MODE PRECISION BATCH WARMUP STEPS [PRESET [SYNTHETIC]]
// PRESET trains that preset's network (with the same Adam 1e-3 as the other rows) instead of the tutorial's
// ('-' for the tutorial's). SYNTHETIC (CxHxW, e.g. 3x32x32) trains on seeded random uint8 images of that
// shape with random labels (10 classes) instead of Fashion-MNIST: the colour rows, as
// bench/pytorch_reference.py --synthetic does.
import { loadDataset } from '../src/data/datasets';
import { presetOptions, PresetName } from '../src/train/presets';
import { torchInfo } from '../src/index';
import { trainCnn } from '../src/train/train-cnn';
import type { InMemoryDataset } from '../src/train/options';

/** Seeded random uint8 images N x C x H x W (`shape` 'CxHxW') with random labels below 10, as train and test split. */
function syntheticDataset(shape: string, count: number): InMemoryDataset {
  const [channels, height, width] = shape.split('x').map(Number);
  let state = 12345;
  const next = (): number => {
    state = (Math.imul(state, 1103515245) + 12345) >>> 0;
    return state >>> 16;
  };
  const images = Uint8Array.from({ length: count * channels * height * width }, () => next() & 255);
  const labels = Uint8Array.from({ length: count }, () => next() % 10);
  const split = { images, labels, count, channels, height, width };
  return { name: `synthetic-${shape}`, train: split, test: split, classNames: Array.from({ length: 10 }, (_, i) => String(i)) };
}

async function main(): Promise<void> {
  const [mode, precision, batch, warmup, steps, presetArg, synthetic] = process.argv.slice(2);
  const preset = presetArg === '-' ? undefined : presetArg;
  const batchSize = Number(batch);
  const warmupSteps = Number(warmup);
  const measured = Number(steps);
  const dataset = synthetic ? syntheticDataset(synthetic, (warmupSteps + measured + 1) * batchSize) : loadDataset('fashion-mnist') as unknown as InMemoryDataset;
  const stamps: number[] = [];
  const result = await trainCnn({
    dataset, mode: mode as 'eager' | 'script', ...(preset ? { spec: presetOptions(preset as PresetName, dataset.name).spec } : {}), precision: precision as 'fp32' | 'bf16', batchSize,
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
