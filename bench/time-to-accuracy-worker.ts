// One convscope run of the time-to-accuracy benchmark, in a process of its own (nothing cached from
// the run before): the preset on a dataset for some epochs and a seed. Prints one JSON line: the final
// epoch's test accuracy and trainCnn's trainingSeconds (the epochs' steps and evaluations: no data
// loading, no model building; the scripted model's TorchScript compilation happens when it is built).
// usage: node dist/bench/time-to-accuracy-worker.js PRESET DATASET EPOCHS SEED [LIMIT TEST_LIMIT [OPTIONS_JSON]]
// LIMIT and TEST_LIMIT may be '' (all images); OPTIONS_JSON: trainCnn options over the preset's (an ablation).
import { loadDataset } from '../src/data/datasets';
import { torchInfo } from '../src/index';
import type { InMemoryDataset } from '../src/train/options';
import type { PresetName } from '../src/train/presets';
import { trainCnn } from '../src/train/train-cnn';

async function main(): Promise<void> {
  const [preset, datasetName, epochs, seed, limit, testLimit, extra] = process.argv.slice(2);
  const dataset = loadDataset(datasetName as 'mnist' | 'fashion-mnist') as unknown as InMemoryDataset;
  const started = performance.now();
  const result = await trainCnn({
    preset: preset as PresetName, dataset, epochs: Number(epochs), seed: Number(seed),
    ...(limit ? { limit: Number(limit) } : {}), ...(testLimit ? { testLimit: Number(testLimit) } : {}),
    ...(extra ? JSON.parse(extra) as object : {}),
  });
  const wallSeconds = (performance.now() - started) / 1000;
  result.model.dispose();
  process.stdout.write(JSON.stringify({
    accuracy: result.testAccuracy, seconds: result.trainingSeconds, wallSeconds,
    epochs: result.history.map((r) => ({ epoch: r.epoch, testAccuracy: r.testAccuracy, seconds: r.seconds, evaluationSeconds: r.evaluationSeconds })),
    torch: torchInfo().version,
  }) + '\n');
}

main().catch((err) => {
  process.stderr.write(`${(err as Error).message}\n`);
  process.exitCode = 1;
});
