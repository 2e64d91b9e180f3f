// CIFAR-10 and CIFAR-100 in their binary version (https://www.cs.toronto.edu/~kriz/cifar.html).
//
// CIFAR-10 (cifar-10-binary.tar.gz unpacks to cifar-10-batches-bin/): data_batch_1.bin ..
// data_batch_5.bin and test_batch.bin, each a run of 3073-byte records: one label byte (0..9), then
// 3072 pixel bytes, the 1024 red values of the 32x32 image row by row, then the 1024 green, then the
// 1024 blue; batches.meta.txt names the classes, one a line.
// CIFAR-100 (cifar-100-binary.tar.gz unpacks to cifar-100-binary/): train.bin and test.bin of
// 3074-byte records: the coarse label (0..19), the fine label (0..99), then the same 3072 pixels;
// coarse_label_names.txt and fine_label_names.txt name the classes.
//
// The pixels are already channel-planar, so a record's 3072 bytes are copied as they are. The
// published checksums (MD5 on the page above) are of the .tar.gz archives, not of the files inside,
// so the files are checked by their structure instead: every file must be a whole number of
// records, and every label must be in range.

import { statSync } from 'fs';
import { join } from 'path';
import { readRegularFile, readRegularTextFile } from '../util/fs-read';
import type { Dataset, DatasetSourceKind, Split } from './dataset-types';
import { DATA_ENV_VAR, DatasetNotFoundError, type SearchAttempt } from './locate';
import { checkLabelsBelow } from './splits';

/** The CIFAR data sets convscope reads. */
export const CIFAR_NAMES = ['cifar10', 'cifar100'] as const;
export type CifarName = (typeof CIFAR_NAMES)[number];
/** CIFAR-100's two label sets: 100 fine classes or 20 coarse superclasses. */
export const CIFAR100_LABELS = ['fine', 'coarse'] as const;
export type Cifar100Labels = (typeof CIFAR100_LABELS)[number];

/** Every CIFAR image is 32x32 RGB. */
export const CIFAR_SIDE = 32;
export const CIFAR_CHANNELS = 3;
const PIXEL_BYTES = CIFAR_SIDE * CIFAR_SIDE * CIFAR_CHANNELS;
/** No CIFAR file is larger than CIFAR-100's train.bin (50,000 records of 3074 bytes). */
const MAX_FILE_BYTES = 50_000 * (PIXEL_BYTES + 2);
const MAX_NAMES_BYTES = 64 * 1024;

/** MD5 sums the CIFAR page publishes, for the archives (check them before unpacking). */
export const CIFAR_ARCHIVE_MD5: Readonly<Record<CifarName, { file: string; md5: string }>> = {
  cifar10: { file: 'cifar-10-binary.tar.gz', md5: 'c32a1d4ab5d03f1284b67883e8d87530' },
  cifar100: { file: 'cifar-100-binary.tar.gz', md5: '03b5dce01913d631647c71ecec9e9cb8' },
};

/** The folder each archive unpacks to; searched inside every place looked. */
const UNPACKED_FOLDER: Readonly<Record<CifarName, string>> = { cifar10: 'cifar-10-batches-bin', cifar100: 'cifar-100-binary' };

/** The published class names, used when the folder has no names file. */
export const CIFAR10_CLASS_NAMES: readonly string[] = ['airplane', 'automobile', 'bird', 'cat', 'deer', 'dog', 'frog', 'horse', 'ship', 'truck'];
export const CIFAR100_COARSE_NAMES: readonly string[] = [
  'aquatic_mammals', 'fish', 'flowers', 'food_containers', 'fruit_and_vegetables', 'household_electrical_devices',
  'household_furniture', 'insects', 'large_carnivores', 'large_man-made_outdoor_things', 'large_natural_outdoor_scenes',
  'large_omnivores_and_herbivores', 'medium_mammals', 'non-insect_invertebrates', 'people', 'reptiles', 'small_mammals',
  'trees', 'vehicles_1', 'vehicles_2',
];
export const CIFAR100_FINE_NAMES: readonly string[] = [
  'apple', 'aquarium_fish', 'baby', 'bear', 'beaver', 'bed', 'bee', 'beetle', 'bicycle', 'bottle', 'bowl', 'boy', 'bridge',
  'bus', 'butterfly', 'camel', 'can', 'castle', 'caterpillar', 'cattle', 'chair', 'chimpanzee', 'clock', 'cloud',
  'cockroach', 'couch', 'crab', 'crocodile', 'cup', 'dinosaur', 'dolphin', 'elephant', 'flatfish', 'forest', 'fox', 'girl',
  'hamster', 'house', 'kangaroo', 'keyboard', 'lamp', 'lawn_mower', 'leopard', 'lion', 'lizard', 'lobster', 'man',
  'maple_tree', 'motorcycle', 'mountain', 'mouse', 'mushroom', 'oak_tree', 'orange', 'orchid', 'otter', 'palm_tree', 'pear',
  'pickup_truck', 'pine_tree', 'plain', 'plate', 'poppy', 'porcupine', 'possum', 'rabbit', 'raccoon', 'ray', 'road',
  'rocket', 'rose', 'sea', 'seal', 'shark', 'shrew', 'skunk', 'skyscraper', 'snail', 'snake', 'spider', 'squirrel',
  'streetcar', 'sunflower', 'sweet_pepper', 'table', 'tank', 'telephone', 'television', 'tiger', 'tractor', 'train',
  'trout', 'tulip', 'turtle', 'wardrobe', 'whale', 'willow_tree', 'wolf', 'woman', 'worm',
];

interface Layout {
  train: string[];
  test: string[];
  /** Label bytes before the pixels of each record. */
  labelBytes: number;
}

const LAYOUTS: Readonly<Record<CifarName, Layout>> = {
  cifar10: { train: [1, 2, 3, 4, 5].map((i) => `data_batch_${i}.bin`), test: ['test_batch.bin'], labelBytes: 1 },
  cifar100: { train: ['train.bin'], test: ['test.bin'], labelBytes: 2 },
};

/** Options of {@link loadCifar} (resolved by loadImageDataset). */
export interface CifarOptions {
  dataDir?: string;
  cacheRoot: string;
  /** CIFAR-100 only: which label each record's image gets (default 'fine'). */
  labels: Cifar100Labels;
}

function isFile(path: string): boolean {
  try {
    return statSync(path).isFile();
  } catch {
    return false;
  }
}

/** Why `dir` does not hold the data set's files, or undefined when it does. */
function missingFiles(dir: string, name: CifarName): string | undefined {
  try {
    if (!statSync(dir).isDirectory()) return 'not a folder';
  } catch {
    return 'folder does not exist';
  }
  const layout = LAYOUTS[name];
  const missing = [...layout.train, ...layout.test].filter((file) => !isFile(join(dir, file)));
  return missing.length > 0 ? `missing ${missing.join(', ')}` : undefined;
}

/** The places looked, in order: the given folder (else $CONVSCOPE_DATA, then the cache), each as given, in `<name>/` or in the unpacked archive's folder. */
function locate(name: CifarName, options: CifarOptions): { kind: DatasetSourceKind; dir: string } {
  const attempts: SearchAttempt[] = [];
  const under = (dir: string) => [join(dir, UNPACKED_FOLDER[name]), join(dir, name, UNPACKED_FOLDER[name]), join(dir, name), dir];
  const roots: { kind: DatasetSourceKind; dir: string }[] = [];
  if (options.dataDir !== undefined) roots.push({ kind: 'option', dir: options.dataDir });
  else {
    const env = process.env[DATA_ENV_VAR];
    if (env) roots.push({ kind: 'env', dir: env });
    else attempts.push({ kind: 'env', dir: `$${DATA_ENV_VAR}`, reason: 'not set' });
    roots.push({ kind: 'cache', dir: options.cacheRoot });
  }
  for (const root of roots) {
    for (const dir of under(root.dir)) {
      const reason = missingFiles(dir, name);
      if (reason === undefined) return { kind: root.kind, dir };
      attempts.push({ kind: root.kind, dir, reason });
    }
  }
  const archive = CIFAR_ARCHIVE_MD5[name];
  throw new DatasetNotFoundError(name, attempts, join(options.cacheRoot, name), {
    howToGet: [
      `download the binary version, ${archive.file}, from https://www.cs.toronto.edu/~kriz/cifar.html (MD5 ${archive.md5})`,
      `unpack it (tar xzf ${archive.file}) and pass the folder with --data-dir (dataDir), or set ${DATA_ENV_VAR}, or unpack it into ${options.cacheRoot}`,
    ],
  });
}

/** Records of one file, checked: a whole number of records, and labels in range. */
function readRecords(file: string, layout: Layout, labelIndex: number, classCount: number): { pixels: Uint8Array[]; labels: Uint8Array } {
  const bytes = readRegularFile(file, MAX_FILE_BYTES);
  const recordBytes = layout.labelBytes + PIXEL_BYTES;
  if (bytes.length === 0 || bytes.length % recordBytes !== 0) {
    const whole = Math.floor(bytes.length / recordBytes);
    throw new Error(
      `${file}: expected a whole number of ${recordBytes}-byte CIFAR records (${layout.labelBytes} label byte${layout.labelBytes > 1 ? 's' : ''} + ${PIXEL_BYTES} pixels) ` +
        `but the file has ${bytes.length} bytes: ${whole} records and ${bytes.length - whole * recordBytes} bytes over (truncated or not a CIFAR binary file)`,
    );
  }
  const count = bytes.length / recordBytes;
  const labels = new Uint8Array(count);
  const pixels: Uint8Array[] = [];
  for (let i = 0; i < count; i++) {
    labels[i] = bytes[i * recordBytes + labelIndex];
    pixels.push(bytes.subarray(i * recordBytes + layout.labelBytes, (i + 1) * recordBytes));
  }
  checkLabelsBelow(labels, classCount, file);
  return { pixels, labels };
}

function readSplit(dir: string, files: string[], layout: Layout, labelIndex: number, classCount: number): Split {
  const parts = files.map((file) => readRecords(join(dir, file), layout, labelIndex, classCount));
  const count = parts.reduce((sum, part) => sum + part.labels.length, 0);
  const images = new Uint8Array(count * PIXEL_BYTES);
  const labels = new Uint8Array(count);
  let at = 0;
  for (const part of parts) {
    labels.set(part.labels, at);
    // One copy per record out of the file's buffer: records interleave labels with pixels.
    part.pixels.forEach((image, i) => images.set(image, (at + i) * PIXEL_BYTES));
    at += part.labels.length;
  }
  return { images, labels, count, channels: CIFAR_CHANNELS, height: CIFAR_SIDE, width: CIFAR_SIDE };
}

/** Names from a file of one name a line (blank lines dropped), which must have `count` of them. */
function classNamesFrom(dir: string, file: string, published: readonly string[]): string[] {
  const path = join(dir, file);
  if (!isFile(path)) return [...published];
  const names = readRegularTextFile(path, MAX_NAMES_BYTES).split(/\r?\n/).map((line) => line.trim()).filter((line) => line.length > 0);
  if (names.length !== published.length) {
    throw new Error(`${path}: expected ${published.length} class names, one a line, but the file has ${names.length}`);
  }
  return names;
}

/**
 * Loads CIFAR-10 or CIFAR-100 (binary version) from the first folder that has all its files.
 * @throws DatasetNotFoundError listing every place looked; Error naming the file for a truncated
 *   file or a label out of range
 * @example loadCifar('cifar100', { dataDir: '/data', cacheRoot, labels: 'coarse' }).classNames.length // 20
 */
export function loadCifar(name: CifarName, options: CifarOptions): Dataset {
  const found = locate(name, options);
  const layout = LAYOUTS[name];
  let names: string[];
  let labelIndex = 0;
  if (name === 'cifar10') names = classNamesFrom(found.dir, 'batches.meta.txt', CIFAR10_CLASS_NAMES);
  else if (options.labels === 'coarse') names = classNamesFrom(found.dir, 'coarse_label_names.txt', CIFAR100_COARSE_NAMES);
  else {
    names = classNamesFrom(found.dir, 'fine_label_names.txt', CIFAR100_FINE_NAMES);
    labelIndex = 1;
  }
  return {
    name,
    train: readSplit(found.dir, layout.train, layout, labelIndex, names.length),
    test: readSplit(found.dir, layout.test, layout, labelIndex, names.length),
    classNames: names,
    source: found,
  };
}
