// <dir>/trials.json: what makes a search resumable. It holds the search's definition, the data it
// runs on and every finished trial, and is rewritten atomically after each trial, so Ctrl-C or a
// crash loses at most the trial under way. A rerun with the same definition continues after the
// last finished trial; a different definition in the same folder is an error, never a silent mix.
import * as path from 'path';
import { writeFileAtomic } from '../util/fs-atomic';
import { readRegularTextFile, UnreadableFileError } from '../util/fs-read';
import type { SearchDefinition } from './options';
import type { TrialParams } from './space';
import type { SearchData } from './splits';
import type { RetrainResult, TrialResult, TrialStatus } from './trial';
import { BEST_MODEL_FILE } from './retrain';
import { checkInteger, checkNumber, checkObject, checkOneOf, checkString, expected } from '../util/validate';

export const TRIALS_FILE = 'trials.json';
const FORMAT = 'convscope-tune-trials';
const VERSION = 1;
/** Far above any real search (a trial is a few hundred bytes). */
const MAX_BYTES = 256 * 1024 * 1024;

export interface TuneState {
  format: typeof FORMAT;
  version: typeof VERSION;
  definition: SearchDefinition;
  data: SearchData['fingerprint'];
  trials: TrialResult[];
  retrain?: RetrainResult;
}

/** JSON with sorted keys: two definitions are the same search when these strings are equal. */
function canonical(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) => (v && typeof v === 'object' && !Array.isArray(v)
    ? Object.fromEntries(Object.entries(v as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
    : v));
}

/** The paths (up to two levels deep) where two definitions differ, for the error message. */
function differences(a: unknown, b: unknown, at: string, depth = 2): string[] {
  const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
  if (depth > 0 && isObject(a) && isObject(b)) {
    const keys = [...new Set([...Object.keys(a), ...Object.keys(b)])];
    return keys.flatMap((k) => differences(a[k], b[k], at ? `${at}.${k}` : k, depth - 1));
  }
  return canonical(a) === canonical(b) ? [] : [at];
}

/** A stored and a new value side by side, kept short. */
function contrast(stored: unknown, now: unknown, at: string): string {
  const short = (v: unknown): string => {
    const text = v === undefined ? 'none' : canonical(v);
    return text.length > 60 ? `${text.slice(0, 57)}...` : text;
  };
  return `${at}: ${short(stored)} there, ${short(now)} now`;
}

function valueAt(root: unknown, at: string): unknown {
  return at.split('.').reduce<unknown>((v, k) => (v as Record<string, unknown> | undefined)?.[k], root);
}

function mismatch(file: string, what: string, details: string): Error {
  return new Error(`${file} holds a different search (${what}: ${details}). ` +
    'Resume it with the options it was started with, or give another dir for a new search.');
}

/** The state of the search in `dir`, or undefined when none was started there. */
export function readState(dir: string): TuneState | undefined {
  const file = path.join(dir, TRIALS_FILE);
  let text: string;
  try {
    text = readRegularTextFile(file, MAX_BYTES);
  } catch (err) {
    if (err instanceof UnreadableFileError && err.reason === 'missing') return undefined;
    throw err;
  }
  let state: TuneState;
  try {
    state = JSON.parse(text) as TuneState;
  } catch (err) {
    throw new Error(`${file} is not valid JSON (${(err as Error).message}); it is not a search this version of convscope can resume: move it away or give another dir`);
  }
  if (state?.format !== FORMAT || state.version !== VERSION || !Array.isArray(state.trials)) {
    throw new Error(`${file} is not a convscope tune file of version ${VERSION}; move it away or give another dir`);
  }
  try {
    checkStoredFields(state);
  } catch (err) {
    throw Object.assign(new Error(`${file} has a field this version of convscope cannot use: ${(err as Error).message}; ` +
      'move the file away or give another dir'), { name: (err as Error).name });
  }
  return state;
}

const TRIAL_STATUSES: readonly TrialStatus[] = ['completed', 'stopped-early', 'diverged'];

/** A finite number, or null where the trial had none. */
function checkNumberOrNull(value: unknown, name: string): void {
  if (value !== null) checkNumber(value, name);
}

/** One stored trial: every field the search and its report read, with its type and range. */
function checkStoredTrial(value: unknown, name: string): void {
  const t = checkObject(value, name);
  checkInteger(t.trial, `${name}.trial`, 1);
  checkObject(t.params, `${name}.params`);
  checkOneOf(t.status, `${name}.status`, TRIAL_STATUSES);
  checkInteger(t.epochs, `${name}.epochs`, 0);
  for (const key of ['validationAccuracy', 'validationLoss', 'trainAccuracy']) checkNumberOrNull(t[key], `${name}.${key}`);
  if (!Array.isArray(t.curve)) throw new TypeError(expected('an array of numbers', `${name}.curve`, t.curve));
  t.curve.forEach((v, i) => checkNumber(v, `${name}.curve[${i}]`));
  if (t.stoppedBelowMedian !== undefined) checkNumber(t.stoppedBelowMedian, `${name}.stoppedBelowMedian`);
  checkNumber(t.seconds, `${name}.seconds`, 0);
}

/** The stored retraining: its model must be the search folder's own file, never a path elsewhere. */
function checkStoredRetrain(value: unknown): void {
  const r = checkObject(value, 'retrain');
  checkInteger(r.trial, 'retrain.trial', 1);
  checkObject(r.params, 'retrain.params');
  for (const key of ['epochs', 'trainImages', 'testImages']) checkInteger(r[key], `retrain.${key}`, 0);
  for (const key of ['testAccuracy', 'testLoss']) checkNumber(r[key], `retrain.${key}`);
  checkNumber(r.seconds, 'retrain.seconds', 0);
  if (checkString(r.model, 'retrain.model') !== BEST_MODEL_FILE) throw new RangeError(expected(`"${BEST_MODEL_FILE}"`, 'retrain.model', r.model));
}

/**
 * Every field of a stored search that is used after it is read: trials, definition, data and the
 * retraining. A hand-edited file fails here, naming the field, not after a trial has trained.
 */
function checkStoredFields(state: TuneState): void {
  checkObject(state.definition, 'definition');
  checkObject(state.data, 'data');
  state.trials.forEach((t, i) => checkStoredTrial(t, `trials[${i}]`));
  if (state.retrain !== undefined) checkStoredRetrain(state.retrain);
}

/** Throws unless the stored search is `definition` (every option that changes a trial's result). */
export function checkSameSearch(state: TuneState, definition: SearchDefinition, dir: string): void {
  const diff = differences(state.definition, definition, '');
  if (diff.length > 0) {
    const details = diff.map((at) => contrast(valueAt(state.definition, at), valueAt(definition, at), at)).join('; ');
    throw mismatch(path.join(dir, TRIALS_FILE), 'options that differ', details);
  }
}

/** Throws unless the stored search ran on these images. */
export function checkSameData(state: TuneState, data: SearchData['fingerprint'], dir: string): void {
  const diff = differences({ data: state.data }, { data }, '');
  if (diff.length > 0) {
    const details = diff.map((at) => contrast(valueAt({ data: state.data }, at), valueAt({ data }, at), at)).join('; ');
    throw mismatch(path.join(dir, TRIALS_FILE), 'different images', details);
  }
}

/**
 * Throws unless the stored trials are trials 1..n of this search with its parameters: guaranteed by
 * an equal definition, unless the file was edited or written by another version of the sampling.
 */
export function checkStoredTrials(state: TuneState, trials: TrialParams[], dir: string): void {
  state.trials.forEach((t, i) => {
    if (t.trial !== i + 1 || i >= trials.length || canonical(t.params) !== canonical(trials[i])) {
      throw mismatch(path.join(dir, TRIALS_FILE), `stored trial ${i + 1}`, `${canonical(t.params)} is not this search's ${canonical(trials[i] ?? null)}`);
    }
  });
}

/** Writes the state atomically; the file is complete or the previous one, never half of one. */
export function writeState(dir: string, state: TuneState): void {
  writeFileAtomic(path.join(dir, TRIALS_FILE), JSON.stringify(state, null, 2) + '\n');
}
