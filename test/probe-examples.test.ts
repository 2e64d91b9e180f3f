// datasetExamples(): each channel's top images over a split, found in chunks, equal the brute-force
// ranking of the channel's maximum over positions; eager = script; the receptive fields that
// layerShapes() computes from the plan are where a pixel's change reaches (checked by perturbing
// pixels); the crops hold the image's pixels; bad input refused before native work; nothing leaked.
import { createModel, defaultSpec } from '../src/index';
import type { CnnSpec } from '../src/index';
import { native } from '../src/core/native';
import type { CnnModel } from '../src/nn/model';
import { datasetExamples } from '../src/probe/dataset-examples';
import { fieldCrop, layerShapes } from '../src/probe/layer-geometry';
import { cropTiles } from '../src/probe/probe-folders';
import { ProbeRunner } from '../src/probe/runner';
import { fashion, FASHION_INPUT_NORM, specVariants } from './fixtures';
import { settledLiveTensors } from './helpers';

const N = 784;

/** A layer's feature maps for float images, in one pass. */
async function featureMaps(model: CnnModel, layer: string, images: Float32Array) {
  const runner = new ProbeRunner(model, 1 << 12);
  let out: { values: Float32Array; channels: number; height: number; width: number } | undefined;
  await runner.featureMaps(layer, images.length / N, (row, into) => into.set(images.subarray(row * N, (row + 1) * N)), (_s, maps) => { out = maps; });
  runner.dispose();
  return out!;
}

describe('dataset examples on the tutorial network', () => {
  let eager: CnnModel;
  let script: CnnModel;
  const COUNT = 150;
  const images = () => fashion().test.images.subarray(0, COUNT * N);
  beforeAll(() => {
    eager = createModel(defaultSpec(), { seed: 11, inputNorm: FASHION_INPUT_NORM });
    script = eager.toScript();
  });
  afterAll(() => { eager?.dispose(); script?.dispose(); });

  test('chunked over the split = the brute-force ranking of each channel\'s maximum over positions; no tensor leaked', async () => {
    const channels = [0, 5, 17, 63];
    const before = await settledLiveTensors();
    const ex = await datasetExamples(eager, images(), { layer: 'conv2.act', channels, top: 6, chunkSize: 7 });
    expect(native().liveTensors()).toBe(before);
    const maps = await featureMaps(eager, 'conv2.act', Float32Array.from(images(), (v) => v / 255));
    const area = maps.height * maps.width;
    channels.forEach((c, ci) => {
      const peaks = Array.from({ length: COUNT }, (_, i) => {
        const at = (i * maps.channels + c) * area;
        let best = 0;
        for (let p = 1; p < area; ++p) if (maps.values[at + p] > maps.values[at + best]) best = p;
        return { index: i, value: maps.values[at + best], y: Math.floor(best / maps.width), x: best % maps.width };
      }).sort((a, b) => b.value - a.value || a.index - b.index).slice(0, 6);
      expect(ex.examples[ci].map(({ index, value, y, x }) => ({ index, value, y, x }))).toEqual(peaks);
    });
    expect(ex.searched).toBe(COUNT);
  });

  test('eager = script', async () => {
    const a = await datasetExamples(eager, images(), { layer: 'conv1.pool', channels: [1, 2], top: 4 });
    const b = await datasetExamples(script, images(), { layer: 'conv1.pool', channels: [1, 2], top: 4 });
    expect(b.examples.map((l) => l.map((e) => e.index))).toEqual(a.examples.map((l) => l.map((e) => e.index)));
    b.examples.flat().forEach((e, i) => expect(e.value).toBeCloseTo(a.examples.flat()[i].value, 5));
  });

  test('a vector layer: the unit\'s value, the whole image as the crop', async () => {
    const ex = await datasetExamples(eager, images(), { layer: 'fc1', channels: [3], top: 2 });
    expect(ex.field).toBeNull();
    expect(ex.examples[0][0].crop).toEqual({ y0: 0, y1: 28, x0: 0, x1: 28 });
  });

  test('crops hold the image\'s pixels where the field meets the image, 0 outside it', async () => {
    const ex = await datasetExamples(eager, images(), { layer: 'conv2.act', channels: [7], top: 3 });
    const field = ex.field!;
    // conv1 5x5 'same' (offset -2), 2x2 pooling, conv2 5x5 'same': 5 + 1 + 4 * 2 = 14 pixels.
    expect(field).toEqual({ size: [14, 14], jump: [2, 2], offset: [-6, -6] });
    const tiles = cropTiles(ex, images(), [28, 28]);
    expect(tiles.shape).toEqual([3, 14, 14]);
    ex.examples[0].forEach((e, t) => {
      for (let fy = 0; fy < 14; ++fy) {
        for (let fx = 0; fx < 14; ++fx) {
          const y = e.y * 2 - 6 + fy;
          const x = e.x * 2 - 6 + fx;
          const inside = y >= 0 && y < 28 && x >= 0 && x < 28;
          expect(tiles.data[(t * 14 + fy) * 14 + fx]).toBeCloseTo(inside ? images()[e.index * N + y * 28 + x] / 255 : 0, 6);
        }
      }
    });
  });
});

describe('receptive fields from the plan are where a pixel\'s change reaches', () => {
  /** The units of `layer` whose value changes when pixel (py, px) changes, and those whose computed field holds it. */
  async function reach(model: CnnModel, layer: string, py: number, px: number) {
    const image = Float32Array.from({ length: N }, (_, i) => 0.2 + 0.6 * ((Math.sin(i * 7.1) + 1) / 2));
    const changed = image.slice();
    changed[py * 28 + px] += 0.3;
    const a = await featureMaps(model, layer, image);
    const b = await featureMaps(model, layer, changed);
    const shape = layerShapes(model.plan).find((s) => s.name === layer)!;
    expect([a.channels, a.height, a.width]).toEqual([shape.channels, shape.height, shape.width]);
    const moved = new Set<number>();
    const field = new Set<number>();
    for (let y = 0; y < a.height; ++y) {
      for (let x = 0; x < a.width; ++x) {
        for (let c = 0; c < a.channels; ++c) {
          const at = (c * a.height + y) * a.width + x;
          if (Math.abs(a.values[at] - b.values[at]) > 1e-7) moved.add(y * a.width + x);
        }
        const crop = fieldCrop(shape.field!, y, x, [28, 28]);
        if (py >= crop.y0 && py < crop.y1 && px >= crop.x0 && px < crop.x1) field.add(y * a.width + x);
      }
    }
    return { moved: [...moved].sort((p, q) => p - q), field: [...field].sort((p, q) => p - q) };
  }

  test('exactly, without pooling (tanh, strides, valid and asymmetric same padding)', async () => {
    const spec: CnnSpec = { conv: [{ filters: 4, kernelSize: 3, stride: 2, padding: 'valid', activation: 'tanh' }, { filters: 5, kernelSize: 4, padding: 'same', activation: 'tanh' }], dense: [8], dropout: 0 };
    const model = createModel(spec, { seed: 2 });
    for (const [py, px] of [[13, 14], [0, 0], [20, 9]]) {
      const { moved, field } = await reach(model, 'conv2.act', py, px);
      expect(moved.length).toBeGreaterThan(0);
      expect(moved).toEqual(field);
    }
    // A 3x3 'valid' conv of stride 2 on 28 pixels never reads the last row, so no unit sees it; the
    // fields of conv2's bottom units, which read conv2's padding where conv1's 14th row would be,
    // still reach it: the arithmetic's field is an upper bound at padded edges (documented).
    const edge = await reach(model, 'conv2.act', 27, 5);
    expect(edge.moved).toEqual([]);
    expect(edge.field.length).toBeGreaterThan(0);
    model.dispose();
  });

  test.each(specVariants())('within the field, %s', async (_name, spec) => {
    const model = createModel(spec, { seed: 3 });
    const layers = layerShapes(model.plan).filter((s) => s.spatial).map((s) => s.name);
    for (const layer of layers) {
      const { moved, field } = await reach(model, layer, 12, 15);
      for (const unit of moved) expect(field).toContain(unit);
    }
    model.dispose();
  });
});

test('any input size: on 20x24 images the crops and positions fit the image', async () => {
  const model = createModel({ conv: [{ filters: 3, kernelSize: 5, stride: 2, padding: 'valid' }, { filters: 4, kernelSize: 3, pool: true }], dense: [6], dropout: 0, inputSize: [20, 24] }, { seed: 9 });
  const images = Float32Array.from({ length: 30 * 480 }, (_, i) => ((Math.sin(i * 1.3) + 1) / 2));
  const ex = await datasetExamples(model, images, { layer: 'conv2.act', top: 5, chunkSize: 4 });
  const shape = layerShapes(model.plan).find((s) => s.name === 'conv2.act')!;
  expect([shape.height, shape.width]).toEqual([8, 10]);
  for (const e of ex.examples.flat()) {
    expect(e.y).toBeLessThan(8);
    expect(e.x).toBeLessThan(10);
    expect(e.crop.y1).toBeLessThanOrEqual(20);
    expect(e.crop.x1).toBeLessThanOrEqual(24);
    expect(e.crop.y1 - e.crop.y0).toBeGreaterThan(0);
  }
  model.dispose();
});

describe('bad input: a clear error naming what was wrong and what was expected, before any native work', () => {
  let model: CnnModel;
  beforeAll(() => { model = createModel(defaultSpec(), { seed: 1 }); });
  afterAll(() => model?.dispose());
  const images = new Uint8Array(3 * N);

  const CASES: [string, () => Promise<unknown>, string, RegExp][] = [
    ['an unknown layer', () => datasetExamples(model, images, { layer: 'conv7' }), 'RangeError', /^Expected one of conv1, .*, fc2 for layer but received "conv7" of type string$/],
    ['no layer', () => datasetExamples(model, images, {} as never), 'TypeError', /^Expected a non-empty string for layer but received undefined$/],
    ['a channel the layer does not have', () => datasetExamples(model, images, { layer: 'conv1', channels: [32] }), 'RangeError', /^Expected integer in \[0, 31\] for channels\[0\] but received 32 of type number$/],
    ['more top images than images', () => datasetExamples(model, images, { layer: 'conv1', top: 4 }), 'RangeError', /^Expected integer in \[1, 3\] for top but received 4 of type number$/],
    ['top 0', () => datasetExamples(model, images, { layer: 'conv1', top: 0 }), 'RangeError', /^Expected integer in \[1, 3\] for top but received 0/],
    ['images of the wrong size', () => datasetExamples(model, new Uint8Array(100), { layer: 'conv1' }), 'RangeError', /^Expected whole 28x28 images/],
    ['an unknown option', () => datasetExamples(model, images, { layer: 'conv1', k: 3 } as never), 'TypeError', /^Unknown option "k" in dataset examples options; expected one of layer, channels, top, chunkSize$/],
  ];

  test.each(CASES)('%s', async (_what, call, name, message) => {
    const before = await settledLiveTensors();
    const err = await call().then(() => { throw new Error('expected a rejection'); }, (e: Error) => e);
    expect(err.name).toBe(name);
    expect(err.message).toMatch(message);
    expect(native().liveTensors()).toBe(before);
  });
});
