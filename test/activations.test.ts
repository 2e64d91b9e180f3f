// renderActivations: the feature maps it draws are the layer's real outputs for the image.
import { modelFromParameters } from '../src/nn/model';
import { renderActivations } from '../src/viz/activations';
import { renderFeatureMaps } from '../src/viz/mosaic';
import type { CnnSpec } from '../src/nn/spec';

const spec: CnnSpec = { conv: [{ filters: 2, kernelSize: 3, padding: 'same', pool: false }], dense: [], dropout: 0 };

function model() {
  // Filter 0 copies its input (a centre tap); filter 1 sees nothing and outputs its bias, 0.5.
  const identity = new Float32Array(9);
  identity[4] = 1;
  const weights = new Float32Array(18);
  weights.set(identity, 0);
  return modelFromParameters(spec, [
    { name: 'conv1.weight', shape: [2, 1, 3, 3], values: weights },
    { name: 'conv1.bias', shape: [2], values: new Float32Array([0, 0.5]) },
    { name: 'fc1.weight', shape: [10, 2 * 28 * 28], values: new Float32Array(10 * 2 * 28 * 28) },
    { name: 'fc1.bias', shape: [10], values: new Float32Array(10) },
  ]);
}

test('the conv1 maps are the identity filter\'s copy of the image and the bias filter\'s constant', () => {
  const m = model();
  const image = Uint8Array.from({ length: 784 }, (_, i) => (i * 7) % 256);
  const input = Float32Array.from(image, (v) => v / 255);
  const expectedMaps = new Float32Array(2 * 784);
  expectedMaps.set(input, 0);
  expectedMaps.fill(0.5, 784);
  const png = renderActivations(m, image, 'conv1', { colormap: 'viridis', title: 't' });
  const expected = renderFeatureMaps({ data: input, shape: [28, 28] }, { data: expectedMaps, shape: [1, 2, 28, 28] }, { colormap: 'viridis', title: 't' });
  expect(png.equals(expected)).toBe(true);
  // A different layer output would draw a different picture.
  const wrong = renderFeatureMaps({ data: input, shape: [28, 28] }, { data: expectedMaps.map((v) => 1 - v), shape: [1, 2, 28, 28] }, { colormap: 'viridis', title: 't' });
  expect(png.equals(wrong)).toBe(false);
  m.dispose();
});

test('unknown layers, dense layers and wrong image sizes are clear errors', () => {
  const m = model();
  expect(() => renderActivations(m, new Uint8Array(784), 'conv9')).toThrow(/one of conv1, conv1.act, flatten, fc1 for layer but received "conv9"/);
  expect(() => renderActivations(m, new Uint8Array(784), 'fc1')).toThrow(/output shape \[1,10\]; activation maps need a convolutional layer/);
  expect(() => renderActivations(m, new Uint8Array(100), 'conv1')).toThrow(/one 28x28 image/);
  m.dispose();
});
