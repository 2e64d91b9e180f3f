// The eager path's op set: the addon's ops, with every result registered in the open tidy() scope.
import { native, NativeOps, NativeTensor } from './native';
import { track } from './tidy';
import { checkNotShared } from '../util/validate';

type Tracked<F> = F extends (...args: infer A) => infer R ? (...args: A) => R : never;
type TrackedOps = { [K in keyof NativeOps]: Tracked<NativeOps[K]> };

function trackResult<R>(result: R): R {
  if (Array.isArray(result)) for (const item of result) trackResult(item);
  else if (result && typeof result === 'object' && typeof (result as unknown as NativeTensor).dispose === 'function') {
    track(result as unknown as NativeTensor);
  }
  return result;
}

let cached: TrackedOps | undefined;

/** The ops, bound to the loaded addon; each tensor they return belongs to the innermost tidy() scope. */
export function ops(): TrackedOps {
  if (cached) return cached;
  const raw = native().ops;
  const wrapped = {} as Record<string, unknown>;
  for (const name of Object.keys(raw) as (keyof NativeOps)[]) {
    const fn = raw[name] as (...args: unknown[]) => unknown;
    wrapped[name] = (...args: unknown[]) => trackResult(fn(...args));
  }
  cached = wrapped as TrackedOps;
  return cached;
}

/** Runs fn with autograd off (evaluation, inspection), restoring the previous mode afterwards. */
export function noGrad<T>(fn: () => T): T {
  const previous = native().ops.setGradEnabled(false);
  try {
    return fn();
  } finally {
    native().ops.setGradEnabled(previous);
  }
}

/** A tensor holding a copy of host values (tracked by the open tidy() scope). */
export function fromHost(data: import('./native').TypedArrayOf, shape: number[], name = 'an array given to convscope'): NativeTensor {
  checkNotShared(data, name);
  return track(new (native().Tensor)(data, shape));
}
