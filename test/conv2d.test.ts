// The convolution of the training paths (native/conv2d.h): libtorch's convolution and backward, with
// the bias gradient summed by at::sum instead of oneDNN's scalar loop. Its gradients must be
// libtorch's: checked against the same graph in float64, which takes libtorch's own path.
import { native, NativeTensor } from '../src/core/native';
import { fromHost } from '../src/core/ops';
import { defaultSpec } from '../src/index';
import { scriptSource } from '../src/nn/script-source';
import { planModel } from '../src/nn/spec';

const o = () => native().ops;

interface Grads { y: Float64Array; x: Float64Array; w: Float64Array; b: Float64Array }

/** Forward and backward through conv2d then a fixed linear map and cross-entropy, in `dtype`. */
function convGrads(dtype: 'float32' | 'float64', padding: [number, number, number, number], stride: number, channelsLast: boolean): Grads {
  const [n, cin, h, w, cout, k] = [3, 4, 9, 8, 6, 3];
  const leaf = (size: number, shape: number[], scale: number, seed: number) => {
    const t = o().to(fromHost(Float32Array.from({ length: size }, (_, i) => Math.sin(i * 0.91 + seed) * scale), shape), null, dtype);
    t.requiresGrad = true;
    return t;
  };
  const x = leaf(n * cin * h * w, [n, cin, h, w], 1, 1);
  const weight = leaf(cout * cin * k * k, [cout, cin, k, k], 0.3, 2);
  const bias = leaf(cout, [cout], 0.5, 3);
  const y = o().conv2d(x, weight, bias, [stride, stride], padding, channelsLast);
  const flat = o().flatten(y);
  const features = flat.shape[1];
  const map = o().to(fromHost(Float32Array.from({ length: 5 * features }, (_, i) => Math.cos(i * 0.37)), [5, features]), null, dtype);
  const labels = o().to(fromHost(new Float32Array(n).map((_, i) => i % 5), [n]), null, 'int64');
  o().crossEntropy(o().linear(flat, map, null), labels, 'sum').backward();
  const values = (t: NativeTensor) => Float64Array.from(o().to(t, null, 'float64').toTypedArray() as Float64Array);
  return { y: values(y), x: values(x.grad()!), w: values(weight.grad()!), b: values(bias.grad()!) };
}

function expectClose(ours: Float64Array, exact: Float64Array, relative: number): void {
  const scale = Math.max(...exact.map(Math.abs));
  const worst = Math.max(...ours.map((v, i) => Math.abs(v - exact[i])));
  expect(worst / scale).toBeLessThan(relative);
}

describe('conv2d of the training paths', () => {
  test.each([
    { padding: [1, 1, 1, 1] as [number, number, number, number], stride: 1, channelsLast: false },
    { padding: [1, 1, 1, 1] as [number, number, number, number], stride: 1, channelsLast: true },
    { padding: [0, 1, 0, 1] as [number, number, number, number], stride: 2, channelsLast: true },
  ])('values and the input, weight and bias gradients agree with float64 (padding $padding, stride $stride, channels-last $channelsLast)', (c) => {
    const ours = convGrads('float32', c.padding, c.stride, c.channelsLast);
    const exact = convGrads('float64', c.padding, c.stride, c.channelsLast);
    expectClose(ours.y, exact.y, 1e-6);
    expectClose(ours.x, exact.x, 1e-5);
    expectClose(ours.w, exact.w, 1e-5);
    expectClose(ours.b, exact.b, 1e-5);
  });

  test('the training form of the TorchScript calls it, the exported form calls torch.conv2d', () => {
    const plan = planModel(defaultSpec());
    const training = scriptSource(plan);
    expect(training).toMatch(/x = convscope\.conv2d\(x, self\.conv1\.weight, self\.conv1\.bias, \[1, 1\], \[2, 2\]\)/);
    expect(training).not.toMatch(/torch\.conv2d/);
    const exported = scriptSource(plan, { mean: 0.5, std: 0.25 });
    expect(exported).toMatch(/x = torch\.conv2d\(x, self\.conv1\.weight, self\.conv1\.bias, \[1, 1\], \[2, 2\]\)/);
    expect(exported).not.toMatch(/convscope\./);
  });
});
