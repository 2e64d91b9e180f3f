// The plain-data form of a tensor once it has left libtorch: a row-major Float32Array and its shape.
// Visualisation, export and tests pass these around so they never touch the native addon.

import ndarray from 'ndarray';
import type { NdArray } from 'ndarray';
import { expected } from '../util/validate';

/**
 * A tensor copied to host memory: `data` holds `product(shape)` values in row-major (C) order.
 *
 * @example
 * const t: HostTensor = { data: new Float32Array(6), shape: [2, 3] };
 */
export interface HostTensor {
  data: Float32Array;
  shape: number[];
}

/**
 * Number of elements a shape holds (1 for the empty shape of a scalar).
 *
 * @example
 * shapeSize([32, 1, 5, 5]); // 800
 */
export function shapeSize(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/**
 * `[2, 3]` → `"[2, 3]"`, for error messages.
 *
 * @example
 * formatShape([2, 3]); // '[2, 3]'
 */
export function formatShape(shape: readonly (number | string)[]): string {
  return `[${shape.join(', ')}]`;
}

/**
 * Checks that `value` is a {@link HostTensor} whose data length matches its shape and, when `dims`
 * is given, whose rank is `dims.length`. `dims` names the expected dimensions for the error
 * message and may pin some of them to a number.
 *
 * @throws TypeError when `value` is not a HostTensor; RangeError for a wrong rank, a pinned
 *   dimension that differs, a zero dimension, or a length mismatch.
 * @example
 * checkHostTensor(weights, 'weights', ['n_filters', 1, 'kh', 'kw']);
 */
export function checkHostTensor(value: unknown, name: string, dims?: readonly (string | number)[]): HostTensor {
  if (typeof value !== 'object' || value === null) {
    throw new TypeError(expected('a HostTensor { data: Float32Array, shape: number[] }', name, value));
  }
  const { data, shape } = value as Partial<HostTensor>;
  if (!isTypedArray(data, 'Float32Array')) throw new TypeError(expected('a Float32Array', `${name}.data`, data));
  if (!Array.isArray(shape) || !shape.every((d) => Number.isInteger(d) && d >= 0)) {
    throw new TypeError(expected('an array of non-negative integers', `${name}.shape`, shape));
  }
  if (dims) {
    const wanted = formatShape(dims);
    const fits = shape.length === dims.length && dims.every((d, i) => typeof d !== 'number' || shape[i] === d);
    if (!fits || shape.some((d) => d === 0)) {
      throw new RangeError(`Expected shape ${wanted} for ${name}.shape but received ${formatShape(shape)}`);
    }
  }
  if (data.length !== shapeSize(shape)) {
    throw new RangeError(
      `Expected ${shapeSize(shape)} values (shape ${formatShape(shape)}) for ${name}.data but received ${data.length}`,
    );
  }
  return { data, shape };
}

/**
 * A view of a HostTensor as an `ndarray` sharing its memory, for slicing and strided access.
 *
 * @example
 * const a = toNdarray({ data: new Float32Array([1, 2, 3, 4]), shape: [2, 2] });
 * a.get(1, 0); // 3
 */
export function toNdarray(t: HostTensor): NdArray<Float32Array> {
  return ndarray(t.data, t.shape.slice());
}

/**
 * Copies an ndarray (any strides, offset or backing array) into a fresh row-major HostTensor.
 *
 * @example
 * const transposed = toNdarray(t).transpose(1, 0);
 * const t2 = fromNdarray(transposed); // materialised in the new order
 */
export function fromNdarray(a: NdArray): HostTensor {
  const shape = a.shape.slice();
  const out = new Float32Array(shapeSize(shape));
  const src = a.data as ArrayLike<number>;
  let k = 0;
  // Walk the index space in row-major order, tracking the source offset through the strides.
  const walk = (dim: number, offset: number): void => {
    if (dim === shape.length) {
      out[k++] = src[offset];
      return;
    }
    for (let i = 0; i < shape[dim]; i++) walk(dim + 1, offset + i * a.stride[dim]);
  };
  if (out.length > 0) walk(0, a.offset);
  return { data: out, shape };
}

/**
 * Throws a RangeError naming the first NaN or infinite value: a picture of such weights would be
 * meaningless (a diverged run), and saying so beats an all-one-colour image.
 *
 * @example
 * checkFiniteValues(weights, 'weights');
 */
export function checkFiniteValues(t: HostTensor, name: string): void {
  for (let i = 0; i < t.data.length; i++) {
    if (!Number.isFinite(t.data[i])) {
      throw new RangeError(`Expected finite values for ${name}.data but received ${t.data[i]} at index ${i}`);
    }
  }
}

/** Typed-array kinds {@link isTypedArray} recognises. */
export interface TypedArrayKinds {
  Float32Array: Float32Array;
  Float64Array: Float64Array;
  Int32Array: Int32Array;
  Uint8Array: Uint8Array;
  Uint8ClampedArray: Uint8ClampedArray;
  BigInt64Array: BigInt64Array;
}

/**
 * Whether `value` is a typed array of the named kind. Compares the built-in type tag rather than
 * using `instanceof`, which fails for arrays made in another realm (a native addon, a `vm` context
 * such as Jest's, or a worker).
 *
 * @example
 * isTypedArray(new Float32Array(2), 'Float32Array'); // true
 */
export function isTypedArray<K extends keyof TypedArrayKinds>(value: unknown, kind: K): value is TypedArrayKinds[K] {
  return ArrayBuffer.isView(value) && Object.prototype.toString.call(value) === `[object ${kind}]`;
}
