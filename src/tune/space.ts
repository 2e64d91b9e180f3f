// The declared search space of `tune`: which hyperparameters vary and over what, checked before any
// work, and how it maps onto Optuna's distributions (lists: categorical; ranges: float or int, log or
// not). Optuna's samplers draw the trials; the grid is every combination of the lists.
import { SCHEDULES, ScheduleKind } from '../train/schedule';
import { checkBoolean, checkKnownKeys, checkNumber, checkObject, expected } from '../util/validate';
import type { WireDistribution } from './optuna-helper';

/** A continuous (or integer) interval to draw from (not in a grid); `log` draws uniformly in log space. */
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
 * The hyperparameters a search varies. Each is a list of values (a categorical choice, or the grid's
 * values) or, for every sampler but grid, a range; `schedule` takes a list. A hyperparameter left out keeps the base value.
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
/** Optuna's samplers: TPE (default), random, grid (every combination of lists), CMA-ES (ranges; needs the cmaes package). */
export const SAMPLERS = ['tpe', 'random', 'grid', 'cmaes'] as const;
export type SamplerKind = (typeof SAMPLERS)[number];

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
 * Checks a search space for a sampler: known keys, at least one of them, lists that are
 * non-empty with valid and distinct values, ranges with min < max (> 0 when log), and no range in
 * a grid. Returns its dimensions in SPACE_KEYS order.
 * @example checkSpace({ learningRate: [1e-3, 3e-3] }, 'grid') // [{ key: 'learningRate', kind: 'values', values: [0.001, 0.003] }]
 */
export function checkSpace(space: unknown, sampler: SamplerKind): Dimension[] {
  const s = checkObject(space, 'space');
  checkKnownKeys(s, 'space', SPACE_KEYS);
  const keys = SPACE_KEYS.filter((k) => s[k] !== undefined);
  if (keys.length === 0) throw new RangeError(`Expected at least one hyperparameter in space (one of ${SPACE_KEYS.join(', ')}) but received an empty space`);
  return keys.map((key) => {
    const value = s[key];
    const name = `space.${key}`;
    if (Array.isArray(value)) return checkValues(value, key, name);
    if (typeof value === 'object' && value !== null) {
      if (sampler === 'grid') throw new TypeError(expected("a list of values (the grid sampler enumerates lists; ranges are for the other samplers)", name, value));
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
  if (size > MAX_GRID) throw new RangeError(`Expected a grid of at most ${MAX_GRID} combinations for space but it has ${size}; narrow it or use another sampler`);
  let trials: TrialParams[] = [{}];
  for (const d of dimensions) {
    if (d.kind !== 'values') throw new TypeError(`the grid sampler needs lists of values; space.${d.key} is a range`);
    trials = trials.flatMap((t) => d.values.map((v) => ({ ...t, [d.key]: v })));
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

/**
 * A value as Optuna stores it: numbers and schedule names as they are, per-layer filter counts as
 * their JSON text (Optuna's categorical choices are numbers, strings, booleans or null).
 * @example encodeValue([16, 32]) // '[16,32]'
 */
export function encodeValue(value: TrialParams[ParamKey]): number | string {
  return Array.isArray(value) ? JSON.stringify(value) : value as number | string;
}

/** The inverse of encodeValue for `key`. */
export function decodeValue(key: ParamKey, value: unknown): TrialParams[ParamKey] {
  if (key === 'filters' && typeof value === 'string') return JSON.parse(value) as number[];
  return value as TrialParams[ParamKey];
}

/** A trial's parameters from Optuna's (the space's keys only). */
export function decodeParams(dimensions: Dimension[], params: Record<string, unknown>): TrialParams {
  const out: TrialParams = {};
  for (const d of dimensions) if (params[d.key] !== undefined) (out as Record<string, unknown>)[d.key] = decodeValue(d.key, params[d.key]);
  return out;
}

/** Each dimension as an Optuna distribution: a list is categorical, a range float or int (log when asked). */
export function distributionsOf(dimensions: Dimension[]): WireDistribution[] {
  return dimensions.map((d) => (d.kind === 'values'
    ? { name: d.key, type: 'categorical', choices: d.values.map(encodeValue) }
    : { name: d.key, type: d.integer ? 'int' : 'float', low: d.min, high: d.max, log: d.log }));
}

/** The grid sampler's search space: every list's values, encoded. */
export function gridOf(dimensions: Dimension[]): Record<string, (number | string)[]> {
  return Object.fromEntries(dimensions.map((d) => {
    if (d.kind !== 'values') throw new TypeError(`the grid sampler needs lists of values; space.${d.key} is a range`);
    return [d.key, d.values.map(encodeValue)];
  }));
}
