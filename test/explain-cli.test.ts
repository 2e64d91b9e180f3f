// `convscope explain`: the folder it writes holds the maps explain() computes (attributions.npy),
// a picture drawn from them (overlay.png) and what was explained (explain.json); bad flags are
// clear errors. Runs the command in-process (buildProgram) on a small checkpoint.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { createModel, explain } from '../src/index';
import type { CnnSpec } from '../src/index';
import { buildProgram } from '../src/cli/main';
import { parseImageSlice } from '../src/cli/explain-command';
import { decodeNpy } from '../src/formats/npy';
import { colormapLut } from '../src/viz/colormaps';
import { overlayGeometry } from '../src/probe/render';
import { decodePng } from './png-pixels';
import { fashion } from './fixtures';

const spec: CnnSpec = { conv: [{ filters: 4, kernelSize: 5, padding: 'same', pool: true }, { filters: 6, kernelSize: 3, padding: 'same', pool: true }], dense: [16], dropout: 0 };
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'convscope-explain-'));
const checkpoint = path.join(tmp, 'model.pt');
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

beforeAll(() => {
  const model = createModel(spec, { seed: 7 });
  model.save(checkpoint);
  model.dispose();
});

/** Runs `convscope explain ...args` in this process; returns what it printed. */
async function run(...args: string[]): Promise<string> {
  const printed: string[] = [];
  const write = jest.spyOn(process.stdout, 'write').mockImplementation((chunk) => { printed.push(String(chunk)); return true; });
  try {
    const program = buildProgram().exitOverride().configureOutput({ writeErr: () => undefined, writeOut: () => undefined });
    for (const command of program.commands) command.exitOverride().configureOutput({ writeErr: () => undefined, writeOut: () => undefined });
    await program.parseAsync(['node', 'convscope', 'explain', checkpoint, ...args]);
  } finally {
    write.mockRestore();
  }
  return printed.join('');
}

test('integrated gradients for test images 2:5: the .npy holds explain()\'s maps, explain.json says what they are, the overlay shows them', async () => {
  const out = path.join(tmp, 'ig');
  const printed = await run('--method', 'integrated-gradients', '--steps', '8', '--images', '2:5', '--out', out);
  expect(printed).toContain(path.join(out, 'attributions.npy'));
  expect(printed).toMatch(/completeness: largest \|sum\(attributions\) - \(f\(x\) - f\(baseline\)\)\| = /);
  const npy = decodeNpy(fs.readFileSync(path.join(out, 'attributions.npy')));
  expect(npy.descr).toBe('<f4');
  expect(npy.shape).toEqual([3, 28, 28]);
  const images = fashion().test.images.subarray(2 * 784, 5 * 784);
  const { loadModel } = await import('../src/index');
  const model = loadModel(checkpoint);
  const direct = await explain(model, images, { method: 'integrated-gradients', steps: 8 });
  model.dispose();
  expect(Array.from(npy.data as Float32Array)).toEqual(Array.from(direct.maps));

  const json = JSON.parse(fs.readFileSync(path.join(out, 'explain.json'), 'utf8'));
  expect(json).toMatchObject({
    method: 'integrated-gradients', settings: { steps: 8, baseline: 'black' }, split: 'test', dataset: 'fashion-mnist', images: '2:5',
    indices: [2, 3, 4], targets: Array.from(direct.targets), predictions: Array.from(direct.predictions),
    labels: Array.from(fashion().test.labels.subarray(2, 5)), shape: [3, 28, 28],
  });
  expect(json.deltas).toHaveLength(3);
  json.deltas.forEach((d: number, i: number) => expect(d).toBeCloseTo(direct.deltas![i], 6));

  // The overlay: image 0's pixels in the first column, its map's extremes in RdBu's end colours.
  const png = decodePng(fs.readFileSync(path.join(out, 'overlay.png')));
  const g = overlayGeometry(3, 28, 28, 4, true);
  expect([png.width, png.height]).toEqual([g.width, g.height]);
  const brightest = images.subarray(0, 784).reduce((best, v, i, a) => (v > a[best] ? i : best), 0);
  const at = (column: number, p: number) => png.rgb(g.tile(0, column).x + 4 * (p % 28) + 1, g.tile(0, column).y + 4 * Math.floor(p / 28) + 1);
  expect(at(0, brightest)).toEqual([images[brightest], images[brightest], images[brightest]]);
  const map = direct.maps.subarray(0, 784);
  const top = map.reduce((best, v, i, a) => (Math.abs(v) > Math.abs(a[best]) ? i : best), 0);
  const lut = colormapLut('RdBu');
  const end = map[top] > 0 ? 255 : 0;
  expect(at(1, top)).toEqual([lut[3 * end], lut[3 * end + 1], lut[3 * end + 2]]);
});

test('grad-cam on a chosen layer with the true labels as targets', async () => {
  const out = path.join(tmp, 'cam');
  await run('--method', 'grad-cam', '--layer', 'conv1.act', '--target', 'label', '--images', ':2', '--out', out);
  const json = JSON.parse(fs.readFileSync(path.join(out, 'explain.json'), 'utf8'));
  expect(json.settings).toEqual({ layer: 'conv1.act' });
  expect(json.targets).toEqual(Array.from(fashion().test.labels.subarray(0, 2)));
  expect(json.deltas).toBeUndefined();
});

test('--check writes the deletion and insertion AUCs of the maps and of a random order', async () => {
  const out = path.join(tmp, 'check');
  const printed = await run('--method', 'saliency', '--images', '0:2', '--out', out, '--check');
  expect(printed).toMatch(/deletion AUC \d\.\d{3} \(random order \d\.\d{3}; lower is better\), insertion AUC \d\.\d{3} \(random order \d\.\d{3}; higher is better\)/);
  const json = JSON.parse(fs.readFileSync(path.join(out, 'faithfulness.json'), 'utf8'));
  const { loadModel, faithfulness } = await import('../src/index');
  const model = loadModel(checkpoint);
  const images = fashion().test.images.subarray(0, 2 * 784);
  const f = await faithfulness(model, images, await explain(model, images, { method: 'saliency' }));
  model.dispose();
  expect(json.images.map((r: { index: number }) => r.index)).toEqual([0, 1]);
  json.images.forEach((r: { deletion: number; insertion: number; randomDeletion: number }, i: number) => {
    expect(r.deletion).toBeCloseTo(f.deletion[i], 6);
    expect(r.insertion).toBeCloseTo(f.insertion[i], 6);
    expect(r.randomDeletion).toBeCloseTo(f.randomDeletion[i], 6);
  });
  expect(json.mean.deletion).toBeCloseTo((f.deletion[0] + f.deletion[1]) / 2, 6);
  expect(printed).toMatch(/randomisation: rank correlation with the trained model's maps as layers are re-initialised from the top: fc2 -?\d\.\d{3}, fc1 -?\d\.\d{3}, conv2 -?\d\.\d{3}, conv1 -?\d\.\d{3}/);
  expect(json.randomisation.stages.map((s: { randomised: string[] }) => s.randomised)).toEqual([['fc2'], ['fc2', 'fc1'], ['fc2', 'fc1', 'conv2'], ['fc2', 'fc1', 'conv2', 'conv1']]);
  expect(json.randomisation.stages[0].perImage).toHaveLength(2);
  // ROAD beside them: the combined score of the maps and of a random order, per image and on average.
  const { road } = await import('../src/probe/road');
  const roadModel = loadModel(checkpoint);
  const r = await road(roadModel, images, await explain(roadModel, images, { method: 'saliency' }));
  roadModel.dispose();
  expect(printed).toMatch(/ROAD combined score -?\d\.\d{3} \(random order -?\d\.\d{3}; higher is better\)/);
  expect(json.road.mean).toEqual(r.mean);
  expect(json.road.images.map((i: { index: number }) => i.index)).toEqual([0, 1]);
});

describe('bad flags are clear errors', () => {
  test.each([
    ['a dense layer for grad-cam', ['--method', 'grad-cam', '--layer', 'fc1'], /^Expected a conv layer \(one of conv1, conv1.act, conv1.pool, conv2, conv2.act, conv2.pool\) for layer of method grad-cam but received "fc1"/],
    ['a setting the method does not use', ['--method', 'saliency', '--steps', '4'], /^Unknown option "steps" in explain options of method saliency/],
    ['a class outside the model\'s', ['--method', 'saliency', '--target', '10'], /^Expected integer in \[0, 9\] for target but received 10/],
    ['an unknown target word', ['--method', 'saliency', '--target', 'best'], /^Expected 'predicted', 'label', a class in \[0, 9\] or one class per image for target but received "best"/],
    ['steps < 1', ['--method', 'integrated-gradients', '--steps', '0'], /^Expected integer in \[1, 65536\] for steps but received 0/],
    ['an empty slice', ['--method', 'saliency', '--images', '5:5'], /^expected a non-empty slice of the 10000 images for --images but "5:5" selects none$/],
  ])('%s', async (_what, args, message) => {
    const err = await run(...args, '--out', path.join(tmp, 'bad')).then(() => { throw new Error('expected a rejection'); }, (e: Error) => e);
    expect(err.message).toMatch(message);
    expect(fs.existsSync(path.join(tmp, 'bad'))).toBe(false);
  });

  test('an unknown method is refused by the choices', async () => {
    const err = await run('--method', 'lime').then(() => { throw new Error('expected a rejection'); }, (e: Error) => e);
    expect(err.message).toMatch(/argument 'lime' is invalid. Allowed choices are saliency, gradient-x-input, integrated-gradients, occlusion, grad-cam, hires-cam, score-cam/);
  });
});

test('--images is a Python slice', () => {
  expect(parseImageSlice('0:8', 100)).toEqual([0, 8]);
  expect(parseImageSlice(':3', 100)).toEqual([0, 3]);
  expect(parseImageSlice('-4:', 100)).toEqual([96, 100]);
  expect(parseImageSlice('95:200', 100)).toEqual([95, 100]);
  expect(parseImageSlice('7', 100)).toEqual([7, 8]);
  expect(() => parseImageSlice('a:b', 100)).toThrow(/expected from:to/);
  expect(() => parseImageSlice('100:', 100)).toThrow(/selects none/);
});

test('writeExplanation refuses sources that do not match the maps, before writing anything', async () => {
  const { loadModel, writeExplanation } = await import('../src/index');
  const model = loadModel(checkpoint);
  const e = await explain(model, fashion().test.images.subarray(0, 2 * 784), { method: 'saliency' });
  model.dispose();
  const dir = path.join(tmp, 'never');
  expect(() => writeExplanation(dir, e, { indices: [0], pixels: new Float32Array(2 * 784) }))
    .toThrow(/^Expected 2 image indices \(one per map\) for source.indices but received an array of length 1$/);
  expect(() => writeExplanation(dir, e, { indices: [0, 1], pixels: new Float32Array(784) }))
    .toThrow(/^Expected a Float32Array of 2 images of 28x28 in \[0, 1\] for source.pixels but received a Float32Array$/);
  expect(fs.existsSync(dir)).toBe(false);
});
