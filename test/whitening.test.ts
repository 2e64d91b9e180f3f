// Patch-whitening initialisation (trainCnn's whiten): the filters decorrelate the training patches
// to unit variance, the first convolution takes them in pairs of opposite sign on both paths, and bad
// settings are refused.
import { native, valuesOf } from '../src/core/native';
import { tidy } from '../src/core/tidy';
import { createModel, trainCnn } from '../src/index';
import { resolveTrainOptions } from '../src/train/options';
import { whiteningFilters } from '../src/train/whitening';
import { fashion } from './fixtures';
import { expectError, rejected } from './helpers';

const SIDE = 28;
const N = 200;
const MEAN = 0.29;
const STD = 0.35;

/** Every k x k patch of the first N images, standardised, as rows. */
function patches(k: number): Float64Array[] {
  const images = fashion().train.images;
  const rows: Float64Array[] = [];
  for (let i = 0; i < N; ++i) {
    for (let r = 0; r + k <= SIDE; ++r) {
      for (let c = 0; c + k <= SIDE; ++c) {
        const row = new Float64Array(k * k);
        for (let y = 0; y < k; ++y) for (let x = 0; x < k; ++x) row[y * k + x] = (images[i * SIDE * SIDE + (r + y) * SIDE + c + x] / 255 - MEAN) / STD;
        rows.push(row);
      }
    }
  }
  return rows;
}

describe('patch whitening', () => {
  test('the filters turn the patches into uncorrelated components of unit variance, largest first, then their negatives', () => {
    const k = 3;
    const filters = tidy(() => {
      const images = new (native().Tensor)(fashion().train.images.subarray(0, N * SIDE * SIDE), [N, SIDE, SIDE]);
      return valuesOf(native().whitening.filters(images, k, MEAN, STD, 1e-9), 'float32');
    });
    expect(filters.length).toBe(2 * k * k * k * k);
    const rows = patches(k);
    const outputs = rows.map((p) => Array.from({ length: k * k }, (_, f) => p.reduce((s, v, j) => s + v * filters[f * k * k + j], 0)));
    const mean = Array.from({ length: k * k }, (_, f) => outputs.reduce((s, o) => s + o[f], 0) / outputs.length);
    for (let a = 0; a < k * k; ++a) {
      for (let b = 0; b < k * k; ++b) {
        const cov = outputs.reduce((s, o) => s + (o[a] - mean[a]) * (o[b] - mean[b]), 0) / (outputs.length - 1);
        expect([a, b, Math.abs(cov - (a === b ? 1 : 0)) < 2e-3]).toEqual([a, b, true]);
      }
    }
    for (let j = 0; j < k * k * k * k; ++j) expect(filters[k * k * k * k + j]).toBe(-filters[j]);
  });

  test.each(['eager', 'script'] as const)('trainCnn({ whiten }) (%s) starts conv1 from the filters in +/- pairs; other filters keep their start', async (mode) => {
    const spec = { conv: [{ filters: 24, kernelSize: 3, padding: 'same' as const, pool: true }], dense: [], dropout: 0, batchNorm: true };
    const settings = { eps: 5e-4, images: 300 };
    const plain = createModel(spec, { seed: 4 });
    // The covariance is taken over the 300 training images the run has; learningRate tiny: the weights
    // after its one step are the start's to 1e-5.
    const result = await trainCnn({ dataset: fashion(), spec, mode, seed: 4, whiten: settings, limit: 300, batchSize: 300, testLimit: 20, learningRate: 1e-12 });
    const { values, count } = whiteningFilters(result.model, fashion().train, settings);
    const start = result.model.parameters().find((p) => p.name === 'conv1.weight')!.values;
    expect(count).toBe(18);
    for (let j = 0; j < values.length; ++j) expect(Math.abs(start[j] - values[j])).toBeLessThan(1e-4);
    // Pairs: filter 1 is filter 0 negated.
    for (let j = 0; j < 9; ++j) expect(start[9 + j]).toBeCloseTo(-start[j], 5);
    const untouched = plain.parameters().find((p) => p.name === 'conv1.weight')!.values;
    for (let j = values.length; j < untouched.length; ++j) expect(Math.abs(start[j] - untouched[j])).toBeLessThan(1e-4);
    for (const m of [plain, result.model]) m.dispose();
  });

  test('bad settings are refused, naming the option', async () => {
    expectError(() => resolveTrainOptions({ whiten: { eps: 0 } }), 'RangeError', /for whiten.eps but received 0/);
    expectError(() => resolveTrainOptions({ whiten: { images: 0 } }), 'RangeError', /for whiten.images but received 0/);
    expectError(() => resolveTrainOptions({ whiten: { size: 3 } as never }), 'TypeError', /Unknown option "size" in whiten/);
    expectError(() => resolveTrainOptions({ whiten: 'yes' as never }), 'TypeError', /for whiten but received "yes"/);
    const model = createModel({ conv: [{ filters: 4, kernelSize: 3 }], dense: [], dropout: 0 });
    expectError(() => resolveTrainOptions({ whiten: true, initialModel: model }), 'TypeError', /Expected either whiten or initialModel for whiten but received true .*together with initialModel/);
    model.dispose();
    const err = await rejected(trainCnn({ dataset: fashion(), spec: { conv: [], dense: [8], dropout: 0 }, whiten: true, limit: 64, testLimit: 10 }));
    expect(err.message).toMatch(/Expected a spec whose first layer is a convolution of one-channel images for whiten .* \(the spec has no convolution\)/);
    expect(resolveTrainOptions({ whiten: true }).whiten).toEqual({ eps: 5e-4, images: 5000 });
    expect(resolveTrainOptions({ whiten: false }).whiten).toBeUndefined();
  });
});
