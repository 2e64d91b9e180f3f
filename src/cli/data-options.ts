// The data flags every command that reads a dataset shares, and the dataset a run was trained on.
//
// train (and tune, the experiments) take them all; the commands that read a run's images (explain,
// examples, embeddings, demo) take --dataset, --data-dir and --image-size, and otherwise read the
// dataset with the options the run recorded in its config.json, so a run on an image folder is
// probed on the same images, at the same size, in the same split.
import * as fs from 'fs';
import * as path from 'path';
import { Command, InvalidArgumentError, Option } from 'commander';
import type { Dataset } from '../data/dataset-types';
import type { TrainDataOptions } from '../train/options';

/** The flags addDataOptions adds, as commander parses them. */
export interface DataFlags {
  dataset?: string;
  dataDir?: string;
  imageSize?: string;
  channels?: number;
  testFraction?: number;
  dataSeed?: number;
  layout?: 'auto' | 'nhwc' | 'nchw';
  labels?: string;
  cifar100Labels?: 'fine' | 'coarse';
  dataCache?: boolean;
}

const DATASET_HELP = 'fashion-mnist, mnist, cifar10, cifar100, idx (the IDX set in --data-dir), an IDX set name in --data-dir (e.g. emnist-letters), an image folder, or an .npz/.npy file';
/** --dataset of a command that reads a run's images. */
export const RUN_DATASET_HELP = `${DATASET_HELP} (default: the run's config.json, read with the run's data options; else fashion-mnist)`;
export const IMAGE_SIZE_HELP = 'image folders: resize every image to HxW, or to the most common size (default: all images must have one size)';

function parseWhole(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n)) throw new InvalidArgumentError(`expected an integer but received "${value}"`);
  return n;
}

function parseFraction(value: string): number {
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n)) throw new InvalidArgumentError(`expected a number but received "${value}"`);
  return n;
}

/**
 * Adds the data flags to `command`: all of them (`'all'`), or the three a probing command needs
 * (`'run'`). `defaultDataset` is shown as the default of --dataset.
 * @example addDataOptions(program.command('train'), 'all', 'fashion-mnist')
 */
export function addDataOptions(command: Command, which: 'all' | 'run', defaultDataset?: string): Command {
  command
    .option('--dataset <name|folder|file>', which === 'all' ? DATASET_HELP : RUN_DATASET_HELP, defaultDataset)
    .option('--data-dir <dir>', 'folder with a named dataset\'s files (else CONVSCOPE_DATA, the cache, installed copies)')
    .option('--image-size <HxW|common>', IMAGE_SIZE_HELP);
  if (which === 'run') return command;
  return command
    .option('--channels <n>', 'image folders: 1 (grey) or 3 (colour) to convert every image to (default: from the files; mixed is an error)', parseWhole)
    .option('--test-fraction <x>', 'a folder of class folders, or an images/labels pool: the share of each class held out for test (default 0.2)', parseFraction)
    .option('--data-seed <n>', 'seed of that test split and of the order of image-folder images (default 0)', parseWhole)
    .addOption(new Option('--layout <layout>', '4-D arrays whose shape does not say: nhwc or nchw').choices(['auto', 'nhwc', 'nchw']))
    .option('--labels <file.npy>', 'an .npy dataset: the .npy file of its labels')
    .addOption(new Option('--cifar100-labels <kind>', 'CIFAR-100: the 100 fine or the 20 coarse labels (default fine)').choices(['fine', 'coarse']))
    .option('--no-data-cache', 'image folders: decode every image again instead of reading (and writing) the decoded cache');
}

/**
 * The dataset as trainCnn gets it (an existing path made absolute, so that the run's config.json
 * finds it again from any folder; a known name wins over a folder of that name) and a label for
 * the run's name (a path's last part, without an extension).
 * @example datasetForRun('./photos') // { source: '/home/me/photos', label: 'photos' }
 */
export function datasetForRun(dataset: string): { source: string; label: string } {
  const { IMAGE_DATASET_NAMES } = require('../data/load-image-dataset') as typeof import('../data/load-image-dataset');
  if ((IMAGE_DATASET_NAMES as readonly string[]).includes(dataset) || !fs.existsSync(dataset)) return { source: dataset, label: dataset };
  return { source: path.resolve(dataset), label: path.basename(path.resolve(dataset)).replace(/\.(npz|npy)$/i, '') };
}

/**
 * The data options of trainCnn (and loadImageDataset) from the flags; flags not given are left out.
 * @example trainCnn({ dataset: flags.dataset, dataDir: flags.dataDir, data: dataOptionsOf(flags) })
 */
export function dataOptionsOf(flags: DataFlags): TrainDataOptions {
  const data: TrainDataOptions = {
    imageSize: flags.imageSize, channels: flags.channels, testFraction: flags.testFraction, seed: flags.dataSeed, layout: flags.layout,
    labels: flags.labels, cifar100Labels: flags.cifar100Labels, cache: flags.dataCache === false ? false : undefined,
  };
  for (const key of Object.keys(data) as (keyof TrainDataOptions)[]) if (data[key] === undefined) delete data[key];
  return data;
}

/** What a run recorded about its data in the config.json next to `checkpoint` (nothing when there is none). */
export function runDataOptions(checkpoint: string): { dataset?: string; dataDir?: string; data?: TrainDataOptions } {
  try {
    const file = JSON.parse(fs.readFileSync(path.join(path.dirname(checkpoint), 'config.json'), 'utf8')) as Record<string, unknown>;
    // A run folder's config.json holds trainCnn's options under "options".
    const config = (typeof file.options === 'object' && file.options !== null ? file.options : file) as Record<string, unknown>;
    return {
      dataset: typeof config.dataset === 'string' ? config.dataset : undefined,
      dataDir: typeof config.dataDir === 'string' ? config.dataDir : undefined,
      data: typeof config.data === 'object' && config.data !== null ? (config.data as TrainDataOptions) : undefined,
    };
  } catch {
    return {};
  }
}

/**
 * The dataset a probing command reads: the flags' dataset, else the run's, else Fashion-MNIST, with
 * the run's recorded data options under the flags' --data-dir and --image-size.
 * @example const { name, dataset } = await runDatasetFor(checkpoint, flags);
 */
export async function runDatasetFor(checkpoint: string, flags: Pick<DataFlags, 'dataset' | 'dataDir' | 'imageSize'>): Promise<{ name: string; dataset: Dataset }> {
  const { loadImageDataset } = require('../data/load-image-dataset') as typeof import('../data/load-image-dataset');
  const run = runDataOptions(checkpoint);
  const name = flags.dataset ?? run.dataset ?? 'fashion-mnist';
  // The run's options describe the run's dataset only: another dataset starts from none.
  const recorded = flags.dataset === undefined || flags.dataset === run.dataset ? run : {};
  const dataDir = flags.dataDir ?? recorded.dataDir;
  const options = { ...recorded.data, ...(flags.imageSize !== undefined ? { imageSize: flags.imageSize } : {}), ...(dataDir !== undefined ? { dataDir } : {}) };
  if (flags.dataset === undefined && run.dataset !== undefined) {
    const { datasetSourceType } = require('../data/load-image-dataset') as typeof import('../data/load-image-dataset');
    try {
      datasetSourceType(name, dataDir);
    } catch (err) {
      // A run on a dataset given in memory records only its name.
      throw new InvalidArgumentError(`the run's config.json names the dataset "${name}", which cannot be read from here (${(err as Error).message}); name one with --dataset`);
    }
  }
  return { name, dataset: await loadImageDataset(name, options) };
}
