// CIFAR-10 and CIFAR-100 binary files written here, record by record, with known labels and pixels:
// the loader must put each record's label and its 3072 channel-planar bytes where they belong,
// find the folder where the archive unpacks, read class names, and refuse truncated files and
// labels out of range by file name.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'fs';
import { tmpdir } from 'os';
import { join } from 'path';
import { CIFAR100_FINE_NAMES, CIFAR10_CLASS_NAMES } from '../src/data/cifar';
import { loadImageDataset } from '../src/data/load-image-dataset';
import { rejected } from './helpers';

const PIXELS = 3072;
let root: string;
let n = 0;
const fresh = (name: string) => {
  const dir = join(root, `${name}-${n++}`);
  mkdirSync(dir, { recursive: true });
  return dir;
};

/** The pixel value record `r` of file `f` has at byte `i`: every record differs, every channel too. */
const pixelAt = (f: number, r: number, i: number) => (f * 31 + r * 7 + i) % 256;

/** One file of `labels.length` records; `labelBytes` 1 (CIFAR-10) or 2 (CIFAR-100: coarse, fine). */
function cifarFile(f: number, labels: number[][]): Buffer {
  const labelBytes = labels[0].length;
  const out = Buffer.alloc(labels.length * (labelBytes + PIXELS));
  labels.forEach((label, r) => {
    const at = r * (labelBytes + PIXELS);
    label.forEach((l, k) => (out[at + k] = l));
    for (let i = 0; i < PIXELS; i++) out[at + labelBytes + i] = pixelAt(f, r, i);
  });
  return out;
}

/** A cifar-10-batches-bin folder: 5 training files of 2 records, a test file of 3. */
function writeCifar10(dir: string): void {
  for (let b = 1; b <= 5; b++) writeFileSync(join(dir, `data_batch_${b}.bin`), cifarFile(b, [[(2 * b) % 10], [(2 * b + 1) % 10]]));
  writeFileSync(join(dir, 'test_batch.bin'), cifarFile(0, [[9], [0], [4]]));
}

beforeAll(() => {
  root = mkdtempSync(join(tmpdir(), 'convscope-cifar-'));
});
afterAll(() => rmSync(root, { recursive: true, force: true }));

describe('CIFAR-10', () => {
  test('labels, pixels (channel-planar, as stored) and the order of the files', async () => {
    const dir = fresh('c10');
    writeCifar10(dir);
    const data = await loadImageDataset('cifar10', { dataDir: dir });
    expect(data.name).toBe('cifar10');
    expect(data.classNames).toEqual([...CIFAR10_CLASS_NAMES]);
    expect(data.train).toMatchObject({ count: 10, channels: 3, height: 32, width: 32 });
    expect([...data.train.labels]).toEqual([2, 3, 4, 5, 6, 7, 8, 9, 0, 1]);
    expect([...data.test.labels]).toEqual([9, 0, 4]);
    // Record 1 of data_batch_3 is training image 5; its green channel starts at byte 1024.
    const image5 = data.train.images.subarray(5 * PIXELS, 6 * PIXELS);
    expect(image5[0]).toBe(pixelAt(3, 1, 0));
    expect(image5[1024]).toBe(pixelAt(3, 1, 1024));
    expect(image5[PIXELS - 1]).toBe(pixelAt(3, 1, PIXELS - 1));
    expect(data.test.images[2 * PIXELS + 2048]).toBe(pixelAt(0, 2, 2048));
  });

  test('found in the folder the archive unpacks to, with names from batches.meta.txt', async () => {
    const dir = fresh('c10-root');
    const unpacked = join(dir, 'cifar-10-batches-bin');
    mkdirSync(unpacked);
    writeCifar10(unpacked);
    const names = ['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i', 'j'];
    writeFileSync(join(unpacked, 'batches.meta.txt'), names.join('\n') + '\n\n');
    const data = await loadImageDataset('cifar10', { dataDir: dir, validation: 3, limit: { test: 2 } });
    expect(data.source).toEqual({ kind: 'option', dir: unpacked });
    expect(data.classNames).toEqual(names);
    expect([data.train.count, data.validation?.count, data.test.count]).toEqual([7, 3, 2]);
    expect([...data.validation!.labels]).toEqual([9, 0, 1]);
  });

  test('from the cache when no folder is given', async () => {
    const cache = fresh('cache');
    mkdirSync(join(cache, 'cifar10'));
    writeCifar10(join(cache, 'cifar10'));
    const saved = process.env.CONVSCOPE_DATA;
    delete process.env.CONVSCOPE_DATA;
    try {
      const data = await loadImageDataset('cifar10', { cacheDir: cache });
      expect(data.source).toEqual({ kind: 'cache', dir: join(cache, 'cifar10') });
    } finally {
      if (saved !== undefined) process.env.CONVSCOPE_DATA = saved;
    }
  });
});

describe('CIFAR-100', () => {
  function writeCifar100(dir: string): void {
    writeFileSync(join(dir, 'train.bin'), cifarFile(1, [[3, 99], [19, 0], [0, 42]]));
    writeFileSync(join(dir, 'test.bin'), cifarFile(2, [[7, 7], [1, 11]]));
  }

  test('fine labels by default, coarse when asked, with the published names', async () => {
    const dir = fresh('c100');
    writeCifar100(dir);
    const fine = await loadImageDataset('cifar100', { dataDir: dir });
    expect([...fine.train.labels]).toEqual([99, 0, 42]);
    expect(fine.classNames).toHaveLength(100);
    expect(fine.classNames[99]).toBe(CIFAR100_FINE_NAMES[99]);
    expect(fine.classNames[99]).toBe('worm');
    const coarse = await loadImageDataset('cifar100', { dataDir: dir, cifar100Labels: 'coarse' });
    expect([...coarse.train.labels]).toEqual([3, 19, 0]);
    expect([...coarse.test.labels]).toEqual([7, 1]);
    expect(coarse.classNames).toHaveLength(20);
    expect(coarse.train.images[PIXELS + 5]).toBe(pixelAt(1, 1, 5));
  });

  test('names from fine_label_names.txt must be 100', async () => {
    const dir = fresh('c100-names');
    writeCifar100(dir);
    writeFileSync(join(dir, 'fine_label_names.txt'), 'apple\npear\n');
    const err = await rejected(loadImageDataset('cifar100', { dataDir: dir }));
    expect(err.message).toMatch(/fine_label_names\.txt: expected 100 class names, one a line, but the file has 2/);
  });
});

describe('bad CIFAR files', () => {
  test('a truncated file is named, with its records and the bytes over', async () => {
    const dir = fresh('trunc');
    writeCifar10(dir);
    const whole = cifarFile(4, [[1], [2]]);
    writeFileSync(join(dir, 'data_batch_4.bin'), whole.subarray(0, whole.length - 100));
    const err = await rejected(loadImageDataset('cifar10', { dataDir: dir }));
    expect(err.message).toMatch(/data_batch_4\.bin: expected a whole number of 3073-byte CIFAR records .* but the file has 6046 bytes: 1 records and 2973 bytes over/);
  });

  test('a CIFAR-10 file read as CIFAR-100 (3073 is not 3074) is refused', async () => {
    const dir = fresh('wrong');
    writeFileSync(join(dir, 'train.bin'), cifarFile(1, [[1], [2]]));
    writeFileSync(join(dir, 'test.bin'), cifarFile(1, [[1, 2]]));
    const err = await rejected(loadImageDataset('cifar100', { dataDir: dir }));
    expect(err.message).toMatch(/train\.bin: expected a whole number of 3074-byte CIFAR records/);
  });

  test('a label out of range names the file and the index', async () => {
    const dir = fresh('label');
    writeCifar10(dir);
    writeFileSync(join(dir, 'test_batch.bin'), cifarFile(0, [[1], [10]]));
    const err = await rejected(loadImageDataset('cifar10', { dataDir: dir }));
    expect(err.message).toMatch(/test_batch\.bin: label 10 at index 1 is outside 0\.\.9 \(10 classes\)/);
  });

  test('a missing file: every place looked, and how to get the data', async () => {
    const dir = fresh('missing');
    writeCifar10(dir);
    rmSync(join(dir, 'data_batch_2.bin'));
    const err = await rejected(loadImageDataset('cifar10', { dataDir: dir }));
    expect(err.name).toBe('DatasetNotFoundError');
    expect(err.message).toMatch(/missing data_batch_2\.bin/);
    expect(err.message).toMatch(/cifar-10-binary\.tar\.gz.*MD5 c32a1d4ab5d03f1284b67883e8d87530/);
  });

  test('channels or a size the files do not have are refused', async () => {
    const dir = fresh('shape');
    writeCifar10(dir);
    expect((await rejected(loadImageDataset('cifar10', { dataDir: dir, channels: 1 }))).message).toMatch(/cifar10 has 3-channel images but channels 1 was asked/);
    expect((await rejected(loadImageDataset('cifar10', { dataDir: dir, imageSize: '28x28' }))).message).toMatch(/cifar10 has 32x32 images but imageSize 28x28/);
  });
});
