// attributionSummary(): mean |attribution| per true class and per confusion-matrix cell, computed
// in blocks, equals the same means computed by hand from one explain() over all the images (for
// per-image targets too, sliced per block); the counts are the label histogram and the confusion
// matrix; writeSummary's files hold the numbers; bad input refused before native work; no leak.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { createModel, defaultSpec, explain } from '../src/index';
import type { ExplainOptions } from '../src/index';
import { native } from '../src/core/native';
import { decodeNpy } from '../src/formats/npy';
import type { CnnModel } from '../src/nn/model';
import { attributionSummary, writeSummary } from '../src/probe/summary';
import { fashion, FASHION_INPUT_NORM } from './fixtures';
import { decodePng } from './png-pixels';
import { settledLiveTensors } from './helpers';

const N = 784;
const COUNT = 45;
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'convscope-summary-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

let model: CnnModel;
const images = () => fashion().test.images.subarray(0, COUNT * N);
const labels = () => fashion().test.labels.subarray(0, COUNT);
beforeAll(() => { model = createModel(defaultSpec(), { seed: 17, inputNorm: FASHION_INPUT_NORM }); });
afterAll(() => model?.dispose());

/** The means by hand from one explain() over all the images. */
async function byHand(options: ExplainOptions) {
  const e = await explain(model, images(), { ...options, labels: labels() });
  const perClass = new Float64Array(10 * N);
  const perCell = new Float64Array(100 * N);
  const classCounts = new Array(10).fill(0);
  const cellCounts = new Array(100).fill(0);
  for (let i = 0; i < COUNT; ++i) {
    const label = labels()[i];
    const cell = label * 10 + e.predictions[i];
    classCounts[label] += 1;
    cellCounts[cell] += 1;
    for (let p = 0; p < N; ++p) {
      perClass[label * N + p] += Math.abs(e.maps[i * N + p]);
      perCell[cell * N + p] += Math.abs(e.maps[i * N + p]);
    }
  }
  return {
    perClass: perClass.map((v, k) => (classCounts[Math.floor(k / N)] ? v / classCounts[Math.floor(k / N)] : 0)),
    perCell: perCell.map((v, k) => (cellCounts[Math.floor(k / N)] ? v / cellCounts[Math.floor(k / N)] : 0)),
    classCounts, cellCounts,
  };
}

function relativeGap(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let gap = 0;
  let scale = 0;
  for (let i = 0; i < a.length; ++i) { gap = Math.max(gap, Math.abs(a[i] - b[i])); scale = Math.max(scale, Math.abs(b[i])); }
  return gap / scale;
}

test.each([
  ['saliency, predicted targets', { method: 'saliency' }],
  ['gradient x input, target label', { method: 'gradient-x-input', target: 'label' }],
  ['grad-cam, one target per image (sliced per block)', { method: 'grad-cam', target: Array.from({ length: COUNT }, (_, i) => (i * 7) % 10) }],
] as const)('%s: in blocks of 7 = by hand from all the maps; counts = label histogram and confusion matrix; no tensor leaked', async (_what, options) => {
  const before = await settledLiveTensors();
  const s = await attributionSummary(model, images(), labels(), { ...options, blockSize: 7 } as never);
  expect(native().liveTensors()).toBe(before);
  const expected = await byHand(options as ExplainOptions);
  expect(Array.from(s.classCounts)).toEqual(expected.classCounts);
  expect(Array.from(s.cellCounts)).toEqual(expected.cellCounts);
  expect(relativeGap(s.perClass, expected.perClass)).toBeLessThan(1e-5);
  expect(relativeGap(s.perCell, expected.perCell)).toBeLessThan(1e-5);
  // A cell without images is all 0.
  const empty = expected.cellCounts.findIndex((c) => c === 0);
  expect(Math.max(...s.perCell.subarray(empty * N, (empty + 1) * N))).toBe(0);
});

test('writeSummary: the .npy files hold the means, summary.json the counts, both pictures drawn', async () => {
  const s = await attributionSummary(model, images(), labels(), { method: 'saliency', blockSize: 16 });
  const dir = path.join(tmp, 'summary');
  const files = writeSummary(dir, s, { split: 'test' }, fashion().classNames);
  const perClass = decodeNpy(fs.readFileSync(files.perClass));
  const perCell = decodeNpy(fs.readFileSync(files.perCell));
  expect(perClass.shape).toEqual([10, 28, 28]);
  expect(perCell.shape).toEqual([10, 10, 28, 28]);
  expect(Array.from(perClass.data as Float32Array)).toEqual(Array.from(s.perClass));
  const json = JSON.parse(fs.readFileSync(files.json, 'utf8'));
  expect(json.confusion.flat()).toEqual(Array.from(s.cellCounts));
  expect(json.classCounts).toEqual(Array.from(s.classCounts));
  expect(json).toMatchObject({ method: 'saliency', split: 'test', classNames: fashion().classNames });
  for (const png of [files.classes!, files.confusion!]) expect(decodePng(fs.readFileSync(png)).width).toBeGreaterThan(10 * 28);
});

describe('bad input: a clear error naming what was wrong and what was expected, before any native work', () => {
  const CASES: [string, () => Promise<unknown>, string, RegExp][] = [
    ['labels of the wrong length', () => attributionSummary(model, images(), labels().subarray(0, 3)), 'RangeError', /^Expected 45 labels \(one per image\) for labels but received a Uint8Array$/],
    ['no labels', () => attributionSummary(model, images(), undefined as never), 'RangeError', /^Expected 45 labels \(one per image\) for labels but received undefined$/],
    ['a label outside the classes', () => attributionSummary(model, images().subarray(0, N), [10]), 'RangeError', /^Expected integer in \[0, 9\] for labels\[0\] but received 10/],
    ['a zero block', () => attributionSummary(model, images(), labels(), { blockSize: 0 }), 'RangeError', /^Expected integer in \[1, 65536\] for blockSize but received 0/],
    ['an option of another method', () => attributionSummary(model, images(), labels(), { method: 'saliency', steps: 4 }), 'TypeError', /^Unknown option "steps" in explain options of method saliency/],
    ['an unknown layer', () => attributionSummary(model, images(), labels(), { method: 'grad-cam', layer: 'conv5' }), 'RangeError', /for layer but received "conv5"/],
    ['images of the wrong size', () => attributionSummary(model, new Uint8Array(10), []), 'RangeError', /^Expected whole 28x28 images/],
  ];
  test.each(CASES)('%s', async (_what, call, name, message) => {
    const before = await settledLiveTensors();
    const err = await call().then(() => { throw new Error('expected a rejection'); }, (e: Error) => e);
    expect(err.name).toBe(name);
    expect(err.message).toMatch(message);
    expect(native().liveTensors()).toBe(before);
  });
});
