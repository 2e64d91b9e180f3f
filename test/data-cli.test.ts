// The data sources end to end: `convscope train --dataset <folder|file.npz>` with the data flags
// trains on them, records them in config.json, and a bad source fails before a run folder is made;
// trainCnn takes the same sources and its data option.
import { spawnSync } from 'child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'fs';
import { tmpdir } from 'os';
import { join } from 'path';
import sharp from 'sharp';
import { zipSync } from 'fflate';
import { encodeNpy } from '../src/formats/npy';
import { setNumThreads, trainCnn } from '../src/index';

const cli = join(__dirname, '..', 'dist', 'src', 'cli', 'main.js');
let root: string;
const env = () => ({ ...process.env, XDG_CACHE_HOME: join(root, 'cache'), OMP_NUM_THREADS: '1' });

/** Two classes told apart by colour: red and blue squares, 12x12, PNG and JPEG alike. */
async function colourFolder(dir: string, perClass: number): Promise<void> {
  for (const [name, rgb] of [['blue', [30, 30, 220]], ['red', [220, 30, 30]]] as const) {
    mkdirSync(join(dir, name), { recursive: true });
    for (let i = 0; i < perClass; i++) {
      const image = sharp({ create: { width: 12, height: 12, channels: 3, background: { r: rgb[0], g: rgb[1] + 3 * i, b: rgb[2] } } });
      await image.toFile(join(dir, name, `${i}.${i % 2 ? 'png' : 'jpg'}`));
    }
  }
}

beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), 'convscope-data-cli-'));
  await colourFolder(join(root, 'squares'), 10);
  setNumThreads(1);
});
afterAll(() => rmSync(root, { recursive: true, force: true }));

test('train --dataset <image folder> --image-size --data-seed: a colour run, recorded with its data options', () => {
  const runs = join(root, 'runs');
  const run = spawnSync(process.execPath, [cli, 'train', '--dataset', join(root, 'squares'), '--image-size', '8x8', '--test-fraction', '0.3',
    '--data-seed', '3', '--epochs', '2', '--batch-size', '4', '--runs', runs, '--no-pictures'], { encoding: 'utf8', env: env() });
  expect(run.stderr).not.toMatch(/Error/);
  expect(run.status).toBe(0);
  expect(run.stdout).toMatch(/final test accuracy: 100\.00%/);
  const [folder] = readdirSync(runs);
  expect(folder).toMatch(/-squares-eager$/);
  const config = JSON.parse(readFileSync(join(runs, folder, 'config.json'), 'utf8'));
  expect(config.options.dataset).toBe(join(root, 'squares'));
  expect(config.options.data).toEqual({ imageSize: '8x8', testFraction: 0.3, seed: 3 });
  expect([config.trainCount, config.testCount]).toEqual([14, 6]);
});

test('train --dataset <file.npz>: trains on the arrays', () => {
  const file = join(root, 'bars.npz');
  // Class 0: a bright top half; class 1: a bright bottom half (grey, 8x8, NHW).
  const count = 40;
  const images = new Uint8Array(count * 64);
  const labels = new Uint8Array(count);
  for (let i = 0; i < count; i++) {
    labels[i] = i % 2;
    for (let p = 0; p < 64; p++) images[i * 64 + p] = (p < 32) === (labels[i] === 0) ? 200 + (i % 50) : 10;
  }
  writeFileSync(file, zipSync({ 'images.npy': new Uint8Array(encodeNpy({ data: images, shape: [count, 8, 8] })), 'labels.npy': new Uint8Array(encodeNpy({ data: labels, shape: [count] })) }));
  const runs = join(root, 'runs-npz');
  const run = spawnSync(process.execPath, [cli, 'train', '--dataset', file, '--epochs', '3', '--batch-size', '8', '--runs', runs, '--no-pictures'], { encoding: 'utf8', env: env() });
  expect(run.status).toBe(0);
  expect(run.stdout).toMatch(/final test accuracy: 100\.00%/);
  expect(readdirSync(runs)[0]).toMatch(/-bars-eager$/);
});

test('a bad source fails before any run folder is made, naming the file', async () => {
  const bad = join(root, 'bad-images');
  await colourFolder(bad, 2);
  writeFileSync(join(bad, 'red', 'broken.png'), 'not really a PNG');
  const runs = join(root, 'runs-bad');
  const run = spawnSync(process.execPath, [cli, 'train', '--dataset', bad, '--runs', runs], { encoding: 'utf8', env: env() });
  expect(run.status).not.toBe(0);
  expect(run.stderr).toMatch(/broken\.png: expected an image \(png, jpeg, webp, gif, tiff\) but it could not be read/);
  expect(readdirSync(runs)).toEqual([]);
  const unknown = spawnSync(process.execPath, [cli, 'train', '--dataset', 'cifar11', '--runs', runs], { encoding: 'utf8', env: env() });
  expect(unknown.stderr).toMatch(/Expected one of mnist, fashion-mnist, cifar10, cifar100, idx, .* for dataset but received "cifar11"/);
});

test('tune --dataset <image folder> --image-size --workers 2: trials on the folder\'s two colour classes, in two worker processes', () => {
  const dir = join(root, 'tune');
  writeFileSync(join(root, 'space.json'), JSON.stringify({ learningRate: [0.001, 0.003] }));
  const run = spawnSync(process.execPath, [cli, 'tune', '--dataset', join(root, 'squares'), '--image-size', '8x8', '--sampler', 'grid', '--workers', '2', '--limit', '14',
    '--validation', '4', '--epochs', '1', '--batch-size', '4', '--dir', dir, '--space', join(root, 'space.json')], { encoding: 'utf8', env: env() });
  expect(run.stderr).not.toMatch(/convscope:/);
  expect(run.status).toBe(0);
  const tune = JSON.parse(readFileSync(join(dir, 'tune.json'), 'utf8'));
  expect(JSON.stringify(tune)).toContain('"imageSize":"8x8"');
});

test('trainCnn takes an image folder with its data options', async () => {
  const { model, testAccuracy } = await trainCnn({
    dataset: join(root, 'squares'), data: { imageSize: [6, 6], cacheDir: join(root, 'cache') }, epochs: 2, batchSize: 4, pictures: false,
  });
  try {
    expect(model.inputSize).toEqual([6, 6]);
    expect(testAccuracy).toBe(1);
  } finally {
    model.dispose();
  }
});
