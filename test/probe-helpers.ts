// Numeric and leak-check helpers the probing tests share (explain and its colour twin).
import { native } from '../src/core/native';
import { settledLiveTensors } from './helpers';

/** A deterministic spread of values in [lo, hi). */
export function spread(count: number, seed: number, lo = 0, hi = 1): Float32Array {
  return Float32Array.from({ length: count }, (_, i) => lo + (hi - lo) * ((((Math.sin(i * 12.9898 + seed * 78.233) * 43758.5453) % 1) + 1) % 1));
}

export function maxAbs(a: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; ++i) m = Math.max(m, Math.abs(a[i]));
  return m;
}

export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; ++i) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

/** Runs `fn` and checks that it leaves as many native tensors alive as before. */
export async function leakFree<T>(fn: () => Promise<T>): Promise<T> {
  const before = await settledLiveTensors();
  const result = await fn();
  expect(native().liveTensors()).toBe(before);
  return result;
}
