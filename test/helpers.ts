// Shared test helpers.
import { projectPython, pythonLacks } from '../src/util/project-python';

/**
 * The error fn throws (or rejects with). Checks go by `name`, not instanceof: errors made by the
 * native addon come from Node's own realm, where jest's sandboxed TypeError is a different class.
 */
export function thrown(fn: () => unknown): Error {
  try {
    fn();
  } catch (err) {
    return err as Error;
  }
  throw new Error('expected the call to throw, but it returned');
}

export async function rejected(promise: Promise<unknown> | (() => Promise<unknown>)): Promise<Error> {
  try {
    await (typeof promise === 'function' ? promise() : promise);
  } catch (err) {
    return err as Error;
  }
  throw new Error('expected the promise to reject, but it resolved');
}

export function expectError(fn: () => unknown, name: string, message: RegExp): void {
  const err = thrown(fn);
  expect(err.name).toBe(name);
  expect(err.message).toMatch(message);
}

/** Prints why a test group is skipped (never skip silently). */
export function skipBecause(reason: string): void {
  // eslint-disable-next-line no-console
  console.warn(`SKIPPED: ${reason}`);
}

/** The project's PyTorch (.venv) that the comparison tests run. */
export const PYTHON = projectPython();

/**
 * `test`, or `test.skip` with the reason printed when PYTHON cannot import `modules`: decided when the
 * tests are defined, so that jest reports such a test as skipped, never as passed.
 */
export function testWithPython(modules: string[]): jest.It {
  const lacking = pythonLacks(PYTHON, modules);
  if (!lacking) return test;
  skipBecause(lacking);
  return test.skip;
}

/** The largest elementwise difference of two arrays of the same length (probabilities, logits). */
export function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  expect(a.length).toBe(b.length);
  return a.reduce((worst, v, i) => Math.max(worst, Math.abs(v - b[i])), 0);
}
