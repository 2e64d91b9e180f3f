// The fused 2x2 max pooling + ReLU / leaky ReLU (native/pool_activation.h): the same values and the
// same gradients as libtorch's max_pool2d followed by the activation, bit for bit, in float32 and
// bfloat16, channels-last and NCHW inputs, odd sizes, ties and NaNs; and both paths run it, training
// and evaluating.
import { LEAKY_RELU_SLOPE, native, NativeTensor, valuesOf } from '../src/core/native';
import { fromHost, noGrad } from '../src/core/ops';
import { tidy } from '../src/core/tidy';
import { createModel, defaultSpec } from '../src/index';
import { scriptSource } from '../src/nn/script-source';
import { planModel } from '../src/nn/spec';

const o = () => native().ops;

/** Values on a coarse grid (many ties inside a window), with NaNs and infinities where asked. */
function values(size: number, specials: boolean): Float32Array {
  const v = Float32Array.from({ length: size }, (_, i) => Math.round(Math.sin(i * 12.9898) * 8) / 4);
  if (specials) {
    for (let i = 5; i < size; i += 97) v[i] = NaN;
    for (let i = 11; i < size; i += 131) v[i] = -Infinity;
    for (let i = 17; i < size; i += 151) v[i] = Infinity;
  }
  return v;
}

/** Same bits, NaN for NaN (and -0 for -0: the activation's sign of zero is kept too). */
function expectSameElements(a: ArrayLike<number>, b: ArrayLike<number>): void {
  expect(a.length).toBe(b.length);
  const differing: number[] = [];
  for (let i = 0; i < a.length; ++i) if (!Object.is(a[i], b[i])) differing.push(i);
  expect(differing.slice(0, 5).map((i) => [i, a[i], b[i]])).toEqual([]);
}

interface Case { shape: [number, number, number, number]; dtype: 'float32' | 'bfloat16'; activation: 'relu' | 'leaky_relu'; channelsLast: boolean; specials: boolean }

/**
 * The input (a leaf that requires grad, in the asked layout), its output through `forward`, and the
 * input's gradient for a loss that weighs every output differently: cross-entropy of a fixed linear
 * map of the flattened output.
 */
function run(c: Case, forward: (x: NativeTensor) => NativeTensor): { y: number[]; grad: number[] } {
  const [n, ch, h, w] = c.shape;
  let x = fromHost(values(n * ch * h * w, c.specials), c.shape);
  // A channels-last tensor with the same values: a 1x1 identity convolution asked for channels-last.
  if (c.channelsLast) {
    const eye = fromHost(Float32Array.from({ length: ch * ch }, (_, i) => (i % (ch + 1) === 0 ? 1 : 0)), [ch, ch, 1, 1]);
    x = o().detach(o().conv2d(x, eye, null, [1, 1], [0, 0, 0, 0], true));
  }
  if (c.dtype === 'bfloat16') x = o().to(x, null, 'bfloat16');
  x.requiresGrad = true;
  const y = forward(x);
  const flat = o().to(o().flatten(y), null, 'float32');
  const features = flat.shape[1];
  const map = fromHost(Float32Array.from({ length: 3 * features }, (_, i) => Math.cos(i * 0.7)), [3, features]);
  const labels = fromHost(new Float32Array(n).map((_, i) => i % 3), [n]);
  const loss = o().crossEntropy(o().linear(flat, map, null), o().to(labels, null, 'int64'), 'sum');
  loss.backward();
  const yValues = Array.from(o().to(y, null, 'float32').toTypedArray() as Float32Array);
  const grad = Array.from(o().to(x.grad()!, null, 'float32').toTypedArray() as Float32Array);
  return { y: yValues, grad };
}

const unfused = (activation: 'relu' | 'leaky_relu') => (x: NativeTensor) => o().activation(o().maxPool2d(x, 2, 2), activation, LEAKY_RELU_SLOPE);
const fused = (activation: 'relu' | 'leaky_relu') => (x: NativeTensor) => o().maxPoolActivation(x, activation, LEAKY_RELU_SLOPE);

const cases: Case[] = [];
for (const dtype of ['float32', 'bfloat16'] as const) {
  for (const activation of ['relu', 'leaky_relu'] as const) {
    for (const channelsLast of [true, false]) cases.push({ shape: [3, 5, 9, 11], dtype, activation, channelsLast, specials: false });
  }
}

describe('fused max pooling and activation', () => {
  test.each(cases)('$dtype $activation, channels-last $channelsLast, odd sizes, ties: the values and gradients of max_pool2d then the activation', (c) => {
    const theirs = run(c, unfused(c.activation));
    const ours = run(c, fused(c.activation));
    expectSameElements(ours.y, theirs.y);
    expectSameElements(ours.grad, theirs.grad);
  });

  test.each(['relu', 'leaky_relu'] as const)('NaN and infinite inputs (%s): the same outputs, and the gradient reaches the same elements', (activation) => {
    const c: Case = { shape: [2, 4, 8, 6], dtype: 'float32', activation, channelsLast: true, specials: true };
    const theirs = run(c, unfused(activation));
    const ours = run(c, fused(activation));
    expectSameElements(ours.y, theirs.y);
    // The loss is NaN, so every gradient value is NaN or 0: compare where it went.
    expectSameElements(ours.grad.map((g) => (g === 0 ? 0 : 1)), theirs.grad.map((g) => (g === 0 ? 0 : 1)));
  });

  test('without autograd (evaluation, no grad) the output is the same', () => {
    const x = fromHost(values(2 * 3 * 7 * 7, false), [2, 3, 7, 7]);
    const previous = o().setGradEnabled(false);
    try {
      expectSameElements(Array.from(o().maxPoolActivation(x, 'relu').toTypedArray() as Float32Array),
        Array.from(o().activation(o().maxPool2d(x, 2, 2), 'relu').toTypedArray() as Float32Array));
    } finally {
      o().setGradEnabled(previous);
    }
  });

  test('bad arguments are refused naming them', () => {
    const x = fromHost(values(2 * 3 * 4 * 4, false), [2, 3, 4, 4]);
    expect(() => o().maxPoolActivation(x, 'tanh' as 'relu')).toThrow(/relu or leaky_relu.*"tanh"/);
    expect(() => o().maxPoolActivation(x, 'leaky_relu', -0.5)).toThrow(/negative slope >= 0.*-0\.5/);
  });

  test('both paths run it on the CPU, training and evaluating; the exported TorchScript does not', () => {
    const model = createModel(defaultSpec(), { mode: 'script', seed: 1 });
    try {
      const training = model.scriptSource;
      expect(training).toMatch(/convscope\.max_pool2x2_act\(x, 0\.0\)/);
      expect(training).toMatch(/if x\.is_cuda:\n\s+x = torch\.max_pool2d/);
      expect(training).not.toMatch(/not self\.training/);
      expect(scriptSource(planModel(defaultSpec()), { mean: 0.5, std: 0.25 })).not.toMatch(/convscope\./);
      const eager = model.convert('eager');
      try {
        expect((eager as unknown as { fusedLayers: { name: string }[] }).fusedLayers.map((l) => l.name)).toContain('conv1.act+pool');
        expect(eager.layerNames()).toEqual(expect.arrayContaining(['conv1.act', 'conv1.pool']));
        // Evaluation's logits (fused) are the unfused layers' (forwardWithActivations) bit for bit,
        // and the scripted model's.
        tidy(() => noGrad(() => {
          const x = fromHost(values(6 * 28 * 28, false), [6, 1, 28, 28]);
          const fused = valuesOf(eager.logits(x), 'float32');
          const layers = eager.forwardWithActivations(x);
          expect(Array.from(valuesOf(layers[layers.length - 1].output, 'float32'))).toEqual(Array.from(fused));
          expect(Array.from(valuesOf(model.logits(x), 'float32'))).toEqual(Array.from(fused));
        }));
      } finally {
        eager.dispose();
      }
    } finally {
      model.dispose();
    }
  });
});
