// One entry point for every data source: a known name, an IDX set, an image folder or a NumPy file.
//
// How `source` is read (first match):
//   'mnist', 'fashion-mnist'   IDX files, found and verified as loadDataset does (may download)
//   'cifar10', 'cifar100'      the binary version from dataDir, $CONVSCOPE_DATA or the cache (cifar.ts)
//   'idx'                      the one IDX set in dataDir (idx-folder.ts)
//   a .npz or .npy file        arrays (arrays.ts)
//   a folder                   an IDX folder when it holds IDX files, else an image folder (image-folder.ts)
//   any other name             an IDX set of that name in dataDir (e.g. 'emnist-letters')
// A name wins over a folder of the same name: write ./mnist for the folder.

import { statSync } from 'fs';
import { extname, resolve } from 'path';
import { checkBoolean, checkInteger, checkKnownKeys, checkNumber, checkObject, checkOneOf, checkPositiveInteger, checkString, expected } from '../util/validate';
import { ARRAY_LAYOUTS, arraysDatasetName, readNpySplits, readNpzSplits, type ArrayLayout, type ArraySplits } from './arrays';
import { CIFAR100_LABELS, CIFAR_NAMES, loadCifar, type Cifar100Labels, type CifarName } from './cifar';
import type { Dataset, Split } from './dataset-types';
import { DATASET_NAMES, loadDatasetAsync, type DatasetName } from './datasets';
import { defaultCacheRoot } from './locate';
import { loadImageFolder } from './image-folder';
import { idxSetsIn, loadIdxFolder } from './idx-folder';
import { carveSplits, pickImages, seededShuffle, stratifiedTestIndices } from './splits';

/** The names loadImageDataset knows (any other string is a path, or an IDX set in dataDir). */
export const IMAGE_DATASET_NAMES = [...DATASET_NAMES, ...CIFAR_NAMES, 'idx'] as const;

/** Where a source's images come from, as resolved before anything is read. */
export type DatasetSourceType = 'named-idx' | 'cifar' | 'idx-folder' | 'image-folder' | 'npz' | 'npy';

/** Options of {@link loadImageDataset}. Options that do not apply to a source are refused when they would change it. */
export interface LoadImageDatasetOptions {
  /**
   * Folder holding the files of a named dataset (mnist, fashion-mnist, cifar10, cifar100, an IDX set).
   * @example loadImageDataset('cifar10', { dataDir: '/data/cifar-10-batches-bin' })
   */
  dataDir?: string;
  /** Cache root (default `$XDG_CACHE_HOME/convscope`): downloads, CIFAR copies and decoded image folders. */
  cacheDir?: string;
  /** Move the LAST n training images into a `validation` split. @example { validation: 5000 } */
  validation?: number;
  /** Keep only the first n images of each split (or per split). @example { limit: { train: 1000 } } */
  limit?: number | { train?: number; test?: number };
  /**
   * Image folders: the size every image is resized to, `[height, width]` or `'HxW'`, or `'common'`
   * for the most common size; omitted, all images must have one size. Other sources: must match.
   * @example loadImageDataset('./photos', { imageSize: [64, 64] })
   */
  imageSize?: [number, number] | string;
  /** Image folders: 1 (grey) or 3 (colour) to convert to; omitted, decided from the files. Other sources: must match. */
  channels?: number;
  /** Image folders of class folders only, and a single images/labels pool: the share of each class held out for test (default 0.2). */
  testFraction?: number;
  /** Seed of the test split and of the order of image-folder images (default 0). */
  seed?: number;
  /** 4-D arrays: 'nhwc' or 'nchw' when the shape does not say (default 'auto'; see arrays.ts). */
  layout?: ArrayLayout;
  /** An .npy source: the .npy file of its labels. @example loadImageDataset('x.npy', { labels: 'y.npy' }) */
  labels?: string;
  /** CIFAR-100: train on the 100 'fine' (default) or the 20 'coarse' labels. */
  cifar100Labels?: Cifar100Labels;
  /** Image folders: read and write the decoded-image cache (default true). */
  cache?: boolean;
  /** mnist and fashion-mnist: download when no copy is found (see loadDatasetAsync). */
  download?: boolean;
  /** mnist and fashion-mnist: check the files' SHA-256 (default true). */
  verify?: boolean;
}

const OPTION_KEYS = [
  'dataDir', 'cacheDir', 'validation', 'limit', 'imageSize', 'channels', 'testFraction', 'seed', 'layout', 'labels', 'cifar100Labels',
  'cache', 'download', 'verify',
];

/** The options after checking, defaults filled in. */
export interface ResolvedImageDatasetOptions {
  dataDir?: string;
  cacheRoot: string;
  validation: number;
  limitTrain?: number;
  limitTest?: number;
  imageSize?: [number, number] | 'common';
  channels?: number;
  testFraction: number;
  seed: number;
  layout: ArrayLayout;
  labels?: string;
  cifar100Labels: Cifar100Labels;
  cache: boolean;
  download?: boolean;
  verify?: boolean;
}

const MAX_SIDE = 4096;

/**
 * `'32x32'` (height x width) as `[32, 32]`; 'common' as is.
 * @example parseImageSize('28x32', '--image-size') // [28, 32]
 */
export function parseImageSize(value: unknown, name: string): [number, number] | 'common' {
  if (value === 'common') return value;
  if (Array.isArray(value) && value.length === 2) {
    return [checkInteger(value[0], `${name}[0]`, 1, MAX_SIDE), checkInteger(value[1], `${name}[1]`, 1, MAX_SIDE)];
  }
  const match = typeof value === 'string' ? /^(\d+)x(\d+)$/.exec(value) : null;
  if (!match) throw new TypeError(expected("a size HxW (e.g. 32x32), [height, width] or 'common'", name, value));
  const size: [number, number] = [Number(match[1]), Number(match[2])];
  if (size.some((side) => side < 1 || side > MAX_SIDE)) throw new RangeError(expected(`sides in [1, ${MAX_SIDE}]`, name, value));
  return size;
}

/**
 * Checks loadImageDataset's options (TypeError/RangeError naming the option), before any file is read.
 * @example resolveImageDatasetOptions({ imageSize: '32x32', channels: 3 }).imageSize // [32, 32]
 */
export function resolveImageDatasetOptions(options: unknown = {}, name = 'options'): ResolvedImageDatasetOptions {
  const o = checkObject(options, name);
  checkKnownKeys(o, name === 'options' ? 'loadImageDataset options' : name, OPTION_KEYS);
  let limitTrain: number | undefined;
  let limitTest: number | undefined;
  if (typeof o.limit === 'number') limitTrain = limitTest = checkPositiveInteger(o.limit, `${name}.limit`);
  else if (o.limit !== undefined) {
    const limit = checkObject(o.limit, `${name}.limit`);
    checkKnownKeys(limit, `${name}.limit`, ['train', 'test']);
    if (limit.train !== undefined) limitTrain = checkPositiveInteger(limit.train, `${name}.limit.train`);
    if (limit.test !== undefined) limitTest = checkPositiveInteger(limit.test, `${name}.limit.test`);
  }
  const optional = <T>(value: unknown, check: (v: unknown) => T): T | undefined => (value === undefined ? undefined : check(value));
  return {
    dataDir: optional(o.dataDir, (v) => checkString(v, `${name}.dataDir`)),
    cacheRoot: optional(o.cacheDir, (v) => checkString(v, `${name}.cacheDir`)) ?? defaultCacheRoot(),
    validation: optional(o.validation, (v) => checkInteger(v, `${name}.validation`, 0)) ?? 0,
    limitTrain,
    limitTest,
    imageSize: optional(o.imageSize, (v) => parseImageSize(v, `${name}.imageSize`)),
    channels: optional(o.channels, (v) => checkInteger(v, `${name}.channels`, 1, 4096)),
    testFraction: optional(o.testFraction, (v) => checkNumber(v, `${name}.testFraction`, 0, 1, { exclusiveMin: true, exclusiveMax: true })) ?? 0.2,
    seed: optional(o.seed, (v) => checkInteger(v, `${name}.seed`, 0, 2 ** 31 - 1)) ?? 0,
    layout: optional(o.layout, (v) => checkOneOf(v, `${name}.layout`, ARRAY_LAYOUTS)) ?? 'auto',
    labels: optional(o.labels, (v) => checkString(v, `${name}.labels`)),
    cifar100Labels: optional(o.cifar100Labels, (v) => checkOneOf(v, `${name}.cifar100Labels`, CIFAR100_LABELS)) ?? 'fine',
    cache: optional(o.cache, (v) => checkBoolean(v, `${name}.cache`)) ?? true,
    download: optional(o.download, (v) => checkBoolean(v, `${name}.download`)),
    verify: optional(o.verify, (v) => checkBoolean(v, `${name}.verify`)),
  };
}

function statOf(path: string) {
  try {
    return statSync(path);
  } catch {
    return undefined;
  }
}

/**
 * What kind of source `source` names (see the header), checked without reading any image: a name
 * that is neither known, nor an existing path, nor an IDX set in dataDir is an error here.
 * @example datasetSourceType('./photos') // 'image-folder'
 */
export function datasetSourceType(source: unknown, dataDir?: string): DatasetSourceType {
  const name = checkString(source, 'dataset');
  if ((DATASET_NAMES as readonly string[]).includes(name)) return 'named-idx';
  if ((CIFAR_NAMES as readonly string[]).includes(name)) return 'cifar';
  if (name === 'idx') {
    if (dataDir === undefined) throw new TypeError(expected("a folder (--data-dir) holding the IDX files of dataset 'idx'", 'dataDir', dataDir));
    return 'idx-folder';
  }
  const stat = statOf(name);
  if (stat?.isFile()) {
    const extension = extname(name).toLowerCase();
    if (extension === '.npz') return 'npz';
    if (extension === '.npy') return 'npy';
    throw new RangeError(expected('a folder, an .npz or an .npy file', 'dataset', name) + ' (a file of another kind)');
  }
  if (stat?.isDirectory()) return idxSetsIn(name).size > 0 ? 'idx-folder' : 'image-folder';
  if (dataDir !== undefined && [...idxSetsIn(dataDir).keys()].some((prefix) => prefix.replace(/[-_.]+$/, '') === name)) return 'idx-folder';
  throw new RangeError(
    expected(`one of ${IMAGE_DATASET_NAMES.join(', ')}, an IDX set in dataDir, or an existing folder or .npz/.npy file`, 'dataset', name) +
      (stat ? '' : ' (no such file or folder)'),
  );
}

/** A pool (arrays with one split) divided as an image folder is: stratified, seeded, then shuffled. */
function splitPool(pool: Split, opts: ResolvedImageDatasetOptions): { train: Split; test: Split } {
  const { train, test } = stratifiedTestIndices(pool.labels, opts.testFraction, opts.seed);
  return { train: pickImages(pool, seededShuffle(train, opts.seed)), test: pickImages(pool, seededShuffle(test, opts.seed + 1)) };
}

function fromArrays(splits: ArraySplits, file: string, opts: ResolvedImageDatasetOptions): Dataset {
  const { train, test } = 'pool' in splits ? splitPool(splits.pool, opts) : splits;
  for (const [what, split] of [['test', test], ['train', train]] as const) {
    if (split.channels !== train.channels || split.height !== train.height || split.width !== train.width) {
      throw new RangeError(`${file}: the ${what} images are ${split.channels}x${split.height}x${split.width} but the train images are ${train.channels}x${train.height}x${train.width} (expected one shape)`);
    }
    if (split.count === 0) throw new RangeError(`${file}: no image went to the ${what} split (expected classes of at least two images)`);
  }
  if (Object.prototype.toString.call(train.images) !== Object.prototype.toString.call(test.images)) {
    throw new TypeError(`${file}: the train and test images have different dtypes (expected both uint8 or both float)`);
  }
  let largest = 0;
  for (const labels of [train.labels, test.labels]) for (const label of labels) largest = Math.max(largest, label);
  const classNames = Array.from({ length: largest + 1 }, (_, i) => String(i));
  return { name: arraysDatasetName(file), train, test, classNames, source: { kind: 'path', dir: file } };
}

/** Size and channels asked for a source that is not resized or converted must be what it has. */
function checkShapeAsked(dataset: Dataset, opts: ResolvedImageDatasetOptions, source: string): void {
  const { channels, height, width } = dataset.train;
  if (opts.channels !== undefined && opts.channels !== channels) {
    throw new RangeError(`${source} has ${channels}-channel images but channels ${opts.channels} was asked (--channels converts image folders only)`);
  }
  if (Array.isArray(opts.imageSize) && (opts.imageSize[0] !== height || opts.imageSize[1] !== width)) {
    throw new RangeError(`${source} has ${height}x${width} images but imageSize ${opts.imageSize.join('x')} was asked (--image-size resizes image folders only)`);
  }
}

/**
 * Loads images and labels from any source convscope reads (see the header): a known name, an IDX
 * set, an image folder (decoded once, then cached) or NumPy arrays. Every split is N x C x H x W
 * (see Split); every error names the file or array and what was expected, before training starts.
 *
 * @throws TypeError/RangeError for bad options or an unknown source; DatasetNotFoundError listing
 *   where a named dataset was looked for; Error naming the file for bad content
 * @example
 * const cifar = await loadImageDataset('cifar10', { dataDir: '/data/cifar-10-batches-bin', validation: 5000 });
 * const photos = await loadImageDataset('./photos', { imageSize: '64x64', channels: 3 });
 * const arrays = await loadImageDataset('mnist.npz'); // x_train, y_train, x_test, y_test
 */
export async function loadImageDataset(source: string, options: LoadImageDatasetOptions = {}): Promise<Dataset> {
  const opts = resolveImageDatasetOptions(options);
  const type = datasetSourceType(source, opts.dataDir);
  if (type === 'named-idx') {
    const dataset = await loadDatasetAsync(source as DatasetName, {
      dataDir: opts.dataDir, cacheDir: options.cacheDir, validation: opts.validation,
      limit: { train: opts.limitTrain, test: opts.limitTest },
      ...(opts.download !== undefined ? { download: opts.download } : {}),
      ...(opts.verify !== undefined ? { verify: opts.verify } : {}),
    });
    checkShapeAsked(dataset, opts, source);
    return dataset;
  }
  let dataset: Dataset;
  if (type === 'cifar') dataset = loadCifar(source as CifarName, { dataDir: opts.dataDir, cacheRoot: opts.cacheRoot, labels: opts.cifar100Labels });
  else if (type === 'idx-folder') {
    const isFolder = statOf(source)?.isDirectory() === true && source !== 'idx';
    dataset = loadIdxFolder(isFolder ? source : opts.dataDir!, isFolder || source === 'idx' ? undefined : source, isFolder ? 'path' : 'option');
  } else if (type === 'image-folder') {
    dataset = await loadImageFolder(source, {
      imageSize: opts.imageSize, channels: opts.channels, testFraction: opts.testFraction, seed: opts.seed, cacheRoot: opts.cacheRoot, cache: opts.cache,
    });
  } else {
    const file = resolve(source);
    dataset = fromArrays(type === 'npz' ? readNpzSplits(source, opts.layout) : readNpySplits(source, opts.labels, opts.layout), source, opts);
    dataset.source.dir = file;
  }
  if (type !== 'image-folder') checkShapeAsked(dataset, opts, source);
  return { ...dataset, ...carveSplits(dataset.train, dataset.test, { validation: opts.validation, limitTrain: opts.limitTrain, limitTest: opts.limitTest }) };
}
