// An image folder as a dataset, decoded and resized with sharp (libvips), cached on disk.
//
// Layouts (the first that fits):
//   <root>/train/<class>/* and <root>/test/<class>/*   the two splits as given; both must hold the same classes
//   <root>/<class>/*                                    one pool; a seeded, stratified test split is taken
// Classes are the subfolders' names in sorted order (label i = the i-th name, as torchvision's
// ImageFolder does); images may sit in nested folders under a class. Hidden files (".*") are
// skipped; every other file must be a PNG, JPEG, WebP, GIF (first frame) or TIFF image, decided by
// its content, not its name.
//
// Size: every image is resized to one height x width: the size given (`imageSize: [h, w]`,
// --image-size HxW), the most common size (`imageSize: 'common'`), or, when not given, the one size
// all images share (mixed sizes are then an error listing the sizes). Resizing stretches to the exact
// size (the aspect ratio is not kept, as Keras' image_dataset_from_directory and torchvision's
// Resize((h, w)) do) with sharp's Lanczos-3 filter. EXIF orientation is applied first.
// Channels: 1 (grey) when every image is grey, 3 when every image is colour; mixed is an error
// unless `channels` (--channels 1|3) says which to convert to (libvips' colour-space conversion).
// Transparency is flattened onto black.
//
// The decoded images are cached in <cacheRoot>/decoded/<folder>-<key>.bin and .json, where the key is
// a SHA-256 of the folder's real path, the options and every file's path, size and modification time:
// a second load reads one file instead of decoding, and touching any image invalidates the entry.
// A folder keeps its newest 4 entries; a cache that cannot be written is a warning, not an error.

import { createHash } from 'crypto';
import { readdirSync, realpathSync, rmSync, statSync, type Stats } from 'fs';
import { join, relative } from 'path';
import sharp, { type Metadata, type OutputInfo } from 'sharp';
import { writeFileAtomic } from '../util/fs-atomic';
import { readRegularFile, readRegularTextFile } from '../util/fs-read';
import type { Dataset, Split } from './dataset-types';
import { seededShuffle, stratifiedTestIndices } from './splits';

/** The formats an image folder may hold (sharp's names). */
export const IMAGE_FORMATS = ['png', 'jpeg', 'webp', 'gif', 'tiff'] as const;
/** Bumped whenever the cache files' layout or the decoding changes, so old entries are not read. */
const CACHE_VERSION = 1;
/** Images decoded at once: sharp runs each on libuv's thread pool. */
const DECODE_CONCURRENCY = 8;
const MAX_CACHE_META_BYTES = 64 * 1024 ** 2;
const MAX_CACHE_BYTES = 2 ** 32;
/** Cache entries kept per folder: a few sizes or seeds side by side, not every past version. */
const MAX_ENTRIES_PER_FOLDER = 4;

/** Options of {@link loadImageFolder} (resolved by loadImageDataset). */
export interface ImageFolderOptions {
  /** `[height, width]` to resize to, 'common' for the most common size, undefined: all must match. */
  imageSize?: [number, number] | 'common';
  /** 1 or 3 to convert every image to; undefined: decided from the files. */
  channels?: number;
  /** Fraction of each class that goes to the test split of a one-pool folder. */
  testFraction: number;
  seed: number;
  cacheRoot: string;
  /** Read and write the decoded cache (default true). */
  cache: boolean;
}

/** A file of the folder and where it goes. */
interface ImageFile {
  path: string;
  label: number;
  split: 'train' | 'test';
  stat: Stats;
}

/** What the cache and a fresh decode both give. */
interface Decoded {
  classNames: string[];
  train: ByteSplit;
  test: ByteSplit;
}

/** Folder images are always decoded to bytes. */
type ByteSplit = Split & { images: Uint8Array };

function isDirectory(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}

function visibleEntries(dir: string): string[] {
  return readdirSync(dir).filter((name) => !name.startsWith('.')).sort();
}

/**
 * Every file under `dir`, recursively, in sorted order. Links are followed, but a folder already
 * on the way down (a link to a parent) is an error rather than an endless walk.
 */
function filesUnder(dir: string, above: ReadonlySet<string> = new Set()): { path: string; stat: Stats }[] {
  const real = realpathSync(dir);
  if (above.has(real)) throw new Error(`${dir}: a link back to a folder above it (${real}); expected a tree of image files`);
  const path = new Set(above).add(real);
  return visibleEntries(dir).flatMap((name) => {
    const file = join(dir, name);
    const stat = statSync(file);
    if (stat.isDirectory()) return filesUnder(file, path);
    if (!stat.isFile()) throw new Error(`${file}: expected an image file but it is not a regular file`);
    return [{ path: file, stat }];
  });
}

/** The class folders of `dir` (sorted) and their files; an empty class is an error naming it. */
function classFolders(dir: string): Map<string, { path: string; stat: Stats }[]> {
  const classes = new Map<string, { path: string; stat: Stats }[]>();
  for (const name of visibleEntries(dir)) {
    const path = join(dir, name);
    if (!isDirectory(path)) continue;
    const files = filesUnder(path);
    if (files.length === 0) throw new Error(`${path}: the class folder "${name}" holds no images (expected at least one image file)`);
    classes.set(name, files);
  }
  if (classes.size === 0) throw new Error(`${dir}: expected one folder per class (or train/ and test/ folders of class folders) but it has no subfolders`);
  return classes;
}

/** The folder's files with labels and splits, and its class names. */
function listFolder(root: string, options: ImageFolderOptions): { classNames: string[]; files: ImageFile[] } {
  const trainDir = join(root, 'train');
  const testDir = join(root, 'test');
  if (isDirectory(trainDir) || isDirectory(testDir)) {
    if (!isDirectory(trainDir) || !isDirectory(testDir)) {
      throw new Error(`${root}: has ${isDirectory(trainDir) ? 'train/ but no test/' : 'test/ but no train/'} folder (expected both, each holding one folder per class, or only class folders)`);
    }
    const train = classFolders(trainDir);
    const test = classFolders(testDir);
    const onlyTrain = [...train.keys()].filter((name) => !test.has(name));
    const onlyTest = [...test.keys()].filter((name) => !train.has(name));
    if (onlyTrain.length > 0 || onlyTest.length > 0) {
      const parts = [
        onlyTrain.length > 0 ? `class${onlyTrain.length > 1 ? 'es' : ''} ${onlyTrain.join(', ')} in ${trainDir} but not in ${testDir}` : '',
        onlyTest.length > 0 ? `class${onlyTest.length > 1 ? 'es' : ''} ${onlyTest.join(', ')} in ${testDir} but not in ${trainDir}` : '',
      ].filter((part) => part !== '');
      throw new Error(`${root}: expected the same class folders in train/ and test/ but found ${parts.join('; ')}`);
    }
    const classNames = [...train.keys()];
    const files = (split: 'train' | 'test', classes: typeof train) =>
      classNames.flatMap((name, label) => classes.get(name)!.map((f) => ({ ...f, label, split })));
    return { classNames, files: [...shuffled(files('train', train), options.seed), ...shuffled(files('test', test), options.seed + 1)] };
  }
  const classes = classFolders(root);
  const classNames = [...classes.keys()];
  const pool = classNames.flatMap((name, label) => classes.get(name)!.map((f) => ({ ...f, label })));
  const { train, test } = stratifiedTestIndices(pool.map((f) => f.label), options.testFraction, options.seed);
  const pick = (indices: number[], split: 'train' | 'test') => indices.map((i) => ({ ...pool[i], split }));
  return { classNames, files: [...shuffled(pick(train, 'train'), options.seed), ...shuffled(pick(test, 'test'), options.seed + 1)] };
}

/** Folders list class by class; a seeded shuffle mixes them, so that `validation` and `limit` see every class. */
function shuffled<T>(items: T[], seed: number): T[] {
  return seededShuffle(items, seed);
}

function cacheKey(root: string, files: ImageFile[], options: ImageFolderOptions): string {
  const hash = createHash('sha256');
  hash.update(JSON.stringify({ version: CACHE_VERSION, root, imageSize: options.imageSize ?? null, channels: options.channels ?? null }));
  for (const f of files) hash.update(`\n${relative(root, f.path)}\t${f.split}\t${f.label}\t${f.stat.size}\t${f.stat.mtimeMs}`);
  return hash.digest('hex');
}

interface CacheMeta {
  version: number;
  key: string;
  classNames: string[];
  channels: number;
  height: number;
  width: number;
  trainCount: number;
  testCount: number;
}

/** The cached entry for `key`, or undefined when there is none or it does not fit (then it is rebuilt). */
function readCache(metaFile: string, binFile: string, key: string): Decoded | undefined {
  let meta: CacheMeta;
  let bytes: Buffer;
  try {
    meta = JSON.parse(readRegularTextFile(metaFile, MAX_CACHE_META_BYTES)) as CacheMeta;
    bytes = readRegularFile(binFile, MAX_CACHE_BYTES);
  } catch {
    return undefined;
  }
  const values = meta.channels * meta.height * meta.width;
  const count = meta.trainCount + meta.testCount;
  if (meta.version !== CACHE_VERSION || meta.key !== key || bytes.length !== count * (values + 1)) return undefined;
  // One copy out of the file's buffer per split, so each split owns its memory (the addon refuses shared views).
  const split = (start: number, n: number): ByteSplit => ({
    images: new Uint8Array(bytes.subarray(start * values, (start + n) * values)),
    labels: new Uint8Array(bytes.subarray(count * values + start, count * values + start + n)),
    count: n,
    channels: meta.channels,
    height: meta.height,
    width: meta.width,
  });
  return { classNames: meta.classNames, train: split(0, meta.trainCount), test: split(meta.trainCount, meta.testCount) };
}

function writeCache(metaFile: string, binFile: string, key: string, decoded: Decoded): void {
  const { train, test } = decoded;
  // Pixels of both splits, then labels of both: the .json (written last) says where each starts.
  writeFileAtomic(binFile, Buffer.concat([train.images, test.images, train.labels, test.labels]));
  const meta: CacheMeta = {
    version: CACHE_VERSION, key, classNames: decoded.classNames, channels: train.channels, height: train.height, width: train.width,
    trainCount: train.count, testCount: test.count,
  };
  writeFileAtomic(metaFile, JSON.stringify(meta));
}

/**
 * Keeps the newest MAX_ENTRIES_PER_FOLDER entries of one folder (by the .json's time): each change to
 * a folder makes a new entry, and without pruning the old ones would pile up.
 */
function pruneFolderEntries(cacheDir: string, folderTag: string): void {
  const entries = readdirSync(cacheDir)
    .filter((name) => name.startsWith(`${folderTag}-`) && name.endsWith('.json'))
    .map((name) => ({ stem: join(cacheDir, name.slice(0, -'.json'.length)), time: statSync(join(cacheDir, name)).mtimeMs }))
    .sort((a, b) => b.time - a.time);
  for (const old of entries.slice(MAX_ENTRIES_PER_FOLDER)) {
    rmSync(`${old.stem}.json`, { force: true });
    rmSync(`${old.stem}.bin`, { force: true });
  }
}

/** Runs `work` on every item, `limit` at a time, keeping the order of the results. */
async function mapLimited<T, R>(items: T[], limit: number, work: (item: T) => Promise<R>): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      results[i] = await work(items[i]);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}

interface ImageInfo {
  width: number;
  height: number;
  colour: boolean;
}

async function inspect(file: ImageFile): Promise<ImageInfo> {
  let meta: Metadata;
  try {
    meta = await sharp(readRegularFile(file.path, MAX_CACHE_BYTES), { failOn: 'truncated', autoOrient: true }).metadata();
  } catch (err) {
    throw new Error(`${file.path}: expected an image (${IMAGE_FORMATS.join(', ')}) but it could not be read: ${(err as Error).message.split('\n')[0]}`, { cause: err });
  }
  if (!(IMAGE_FORMATS as readonly string[]).includes(meta.format ?? '')) {
    throw new Error(`${file.path}: expected an image in one of ${IMAGE_FORMATS.join(', ')} but it is ${meta.format ?? 'of an unknown format'}`);
  }
  const width = meta.autoOrient?.width ?? meta.width;
  const height = meta.autoOrient?.height ?? meta.height;
  // 1 band: grey; 2: grey + alpha; 3 or 4: colour (alpha included); palette images report 3 or 4.
  return { width, height, colour: (meta.channels ?? 1) >= 3 };
}

function describeSizes(files: ImageFile[], infos: ImageInfo[]): { common: [number, number]; text: string; count: number } {
  const bySize = new Map<string, { count: number; example: string; size: [number, number] }>();
  infos.forEach((info, i) => {
    const key = `${info.height}x${info.width}`;
    const entry = bySize.get(key) ?? { count: 0, example: files[i].path, size: [info.height, info.width] as [number, number] };
    entry.count++;
    bySize.set(key, entry);
  });
  const sorted = [...bySize.entries()].sort((a, b) => b[1].count - a[1].count || a[0].localeCompare(b[0]));
  const text = sorted.slice(0, 5).map(([key, e]) => `${key} (${e.count} image${e.count > 1 ? 's' : ''}, e.g. ${e.example})`).join(', ');
  return { common: sorted[0][1].size, text: text + (sorted.length > 5 ? `, and ${sorted.length - 5} more sizes` : ''), count: sorted.length };
}

function targetSize(files: ImageFile[], infos: ImageInfo[], options: ImageFolderOptions, root: string): [number, number] {
  if (Array.isArray(options.imageSize)) return options.imageSize;
  const sizes = describeSizes(files, infos);
  if (options.imageSize === 'common' || sizes.count === 1) return sizes.common;
  const [h, w] = sizes.common;
  throw new Error(
    `${root}: expected images of one size but found ${sizes.count} sizes (height x width): ${sizes.text}; ` +
      `pass imageSize [${h}, ${w}] (--image-size ${h}x${w}) or 'common' (--image-size common) to resize them all`,
  );
}

function targetChannels(files: ImageFile[], infos: ImageInfo[], options: ImageFolderOptions, root: string): number {
  if (options.channels !== undefined) return options.channels;
  const colour = infos.findIndex((info) => info.colour);
  const grey = infos.findIndex((info) => !info.colour);
  if (colour >= 0 && grey >= 0) {
    const colourCount = infos.filter((info) => info.colour).length;
    throw new Error(
      `${root}: expected all grey or all colour images but found ${infos.length - colourCount} grey (e.g. ${files[grey].path}) ` +
        `and ${colourCount} colour (e.g. ${files[colour].path}); pass channels 1 or 3 (--channels 1|3) to convert them all`,
    );
  }
  return colour >= 0 ? 3 : 1;
}

/** One image decoded, flattened, converted and resized, written channel-planar into `into`. */
async function decodeInto(file: ImageFile, height: number, width: number, channels: number, into: Uint8Array): Promise<void> {
  let result: { data: Buffer; info: OutputInfo };
  try {
    result = await sharp(readRegularFile(file.path, MAX_CACHE_BYTES), { failOn: 'truncated', autoOrient: true })
      .flatten({ background: '#000000' })
      .toColourspace(channels === 1 ? 'b-w' : 'srgb')
      .resize({ width, height, fit: 'fill', kernel: 'lanczos3' })
      .raw()
      .toBuffer({ resolveWithObject: true });
  } catch (err) {
    throw new Error(`${file.path}: the image could not be decoded (corrupt or truncated?): ${(err as Error).message.split('\n')[0]}`, { cause: err });
  }
  const { data, info } = result;
  if (info.width !== width || info.height !== height || info.channels !== channels) {
    throw new Error(`${file.path}: decoded to ${info.height}x${info.width}x${info.channels}, expected ${height}x${width}x${channels}`);
  }
  const plane = height * width;
  // Interleaved (HWC) as libvips gives it, to the planes (CHW) of a Split.
  for (let p = 0; p < plane; p++) {
    for (let c = 0; c < channels; c++) into[c * plane + p] = data[p * channels + c];
  }
}

async function decodeFolder(root: string, classNames: string[], files: ImageFile[], options: ImageFolderOptions): Promise<Decoded> {
  const infos = await mapLimited(files, DECODE_CONCURRENCY, inspect);
  const [height, width] = targetSize(files, infos, options, root);
  const channels = targetChannels(files, infos, options, root);
  const values = channels * height * width;
  type Pending = Omit<Split, 'images'> & { images: Uint8Array; files: ImageFile[] };
  const makeSplit = (split: 'train' | 'test'): Pending => {
    const chosen = files.filter((f) => f.split === split);
    return {
      images: new Uint8Array(chosen.length * values), labels: Uint8Array.from(chosen, (f) => f.label), count: chosen.length,
      channels, height, width, files: chosen,
    };
  };
  const splits = [makeSplit('train'), makeSplit('test')];
  for (const split of splits) {
    await mapLimited(split.files.map((file, i) => ({ file, i })), DECODE_CONCURRENCY, ({ file, i }) =>
      decodeInto(file, height, width, channels, split.images.subarray(i * values, (i + 1) * values)));
  }
  const strip = ({ files: _files, ...split }: Pending): ByteSplit => split;
  return { classNames, train: strip(splits[0]), test: strip(splits[1]) };
}

/**
 * Loads an image folder (see the header for layouts, sizes, channels and the cache).
 * @throws Error naming the file or folder: not an image, corrupt or truncated, an empty class
 *   folder, a class in only one split, mixed sizes or channel counts
 * @example const data = await loadImageFolder('./my-images', { testFraction: 0.2, seed: 0, cacheRoot, cache: true });
 */
export async function loadImageFolder(root: string, options: ImageFolderOptions): Promise<Dataset> {
  if (options.channels !== undefined && options.channels !== 1 && options.channels !== 3) {
    throw new RangeError(`Expected 1 (grey) or 3 (colour) for channels of an image folder but received ${options.channels} (${root})`);
  }
  const real = realpathSync(root);
  const { classNames, files } = listFolder(real, options);
  if (classNames.length > 256) throw new RangeError(`${root}: expected at most 256 class folders (labels are bytes) but found ${classNames.length}`);
  const key = cacheKey(real, files, options);
  // Named <folder's hash>-<key>: a folder's older entries can be found and pruned.
  const folderTag = createHash('sha256').update(real).digest('hex').slice(0, 16);
  const cacheDir = join(options.cacheRoot, 'decoded');
  const binFile = join(cacheDir, `${folderTag}-${key}.bin`);
  const metaFile = join(cacheDir, `${folderTag}-${key}.json`);
  const source = { kind: 'path' as const, dir: root };
  if (options.cache) {
    const cached = readCache(metaFile, binFile, key);
    if (cached) return { name: root, ...cached, source, cache: { file: binFile, hit: true } };
  }
  const decoded = await decodeFolder(real, classNames, files, options);
  if (decoded.test.count === 0) throw new Error(`${root}: no image went to the test split (expected classes of at least two images, or a test/ folder)`);
  if (!options.cache) return { name: root, ...decoded, source };
  try {
    writeCache(metaFile, binFile, key, decoded);
    pruneFolderEntries(cacheDir, folderTag);
  } catch (err) {
    // A cache that cannot be written costs the next run a decode, not this run its data.
    process.emitWarning(`convscope: the decoded images of ${root} were not cached: ${(err as Error).message}`);
    return { name: root, ...decoded, source };
  }
  return { name: root, ...decoded, source, cache: { file: binFile, hit: false } };
}
