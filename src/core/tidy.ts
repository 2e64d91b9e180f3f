// Deterministic freeing of intermediate tensors, like tfjs' tidy(): every tensor created by the ops
// inside the scope is disposed when the scope ends, except the ones returned or kept.
import type { NativeTensor } from './native';
import { expected } from '../util/validate';

const scopes: Set<NativeTensor>[] = [];

/** Registers a tensor with the innermost open scope (no-op outside any scope). */
export function track<T extends NativeTensor>(tensor: T): T {
  const scope = scopes[scopes.length - 1];
  if (scope) scope.add(tensor);
  return tensor;
}

/** Takes a tensor out of every open scope so it outlives them. */
export function keep<T extends NativeTensor>(tensor: T): T {
  for (const scope of scopes) scope.delete(tensor);
  return tensor;
}

function collectTensors(value: unknown, into: Set<NativeTensor>): void {
  if (!value || typeof value !== 'object') return;
  if (isTensor(value)) {
    into.add(value);
    return;
  }
  if (Array.isArray(value)) for (const item of value) collectTensors(item, into);
  else if (Object.getPrototypeOf(value) === Object.prototype) for (const item of Object.values(value)) collectTensors(item, into);
}

function isTensor(value: object): value is NativeTensor {
  return typeof (value as NativeTensor).dispose === 'function' && 'shape' in value && 'dtype' in value;
}

function isThenable(value: unknown): value is PromiseLike<unknown> {
  return (typeof value === 'object' || typeof value === 'function') && value !== null && typeof (value as PromiseLike<unknown>).then === 'function';
}

/**
 * An async callback returns at its first await, so the scope would close there and whatever it made
 * afterwards would belong to no scope and never be freed. Frees what it made so far and throws.
 */
function refuseAsync(scope: Set<NativeTensor>, pending: PromiseLike<unknown>): never {
  for (const tensor of scope) tensor.dispose();
  // The callback runs on; its own later failure would otherwise surface as an unhandled rejection
  // after the caller already has this error.
  Promise.resolve(pending).catch(() => undefined);
  throw new TypeError('Expected a synchronous function for tidy() but received one that returned a Promise; '
    + 'tensors made after an await would escape the scope. Call tidy() around each synchronous step inside the async function instead');
}

/**
 * Runs `fn` and disposes every tensor the tracked ops created inside it, except tensors in the result
 * (a tensor, or arrays / plain objects of tensors), which move to the enclosing scope. `fn` must be
 * synchronous: the scope closes when it returns, so an async callback is refused.
 * @example const loss = tidy(() => crossEntropy(model.forward(x), y));
 */
export function tidy<T>(fn: () => T): T {
  if (typeof fn !== 'function') throw new TypeError(expected('a function', 'tidy()', fn));
  const scope = new Set<NativeTensor>();
  scopes.push(scope);
  let result: T;
  try {
    result = fn();
  } catch (err) {
    scopes.pop();
    for (const tensor of scope) tensor.dispose();
    throw err;
  }
  scopes.pop();
  if (isThenable(result)) refuseAsync(scope, result);
  const survivors = new Set<NativeTensor>();
  collectTensors(result, survivors);
  for (const tensor of scope) if (!survivors.has(tensor)) tensor.dispose();
  for (const tensor of survivors) if (scope.has(tensor)) track(tensor);
  return result;
}
