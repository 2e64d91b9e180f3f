// NumPy arrays as datasets: .npz archives (stored and deflated, as np.savez and np.savez_compressed
// write them) and .npy pairs, in every layout (N,H,W), (N,H,W,C), (N,C,H,W), uint8 and float, round
// trip to the N x C x H x W of a Split; ambiguous layouts, labels out of range or missing, and
// float pixels outside [0, 1] are refused by array name. Also IDX folders (EMNIST/KMNIST style).
import { execFileSync } from 'child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'fs';
import { tmpdir } from 'os';
import { join } from 'path';
import { zipSync } from 'fflate';
import { encodeNpy, type NpyArray } from '../src/formats/npy';
import { encodeIdx } from '../src/formats/idx';
import { loadImageDataset } from '../src/data/load-image-dataset';
import { PYTHON, rejected, testWithPython } from './helpers';

let root: string;
let n = 0;
const fresh = (name: string) => {
  const dir = join(root, `${name}-${n++}`);
  mkdirSync(dir, { recursive: true });
  return dir;
};

/** An .npz of `arrays` (deflated when `compress`, as np.savez_compressed does). */
function writeNpz(file: string, arrays: Record<string, NpyArray>, compress = false): void {
  const entries = Object.fromEntries(Object.entries(arrays).map(([key, array]) => [`${key}.npy`, new Uint8Array(encodeNpy(array))]));
  writeFileSync(file, zipSync(entries, { level: compress ? 6 : 0 }));
}

/** Images where value = f(n, c, y, x) for a known N x C x H x W, stored in `layout`. */
function imagesIn(layout: 'nchw' | 'nhwc' | 'nhw', count: number, c: number, h: number, w: number, f: (n: number, c: number, y: number, x: number) => number): NpyArray {
  const data = new Uint8Array(count * c * h * w);
  for (let i = 0; i < count; i++) {
    for (let k = 0; k < c; k++) {
      for (let y = 0; y < h; y++) {
        for (let x = 0; x < w; x++) {
          const at = layout === 'nhwc' ? ((i * h + y) * w + x) * c + k : ((i * c + k) * h + y) * w + x;
          data[at] = f(i, k, y, x);
        }
      }
    }
  }
  const shape = layout === 'nhw' ? [count, h, w] : layout === 'nhwc' ? [count, h, w, c] : [count, c, h, w];
  return { data, shape };
}

const value = (i: number, c: number, y: number, x: number) => (i * 50 + c * 17 + y * 5 + x) % 256;
const labels = (values: number[]): NpyArray => ({ data: Uint8Array.from(values), shape: [values.length] });

/** Every pixel of a split is value(i, c, y, x) at its N x C x H x W place. */
function expectPlanar(split: { images: Uint8Array | Float32Array; count: number; channels: number; height: number; width: number }, f = value): void {
  const { count, channels: c, height: h, width: w } = split;
  for (let i = 0; i < count; i++) {
    for (let k = 0; k < c; k++) {
      for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) if (split.images[((i * c + k) * h + y) * w + x] !== f(i, k, y, x)) throw new Error(`pixel ${i},${k},${y},${x}`);
    }
  }
}

beforeAll(() => {
  root = mkdtempSync(join(tmpdir(), 'convscope-arrays-'));
});
afterAll(() => rmSync(root, { recursive: true, force: true }));

describe('.npz layouts round trip to N x C x H x W', () => {
  test.each([
    ['nhw', 1, 5, 4, false],
    ['nhwc', 3, 6, 5, false],
    ['nchw', 3, 6, 5, true],
    ['nchw', 8, 9, 9, false], // any channel count for arrays
  ] as const)('%s with %d channels (%dx%d, deflated: %s)', async (layout, c, h, w, compress) => {
    const file = join(fresh('npz'), 'data.npz');
    writeNpz(file, {
      x_train: imagesIn(layout, 3, c, h, w, value), y_train: labels([0, 1, 2]),
      x_test: imagesIn(layout, 2, c, h, w, (i, k, y, x) => value(i + 3, k, y, x)), y_test: labels([2, 0]),
    }, compress);
    const data = await loadImageDataset(file);
    expect(data.name).toBe('data.npz');
    expect(data.train).toMatchObject({ count: 3, channels: c, height: h, width: w });
    expectPlanar(data.train);
    expectPlanar(data.test, (i, k, y, x) => value(i + 3, k, y, x));
    expect([...data.train.labels]).toEqual([0, 1, 2]);
    expect(data.classNames).toEqual(['0', '1', '2']);
  });

  test('float images in [0, 1] stay float; labels may be int64 of shape (N, 1)', async () => {
    const file = join(fresh('float'), 'f.npz');
    const images = { data: Float32Array.from({ length: 4 * 2 * 2 }, (_, i) => i / 16), shape: [4, 2, 2] };
    writeNpz(file, {
      train_images: images, train_labels: { data: BigInt64Array.from([0n, 1n, 1n, 0n]), shape: [4, 1] },
      test_images: images, test_labels: { data: Int32Array.from([1, 1, 0, 0]), shape: [4] },
    });
    const data = await loadImageDataset(file);
    expect(data.train.images).toBeInstanceOf(Float32Array);
    expect(data.train.images[5]).toBeCloseTo(5 / 16);
    expect([...data.train.labels]).toEqual([0, 1, 1, 0]);
  });

  test('images + labels: one pool, a seeded stratified test split', async () => {
    const file = join(fresh('pool'), 'pool.npz');
    writeNpz(file, { images: imagesIn('nhw', 20, 1, 3, 3, (i) => i), labels: labels(Array.from({ length: 20 }, (_, i) => i % 2)) });
    const a = await loadImageDataset(file, { testFraction: 0.2, seed: 3 });
    expect([a.train.count, a.test.count]).toEqual([16, 4]);
    expect([...a.test.labels].sort()).toEqual([0, 0, 1, 1]);
    // Each test image is image v of the pool (all pixels v), with label v % 2.
    for (let i = 0; i < a.test.count; i++) expect(a.test.labels[i]).toBe(a.test.images[i * 9] % 2);
    const b = await loadImageDataset(file, { testFraction: 0.2, seed: 3 });
    expect(b.test.images).toEqual(a.test.images);
  });

  test('an .npy of images with its labels in a second .npy', async () => {
    const dir = fresh('npy');
    writeFileSync(join(dir, 'x.npy'), encodeNpy(imagesIn('nhwc', 10, 3, 4, 4, value)));
    writeFileSync(join(dir, 'y.npy'), encodeNpy(labels([0, 1, 0, 1, 0, 1, 0, 1, 0, 1])));
    const data = await loadImageDataset(join(dir, 'x.npy'), { labels: join(dir, 'y.npy'), testFraction: 0.2 });
    expect(data.train).toMatchObject({ count: 8, channels: 3, height: 4, width: 4 });
    const err = await rejected(loadImageDataset(join(dir, 'x.npy')));
    expect(err.message).toMatch(/x\.npy: an \.npy file holds one array, the images; expected the labels in a second \.npy file/);
  });

  testWithPython(['numpy'])('an archive numpy itself wrote with savez_compressed (NHWC colour, uint8)', async () => {
    const file = join(fresh('numpy'), 'numpy.npz');
    execFileSync(PYTHON, ['-c', [
      'import numpy as np, sys',
      'n, h, w, c = 4, 4, 5, 3',
      'x = np.arange(n * h * w * c, dtype=np.uint8).reshape(n, h, w, c)',
      'np.savez_compressed(sys.argv[1], x_train=x, y_train=np.array([0, 1, 2, 3]), x_test=x[:2], y_test=np.array([3, 3]))',
    ].join('\n'), file]);
    const data = await loadImageDataset(file);
    expect(data.train).toMatchObject({ count: 4, channels: 3, height: 4, width: 5 });
    // Channel 1 of image 0 is x[0, :, :, 1] = 1, 4, 7, 10, 13, 16, ...
    expect([...data.train.images.subarray(20, 26)]).toEqual([1, 4, 7, 10, 13, 16]);
  });
});

describe('bad arrays, each named', () => {
  const npz = (arrays: Record<string, NpyArray>) => {
    const file = join(fresh('bad'), 'bad.npz');
    writeNpz(file, arrays);
    return file;
  };

  test('an npz without labels', async () => {
    const file = npz({ x_train: imagesIn('nhw', 2, 1, 2, 2, value), x_test: imagesIn('nhw', 2, 1, 2, 2, value), y_test: labels([0, 1]) });
    expect((await rejected(loadImageDataset(file))).message).toMatch(/bad\.npz: found images x_train but no labels: expected an array named y_train \(the archive holds x_train, x_test, y_test\)/);
    const none = npz({ arr_0: imagesIn('nhw', 2, 1, 2, 2, value) });
    expect((await rejected(loadImageDataset(none))).message).toMatch(/bad\.npz: expected arrays named x_train\+y_train\+x_test\+y_test; .* but the archive holds arr_0/);
  });

  test('labels out of range, and a count that differs from the images', async () => {
    const file = npz({ images: imagesIn('nhw', 2, 1, 2, 2, value), labels: { data: Int32Array.from([0, 300]), shape: [2] } });
    expect((await rejected(loadImageDataset(file))).message).toMatch(/bad\.npz: labels: label 300 at index 1 is outside 0\.\.255/);
    const negative = npz({ images: imagesIn('nhw', 2, 1, 2, 2, value), labels: { data: Int32Array.from([-1, 0]), shape: [2] } });
    expect((await rejected(loadImageDataset(negative))).message).toMatch(/label -1 at index 0 is outside/);
    const short = npz({ images: imagesIn('nhw', 3, 1, 2, 2, value), labels: labels([0, 1]) });
    expect((await rejected(loadImageDataset(short))).message).toMatch(/bad\.npz: labels has 2 labels but .*bad\.npz: images has 3 images \(expected the same count\)/);
  });

  test('an ambiguous layout needs layout; given, it is used', async () => {
    const file = npz({ images: imagesIn('nchw', 4, 3, 5, 3, value), labels: labels([0, 1, 0, 1]) });
    const err = await rejected(loadImageDataset(file));
    expect(err.message).toMatch(/bad\.npz: images: the layout of an array of shape \(4, 3, 5, 3\) is ambiguous: .* name it with layout 'nhwc' or 'nchw' \(--layout\)/);
    const data = await loadImageDataset(file, { layout: 'nchw', testFraction: 0.5 });
    expect(data.train).toMatchObject({ channels: 3, height: 5, width: 3 });
  });

  test('float pixels outside [0, 1], integer images that are not bytes, and a wrong rank', async () => {
    const floats = npz({ images: { data: Float32Array.from([0, 0.5, 255, 1]), shape: [1, 2, 2] }, labels: labels([0]) });
    expect((await rejected(loadImageDataset(floats))).message).toMatch(/bad\.npz: images: expected float pixel values in \[0, 1\] but element 2 is 255 \(0\.\.255 floats: divide by 255/);
    const ints = npz({ images: { data: Int32Array.from([0, 1, 2, 3]), shape: [1, 2, 2] }, labels: labels([0]) });
    expect((await rejected(loadImageDataset(ints))).message).toMatch(/bad\.npz: images: expected uint8 images .* but the array has dtype <i4/);
    const flat = npz({ images: { data: new Uint8Array(4), shape: [4] }, labels: labels([0, 0, 0, 0]) });
    expect((await rejected(loadImageDataset(flat))).message).toMatch(/expected images of shape \(N, H, W\), \(N, H, W, C\) or \(N, C, H, W\) but the array has shape \(4\)/);
  });

  test('a file that is not a zip, and a corrupt array inside one', async () => {
    const dir = fresh('notzip');
    writeFileSync(join(dir, 'junk.npz'), 'not a zip at all');
    expect((await rejected(loadImageDataset(join(dir, 'junk.npz')))).message).toMatch(/junk\.npz: expected an \.npz \(zip\) archive of \.npy arrays/);
    writeFileSync(join(dir, 'trunc.npz'), zipSync({ 'x.npy': new Uint8Array(encodeNpy(imagesIn('nhw', 2, 1, 4, 4, value))).subarray(0, 100), 'y.npy': new Uint8Array(encodeNpy(labels([0, 1]))) }));
    expect((await rejected(loadImageDataset(join(dir, 'trunc.npz')))).message).toMatch(/trunc\.npz: x: Truncated \.npy file/);
  });
});

describe('IDX folders (EMNIST, KMNIST)', () => {
  const idxImages = (count: number, fill: number) => encodeIdx({ dtype: 'uint8', dims: [count, 4, 4], data: new Uint8Array(count * 16).fill(fill) });
  const idxLabels = (values: number[]) => encodeIdx({ dtype: 'uint8', dims: [values.length], data: Uint8Array.from(values) });

  test('EMNIST: a set picked by name from several, names from its mapping (labels 1..26)', async () => {
    const dir = fresh('emnist');
    for (const set of ['emnist-letters', 'emnist-digits']) {
      writeFileSync(join(dir, `${set}-train-images-idx3-ubyte`), idxImages(3, 7));
      writeFileSync(join(dir, `${set}-train-labels-idx1-ubyte`), idxLabels([1, 2, 26]));
      writeFileSync(join(dir, `${set}-test-images-idx3-ubyte`), idxImages(2, 9));
      writeFileSync(join(dir, `${set}-test-labels-idx1-ubyte`), idxLabels([26, 1]));
    }
    writeFileSync(join(dir, 'emnist-letters-mapping.txt'), Array.from({ length: 26 }, (_, i) => `${i + 1} ${65 + i} ${97 + i}`).join('\n'));
    const data = await loadImageDataset('emnist-letters', { dataDir: dir });
    expect(data.name).toBe('emnist-letters');
    expect(data.classNames).toHaveLength(27);
    expect([data.classNames[0], data.classNames[1], data.classNames[26]]).toEqual(['0', 'A', 'Z']);
    expect(data.train).toMatchObject({ count: 3, channels: 1, height: 4, width: 4 });
    const err = await rejected(loadImageDataset(dir));
    expect(err.message).toMatch(/holds several IDX sets \(emnist-digits, emnist-letters\); name one as the dataset, e\.g\. --dataset emnist-digits --data-dir/);
  });

  test('KMNIST: gzipped files, names from the classmap, labels checked against them', async () => {
    const dir = fresh('kmnist');
    const { gzipSync } = await import('zlib');
    writeFileSync(join(dir, 'train-images-idx3-ubyte.gz'), gzipSync(idxImages(2, 1)));
    writeFileSync(join(dir, 'train-labels-idx1-ubyte.gz'), gzipSync(idxLabels([0, 2])));
    writeFileSync(join(dir, 't10k-images-idx3-ubyte.gz'), gzipSync(idxImages(1, 2)));
    writeFileSync(join(dir, 't10k-labels-idx1-ubyte.gz'), gzipSync(idxLabels([1])));
    writeFileSync(join(dir, 'kmnist_classmap.csv'), 'index,codepoint,char\n0,U+304A,お\n1,U+304D,き\n2,U+3059,す\n');
    const data = await loadImageDataset('idx', { dataDir: dir });
    expect(data.classNames).toEqual(['お', 'き', 'す']);
    expect([...data.train.labels]).toEqual([0, 2]);
    writeFileSync(join(dir, 'train-labels-idx1-ubyte'), idxLabels([0, 3]));
    const err = await rejected(loadImageDataset(dir));
    expect(err.message).toMatch(/train-labels-idx1-ubyte: label 3 at index 1 is outside 0\.\.2 \(3 classes\)/);
  });

  test('mnist by name through loadImageDataset: one channel, the limits and validation applied', async () => {
    const dir = fresh('mnist');
    writeFileSync(join(dir, 'train-images-idx3-ubyte'), idxImages(5, 3));
    writeFileSync(join(dir, 'train-labels-idx1-ubyte'), idxLabels([0, 1, 2, 3, 4]));
    writeFileSync(join(dir, 't10k-images-idx3-ubyte'), idxImages(3, 4));
    writeFileSync(join(dir, 't10k-labels-idx1-ubyte'), idxLabels([9, 8, 7]));
    const data = await loadImageDataset('mnist', { dataDir: dir, verify: false, validation: 1, limit: { test: 2 } });
    expect(data.train).toMatchObject({ count: 4, channels: 1, height: 4, width: 4 });
    expect([data.validation?.count, data.test.count]).toEqual([1, 2]);
    expect(data.classNames).toHaveLength(10);
  });

  test('a set with a file missing', async () => {
    const dir = fresh('idx-missing');
    writeFileSync(join(dir, 'train-images-idx3-ubyte'), idxImages(2, 1));
    writeFileSync(join(dir, 'train-labels-idx1-ubyte'), idxLabels([0, 1]));
    writeFileSync(join(dir, 't10k-images-idx3-ubyte'), idxImages(1, 1));
    expect((await rejected(loadImageDataset(dir))).message).toMatch(/the IDX set is missing t10k-labels-idx1-ubyte\[\.gz\]/);
  });
});
