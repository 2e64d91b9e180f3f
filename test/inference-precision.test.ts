// evaluate() and predict() in bfloat16 ({ precision: 'bf16' }, src/core/precision.ts): the forward
// pass runs under autocast (different bits from float32, close values, the same in both paths), the
// autocast state is back to what it was afterwards, and a bad precision is refused by name.
import { evaluate, trainCnn } from '../src/index';
import type { CnnModel } from '../src/nn/model';
import { native } from '../src/core/native';
import { fashion, smallSpec } from './fixtures';
import { expectError, rejected } from './helpers';

const PIXELS = 28 * 28;
let model: CnnModel;
let images: Uint8Array;

beforeAll(async () => {
  ({ model } = await trainCnn({ dataset: fashion(), spec: smallSpec(), limit: 3000, testLimit: 100, seed: 3 }));
  images = fashion().test.images.subarray(0, 300 * PIXELS);
});
afterAll(() => model.dispose());

const maxDifference = (a: Float32Array, b: Float32Array) => a.reduce((worst, v, i) => Math.max(worst, Math.abs(v - b[i])), 0);

describe('inference in bfloat16', () => {
  test('predict: bfloat16 probabilities differ from float32 in their bits, by less than 0.05, and each row sums to 1', () => {
    const fp32 = model.predict(images);
    const bf16 = model.predict(images, { precision: 'bf16' });
    expect(bf16.length).toBe(fp32.length);
    const difference = maxDifference(fp32, bf16);
    expect(difference).toBeGreaterThan(0);
    expect(difference).toBeLessThan(0.05);
    for (let row = 0; row < 300; ++row) {
      expect(bf16.subarray(row * 10, row * 10 + 10).reduce((s, v) => s + v, 0)).toBeCloseTo(1, 5);
    }
  });

  test('autocast is switched back: float32 answers after a bfloat16 call are the first ones bit for bit, and the thread is not left in autocast', async () => {
    const before = model.predict(images);
    model.predict(images, { precision: 'bf16' });
    await evaluate(model, fashion().test, { precision: 'bf16', chunkSize: 500 });
    expect(maxDifference(model.predict(images), before)).toBe(0);
    // setAutocast returns the previous state: false unless a call above left autocast on.
    expect(native().setAutocast(false, 'cpu')).toBe(false);
  });

  test('the scripted model answers as the eager one, in bfloat16 too', () => {
    const scripted = model.convert('script');
    try {
      expect(maxDifference(scripted.predict(images, { precision: 'bf16' }), model.predict(images, { precision: 'bf16' }))).toBeLessThan(1e-6);
    } finally {
      scripted.dispose();
    }
  });

  test('evaluate: bfloat16 accuracy within a point of float32 on the 10,000 test images, the loss within 1%', async () => {
    const fp32 = await evaluate(model, fashion().test);
    const bf16 = await evaluate(model, fashion().test, { precision: 'bf16' });
    expect(fp32.accuracy).toBeGreaterThan(0.5);
    expect(Math.abs(bf16.accuracy - fp32.accuracy)).toBeLessThan(0.01);
    expect(Math.abs(bf16.loss - fp32.loss) / fp32.loss).toBeLessThan(0.01);
    expect(bf16.loss).not.toBe(fp32.loss);
  });

  test('a precision other than fp32 or bf16 is refused by name, before any native work', async () => {
    expectError(() => model.predict(images, { precision: 'fp16' as 'bf16' }), 'RangeError', /one of fp32, bf16 for precision but received "fp16"/);
    const err = await rejected(evaluate(model, fashion().test, { precision: 'half' as 'bf16' }));
    expect(err.message).toMatch(/one of fp32, bf16 for precision but received "half"/);
    expectError(() => model.predict(images, { precison: 'bf16' } as object), 'TypeError', /precison/);
  });
});
