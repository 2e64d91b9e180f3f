// Issue 16's validation gaps that are not options (those are in bad-options.test.ts): non-finite
// pixels (#13), async tidy() callbacks (#14), and a class limit that matches what evaluation supports (#6).
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { createModel, evaluate, loadTorchScript, planModel, renderActivations, tidy } from '../src/index';
import type { Classifier } from '../src/nn/model';
import { MAX_CLASSES } from '../src/nn/spec';
import { native } from '../src/core/native';
import { fromHost, ops } from '../src/core/ops';
import { smallSpec } from './fixtures';
import { settledLiveTensors } from './helpers';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'convscope-validation-gaps-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

/** The error fn throws; by name, since the addon's errors come from another realm than jest's. */
function errorOf(fn: () => unknown): Error {
  try {
    fn();
  } catch (err) {
    return err as Error;
  }
  throw new Error('expected an error');
}

describe('non-finite pixels in float images (#13)', () => {
  const eager = createModel(smallSpec(), { seed: 1 });
  const scripted = eager.toScript();
  const file = path.join(tmp, 'model.ts.pt');
  eager.exportTorchScript(file);
  const torchScript = loadTorchScript(file);
  const models: [string, Classifier & { predict(images: Float32Array): Float32Array }][] = [['eager', eager], ['script', scripted], ['TorchScript', torchScript]];
  afterAll(() => { for (const [, m] of models) m.dispose(); });

  /** Three images of 0.5 with `bad` at index 801 (the second image) and again in the third. */
  const imagesWith = (bad: number): Float32Array => {
    const images = new Float32Array(784 * 3).fill(0.5);
    images[784 + 17] = bad;
    images[2 * 784 + 5] = bad;
    return images;
  };

  test.each(models.flatMap(([name, model]) => [NaN, Infinity, -Infinity].map((bad) => [name, bad, model] as const)))(
    '%s predict refuses %s, naming the index of the first bad value, before any tensor is made',
    async (_name, bad, model) => {
      const before = await settledLiveTensors();
      const err = errorOf(() => model.predict(imagesWith(bad)));
      expect(err.name).toBe('RangeError');
      expect(err.message).toBe(`Expected finite pixel values for images but images[801] is ${bad}`);
      expect(native().liveTensors()).toBe(before);
    },
  );

  test('finite float images still give probabilities', () => {
    const probs = eager.predict(new Float32Array(784 * 2).fill(0.5));
    expect(probs).toHaveLength(20);
    expect(probs.every(Number.isFinite)).toBe(true);
  });

  test('renderActivations refuses a NaN pixel before the forward pass', () => {
    const image = new Float32Array(784).fill(0.5);
    image[300] = NaN;
    const err = errorOf(() => renderActivations(eager, image, 'conv1'));
    expect(err.name).toBe('RangeError');
    expect(err.message).toMatch(/image\[300\] is NaN/);
  });
});

describe('tidy() with an async callback (#14)', () => {
  const made = () => fromHost(new Float32Array([1, 2, 3]), [3]);

  test('is refused with a TypeError, and what it made before its first await is freed', async () => {
    const before = await settledLiveTensors();
    let resumed = false;
    const err = errorOf(() => tidy(async () => {
      ops().affine(made(), 2, 0);
      await null;
      resumed = true;
    }));
    expect(err.name).toBe('TypeError');
    expect(err.message).toMatch(/Expected a synchronous function for tidy\(\) but received one that returned a Promise/);
    expect(native().liveTensors()).toBe(before);
    expect(resumed).toBe(false);
  });

  test('a function returning any thenable is refused too', () => {
    const err = errorOf(() => tidy(() => ({ then: () => undefined })));
    expect(err.name).toBe('TypeError');
    expect(err.message).toMatch(/synchronous function for tidy\(\)/);
  });

  test('the enclosing scope still works after an inner async callback was refused', async () => {
    const before = await settledLiveTensors();
    const kept = tidy(() => {
      const outer = made();
      expect(() => tidy(async () => made())).toThrow(/synchronous function/);
      return outer;
    });
    expect(native().liveTensors()).toBe(before + 1);
    expect(Array.from(kept.toTypedArray() as Float32Array)).toEqual([1, 2, 3]);
    kept.dispose();
  });

  test('a synchronous callback is unchanged: its result survives, the rest is freed', async () => {
    const before = await settledLiveTensors();
    const result = tidy(() => ops().affine(made(), 2, 0));
    expect(native().liveTensors()).toBe(before + 1);
    expect(Array.from(result.toTypedArray() as Float32Array)).toEqual([2, 4, 6]);
    result.dispose();
  });
});

describe('the class limit is what evaluation supports (#6)', () => {
  const spec = (classes: number) => ({ conv: [{ filters: 1, kernelSize: 3, pool: true }], dense: [], dropout: 0, classes });

  test(`a spec of ${MAX_CLASSES + 1} classes is refused by planModel, before any training`, () => {
    const err = errorOf(() => planModel(spec(MAX_CLASSES + 1)));
    expect(err.name).toBe('RangeError');
    expect(err.message).toMatch(new RegExp(`integer in \\[2, ${MAX_CLASSES}\\] for spec.classes but received ${MAX_CLASSES + 1}`));
  });

  test(`a model of ${MAX_CLASSES} classes evaluates`, async () => {
    const model = createModel(spec(MAX_CLASSES), { seed: 1 });
    try {
      const result = await evaluate(model, { images: new Uint8Array(784 * 2), labels: new Uint8Array([3, 7]), count: 2 });
      expect(result.count).toBe(2);
      expect(result.confusion).toHaveLength(MAX_CLASSES);
    } finally {
      model.dispose();
    }
  });
});
