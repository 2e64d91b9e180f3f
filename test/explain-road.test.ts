// ROAD: the noisy linear imputation solves its system (each removed pixel the weighted mean of its
// neighbours; exact on a linear ramp inside the image), the combined score flips sign with the map,
// a map of the model beats its reverse and a random order on the tutorial network, nothing leaks,
// and bad input is refused before native work.
import { createModel, defaultSpec, explain } from '../src/index';
import type { Explanation } from '../src/index';
import { native } from '../src/core/native';
import type { CnnModel } from '../src/nn/model';
import { attributionOrder } from '../src/probe/faithfulness';
import { imputeLinear, road } from '../src/probe/road';
import { fashion, FASHION_INPUT_NORM } from './fixtures';
import { settledLiveTensors } from './helpers';

const H = 28;
const W = 28;
const N = H * W;

describe('noisy linear imputation', () => {
  test('each removed pixel is the weighted mean of its neighbours (1/6 direct, 1/12 diagonal, outside the image dropped)', () => {
    const image = Float32Array.from({ length: N }, (_, i) => ((Math.sin(i * 3.7) + 1) / 2));
    const removed = Uint8Array.from({ length: N }, (_, i) => ((i * 7919) % 10 < 6 ? 1 : 0));
    removed[0] = 1; // a corner
    const out = imputeLinear(image, removed, H, W);
    for (let p = 0; p < N; ++p) {
      if (!removed[p]) { expect(out[p]).toBe(image[p]); continue; }
      const y = Math.floor(p / W);
      const x = p % W;
      let sum = 0;
      let weights = 0;
      for (let dy = -1; dy <= 1; ++dy) {
        for (let dx = -1; dx <= 1; ++dx) {
          if ((dy === 0 && dx === 0) || y + dy < 0 || y + dy >= H || x + dx < 0 || x + dx >= W) continue;
          const weight = dy === 0 || dx === 0 ? 1 / 6 : 1 / 12;
          sum += weight * out[(y + dy) * W + x + dx];
          weights += weight;
        }
      }
      expect(out[p]).toBeCloseTo(sum / weights, 5);
    }
  });

  test('exact on a linear ramp for a hole inside the image; a constant stays constant', () => {
    const ramp = Float32Array.from({ length: N }, (_, i) => 0.01 * Math.floor(i / W) + 0.02 * (i % W));
    const removed = new Uint8Array(N);
    for (let y = 8; y < 20; ++y) for (let x = 5; x < 15; ++x) removed[y * W + x] = 1;
    const out = imputeLinear(ramp, removed, H, W);
    for (let p = 0; p < N; ++p) expect(out[p]).toBeCloseTo(ramp[p], 5);
    const flat = imputeLinear(new Float32Array(N).fill(0.4), removed, H, W);
    for (const v of flat) expect(v).toBeCloseTo(0.4, 6);
  });
});

describe('ROAD on the tutorial network', () => {
  let model: CnnModel;
  const COUNT = 6;
  const images = () => fashion().test.images.subarray(0, COUNT * N);
  beforeAll(() => { model = createModel(defaultSpec(), { seed: 23, inputNorm: FASHION_INPUT_NORM }); });
  afterAll(() => model?.dispose());

  test('a map and its negation get opposite scores; occlusion of the model beats its reverse; no tensor leaked', async () => {
    const occlusion = await explain(model, images(), { method: 'occlusion' });
    // Occlusion's window averages tie; the ranks (ties broken by index) keep its order without ties,
    // so that the negated map's order is exactly the reverse.
    const maps = new Float32Array(COUNT * N);
    for (let i = 0; i < COUNT; ++i) attributionOrder(occlusion.maps.subarray(i * N, (i + 1) * N)).forEach((p, r) => { maps[i * N + p] = N - r; });
    const e: Explanation = { ...occlusion, maps };
    const negated: Explanation = { ...e, maps: e.maps.map((v) => -v) };
    const before = await settledLiveTensors();
    const a = await road(model, images(), e, { fractions: [0.2, 0.5, 0.8], seed: 4 });
    const b = await road(model, images(), negated, { fractions: [0.2, 0.5, 0.8], seed: 4 });
    expect(native().liveTensors()).toBe(before);
    for (let i = 0; i < COUNT; ++i) expect(b.combined[i]).toBeCloseTo(-a.combined[i], 6);
    // The random order is the same for both, and does not depend on the map.
    expect(Array.from(b.randomCombined)).toEqual(Array.from(a.randomCombined));
    expect(a.mean.combined).toBeGreaterThan(a.mean.randomCombined);
    expect(a.mean.combined).toBeGreaterThan(0);
    expect(a.morf).toHaveLength(COUNT * 3);
  });

  test.each([
    ['fractions outside (0, 1)', { fractions: [0.5, 1] }, 'RangeError', /^Expected a number in \(0, 1\) for fractions\[1\] but received 1 of type number$/],
    ['no fractions', { fractions: [] }, 'TypeError', /^Expected a non-empty array of fractions in \(0, 1\) for fractions but received an array of length 0$/],
    ['negative noise', { noise: -0.1 }, 'RangeError', /^Expected a number in \[0, 1\] for noise but received -0.1/],
    ['an unknown option', { percentiles: [10] }, 'TypeError', /^Unknown option "percentiles" in road options; expected one of fractions, noise, seed, chunkSize$/],
  ] as const)('bad input, before any native work: %s', async (_what, options, name, message) => {
    const e = await explain(model, images().subarray(0, N), { method: 'saliency' });
    const before = await settledLiveTensors();
    const err = await road(model, images().subarray(0, N), e, options as never).then(() => { throw new Error('expected a rejection'); }, (x: Error) => x);
    expect(err.name).toBe(name);
    expect(err.message).toMatch(message);
    expect(native().liveTensors()).toBe(before);
  });

  test('images that are not the ones explained', async () => {
    const e = await explain(model, images().subarray(0, N), { method: 'saliency' });
    const err = await road(model, images().subarray(0, 2 * N), e).catch((x: Error) => x);
    expect((err as Error).message).toBe('Expected the 1 images explained (784 values) for images but received a Uint8Array of 1568 values');
  });
});
