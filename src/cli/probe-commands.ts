// The probing commands beyond `convscope explain`: `visualize` (feature visualisation of a layer's
// channels or of classes), `examples` (each channel's top images of a split), `embeddings` (a
// folder for TensorBoard's projector). Thin wrappers over the library functions and their folder writers; the
// functions check every setting, so only the settings given on the command line are passed on.
import { Command, InvalidArgumentError, Option } from 'commander';
import type { CnnModel } from '../nn/model';
import { parseImageSlice } from './explain-command';
import { parseInteger, parseNumber } from './train-command';
import { IMAGE_SIZE_HELP, RUN_DATASET_HELP, runDatasetFor } from './data-options';

/**
 * Units (channels, classes) from `from:to` (a Python slice over `count`), `i` or `i,j,k`.
 * @example parseUnits('0:16', 64, '--channels') // [0, 1, ..., 15]
 */
export function parseUnits(text: string, count: number, flag: string): number[] {
  if (/^\s*\d+(\s*,\s*\d+)+\s*$/.test(text)) return text.split(',').map((v) => Number(v.trim()));
  const match = /^\s*(-?\d+)?\s*(:)?\s*(-?\d+)?\s*$/.exec(text);
  if (!match || (match[1] === undefined && match[2] === undefined)) {
    throw new InvalidArgumentError(`expected from:to (a Python slice such as 0:16), an index or a list such as 1,4,7 for ${flag} but received "${text}"`);
  }
  const resolve = (v: string | undefined, fallback: number) => {
    if (v === undefined) return fallback;
    const n = Number(v);
    return Math.min(Math.max(n < 0 ? count + n : n, 0), count);
  };
  const start = match[2] === undefined ? Number(match[1]) : resolve(match[1], 0);
  if (match[2] === undefined) return [start];
  const end = resolve(match[3], count);
  if (end <= start) throw new InvalidArgumentError(`expected a non-empty slice of the ${count} units for ${flag} but "${text}" selects none`);
  return Array.from({ length: end - start }, (_, i) => start + i);
}

interface VisualizeFlags {
  layer?: string;
  channels?: string;
  classes?: string;
  steps?: number;
  optimizer?: 'adam' | 'sgd';
  lr?: number;
  jitter?: number;
  tvWeight?: number;
  noise?: number;
  seed?: number;
  chunkSize?: number;
  mode?: 'eager' | 'script';
  out?: string;
}

function visualizeObjective(model: CnnModel, flags: VisualizeFlags): import('../probe/maximize').MaximizeObjective {
  const { layerShapes } = require('../probe/layer-geometry') as typeof import('../probe/layer-geometry');
  if ((flags.layer === undefined) === (flags.classes === undefined)) {
    throw new InvalidArgumentError('expected either --layer <name> (with --channels) or --classes <from:to>, not both and not neither');
  }
  if (flags.classes !== undefined) return { class: parseUnits(flags.classes, model.classes, '--classes') };
  const shapes = layerShapes(model.plan);
  const shape = shapes.find((s) => s.name === flags.layer);
  if (!shape) throw new InvalidArgumentError(`expected one of ${shapes.map((s) => s.name).join(', ')} for --layer but received "${flags.layer}"`);
  return { layer: shape.name, channel: parseUnits(flags.channels ?? `0:${Math.min(shape.channels, 16)}`, shape.channels, '--channels') };
}


interface ExamplesFlags {
  layer: string;
  channels?: string;
  top?: number;
  split: 'test' | 'train';
  images: string;
  chunkSize?: number;
  mode?: 'eager' | 'script';
  dataset?: string;
  dataDir?: string;
  out?: string;
}

interface EmbeddingsFlags {
  layer?: string;
  split: 'test' | 'train';
  images: string;
  chunkSize?: number;
  mode?: 'eager' | 'script';
  dataset?: string;
  dataDir?: string;
  out?: string;
}

/** The dataset named by the flags, else the run's, else Fashion-MNIST; the split and its slice. */
async function splitImages(checkpoint: string, flags: { dataset?: string; dataDir?: string; imageSize?: string; split: 'test' | 'train'; images: string }) {
  const { name, dataset } = await runDatasetFor(checkpoint, flags);
  const split = dataset[flags.split];
  const [start, end] = parseImageSlice(flags.images, split.count);
  const pixels = split.channels * split.height * split.width;
  return {
    name, classNames: dataset.classNames, start, end,
    images: split.images.subarray(start * pixels, end * pixels), labels: split.labels.subarray(start, end),
    size: [split.height, split.width] as [number, number],
    channels: split.channels,
  };
}

/** The options of a command that runs over a slice of a dataset split (what splitImages reads). */
function withSplitOptions(command: Command): Command {
  return command
    .addOption(new Option('--split <name>', 'the dataset split').choices(['test', 'train']).default('test'))
    .option('--images <from:to>', 'which images of the split, as a Python slice (default: all)', ':')
    .option('--chunk-size <n>', 'images per pass (default 256)', parseInteger)
    .addOption(new Option('--mode <mode>', 'run the model eager or scripted (default: as saved)').choices(['eager', 'script']))
    .option('--dataset <name|folder|file>', RUN_DATASET_HELP)
    .option('--data-dir <dir>', 'folder with a named dataset\'s files (else the run\'s, CONVSCOPE_DATA, the cache, installed copies)')
    .option('--image-size <HxW|common>', IMAGE_SIZE_HELP);
}

export function addProbeCommands(program: Command): void {
  program.command('visualize')
    .description('feature visualisation: for each channel of a layer (or each class), the image that maximises it, by gradient ascent from noise with jitter and total variation (visualisations.npy, mosaic.png, visualize.json; see docs/probing.md)')
    .argument('<checkpoint>', 'a checkpoint (model.pt from a run)')
    .option('--layer <name>', 'the layer (conv2, conv2.act, fc1, ...): each channel\'s mean over positions is maximised')
    .option('--channels <from:to>', 'the layer\'s channels: a Python slice, an index or a list such as 1,4,7 (default: the first 16)')
    .option('--classes <from:to>', 'instead of a layer: these classes\' logits')
    .option('--steps <n>', 'gradient steps (default 128)', parseInteger)
    .addOption(new Option('--optimizer <name>', 'adam (default) or sgd (plain steps)').choices(['adam', 'sgd']))
    .option('--lr <x>', 'step size (default 0.05 for adam, 1 for sgd)', parseNumber)
    .option('--jitter <px>', 'largest random shift before each step (default 1; 0: none)', parseInteger)
    .option('--tv-weight <x>', 'total-variation penalty (default 0.25; 0: none)', parseNumber)
    .option('--noise <x>', 'starting noise\'s standard deviation around grey (default 0.1)', parseNumber)
    .option('--seed <n>', 'seed of the noise and the shifts (default 0)', parseInteger)
    .option('--chunk-size <n>', 'images per pass (default 64)', parseInteger)
    .addOption(new Option('--mode <mode>', 'run the model eager or scripted (default: as saved)').choices(['eager', 'script']))
    .option('--out <dir>', 'output folder (default visualize-<layer or classes>)')
    .action(async (checkpoint: string, flags: VisualizeFlags) => {
      const { loadModel } = require('../index') as typeof import('../index');
      const { maximize } = require('../probe/maximize') as typeof import('../probe/maximize');
      const { writeVisualisation } = require('../probe/probe-folders') as typeof import('../probe/probe-folders');
      const model = loadModel(checkpoint, flags.mode ? { mode: flags.mode } : {});
      try {
        const objective = visualizeObjective(model, flags);
        const options: Record<string, unknown> = {};
        const given: [string, unknown][] = [['steps', flags.steps], ['optimizer', flags.optimizer], ['learningRate', flags.lr], ['jitter', flags.jitter],
          ['tvWeight', flags.tvWeight], ['noise', flags.noise], ['seed', flags.seed], ['chunkSize', flags.chunkSize]];
        for (const [key, value] of given) if (value !== undefined) options[key] = value;
        const v = await maximize(model, objective, options);
        const out = flags.out ?? `visualize-${v.layer ?? 'classes'}`;
        const files = writeVisualisation(out, v, { checkpoint, mode: model.mode });
        for (const file of [files.images, files.mosaic, files.json]) if (file) process.stdout.write(`${file}\n`);
        const rose = v.units.filter((_, i) => v.final[i] > v.initial[i]).length;
        process.stdout.write(`objective rose for ${rose} of ${v.units.length} (${v.layer === null ? 'class logits' : `${v.layer} channel means`}); ` +
          `mean ${mean(v.initial).toFixed(3)} -> ${mean(v.final).toFixed(3)}\n`);
      } finally {
        model.dispose();
      }
    });
  withSplitOptions(program.command('examples')
    .description('dataset examples: for each channel of a layer, the images of a split that activate it most, and the receptive field around the peak (examples.png, crops.png, examples.json; see docs/probing.md)')
    .argument('<checkpoint>', 'a checkpoint (model.pt from a run)')
    .requiredOption('--layer <name>', 'the layer (conv2.act, conv1.pool, fc1, ...)')
    .option('--channels <from:to>', 'the channels: a Python slice, an index or a list such as 1,4,7 (default: the first 16)')
    .option('--top <k>', 'images per channel (default 9)', parseInteger))
    .option('--out <dir>', 'output folder (default examples-<layer>)')
    .action(async (checkpoint: string, flags: ExamplesFlags) => {
      const { loadModel } = require('../index') as typeof import('../index');
      const { datasetExamples } = require('../probe/dataset-examples') as typeof import('../probe/dataset-examples');
      const { layerShapes } = require('../probe/layer-geometry') as typeof import('../probe/layer-geometry');
      const { writeDatasetExamples } = require('../probe/probe-folders') as typeof import('../probe/probe-folders');
      const data = await splitImages(checkpoint, flags);
      const model = loadModel(checkpoint, flags.mode ? { mode: flags.mode } : {});
      try {
        const shapes = layerShapes(model.plan);
        const shape = shapes.find((l) => l.name === flags.layer);
        if (!shape) throw new InvalidArgumentError(`expected one of ${shapes.map((l) => l.name).join(', ')} for --layer but received "${flags.layer}"`);
        const channels = parseUnits(flags.channels ?? `0:${Math.min(shape.channels, 16)}`, shape.channels, '--channels');
        const options: Record<string, unknown> = { layer: shape.name, channels };
        if (flags.top !== undefined) options.top = flags.top;
        if (flags.chunkSize !== undefined) options.chunkSize = flags.chunkSize;
        const ex = await datasetExamples(model, data.images, options as never);
        const out = flags.out ?? `examples-${shape.name}`;
        const files = writeDatasetExamples(out, ex, data.images, data.size,
          { checkpoint, mode: model.mode, dataset: data.name, split: flags.split, images: `${data.start}:${data.end}` }, data.start);
        for (const file of [files.examples, files.crops, files.json]) if (file) process.stdout.write(`${file}\n`);
      } finally {
        model.dispose();
      }
    });
  withSplitOptions(program.command('embeddings')
    .description('a layer\'s activations of a split (default: the penultimate layer) for TensorBoard\'s projector: tensors.tsv, metadata.tsv, sprite.png, projector_config.pbtxt; then tensorboard --logdir <out> (see docs/probing.md)')
    .argument('<checkpoint>', 'a checkpoint (model.pt from a run)')
    .option('--layer <name>', 'the layer (default: the one the last dense layer takes, e.g. fc1.act)'))
    .option('--out <dir>', 'output folder (default embeddings-<layer>)')
    .action(async (checkpoint: string, flags: EmbeddingsFlags) => {
      const { loadModel } = require('../index') as typeof import('../index');
      const { embeddings, writeProjector } = require('../probe/embeddings') as typeof import('../probe/embeddings');
      const data = await splitImages(checkpoint, flags);
      const model = loadModel(checkpoint, flags.mode ? { mode: flags.mode } : {});
      try {
        const options: Record<string, unknown> = {};
        if (flags.layer !== undefined) options.layer = flags.layer;
        if (flags.chunkSize !== undefined) options.chunkSize = flags.chunkSize;
        const e = await embeddings(model, data.images, options);
        const out = flags.out ?? `embeddings-${e.layer}`;
        const files = writeProjector(out, e, {
          images: data.images, imageSize: data.size, channels: data.channels, labels: data.labels, classNames: data.classNames,
          indices: Array.from({ length: e.count }, (_, i) => data.start + i),
        });
        for (const file of [files.tensors, files.metadata, files.sprite, files.config]) if (file) process.stdout.write(`${file}\n`);
        process.stdout.write(`${e.count} vectors of ${e.dims} values (${e.layer}); view them with: tensorboard --logdir ${out}\n`);
      } finally {
        model.dispose();
      }
    });
}

function mean(values: Float32Array): number {
  return values.reduce((a, b) => a + b, 0) / values.length;
}
