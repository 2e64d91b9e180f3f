// HostTensor helpers: ndarray views, copies from strided arrays, and shape validation.

import ndarray from 'ndarray';
import { checkHostTensor, fromNdarray, isTypedArray, toNdarray } from '../src/core/host-tensor';

test('toNdarray shares memory and indexes row-major', () => {
  const t = { data: Float32Array.from([1, 2, 3, 4, 5, 6]), shape: [2, 3] };
  const a = toNdarray(t);
  expect(a.get(1, 0)).toBe(4);
  a.set(0, 1, 20);
  expect(t.data[1]).toBe(20);
});

test('fromNdarray materialises transposed, sliced and offset views in row-major order', () => {
  const a = ndarray(Float32Array.from([1, 2, 3, 4, 5, 6]), [2, 3]);
  expect(fromNdarray(a.transpose(1, 0))).toEqual({ data: Float32Array.from([1, 4, 2, 5, 3, 6]), shape: [3, 2] });
  expect(fromNdarray(a.hi(2, 2).lo(0, 1))).toEqual({ data: Float32Array.from([2, 5]), shape: [2, 1] });
  expect(fromNdarray(ndarray([1, 2, 3, 4], [2, 2]).step(-1, 1))).toEqual({ data: Float32Array.from([3, 4, 1, 2]), shape: [2, 2] });
});

test('checkHostTensor messages', () => {
  expect(() => checkHostTensor({ data: new Float32Array(4), shape: [4] }, 'weights', ['n', 1, 'kh', 'kw'])).toThrow(
    new RangeError('Expected shape [n, 1, kh, kw] for weights.shape but received [4]'),
  );
  expect(() => checkHostTensor({ data: new Float32Array(4), shape: [2, 2] }, 'x')).not.toThrow();
  expect(() => checkHostTensor({ data: new Float64Array(4), shape: [4] }, 'x')).toThrow(new TypeError('Expected a Float32Array for x.data but received a Float64Array'));
  expect(() => checkHostTensor({ data: new Float32Array(4), shape: [-4] }, 'x')).toThrow(TypeError);
  expect(() => checkHostTensor(7, 'x')).toThrow(/Expected a HostTensor/);
});

test('isTypedArray works across realms', () => {
  const vm = require('vm') as typeof import('vm');
  const foreign = vm.runInNewContext('new Float32Array(3)');
  expect(foreign instanceof Float32Array).toBe(false);
  expect(isTypedArray(foreign, 'Float32Array')).toBe(true);
  expect(checkHostTensor({ data: foreign, shape: [3] }, 'x').data).toBe(foreign);
  expect(isTypedArray(Buffer.from('a'), 'Uint8Array')).toBe(true);
  expect(isTypedArray([1], 'Float32Array')).toBe(false);
});
