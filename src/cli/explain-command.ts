// `convscope explain`: attribution maps of a checkpoint for a slice of a dataset split, written as a
// folder (attributions.npy, overlay.png, explain.json). A thin wrapper over explain() and
// writeExplanation(); only the settings given on the command line are passed on, so that a setting
// the method does not use (--steps for saliency) is an error rather than silently ignored.
import * as fs from 'fs';
import * as path from 'path';
import { Command, InvalidArgumentError, Option } from 'commander';
import type { ExplainOptions, MethodName } from '../probe/options';
import { METHODS } from '../probe/options';
import { parseInteger, parseNumber } from './train-command';
import { IMAGE_SIZE_HELP, RUN_DATASET_HELP, runDatasetFor } from './data-options';

interface ExplainFlags {
  method: MethodName;
  layer?: string;
  target: string;
  split: 'test' | 'train';
  images: string;
  out?: string;
  steps?: number;
  baseline?: string;
  smoothing?: string;
  samples?: number;
  sigma?: number;
  seed?: number;
  blurSigma?: number;
  window?: number | [number, number];
  stride?: number | [number, number];
  chunkSize?: number;
  mode?: 'eager' | 'script';
  dataset?: string;
  dataDir?: string;
  imageSize?: string;
  check?: boolean;
  summary?: boolean;
  acrossTraining?: boolean;
}

/**
 * A Python slice `from:to` over `count` items (either end may be omitted or negative, counted from
 * the end) as [start, end); a bare index `i` is `i:i+1`. An empty selection is an error.
 */
export function parseImageSlice(text: string, count: number): [number, number] {
  const match = /^\s*(-?\d+)?\s*(:)?\s*(-?\d+)?\s*$/.exec(text);
  if (!match || (match[1] === undefined && match[2] === undefined)) {
    throw new InvalidArgumentError(`expected from:to (a Python slice such as 0:8, :16 or -4:) for --images but received "${text}"`);
  }
  const resolve = (v: string | undefined, fallback: number) => {
    if (v === undefined) return fallback;
    const n = Number(v);
    return Math.min(Math.max(n < 0 ? count + n : n, 0), count);
  };
  const start = resolve(match[1], 0);
  const end = match[2] === undefined ? start + 1 : resolve(match[3], count);
  if (end <= start || start >= count) {
    throw new InvalidArgumentError(`expected a non-empty slice of the ${count} images for --images but "${text}" selects none`);
  }
  return [start, Math.min(end, count)];
}

/** `4` or `4x2` (height x width) for --window and --stride. */
function parsePair(value: string): number | [number, number] {
  const parts = value.split(/[x,]/);
  if (parts.length === 1) return parseInteger(value);
  if (parts.length !== 2) throw new InvalidArgumentError(`expected n or HxW (such as 4 or 4x2) but received "${value}"`);
  return [parseInteger(parts[0]), parseInteger(parts[1])];
}

/** --target: predicted, label or a class index (anything else goes to explain() to be refused with the choices). */
function parseTarget(value: string): ExplainOptions['target'] {
  if (value === 'predicted' || value === 'label') return value;
  return /^-?\d+$/.test(value) ? Number(value) : (value as never);
}

function explainOptions(flags: ExplainFlags): ExplainOptions {
  const options: Record<string, unknown> = { method: flags.method, target: parseTarget(flags.target) };
  const given: [keyof ExplainOptions, unknown][] = [
    ['layer', flags.layer], ['steps', flags.steps], ['smoothing', flags.smoothing], ['samples', flags.samples], ['sigma', flags.sigma],
    ['seed', flags.seed], ['blurSigma', flags.blurSigma], ['window', flags.window], ['stride', flags.stride], ['chunkSize', flags.chunkSize],
    ['baseline', flags.baseline === undefined ? undefined : /^[\d.]+(e-?\d+)?$/i.test(flags.baseline) ? Number(flags.baseline) : flags.baseline],
  ];
  for (const [key, value] of given) if (value !== undefined) options[key] = value;
  return options as ExplainOptions;
}

/**
 * Runs the deletion / insertion check on the maps and writes faithfulness.json: per image and on
 * average, each curve's area for the map's pixel order and for a random one. Prints the averages.
 */
async function writeFaithfulness(dir: string, model: import('../nn/model').CnnModel, images: Uint8Array | Float32Array, explanation: import('../probe/explain').Explanation,
  first: number, options: ExplainOptions): Promise<string> {
  const { faithfulness } = require('../probe/faithfulness') as typeof import('../probe/faithfulness');
  const { randomisationCheck } = require('../probe/randomisation') as typeof import('../probe/randomisation');
  const chunkSize = options.chunkSize;
  const { writeFileAtomic } = require('../util/fs-atomic') as typeof import('../util/fs-atomic');
  const f = await faithfulness(model, images, explanation, chunkSize === undefined ? {} : { chunkSize });
  const mean = (values: Float64Array) => values.reduce((a, b) => a + b, 0) / values.length;
  const summary = { deletion: mean(f.deletion), randomDeletion: mean(f.randomDeletion), insertion: mean(f.insertion), randomInsertion: mean(f.randomInsertion) };
  const stages = await randomisationCheck(model, images, options);
  const { road } = require('../probe/road') as typeof import('../probe/road');
  const r = await road(model, images, explanation, chunkSize === undefined ? {} : { chunkSize });
  const json = {
    method: 'deletion and insertion curves (RISE), target softmax probability, trapezoid AUC over the fraction of pixels moved',
    steps: f.steps, baseline: 'black', mean: summary,
    images: Array.from(f.deletion, (_, i) => ({
      index: first + i, deletion: f.deletion[i], randomDeletion: f.randomDeletion[i], insertion: f.insertion[i], randomInsertion: f.randomInsertion[i],
    })),
    road: {
      method: 'ROAD (Rong et al. 2022): pixels removed by noisy linear imputation, most (MoRF) or least (LeRF) relevant first; combined = mean over the fractions of (p_LeRF - p_MoRF) / 2, higher is better',
      fractions: r.fractions, mean: r.mean,
      images: Array.from(r.combined, (c, i) => ({ index: first + i, combined: c, randomCombined: r.randomCombined[i] })),
    },
    randomisation: {
      method: 'layers re-initialised from the top, cascading (Adebayo et al. 2018); Spearman correlation of |map| with the trained model\'s, mean over the images',
      stages: stages.map((s) => ({ randomised: s.randomised, spearman: s.spearman, perImage: Array.from(s.perImage) })),
    },
  };
  const file = path.join(dir, 'faithfulness.json');
  writeFileAtomic(file, JSON.stringify(json, null, 2) + '\n');
  const fixed = (v: number) => v.toFixed(3);
  process.stdout.write(`deletion AUC ${fixed(summary.deletion)} (random order ${fixed(summary.randomDeletion)}; lower is better), ` +
    `insertion AUC ${fixed(summary.insertion)} (random order ${fixed(summary.randomInsertion)}; higher is better)\n`);
  process.stdout.write(`ROAD combined score ${fixed(r.mean.combined)} (random order ${fixed(r.mean.randomCombined)}; higher is better)\n`);
  process.stdout.write(`randomisation: rank correlation with the trained model's maps as layers are re-initialised from the top: ${
    stages.map((s) => `${s.randomised[s.randomised.length - 1]} ${fixed(s.spearman)}`).join(', ')} (near 1: the map ignores the model)\n`);
  return file;
}

/** `convscope explain --summary`: attributionSummary() over the slice, written by writeSummary(). */
async function explainSummary(checkpoint: string, flags: ExplainFlags): Promise<void> {
  if (flags.check) throw new InvalidArgumentError('expected --check or --summary, not both: --check checks per-image maps, which --summary does not keep');
  const { loadModel } = require('../index') as typeof import('../index');
  const { attributionSummary, writeSummary } = require('../probe/summary') as typeof import('../probe/summary');
  const options = explainOptions(flags);
  const { name: datasetName, dataset } = await runDatasetFor(checkpoint, flags);
  const split = dataset[flags.split];
  const [start, end] = parseImageSlice(flags.images, split.count);
  const pixels = split.channels * split.height * split.width;
  const model = loadModel(checkpoint, flags.mode ? { mode: flags.mode } : {});
  try {
    const summary = await attributionSummary(model, split.images.subarray(start * pixels, end * pixels), split.labels.subarray(start, end), options);
    const out = flags.out ?? `summary-${flags.method}`;
    const files = writeSummary(out, summary, { checkpoint, mode: model.mode, dataset: datasetName, split: flags.split, images: `${start}:${end}`, target: options.target }, dataset.classNames);
    for (const file of [files.perClass, files.perCell, files.classes, files.confusion, files.json]) if (file) process.stdout.write(`${file}\n`);
  } finally {
    model.dispose();
  }
}

/** `convscope explain --across-training`: mapsAcrossTraining() over a run's epoch checkpoints. */
async function explainAcrossTraining(checkpoint: string, flags: ExplainFlags): Promise<void> {
  if (flags.check || flags.summary) throw new InvalidArgumentError('expected --across-training alone, without --check or --summary');
  const { loadModel } = require('../index') as typeof import('../index');
  const { epochCheckpoints, mapsAcrossTraining, writeAcrossTraining } = require('../probe/across-training') as typeof import('../probe/across-training');
  const runDir = fs.statSync(checkpoint).isDirectory() ? checkpoint : path.dirname(checkpoint);
  const saved = epochCheckpoints(runDir);
  const options = explainOptions(flags);
  const { name: datasetName, dataset } = await runDatasetFor(path.join(runDir, 'model.pt'), flags);
  const split = dataset[flags.split];
  const [start, end] = parseImageSlice(flags.images, split.count);
  const pixels = split.channels * split.height * split.width;
  if (options.target === 'label') options.labels = split.labels.subarray(start, end);
  const models: import('../nn/model').CnnModel[] = [];
  try {
    for (const { file } of saved) models.push(loadModel(file, flags.mode ? { mode: flags.mode } : {}));
    const t = await mapsAcrossTraining(models, split.images.subarray(start * pixels, end * pixels), options);
    const out = flags.out ?? `across-training-${flags.method}`;
    const files = writeAcrossTraining(out, t, saved.map((s) => s.epoch), { run: runDir, dataset: datasetName, split: flags.split, images: `${start}:${end}`, target: options.target });
    for (const file of [files.maps, files.picture, files.json]) if (file) process.stdout.write(`${file}\n`);
    process.stdout.write(`rank correlation of |map| between consecutive epochs: ${t.consecutive.map((c, k) => `${saved[k].epoch}->${saved[k + 1].epoch} ${c.spearman.toFixed(3)}`).join(', ')}\n`);
  } finally {
    for (const model of models) model.dispose();
  }
}

export function addExplainCommand(program: Command): void {
  program.command('explain')
    .description('attribution maps (which pixels made the prediction) of a checkpoint for images of a dataset split: attributions.npy, overlay.png, explain.json (see docs/probing.md)')
    .argument('<checkpoint>', 'a checkpoint (model.pt from a run)')
    .addOption(new Option('--method <name>', 'the attribution method').choices([...METHODS]).makeOptionMandatory())
    .option('--layer <name>', 'grad-cam, hires-cam, score-cam: the conv layer (default: the last conv layer\'s activation, e.g. conv2.act)')
    .option('--target <which>', 'the class explained: predicted, label or a class index', 'predicted')
    .addOption(new Option('--split <name>', 'the dataset split').choices(['test', 'train']).default('test'))
    .option('--images <from:to>', 'which images of the split, as a Python slice (0:8 = the first 8)', '0:8')
    .option('--out <dir>', 'output folder (default explain-<method>)')
    .option('--steps <n>', 'integrated-gradients: path points (default 64)', parseInteger)
    .option('--baseline <b>', 'integrated-gradients, occlusion: black (default), blur, uniform or a pixel value in [0, 1]')
    .option('--blur-sigma <px>', 'the blur baseline\'s Gaussian sigma in pixels (default 3)', parseNumber)
    .addOption(new Option('--smoothing <name>', 'saliency: none (default), smoothgrad or vargrad').choices(['none', 'smoothgrad', 'vargrad']))
    .option('--samples <n>', 'saliency with smoothing: noisy copies per image (default 16)', parseInteger)
    .option('--sigma <x>', 'saliency with smoothing: noise sigma as a fraction of the pixel range (default 0.15)', parseNumber)
    .option('--seed <n>', 'seed of the noise (smoothing, uniform baseline); default 0', parseInteger)
    .option('--window <n|HxW>', 'occlusion: the patch (default 4)', parsePair)
    .option('--stride <n|HxW>', 'occlusion: the step between patches (default 2)', parsePair)
    .option('--chunk-size <n>', 'network inputs per pass (bounds memory; default 64)', parseInteger)
    .addOption(new Option('--mode <mode>', 'run the model eager or scripted (default: as saved)').choices(['eager', 'script']))
    .option('--dataset <name|folder|file>', RUN_DATASET_HELP)
    .option('--data-dir <dir>', 'folder with a named dataset\'s files (else the run\'s, CONVSCOPE_DATA, the cache, installed copies)')
    .option('--image-size <HxW|common>', IMAGE_SIZE_HELP)
    .option('--check', 'also check the maps: deletion and insertion AUCs and ROAD\'s combined score against a random pixel order, and the model-randomisation test (faithfulness.json)')
    .option('--across-training', 'the maps of each epoch checkpoint (epoch-<n>.pt, from train --keep-epoch-checkpoints) of the run folder holding <checkpoint> (or given as it), and their rank correlations (across-training.npy, .png, .json)')
    .option('--summary', 'instead of per-image maps: mean |attribution| per class and per confusion-matrix cell over the --images slice (--images : for the whole split), in blocks (per-class.npy, per-cell.npy, classes.png, confusion.png, summary.json)')
    .action(async (checkpoint: string, flags: ExplainFlags) => {
      if (flags.summary) return explainSummary(checkpoint, flags);
      if (flags.acrossTraining) return explainAcrossTraining(checkpoint, flags);
      const { explain, loadModel } = require('../index') as typeof import('../index');
      const { writeExplanation } = require('../probe/folder') as typeof import('../probe/folder');
      const options = explainOptions(flags);
      const { name: datasetName, dataset } = await runDatasetFor(checkpoint, flags);
      const split = dataset[flags.split];
      const [start, end] = parseImageSlice(flags.images, split.count);
      const pixels = split.channels * split.height * split.width;
      const images = split.images.subarray(start * pixels, end * pixels);
      const labels = split.labels.subarray(start, end);
      if (options.target === 'label') options.labels = labels;
      const model = loadModel(checkpoint, flags.mode ? { mode: flags.mode } : {});
      try {
        const explanation = await explain(model, images, options);
        const out = flags.out ?? `explain-${flags.method}`;
        const files = writeExplanation(out, explanation, {
          indices: Array.from({ length: end - start }, (_, i) => start + i),
          pixels: images instanceof Uint8Array ? Float32Array.from(images, (v) => v / 255) : images,
          labels,
          classNames: dataset.classNames,
          about: { checkpoint, mode: model.mode, dataset: datasetName, split: flags.split, images: `${start}:${end}`, target: options.target },
        });
        for (const file of [files.attributions, files.overlay, files.json]) if (file) process.stdout.write(`${file}\n`);
        if (flags.check) {
          const file = await writeFaithfulness(out, model, images, explanation, start, options);
          process.stdout.write(`${file}\n`);
        }
        if (explanation.deltas) {
          const worst = explanation.deltas.reduce((m, d) => Math.max(m, Math.abs(d)), 0);
          process.stdout.write(`completeness: largest |sum(attributions) - (f(x) - f(baseline))| = ${worst.toPrecision(3)}\n`);
        }
      } finally {
        model.dispose();
      }
    });
}
