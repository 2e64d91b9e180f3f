// Everything downstream of training on colour data: the run folder's pictures (colour mosaic, the
// per-channel view, augmented samples, TensorBoard), activation maps with the input in colour, the
// report, an experiment (sweep-kernel) on a colour dataset, and the browser demo's model folder.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { buildReport, renderActivations, setNumThreads, sweepKernelSizes, trainCnn } from '../src/index';
import { prepareDemoFolder } from '../src/demo/demo-server';
import type { Split } from '../src/data/datasets';
import { layoutFeatureMaps, layoutFilterMosaic } from '../src/viz/mosaic';
import { hueDataset, hueImages, PLANE } from './hue-data';
import { decodePng } from './png-pixels';
import { spawnSync } from 'child_process';
import { zipSync } from 'fflate';
import { encodeNpy } from '../src/formats/npy';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'convscope-colour-downstream-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));
beforeAll(() => setNumThreads(1));

const DATA = hueDataset(hueImages(512, 11), hueImages(128, 12), 3);
const spec = () => ({ conv: [{ filters: 6, kernelSize: 5, padding: 'same' as const, pool: true }], dense: [16], dropout: 0 });

/** Whether a picture has saturated pixels (some pixel whose channels differ by more than `by`). */
function hasColour(png: Buffer, by = 40): boolean {
  const { data } = decodePng(png);
  for (let i = 0; i < data.length; i += 4) {
    if (Math.max(data[i], data[i + 1], data[i + 2]) - Math.min(data[i], data[i + 1], data[i + 2]) > by) return true;
  }
  return false;
}

describe('a colour run and what follows it', () => {
  const runDir = path.join(tmp, 'run');

  beforeAll(async () => {
    const { model } = await trainCnn({ dataset: DATA, spec: spec(), epochs: 1, batchSize: 64, seed: 2, runDir, augment: { shift: 2, flip: true } });
    model.dispose();
  });

  test('the run folder holds conv1\'s filters in colour, the per-channel view, colour augmented samples and TensorBoard images', () => {
    const mosaic = fs.readFileSync(path.join(runDir, 'conv1-filters.png'));
    const tile = layoutFilterMosaic([6, 3, 5, 5], { labels: true, colorbar: true }).tiles[0];
    expect(decodePng(mosaic).width).toBeGreaterThanOrEqual(tile.x + tile.w);
    expect(hasColour(mosaic)).toBe(true);
    expect(fs.existsSync(path.join(runDir, 'conv1-channels.png'))).toBe(true);
    expect(hasColour(fs.readFileSync(path.join(runDir, 'augmented.png')), 20)).toBe(true);
    const events = fs.readdirSync(runDir).filter((f) => f.startsWith('events.out.tfevents'));
    expect(events.length).toBeGreaterThan(0);
  });

  test('activation maps show the colour input beside the maps; the report draws them for a colour run', () => {
    const { loadModel } = require('../src/index') as typeof import('../src/index');
    const model = loadModel(path.join(runDir, 'model.pt'));
    try {
      const image = DATA.test.images.subarray(0, 3 * PLANE);
      const png = decodePng(renderActivations(model, image, 'conv1.act'));
      // The input panel itself is in colour (the maps beside it are viridis either way).
      const { input } = layoutFeatureMaps([1, 3, 16, 16], [1, 6, 16, 16], { title: 'conv1.act: 6 feature maps' });
      const [r, g, b] = png.rgb(input.x + Math.floor(input.w / 2), input.y + Math.floor(input.h / 2));
      expect(Math.max(r, g, b) - Math.min(r, g, b)).toBeGreaterThan(10);
      expect(() => renderActivations(model, image.subarray(0, PLANE), 'conv1.act')).toThrow(/one 3x16x16 image \(768 values\)/);
    } finally {
      model.dispose();
    }
    const report = buildReport([runDir], { out: path.join(tmp, 'report'), dataset: DATA });
    expect(report.missing).toEqual([]);
    expect(report.assets.some((a) => /activations-/.test(a))).toBe(true);
  });

  test('probing explains the colour run\'s model: a map per channel ([n, 3, H, W]), the CAMs one per pixel', async () => {
    const { explain, loadModel } = require('../src/index') as typeof import('../src/index');
    const model = loadModel(path.join(runDir, 'model.pt'));
    try {
      const images = DATA.test.images.subarray(0, 3 * 3 * PLANE);
      expect((await explain(model, images, { method: 'integrated-gradients', steps: 8 })).shape).toEqual([3, 3, 16, 16]);
      expect((await explain(model, images, { method: 'grad-cam' })).shape).toEqual([3, 1, 16, 16]);
    } finally {
      model.dispose();
    }
  });

  test('the demo folder carries the channels and the test images as bytes, channel-planar', () => {
    const { loadModel } = require('../src/index') as typeof import('../src/index');
    const model = loadModel(path.join(runDir, 'model.pt'));
    const dir = path.join(tmp, 'demo');
    try {
      prepareDemoFolder(model, dir, DATA.test as Split, DATA.classNames);
      const meta = JSON.parse(fs.readFileSync(path.join(dir, 'meta.json'), 'utf8'));
      expect(meta.inputChannels).toBe(3);
      const samples = JSON.parse(fs.readFileSync(path.join(dir, 'samples.json'), 'utf8'));
      const bytes = Buffer.from(samples.images, 'base64');
      expect(bytes.length).toBe(samples.count * 3 * PLANE);
      expect(bytes[PLANE]).toBe(Math.round((DATA.test.images as Float32Array)[PLANE] * 255));
    } finally {
      model.dispose();
    }
  });
});

test('sweep-kernel runs on a colour dataset: its network takes the data\'s channels, size and classes', async () => {
  const result = await sweepKernelSizes({ dataset: DATA, sizes: [3, 5], epochs: 1, outDir: path.join(tmp, 'sweep'), batchSize: 64 });
  expect(result.rows.map((r) => r.kernelSize)).toEqual([3, 5]);
  // conv1 of a 3-channel network: 3 x k x k weights per filter, plus a bias.
  expect(result.rows.map((r) => r.conv1Parameters)).toEqual([32 * (3 * 9 + 1), 32 * (3 * 25 + 1)]);
  for (const r of result.rows) expect(r.testAccuracy).toBeGreaterThan(0.5);
});

/** hue.npz in tmp: colour arrays (N, 3, 16, 16) float32, 256 training and 64 test images. */
function writeHueNpz(): string {
  const file = path.join(tmp, 'hue.npz');
  if (fs.existsSync(file)) return file;
  const train = hueImages(256, 21);
  const test = hueImages(64, 22);
  const npy = (data: Float32Array | Uint8Array, shape: number[]) => new Uint8Array(encodeNpy({ data, shape }));
  fs.writeFileSync(file, zipSync({
    'x_train.npy': npy(train.colour, [train.count, 3, 16, 16]), 'y_train.npy': npy(train.labels, [train.count]),
    'x_test.npy': npy(test.colour, [test.count, 3, 16, 16]), 'y_test.npy': npy(test.labels, [test.count]),
  }));
  return file;
}

const cli = path.join(__dirname, '..', 'dist', 'src', 'cli', 'main.js');

test('convscope sweep-kernel --dataset file.npz: an experiment from the CLI on colour arrays', () => {
  const file = writeHueNpz();
  const out = path.join(tmp, 'cli-sweep');
  const run = spawnSync(process.execPath, [cli, 'sweep-kernel', '--dataset', file, '--sizes', '3', '--limit', '128', '--out', out], { encoding: 'utf8' });
  expect(run.stderr).not.toMatch(/convscope:/);
  expect(run.status).toBe(0);
  const results = JSON.parse(fs.readFileSync(path.join(out, 'results.json'), 'utf8'));
  // 128 training images of 3 channels, 4 classes: conv1 has 32 filters of 3 x 3 x 3 weights and a bias.
  expect(JSON.stringify(results)).toMatch(/"conv1Parameters":\s*896/);
});

test('convscope report on a run trained on colour arrays draws its activation maps from the run\'s own data', () => {
  const runs = path.join(tmp, 'cli-runs');
  const train = spawnSync(process.execPath, [cli, 'train', '--dataset', writeHueNpz(), '--epochs', '1', '--runs', runs, '--name', 'hue', '--no-pictures'], { encoding: 'utf8' });
  expect(train.status).toBe(0);
  const [run] = fs.readdirSync(runs);
  const out = path.join(tmp, 'cli-report');
  const report = spawnSync(process.execPath, [cli, 'report', path.join(runs, run), '--out', out], { encoding: 'utf8' });
  expect(report.stderr).toBe('');
  expect(report.status).toBe(0);
  const assets = fs.readdirSync(path.join(out, 'assets'), { recursive: true }) as string[];
  expect(assets.filter((a) => /activations-/.test(a))).toHaveLength(4);
});
