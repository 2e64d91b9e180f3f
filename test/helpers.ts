// Shared test helpers.
import * as v8 from 'v8';
import * as vm from 'vm';
import { native } from '../src/core/native';
import { projectPython, pythonLacks } from '../src/util/project-python';
import { settledLiveTensors } from './helpers';

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

/**
 * Whether a missing prerequisite that the test set-up (scripts/setup-tests.sh) installs fails the run
 * instead of skipping: under CI (CI=true, as .ci/run runs) or with CONVSCOPE_REQUIRE_SETUP=1. A skip is
 * then a set-up defect, not a pass in disguise.
 */
export const SETUP_REQUIRED = process.env.CONVSCOPE_REQUIRE_SETUP === '1' || (process.env.CI === 'true' && process.env.CONVSCOPE_REQUIRE_SETUP !== '0');

/**
 * `test` when `available`; else `test.skip` with the reason printed, and where SETUP_REQUIRED also a
 * failing test that names what set-up should have installed. Decided when the tests are defined, so
 * jest reports the test as skipped (or failed), never as passed. Use it only for what
 * scripts/setup-tests.sh can install; skips that set-up cannot remove (no GPU, a libtorch without MKL)
 * use skipBecause.
 */
export function testIfInstalled(available: boolean, missing: string): jest.It {
  if (available) return test;
  skipBecause(missing);
  if (SETUP_REQUIRED) {
    test(`set-up installed what the tests need: ${missing}`, () => {
      throw new Error(`${missing}: scripts/setup-tests.sh should have installed it (a skip for this reason fails under CI)`);
    });
  }
  return test.skip;
}

/** The project's PyTorch (.venv) that the comparison tests run. */
export const PYTHON = projectPython();

/**
 * `test`, or `test.skip` with the reason printed when PYTHON cannot import `modules`: decided when the
 * tests are defined, so that jest reports such a test as skipped, never as passed.
 */
export function testWithPython(modules: string[]): jest.It {
  const lacking = pythonLacks(PYTHON, modules);
  return testIfInstalled(!lacking, lacking ?? '');
}

/** The largest elementwise difference of two arrays of the same length (probabilities, logits). */
export function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  expect(a.length).toBe(b.length);
  return a.reduce((worst, v, i) => Math.max(worst, Math.abs(v - b[i])), 0);
}

// A garbage collector to call from tests: V8 exposes `gc` to contexts created after the flag is set.
v8.setFlagsFromString('--expose-gc');
const collectGarbage = vm.runInNewContext('gc') as () => void;

/**
 * The live-tensor count once the garbage of earlier tests is gone: tensors that earlier test files
 * left to the garbage collector would otherwise be freed in the middle of a leak check and make the
 * count fall (seen under CI: 22 before, 16 after). Only the count before is settled: the count after
 * is read as is, so a tensor the code under test leaves undisposed still shows.
 * @example const before = await settledLiveTensors(); ...; expect(native().liveTensors()).toBe(before);
 */
export async function settledLiveTensors(): Promise<number> {
  for (let round = 0; round < 2; round++) {
    collectGarbage();
    // Finalizers of collected wrappers run on a later turn of the event loop.
    await new Promise((resolve) => setImmediate(resolve));
  }
  return native().liveTensors();
}
