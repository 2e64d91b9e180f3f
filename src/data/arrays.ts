// Images and labels from NumPy arrays: an `.npz` archive (a zip of `.npy` files, read with fflate),
// or an `.npy` file of images with its labels in a second `.npy` file.
//
// Which arrays an `.npz` must hold (the first set that is there wins):
//   x_train, y_train, x_test, y_test              (Keras' datasets, e.g. mnist.npz)
//   train_images, train_labels, test_images, test_labels
//   images, labels  (or x, y)                      one pool; a seeded stratified test split is taken
// Other arrays are ignored. Images must be uint8 (0..255) or float32/float64 in [0, 1]; labels any
// integer dtype with values 0..255, shape (N,) or (N, 1).
//
// Image layouts: (N, H, W) is grey (C = 1). A 4-D array is (N, H, W, C) or (N, C, H, W): the channel
// axis is whichever of axis 1 and axis 3 is strictly smaller than the other two non-batch axes,
// e.g. (N, 32, 32, 3) is NHWC and (N, 3, 32, 32) is NCHW. When neither is (e.g. (N, 4, 4, 4) or
// (N, 3, 32, 3)), the layout is ambiguous and must be named with `layout: 'nhwc' | 'nchw'`
// (--layout). NHWC arrays are transposed to the N x C x H x W of every Split (one copy).

import { basename } from 'path';
import { unzipSync } from 'fflate';
import { decodeNpy, type DecodedNpy } from '../formats/npy';
import { readRegularFile } from '../util/fs-read';
import type { Split } from './dataset-types';
import { checkLabelsBelow } from './splits';

/** How a 4-D image array is laid out; 'auto' applies the rule above. */
export const ARRAY_LAYOUTS = ['auto', 'nhwc', 'nchw'] as const;
export type ArrayLayout = (typeof ARRAY_LAYOUTS)[number];

/** Arrays over this size are refused rather than read (a 4 GiB archive would not fit a Buffer anyway). */
const MAX_ARRAY_FILE_BYTES = 4 * 1024 ** 3 - 1;

/** The sets of array names an `.npz` may use, in the order they are tried. */
export const NPZ_KEY_SETS = [
  { train: ['x_train', 'y_train'], test: ['x_test', 'y_test'] },
  { train: ['train_images', 'train_labels'], test: ['test_images', 'test_labels'] },
  { pool: ['images', 'labels'] },
  { pool: ['x', 'y'] },
] as const;

/** Splits read from arrays: both splits, or one pool to split. */
export type ArraySplits = { train: Split; test: Split } | { pool: Split };

/** One named array read from a file, for messages: `data.npz: x_train`. */
interface NamedArray {
  where: string;
  array: DecodedNpy;
}

function decodeNamed(bytes: Uint8Array, where: string): NamedArray {
  try {
    return { where, array: decodeNpy(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)) };
  } catch (err) {
    throw new Error(`${where}: ${(err as Error).message}`, { cause: err });
  }
}

/** The arrays of an `.npz`, by name without `.npy`. */
export function readNpz(file: string): Map<string, () => NamedArray> {
  const bytes = readRegularFile(file, MAX_ARRAY_FILE_BYTES);
  let entries: Record<string, Uint8Array>;
  try {
    entries = unzipSync(bytes);
  } catch (err) {
    throw new Error(`${file}: expected an .npz (zip) archive of .npy arrays but it could not be read as a zip (${(err as Error).message})`, { cause: err });
  }
  const arrays = new Map<string, () => NamedArray>();
  for (const [entry, content] of Object.entries(entries)) {
    if (!entry.endsWith('.npy')) continue;
    const key = entry.slice(0, -'.npy'.length);
    arrays.set(key, () => decodeNamed(content, `${file}: ${key}`));
  }
  return arrays;
}

/** Reads one `.npy` file. */
export function readNpy(file: string): NamedArray {
  return decodeNamed(readRegularFile(file, MAX_ARRAY_FILE_BYTES), file);
}

/** Which axis of a 4-D shape holds the channels (1 or 3), by the rule in the header. */
function channelAxis(shape: number[], layout: ArrayLayout, where: string): 1 | 3 {
  if (layout === 'nchw') return 1;
  if (layout === 'nhwc') return 3;
  const [, a, b, c] = shape;
  if (a < b && a < c) return 1;
  if (c < a && c < b) return 3;
  throw new Error(
    `${where}: the layout of an array of shape (${shape.join(', ')}) is ambiguous: expected one of axis 1 (NCHW) or axis 3 (NHWC) ` +
      `to be smaller than the other two, as channels are; name it with layout 'nhwc' or 'nchw' (--layout)`,
  );
}

/** Float values must be in [0, 1] (as every float Split is); NaN and 0..255 floats are refused by name. */
function floatImages(values: Float32Array | Float64Array, where: string): Float32Array {
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (!(v >= 0 && v <= 1)) {
      throw new RangeError(`${where}: expected float pixel values in [0, 1] but element ${i} is ${v}${v > 1 && v <= 255 ? ' (0..255 floats: divide by 255, or store uint8)' : ''}`);
    }
  }
  return values instanceof Float32Array ? values : Float32Array.from(values);
}

/** N x C x H x W images from a (N,H,W), (N,H,W,C) or (N,C,H,W) array. */
export function imagesFromArray(named: NamedArray, layout: ArrayLayout): Omit<Split, 'labels'> {
  const { where, array } = named;
  const { shape, data } = array;
  let values: Uint8Array | Float32Array;
  if (data instanceof Uint8Array) values = data;
  else if (data instanceof Float32Array || data instanceof Float64Array) values = floatImages(data, where);
  else throw new TypeError(`${where}: expected uint8 images (0..255) or float32/float64 images in [0, 1] but the array has dtype ${array.descr}`);
  if (shape.length === 3) {
    const [count, height, width] = shape;
    return checkNotEmpty({ images: values, count, channels: 1, height, width }, where, shape);
  }
  if (shape.length !== 4) {
    throw new RangeError(`${where}: expected images of shape (N, H, W), (N, H, W, C) or (N, C, H, W) but the array has shape (${shape.join(', ')})`);
  }
  const axis = channelAxis(shape, layout, where);
  if (axis === 1) {
    const [count, channels, height, width] = shape;
    return checkNotEmpty({ images: values, count, channels, height, width }, where, shape);
  }
  const [count, height, width, channels] = shape;
  return checkNotEmpty({ images: nhwcToNchw(values, count, height, width, channels), count, channels, height, width }, where, shape);
}

function checkNotEmpty<T extends { count: number; channels: number; height: number; width: number }>(split: T, where: string, shape: number[]): T {
  if (split.count === 0 || split.channels === 0 || split.height === 0 || split.width === 0) {
    throw new RangeError(`${where}: expected at least one image of at least one pixel but the array has shape (${shape.join(', ')})`);
  }
  return split;
}

/** The one copy an NHWC array costs: pixel-interleaved channels become planes. */
function nhwcToNchw<T extends Uint8Array | Float32Array>(values: T, count: number, height: number, width: number, channels: number): T {
  const out = (values instanceof Float32Array ? new Float32Array(values.length) : new Uint8Array(values.length)) as T;
  const plane = height * width;
  for (let n = 0; n < count; n++) {
    const base = n * plane * channels;
    for (let p = 0; p < plane; p++) {
      for (let c = 0; c < channels; c++) out[base + c * plane + p] = values[base + p * channels + c];
    }
  }
  return out;
}

/** Labels 0..255 of shape (N,) or (N, 1), as a Uint8Array. */
export function labelsFromArray(named: NamedArray, count: number, imagesWhere: string): Uint8Array {
  const { where, array } = named;
  const { shape, data } = array;
  if (!(shape.length === 1 || (shape.length === 2 && shape[1] === 1))) {
    throw new RangeError(`${where}: expected labels of shape (N,) or (N, 1) but the array has shape (${shape.join(', ')})`);
  }
  if (shape[0] !== count) throw new RangeError(`${where} has ${shape[0]} labels but ${imagesWhere} has ${count} images (expected the same count)`);
  if (data instanceof Float32Array || data instanceof Float64Array) {
    throw new TypeError(`${where}: expected integer labels but the array has dtype ${array.descr}`);
  }
  const values = Array.from(data as ArrayLike<number | bigint>, Number);
  checkLabelsBelow(values, 256, where);
  return Uint8Array.from(values);
}

function splitFrom(images: NamedArray, labels: NamedArray, layout: ArrayLayout): Split {
  const split = imagesFromArray(images, layout);
  return { ...split, labels: labelsFromArray(labels, split.count, images.where) };
}

function missingLabels(file: string, imagesKey: string, labelsKey: string, keys: string[]): Error {
  return new Error(`${file}: found images ${imagesKey} but no labels: expected an array named ${labelsKey} (the archive holds ${keys.join(', ')})`);
}

/**
 * The splits of an `.npz` archive (see the header for the names it may use).
 * @throws Error naming the file and array: no known names, images without labels, bad shapes or values
 * @example readNpzSplits('mnist.npz', 'auto') // { train, test }
 */
export function readNpzSplits(file: string, layout: ArrayLayout): ArraySplits {
  const arrays = readNpz(file);
  const keys = [...arrays.keys()];
  const read = (key: string) => arrays.get(key)!();
  for (const set of NPZ_KEY_SETS) {
    if ('pool' in set) {
      const [imagesKey, labelsKey] = set.pool;
      if (!arrays.has(imagesKey)) continue;
      if (!arrays.has(labelsKey)) throw missingLabels(file, imagesKey, labelsKey, keys);
      return { pool: splitFrom(read(imagesKey), read(labelsKey), layout) };
    }
    const [trainImages, trainLabels] = set.train;
    const [testImages, testLabels] = set.test;
    if (!arrays.has(trainImages)) continue;
    for (const [imagesKey, labelsKey] of [set.train, set.test]) {
      if (!arrays.has(imagesKey)) throw new Error(`${file}: found ${set.train[0]} but not ${set.test[0]}: expected both splits, ${[...set.train, ...set.test].join(', ')}`);
      if (!arrays.has(labelsKey)) throw missingLabels(file, imagesKey, labelsKey, keys);
    }
    return { train: splitFrom(read(trainImages), read(trainLabels), layout), test: splitFrom(read(testImages), read(testLabels), layout) };
  }
  const names = NPZ_KEY_SETS.map((set) => ('pool' in set ? set.pool.join('+') : [...set.train, ...set.test].join('+'))).join('; ');
  throw new Error(`${file}: expected arrays named ${names} but the archive holds ${keys.length > 0 ? keys.join(', ') : 'no .npy arrays'} (an npz without labels cannot be trained on)`);
}

/**
 * The pool of an `.npy` images file and its labels file.
 * @example readNpySplits('images.npy', 'labels.npy', 'auto') // { pool }
 */
export function readNpySplits(imagesFile: string, labelsFile: string | undefined, layout: ArrayLayout): ArraySplits {
  if (labelsFile === undefined) {
    throw new Error(`${imagesFile}: an .npy file holds one array, the images; expected the labels in a second .npy file (labels option, --labels <file.npy>), or an .npz holding both`);
  }
  return { pool: splitFrom(readNpy(imagesFile), readNpy(labelsFile), layout) };
}

/** The name a dataset read from arrays gets: the file's name. */
export function arraysDatasetName(file: string): string {
  return basename(file);
}
