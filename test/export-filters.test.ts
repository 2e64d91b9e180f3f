// The export script's core: PNG mosaics, .npy weights and the JSON summary, from a checkpoint and
// from a TorchScript export, and the command line itself.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { spawnSync } from 'child_process';
import { createModel } from '../src/index';
import { decodeNpy } from '../src/formats/npy';
import { exportFilters } from '../src/experiments/export-filters';
import { loadCanvas } from '../src/viz/canvas-loader';
import { smallSpec } from './fixtures';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'convscope-export-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

async function pngSize(file: string): Promise<[number, number]> {
  const image = await loadCanvas().loadImage(fs.readFileSync(file));
  return [image.width, image.height];
}

describe.each(['checkpoint', 'torchscript'])('from a %s', (kind) => {
  const model = createModel(smallSpec(), { seed: 13 });
  const file = path.join(tmp, `${kind}.pt`);
  if (kind === 'checkpoint') model.save(file); else model.exportTorchScript(file);
  const params = model.parameters();
  model.dispose();

  test('conv1 by default: npy values equal the weights, stats are right, the mosaic decodes', async () => {
    const out = path.join(tmp, `${kind}-conv1`);
    const layers = exportFilters({ checkpoint: file, out });
    expect(layers.map((l) => l.layer)).toEqual(['conv1']);
    const npy = decodeNpy(fs.readFileSync(path.join(out, 'conv1.npy')));
    expect(npy.shape).toEqual([8, 1, 5, 5]);
    expect(Array.from(npy.data as Float32Array)).toEqual(Array.from(params[0].values));
    const summary = JSON.parse(fs.readFileSync(path.join(out, 'summary.json'), 'utf8'));
    const first = Array.from(params[0].values.subarray(0, 25));
    expect(summary.layers[0].filters[0].min).toBeCloseTo(Math.min(...first), 6);
    expect(summary.layers[0].filters[0].max).toBeCloseTo(Math.max(...first), 6);
    expect(summary.layers[0].filters[0].mean).toBeCloseTo(first.reduce((a, b) => a + b, 0) / 25, 6);
    const [w, h] = await pngSize(path.join(out, 'conv1.png'));
    expect(w).toBeGreaterThan(100);
    expect(h).toBeGreaterThan(100);
  });

  test('all layers: a grid for conv2, npy for the dense layers', () => {
    const out = path.join(tmp, `${kind}-all`);
    const layers = exportFilters({ checkpoint: file, out, allLayers: true, colormap: 'viridis', normalize: 'filter' });
    expect(layers.map((l) => l.layer)).toEqual(['conv1', 'conv2', 'fc1', 'fc2']);
    expect(fs.existsSync(path.join(out, 'conv2.png'))).toBe(true);
    expect(fs.existsSync(path.join(out, 'fc1.png'))).toBe(false);
    expect(decodeNpy(fs.readFileSync(path.join(out, 'fc1.npy'))).shape).toEqual(params[4].shape);
  });
});

test('an unknown layer is a RangeError listing the layers', () => {
  const model = createModel(smallSpec(), { seed: 1 });
  const file = path.join(tmp, 'm.pt');
  model.save(file);
  model.dispose();
  expect(() => exportFilters({ checkpoint: file, out: path.join(tmp, 'x'), layer: 'conv9' })).toThrow(/one of conv1, conv2, fc1, fc2 for layer but received "conv9"/);
});

test('the command line writes the files and fails clearly on a missing checkpoint', () => {
  const cli = [path.join(__dirname, '..', 'dist', 'src', 'cli', 'main.js'), 'export-filters'];
  const model = createModel(smallSpec(), { seed: 1 });
  const file = path.join(tmp, 'cli.pt');
  model.save(file);
  model.dispose();
  const out = path.join(tmp, 'cli-out');
  const ok = spawnSync(process.execPath, [...cli, '--checkpoint', file, '--out', out], { encoding: 'utf8' });
  expect(ok.status).toBe(0);
  expect(fs.readdirSync(out).sort()).toEqual(['conv1.npy', 'conv1.png', 'summary.json']);
  const bad = spawnSync(process.execPath, [...cli, '--checkpoint', path.join(tmp, 'none.pt'), '--out', out], { encoding: 'utf8' });
  expect(bad.status).toBe(1);
  expect(bad.stderr).toMatch(/convscope: .*none\.pt/);
});
