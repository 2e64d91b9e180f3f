// Deletion and insertion curves: the areas follow the trapezoid rule, the curves start at the image's
// probability and end at the baseline's, a map that orders the pixels by their true contribution
// beats a random order (and its reverse loses to it), eager = script, bad input refused.
import { createModel, defaultSpec, explain } from '../src/index';
import type { CnnSpec } from '../src/index';
import { native } from '../src/core/native';
import { CnnModel, modelFromParameters } from '../src/nn/model';
import { attributionOrder, faithfulness, trapezoidArea } from '../src/probe/faithfulness';
import type { Explanation } from '../src/probe/explain';
import { fashion, FASHION_INPUT_NORM } from './fixtures';
import { settledLiveTensors } from './helpers';

const N = 784;
const LINEAR_SPEC: CnnSpec = { conv: [{ filters: 1, kernelSize: 1, activation: 'relu' }], dense: [], dropout: 0, classes: 2 };

/** Logit 1 = sum_p w_p (x_p + 1), logit 0 = 0 (see explain.test.ts): p(1) rises with every pixel of positive weight. */
function linearModel(weights: Float32Array): CnnModel {
  const fc = new Float32Array(2 * N);
  fc.set(weights, N);
  return modelFromParameters(LINEAR_SPEC, [
    { name: 'conv1.weight', shape: [1, 1, 1, 1], values: new Float32Array([1]) },
    { name: 'conv1.bias', shape: [1], values: new Float32Array([1]) },
    { name: 'fc1.weight', shape: [2, N], values: fc },
    { name: 'fc1.bias', shape: [2], values: new Float32Array([0, -0.5]) },
  ]);
}

function spread(count: number, seed: number, lo = 0, hi = 1): Float32Array {
  return Float32Array.from({ length: count }, (_, i) => lo + (hi - lo) * ((((Math.sin(i * 12.9898 + seed * 78.233) * 43758.5453) % 1) + 1) % 1));
}

test('the area under a curve is the trapezoid rule over x in [0, 1]', () => {
  expect(trapezoidArea([1, 0])).toBe(0.5);
  expect(trapezoidArea([1, 1, 1])).toBe(1);
  expect(trapezoidArea([0, 1, 1])).toBe(0.75);
  expect(trapezoidArea([0.2, 0.4, 0.8, 0.6, 0.2])).toBeCloseTo((0.3 + 0.6 + 0.7 + 0.4) / 4, 12);
});

test('pixels are ordered by decreasing attribution, ties by index', () => {
  expect(Array.from(attributionOrder([0.1, 0.5, -1, 0.5, 0]))).toEqual([1, 3, 0, 4, 2]);
});

describe('on a linear model, where gradient x input is each pixel\'s exact contribution', () => {
  const weights = spread(N, 4, -0.02, 0.02);
  const images = spread(2 * N, 5);
  let model: CnnModel;
  let map: Explanation;
  beforeAll(async () => {
    model = linearModel(weights);
    map = await explain(model, images, { method: 'gradient-x-input', target: 1 });
  });
  afterAll(() => model?.dispose());

  test('deletion in the map\'s order falls faster than random, insertion rises faster; the reversed map does worse than random', async () => {
    const before = await settledLiveTensors();
    const f = await faithfulness(model, images, map, { steps: 16, chunkSize: 10 });
    expect(native().liveTensors()).toBe(before);
    const reversed = await faithfulness(model, images, { ...map, maps: map.maps.map((v) => -v) }, { steps: 16 });
    for (let i = 0; i < 2; ++i) {
      expect(f.deletion[i]).toBeLessThan(f.randomDeletion[i] - 0.01);
      expect(f.insertion[i]).toBeGreaterThan(f.randomInsertion[i] + 0.01);
      expect(reversed.deletion[i]).toBeGreaterThan(f.randomDeletion[i] + 0.01);
      expect(reversed.insertion[i]).toBeLessThan(f.randomInsertion[i] - 0.01);
    }
    // The random curves do not depend on the map (nor on the chunk, beyond float rounding).
    f.randomDeletion.forEach((v, i) => expect(reversed.randomDeletion[i]).toBeCloseTo(v, 6));
  });

  test('every curve starts at the image\'s (or baseline\'s) probability and ends at the other', async () => {
    const f = await faithfulness(model, images, map, { steps: 4 });
    const points = 5;
    const pImage = model.predict(images.subarray(0, N))[1];
    const pBaseline = model.predict(new Float32Array(N))[1];
    for (let curve = 0; curve < 4; ++curve) {
      const c = f.curves.subarray(curve * points, (curve + 1) * points);
      const [start, end] = curve % 2 === 0 ? [pImage, pBaseline] : [pBaseline, pImage];
      expect(c[0]).toBeCloseTo(start, 6);
      expect(c[points - 1]).toBeCloseTo(end, 6);
    }
  });

  test('bad input is refused before any native work', async () => {
    const before = await settledLiveTensors();
    await expect(faithfulness(model, images, map, { steps: 0 })).rejects.toThrow(/^Expected integer in \[1, 784\] for steps but received 0 of type number$/);
    await expect(faithfulness(model, images.subarray(0, N), map)).rejects.toThrow(/^Expected the 2 images explained \(1568 values\) for images but received a Float32Array of 784 values$/);
    await expect(faithfulness(model, images, map, { baseline: 'grey' as never })).rejects.toThrow(/^Expected one of black, blur, uniform for baseline but received "grey"/);
    await expect(faithfulness(model, images, map, { stepz: 3 } as never)).rejects.toThrow(/^Unknown option "stepz" in faithfulness options/);
    expect(native().liveTensors()).toBe(before);
  });
});

test('eager = script on the tutorial network', async () => {
  const eager = createModel(defaultSpec(), { seed: 2, inputNorm: FASHION_INPUT_NORM });
  const script = eager.toScript();
  const images = fashion().test.images.subarray(0, 2 * N);
  const map = await explain(eager, images, { method: 'saliency' });
  const a = await faithfulness(eager, images, map, { steps: 8, baseline: 'blur' });
  const b = await faithfulness(script, images, map, { steps: 8, baseline: 'blur' });
  let worst = 0;
  a.curves.forEach((v, i) => { worst = Math.max(worst, Math.abs(v - b.curves[i])); });
  expect(worst).toBeLessThan(1e-5);
  eager.dispose();
  script.dispose();
});
