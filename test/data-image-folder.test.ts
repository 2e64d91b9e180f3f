// Image folders of PNG and JPEG files written here with sharp: classes from folder names, the two
// layouts, sizes and channels decided or asked for, the decoded cache (a second load reads it, a
// changed file invalidates it), and every bad input named by file or folder.
import { appendFileSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, symlinkSync, utimesSync, writeFileSync } from 'fs';
import { tmpdir } from 'os';
import { join } from 'path';
import sharp from 'sharp';
import { loadImageDataset, type LoadImageDatasetOptions } from '../src/data/load-image-dataset';
import type { Dataset } from '../src/data/dataset-types';
import { rejected } from './helpers';

let root: string;
let cacheDir: string;
let n = 0;
const fresh = (name: string) => {
  const dir = join(root, `${name}-${n++}`);
  mkdirSync(dir, { recursive: true });
  return dir;
};
const load = (dir: string, options: LoadImageDatasetOptions = {}): Promise<Dataset> => loadImageDataset(dir, { cacheDir, ...options });

type Rgb = [number, number, number];

/** A solid-colour image of `h` x `w`, as PNG or JPEG. */
async function colourImage(file: string, rgb: Rgb, h = 8, w = 8, format: 'png' | 'jpeg' = 'png'): Promise<void> {
  mkdirSync(join(file, '..'), { recursive: true });
  const image = sharp({ create: { width: w, height: h, channels: 3, background: { r: rgb[0], g: rgb[1], b: rgb[2] } } });
  await (format === 'png' ? image.png() : image.jpeg({ quality: 100 })).toFile(file);
}

/** A grey image whose pixel (y, x) is `value(y, x)`, as a one-channel PNG. */
async function greyImage(file: string, value: (y: number, x: number) => number, h = 8, w = 8): Promise<void> {
  mkdirSync(join(file, '..'), { recursive: true });
  const pixels = Buffer.alloc(h * w);
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) pixels[y * w + x] = value(y, x);
  await sharp(pixels, { raw: { width: w, height: h, channels: 1 } }).toColourspace('b-w').png().toFile(file);
}

/** The mean of channel `c` of image `i`. */
function channelMean(split: Dataset['train'], i: number, c: number): number {
  const plane = split.height * split.width;
  const start = (i * split.channels + c) * plane;
  let sum = 0;
  for (let p = 0; p < plane; p++) sum += split.images[start + p];
  return sum / plane;
}

beforeAll(() => {
  root = mkdtempSync(join(tmpdir(), 'convscope-folder-'));
  cacheDir = join(root, 'cache');
});
afterAll(() => rmSync(root, { recursive: true, force: true }));

const RED: Rgb = [230, 20, 20];
const BLUE: Rgb = [20, 20, 230];

describe('an image folder', () => {
  test('train/ and test/ of PNG and JPEG: classes sorted, labels, channel-planar colour pixels', async () => {
    const dir = fresh('split');
    for (let i = 0; i < 3; i++) {
      await colourImage(join(dir, 'train', 'red', `r${i}.png`), RED);
      await colourImage(join(dir, 'train', 'blue', `b${i}.jpg`), BLUE, 8, 8, 'jpeg');
    }
    await colourImage(join(dir, 'test', 'red', 'r.jpg'), RED, 8, 8, 'jpeg');
    await colourImage(join(dir, 'test', 'blue', 'b.png'), BLUE);
    writeFileSync(join(dir, 'train', 'red', '.DS_Store'), 'hidden files are skipped');
    const data = await load(dir);
    expect(data.classNames).toEqual(['blue', 'red']);
    expect(data.train).toMatchObject({ count: 6, channels: 3, height: 8, width: 8 });
    expect(data.test.count).toBe(2);
    expect(data.train.images).toBeInstanceOf(Uint8Array);
    for (const split of [data.train, data.test]) {
      for (let i = 0; i < split.count; i++) {
        const [r, , b] = [0, 1, 2].map((c) => channelMean(split, i, c));
        // JPEG is lossy: within a few levels of the colour the image was made with.
        const want = split.labels[i] === 1 ? RED : BLUE;
        expect(Math.abs(r - want[0])).toBeLessThan(4);
        expect(Math.abs(b - want[2])).toBeLessThan(4);
      }
    }
    // Both classes among the first images: the folder order (class by class) is shuffled.
    expect(new Set(data.train.labels.subarray(0, 4)).size).toBe(2);
  });

  test('one folder per class: a seeded, stratified test split, the same for the same seed', async () => {
    const dir = fresh('pool');
    for (let i = 0; i < 10; i++) {
      await greyImage(join(dir, 'dark', `${i}.png`), () => 10 + i);
      await greyImage(join(dir, 'light', `${i}.png`), () => 200 + i);
    }
    const a = await load(dir, { testFraction: 0.3, seed: 5, cache: false });
    expect(a.train).toMatchObject({ count: 14, channels: 1, height: 8, width: 8 });
    expect([...a.test.labels].sort()).toEqual([0, 0, 0, 1, 1, 1]);
    const b = await load(dir, { testFraction: 0.3, seed: 5, cache: false });
    expect(b.test.images).toEqual(a.test.images);
    const c = await load(dir, { testFraction: 0.3, seed: 6, cache: false });
    expect(c.test.images).not.toEqual(a.test.images);
    // A grey pixel is its value: image i of "dark" is all 10 + i.
    const first = a.test.images[0];
    expect(a.test.labels[0] === 0 ? first >= 10 && first < 20 : first >= 200).toBe(true);
  });

  test('--channels converts: grey files to 3 equal channels, colour files to 1', async () => {
    const dir = fresh('convert');
    for (let i = 0; i < 2; i++) {
      await greyImage(join(dir, 'a', `${i}.png`), () => 77);
      await colourImage(join(dir, 'b', `${i}.png`), RED);
    }
    const colour = await load(dir, { channels: 3, testFraction: 0.5 });
    const greyIndex = [...colour.train.labels].indexOf(0);
    expect([0, 1, 2].map((c) => channelMean(colour.train, greyIndex, c))).toEqual([77, 77, 77]);
    const grey = await load(dir, { channels: 1, testFraction: 0.5 });
    expect(grey.train.channels).toBe(1);
  });

  test('mixed sizes: resized to the size asked, or the most common, with the filter stretching', async () => {
    const dir = fresh('sizes');
    for (let i = 0; i < 3; i++) await greyImage(join(dir, 'a', `${i}.png`), (y) => (y < 4 ? 0 : 255), 8, 8);
    await greyImage(join(dir, 'b', 'big.png'), (y) => (y < 8 ? 0 : 255), 16, 4);
    await greyImage(join(dir, 'b', 'small.png'), () => 128, 8, 8);
    const common = await load(dir, { imageSize: 'common', testFraction: 0.5 });
    expect(common.train).toMatchObject({ height: 8, width: 8 });
    const asked = await load(dir, { imageSize: '4x6', testFraction: 0.5 });
    expect(asked.train).toMatchObject({ height: 4, width: 6, channels: 1 });
    // Top half black, bottom half white, after the stretch as before it (16x4 -> 4x6 too).
    const all = [asked.train, asked.test];
    for (const split of all) {
      for (let i = 0; i < split.count; i++) {
        const image = split.images.subarray(i * 24, (i + 1) * 24);
        if (image[0] === image[23]) continue; // the uniform grey image
        expect(image[0]).toBeLessThan(30);
        expect(image[23]).toBeGreaterThan(225);
      }
    }
  });
});

describe('the decoded cache', () => {
  test('a second load reads the cache; changing a file invalidates it', async () => {
    const dir = fresh('cached');
    for (let i = 0; i < 3; i++) {
      await greyImage(join(dir, 'x', `${i}.png`), () => 40);
      await greyImage(join(dir, 'y', `${i}.png`), () => 90);
    }
    const first = await load(dir, { seed: 1 });
    expect(first.cache?.hit).toBe(false);
    expect(statSync(first.cache!.file).size).toBe(6 * 64 + 6);
    const second = await load(dir, { seed: 1 });
    expect(second.cache).toEqual({ file: first.cache!.file, hit: true });
    expect(second.train.images).toEqual(first.train.images);
    expect(second.test.labels).toEqual(first.test.labels);

    // The same size, a new time: the key changes, the image is decoded again.
    await greyImage(join(dir, 'x', '0.png'), () => 41);
    const later = new Date(Date.now() + 5000);
    utimesSync(join(dir, 'x', '0.png'), later, later);
    const third = await load(dir, { seed: 1 });
    expect(third.cache?.hit).toBe(false);
    expect(third.cache?.file).not.toBe(first.cache!.file);
    const values = new Set([...third.train.images, ...third.test.images]);
    expect(values.has(41)).toBe(true);

    // Other options are other entries; cache: false neither reads nor writes.
    expect((await load(dir, { seed: 2 })).cache?.hit).toBe(false);
    expect((await load(dir, { seed: 1, cache: false })).cache).toBeUndefined();
  });

  test('a cache entry that does not fit its key is rebuilt, not trusted', async () => {
    const dir = fresh('stale');
    for (let i = 0; i < 2; i++) {
      await greyImage(join(dir, 'x', `${i}.png`), () => 1);
      await greyImage(join(dir, 'y', `${i}.png`), () => 2);
    }
    const first = await load(dir, { testFraction: 0.5 });
    appendFileSync(first.cache!.file, Buffer.from([0]));
    const again = await load(dir, { testFraction: 0.5 });
    expect(again.cache?.hit).toBe(false);
    expect(again.train.images).toEqual(first.train.images);
  });
});

describe('the decoded cache, bounded and optional', () => {
  test('a folder keeps its newest 4 entries; a cache that cannot be written is a warning', async () => {
    const dir = fresh('prune');
    for (let i = 0; i < 2; i++) {
      await greyImage(join(dir, 'x', `${i}.png`), () => 3);
      await greyImage(join(dir, 'y', `${i}.png`), () => 4);
    }
    const own = join(root, 'prune-cache');
    let last: Dataset | undefined;
    for (let side = 2; side < 8; side++) last = await load(dir, { imageSize: [side, side], testFraction: 0.5, cacheDir: own });
    const tag = last!.cache!.file.split('/').pop()!.split('-')[0];
    const entries = readdirSync(join(own, 'decoded')).filter((f) => f.startsWith(`${tag}-`));
    expect(entries.filter((f) => f.endsWith('.json'))).toHaveLength(4);
    expect(entries.filter((f) => f.endsWith('.bin'))).toHaveLength(4);
    expect(entries).toContain(last!.cache!.file.split('/').pop());

    const blocked = join(root, 'not-a-folder');
    writeFileSync(blocked, 'a file where the cache folder would be');
    const warn = jest.spyOn(process, 'emitWarning').mockImplementation(() => undefined);
    try {
      const data = await load(dir, { testFraction: 0.5, cacheDir: blocked });
      expect(data.cache).toBeUndefined();
      expect(data.train.count).toBe(2);
      expect(String(warn.mock.calls[0]?.[0])).toMatch(/the decoded images of .* were not cached/);
    } finally {
      warn.mockRestore();
    }
  });
});

describe('bad image folders, each named', () => {
  async function twoClasses(dir: string): Promise<void> {
    for (let i = 0; i < 2; i++) {
      await colourImage(join(dir, 'a', `${i}.png`), RED);
      await colourImage(join(dir, 'b', `${i}.png`), BLUE);
    }
  }

  test('a truncated PNG and a truncated JPEG', async () => {
    for (const format of ['png', 'jpeg'] as const) {
      const dir = fresh(`trunc-${format}`);
      await twoClasses(dir);
      const file = join(dir, 'b', `broken.${format === 'png' ? 'png' : 'jpg'}`);
      const noisy = sharp({ create: { width: 32, height: 32, channels: 3, noise: { type: 'gaussian', mean: 128, sigma: 40 } } });
      const bytes = await (format === 'png' ? noisy.png() : noisy.jpeg()).toBuffer();
      writeFileSync(file, bytes.subarray(0, Math.floor(bytes.length / 2)));
      const err = await rejected(load(dir, { imageSize: 'common', cache: false }));
      expect(err.message).toContain(file);
      expect(err.message).toMatch(/could not be (read|decoded)/);
    }
  });

  test('a file that is not an image, and one in a format not read (SVG)', async () => {
    const dir = fresh('notimage');
    await twoClasses(dir);
    writeFileSync(join(dir, 'a', 'notes.txt'), 'not an image');
    const err = await rejected(load(dir));
    expect(err.message).toMatch(/notes\.txt: expected an image \(png, jpeg, webp, gif, tiff\) but it could not be read: .*unsupported image format/);
    rmSync(join(dir, 'a', 'notes.txt'));
    writeFileSync(join(dir, 'a', 'vector.svg'), '<svg xmlns="http://www.w3.org/2000/svg" width="8" height="8"/>');
    expect((await rejected(load(dir))).message).toMatch(/vector\.svg: expected an image in one of png, jpeg, webp, gif, tiff but it is svg/);
  });

  test('a link back to a folder above is named, not walked forever', async () => {
    const dir = fresh('loop');
    await twoClasses(dir);
    symlinkSync(join(dir, 'a'), join(dir, 'a', 'again'));
    expect((await rejected(load(dir))).message).toMatch(/again: a link back to a folder above it/);
  });

  test('an empty class folder', async () => {
    const dir = fresh('empty');
    await twoClasses(dir);
    mkdirSync(join(dir, 'c'));
    expect((await rejected(load(dir))).message).toMatch(/c: the class folder "c" holds no images/);
  });

  test('a class in train but not in test, and train/ without test/', async () => {
    const dir = fresh('onlytrain');
    await twoClasses(join(dir, 'train'));
    await colourImage(join(dir, 'test', 'a', '0.png'), RED);
    expect((await rejected(load(dir))).message).toMatch(/expected the same class folders in train\/ and test\/ but found class b in .*train but not in .*test/);
    rmSync(join(dir, 'test'), { recursive: true });
    expect((await rejected(load(dir))).message).toMatch(/has train\/ but no test\/ folder/);
  });

  test('mixed sizes without imageSize: the sizes, an example of each, and what to pass', async () => {
    const dir = fresh('mixed');
    await twoClasses(dir);
    await colourImage(join(dir, 'b', 'tall.png'), BLUE, 12, 8);
    const err = await rejected(load(dir));
    expect(err.message).toMatch(/expected images of one size but found 2 sizes \(height x width\): 8x8 \(4 images, e\.g\. .*\), 12x8 \(1 image, e\.g\. .*tall\.png\); pass imageSize \[8, 8\] \(--image-size 8x8\)/);
  });

  test('mixed channel counts without channels', async () => {
    const dir = fresh('mixedc');
    await twoClasses(dir);
    await greyImage(join(dir, 'a', 'grey.png'), () => 5);
    const err = await rejected(load(dir));
    expect(err.message).toMatch(/expected all grey or all colour images but found 1 grey \(e\.g\. .*grey\.png\) and 4 colour .*--channels 1\|3/);
  });

  test('no class folders; a name that is neither a dataset nor a path', async () => {
    const dir = fresh('flat');
    await colourImage(join(dir, 'lonely.png'), RED);
    expect((await rejected(load(dir))).message).toMatch(/expected one folder per class .* but it has no subfolders/);
    const err = await rejected(load(join(dir, 'nope')));
    expect(err.name).toBe('RangeError');
    expect(err.message).toMatch(/^Expected one of mnist, fashion-mnist, cifar10, cifar100, idx, .* for dataset but received ".*nope" of type string \(no such file or folder\)/);
  });

  test('bad options are refused by name before any file is read', async () => {
    const dir = fresh('opts');
    expect((await rejected(load(dir, { imageSize: '32by32' }))).message).toMatch(/^Expected a size HxW .* for options\.imageSize but received "32by32"/);
    expect((await rejected(load(dir, { testFraction: 1 }))).message).toMatch(/for options\.testFraction but received 1 of type number/);
    expect((await rejected(load(dir, { channels: 2 }))).message).toMatch(/^Expected 1 \(grey\) or 3 \(colour\) for channels of an image folder but received 2/);
    expect((await rejected(load(dir, { colour: true } as never))).message).toMatch(/colour/);
  });
});
