// The declared search space of `tune`: which hyperparameters vary and over what, checked before any
// work, and the trials drawn from it: every combination (grid) or seeded random draws (random).
import { SCHEDULES, ScheduleKind } from '../train/schedule';
import { checkBoolean, checkKnownKeys, checkNumber, checkObject, expected } from '../util/validate';
import { trialRandom } from './prng';

/** A continuous (or integer) interval to draw from in a random search; `log` draws uniformly in log space. */
export interface ParamRange {
  min: number;
  max: number;
  log?: boolean;
}

/**
 * A value of the `filters` hyperparameter: a number scales every conv layer's filter count of the
 * base spec (0.5 halves them, rounded, at least 1); an array gives each conv layer's count.
 */
export type FiltersValue = number | number[];

/**
 * The hyperparameters a search varies. Each is a list of values (grid, or a random choice) or, for
 * random search, a range; `schedule` takes a list. A hyperparameter left out keeps the base value.
 * @example { learningRate: { min: 1e-4, max: 1e-2, log: true }, batchSize: [64, 128], schedule: ['constant', 'one-cycle'] }
 */
export interface SearchSpace {
  learningRate?: number[] | ParamRange;
  batchSize?: number[] | ParamRange;
  /** The dropout rate after the hidden dense layers (spec.dropout). */
  dropout?: number[] | ParamRange;
  /** Scales of, or per-layer counts for, the conv layers' filters (see FiltersValue); a range is a range of scales. */
  filters?: FiltersValue[] | ParamRange;
  /** The first conv layer's kernel size (as `convscope train --kernel-size`). */
  kernelSize?: number[] | ParamRange;
  weightDecay?: number[] | ParamRange;
  schedule?: ScheduleKind[];
}

/** One trial's hyperparameters: a value for every key of the space. */
export interface TrialParams {
  learningRate?: number;
  batchSize?: number;
  dropout?: number;
  filters?: FiltersValue;
  kernelSize?: number;
  weightDecay?: number;
  schedule?: ScheduleKind;
}

export type ParamKey = keyof TrialParams;
/** The space's keys in the order trials list them (grid: the last one varies fastest). */
export const SPACE_KEYS: readonly ParamKey[] = ['learningRate', 'batchSize', 'dropout', 'filters', 'kernelSize', 'weightDecay', 'schedule'];
export const SEARCHES = ['random', 'grid'] as const;
export type SearchKind = (typeof SEARCHES)[number];

/** More grid points than this is almost surely a mistake (each one is a training). */
const MAX_GRID = 10000;

/** What each key accepts: one value's check, and whether it may be a range (and of integers). */
interface KeyDomain {
  check: (value: unknown, name: string) => void;
  range?: { integer: boolean; min: number; max: number; exclusiveMin?: boolean; exclusiveMax?: boolean };
}

function checkPositiveInt(value: unknown, name: string): void {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1) throw new TypeError(expected('a positive integer', name, value));
}

function checkFiltersValue(value: unknown, name: string): void {
  if (Array.isArray(value)) {
    if (value.length === 0) throw new RangeError(expected('a non-empty array of filter counts, one per conv layer', name, value));
    value.forEach((v, i) => checkPositiveInt(v, `${name}[${i}]`));
    return;
  }
  if (typeof value !== 'number') throw new TypeError(expected('a scale (number > 0) or an array of filter counts per conv layer', name, value));
  checkNumber(value, name, 0, Infinity, { exclusiveMin: true });
}

const DOMAINS: Record<ParamKey, KeyDomain> = {
  learningRate: { check: (v, n) => checkNumber(v, n, 0, Infinity, { exclusiveMin: true }), range: { integer: false, min: 0, max: Infinity, exclusiveMin: true } },
  batchSize: { check: checkPositiveInt, range: { integer: true, min: 1, max: Infinity } },
  dropout: { check: (v, n) => checkNumber(v, n, 0, 1, { exclusiveMax: true }), range: { integer: false, min: 0, max: 1, exclusiveMax: true } },
  filters: { check: checkFiltersValue, range: { integer: false, min: 0, max: Infinity, exclusiveMin: true } },
  kernelSize: { check: checkPositiveInt, range: { integer: true, min: 1, max: Infinity } },
  weightDecay: { check: (v, n) => checkNumber(v, n, 0), range: { integer: false, min: 0, max: Infinity } },
  schedule: {
    check: (v, n) => {
      if (typeof v !== 'string' || !(SCHEDULES as readonly string[]).includes(v)) throw new RangeError(expected(`one of ${SCHEDULES.join(', ')}`, n, v));
    },
  },
};

/** One key of a checked space: a list of values, or a range. */
export type Dimension =
  | { key: ParamKey; kind: 'values'; values: TrialParams[ParamKey][] }
  | { key: ParamKey; kind: 'range'; min: number; max: number; log: boolean; integer: boolean };

function checkRange(value: Record<string, unknown>, key: ParamKey, name: string): Dimension {
  const domain = DOMAINS[key].range;
  if (!domain) throw new TypeError(expected('a list of values (this hyperparameter has no range)', name, value));
  checkKnownKeys(value, name, ['min', 'max', 'log']);
  const bounds = { exclusiveMin: domain.exclusiveMin, exclusiveMax: domain.exclusiveMax };
  const min = checkNumber(value.min, `${name}.min`, domain.min, domain.max, bounds);
  const max = checkNumber(value.max, `${name}.max`, domain.min, domain.max, bounds);
  if (!(max > min)) throw new RangeError(expected(`a number above ${name}.min (${min})`, `${name}.max`, max));
  const log = value.log === undefined ? false : checkBoolean(value.log, `${name}.log`);
  if (log && min <= 0) throw new RangeError(expected('a number > 0 (a log range cannot include 0)', `${name}.min`, min));
  if (domain.integer && (!Number.isInteger(min) || !Number.isInteger(max))) {
    throw new TypeError(expected('integer bounds', name, `${min}..${max}`));
  }
  return { key, kind: 'range', min, max, log, integer: domain.integer };
}

function checkValues(values: unknown[], key: ParamKey, name: string): Dimension {
  if (values.length === 0) throw new RangeError(expected('a non-empty list of values', name, values));
  values.forEach((v, i) => DOMAINS[key].check(v, `${name}[${i}]`));
  // A repeated value would train the same trial twice.
  const seen = new Set<string>();
  values.forEach((v, i) => {
    const id = JSON.stringify(v);
    if (seen.has(id)) throw new RangeError(`Expected distinct values for ${name} but ${name}[${i}] (${id}) repeats an earlier one`);
    seen.add(id);
  });
  return { key, kind: 'values', values: values as TrialParams[ParamKey][] };
}

/**
 * Checks a search space for a search kind: known keys, at least one of them, lists that are
 * non-empty with valid and distinct values, ranges with min < max (> 0 when log), and no range in
 * a grid. Returns its dimensions in SPACE_KEYS order.
 * @example checkSpace({ learningRate: [1e-3, 3e-3] }, 'grid') // [{ key: 'learningRate', kind: 'values', values: [0.001, 0.003] }]
 */
export function checkSpace(space: unknown, search: SearchKind): Dimension[] {
  const s = checkObject(space, 'space');
  checkKnownKeys(s, 'space', SPACE_KEYS);
  const keys = SPACE_KEYS.filter((k) => s[k] !== undefined);
  if (keys.length === 0) throw new RangeError(`Expected at least one hyperparameter in space (one of ${SPACE_KEYS.join(', ')}) but received an empty space`);
  return keys.map((key) => {
    const value = s[key];
    const name = `space.${key}`;
    if (Array.isArray(value)) return checkValues(value, key, name);
    if (typeof value === 'object' && value !== null) {
      if (search === 'grid') throw new TypeError(expected('a list of values (grid search enumerates lists; ranges are for random search)', name, value));
      return checkRange(value as Record<string, unknown>, key, name);
    }
    throw new TypeError(expected(DOMAINS[key].range ? 'a list of values or a range { min, max, log? }' : 'a list of values', name, value) +
      ' (wrap a single value in a list)');
  });
}

/** The number of distinct trials the space holds: Infinity when it has a range. */
export function spaceSize(dimensions: Dimension[]): number {
  return dimensions.reduce((n, d) => n * (d.kind === 'values' ? d.values.length : Infinity), 1);
}

/**
 * Every combination of the space's values, the last key varying fastest.
 * @example gridTrials(checkSpace({ learningRate: [1, 2], batchSize: [8, 16] }, 'grid'))
 * // [{ learningRate: 1, batchSize: 8 }, { learningRate: 1, batchSize: 16 }, { learningRate: 2, batchSize: 8 }, { learningRate: 2, batchSize: 16 }]
 */
export function gridTrials(dimensions: Dimension[]): TrialParams[] {
  const size = spaceSize(dimensions);
  if (size > MAX_GRID) throw new RangeError(`Expected a grid of at most ${MAX_GRID} combinations for space but it has ${size}; narrow it or use search 'random'`);
  let trials: TrialParams[] = [{}];
  for (const d of dimensions) {
    if (d.kind !== 'values') throw new TypeError(`grid search needs lists of values; space.${d.key} is a range`);
    trials = trials.flatMap((t) => d.values.map((v) => ({ ...t, [d.key]: v })));
  }
  return trials;
}

/** Three significant digits: sampled rates read as 0.00123, not 0.0012345678. */
function round3(x: number): number {
  return Number(x.toPrecision(3));
}

function drawOne(d: Dimension, next: () => number): TrialParams[ParamKey] {
  if (d.kind === 'values') return d.values[Math.floor(next() * d.values.length)];
  const u = next();
  let x: number;
  if (d.integer) {
    // Uniform over the integers min..max (or log-uniform, rounded).
    x = d.log ? Math.round(Math.exp(Math.log(d.min) + u * (Math.log(d.max) - Math.log(d.min)))) : d.min + Math.floor(u * (d.max - d.min + 1));
  } else {
    x = round3(d.log ? Math.exp(Math.log(d.min) + u * (Math.log(d.max) - Math.log(d.min))) : d.min + u * (d.max - d.min));
  }
  // Rounding may step just outside the bounds; the range is a promise.
  return Math.min(d.max, Math.max(d.min, x));
}

/** Redraws of a trial that repeats an earlier one before it is kept anyway (only a space with ranges gets here). */
const MAX_REDRAWS = 100;

/**
 * `count` trials drawn at random, trial i (1-based) from its own seeded stream (see prng.ts), so the
 * same seed always gives the same trials. A draw that repeats an earlier trial is drawn again: a
 * space of lists only must then hold at least `count` combinations.
 * @example randomTrials(checkSpace({ learningRate: { min: 1e-4, max: 1e-2, log: true } }, 'random'), 3, 42)
 */
export function randomTrials(dimensions: Dimension[], count: number, seed: number): TrialParams[] {
  const size = spaceSize(dimensions);
  if (count > size) {
    throw new RangeError(expected(`at most ${size} trials (the distinct combinations of space's lists; add a range or use search 'grid')`, 'trials', count));
  }
  const trials: TrialParams[] = [];
  const seen = new Set<string>();
  for (let i = 1; i <= count; ++i) {
    const next = trialRandom(seed, i);
    let params: TrialParams = {};
    for (let attempt = 0; attempt <= MAX_REDRAWS; ++attempt) {
      params = Object.fromEntries(dimensions.map((d) => [d.key, drawOne(d, next)])) as TrialParams;
      if (!seen.has(JSON.stringify(params))) break;
    }
    seen.add(JSON.stringify(params));
    trials.push(params);
  }
  return trials;
}

/** Short labels for tables and logs. */
export const PARAM_LABELS: Record<ParamKey, string> = {
  learningRate: 'lr', batchSize: 'batch', dropout: 'dropout', filters: 'filters', kernelSize: 'kernel', weightDecay: 'weight decay', schedule: 'schedule',
};

/** One value as the table shows it. @example formatParam('filters', [16, 32]) // '16-32' */
export function formatParam(key: ParamKey, value: TrialParams[ParamKey]): string {
  if (value === undefined) return '-';
  if (Array.isArray(value)) return value.join('-');
  if (key === 'filters') return `x${value}`;
  return String(value);
}

/** A trial's parameters on one line. @example describeParams({ learningRate: 0.001, batchSize: 64 }) // 'lr 0.001, batch 64' */
export function describeParams(params: TrialParams): string {
  return SPACE_KEYS.filter((k) => params[k] !== undefined).map((k) => `${PARAM_LABELS[k]} ${formatParam(k, params[k])}`).join(', ');
}
