// Maps raw weights or activations to [0, 1] before a colormap lookup. Two questions decide the
// mapping: over which values the range is taken (one tile or all of them), and whether the data is
// signed (a diverging colormap wants zero at its centre colour, so the range is symmetric).

import { checkOneOf } from '../util/validate';

/**
 * How value ranges are taken:
 * - `'filter'`: each filter gets its own min..max, which shows the shape of weak filters too;
 * - `'global'`: one range over everything drawn, which keeps magnitudes comparable between filters.
 */
export type NormalizeMode = 'filter' | 'global';

/** Accepted values of a `normalize` option. */
export const NORMALIZE_MODES: readonly NormalizeMode[] = ['filter', 'global'];

/** A closed value range; `lo === hi` for constant data. */
export interface ValueRange {
  lo: number;
  hi: number;
}

/**
 * Checks a `normalize` option value (TypeError / RangeError listing the choices).
 *
 * @example
 * checkNormalizeMode('global', 'options.normalize'); // 'global'
 */
export function checkNormalizeMode(value: unknown, name: string): NormalizeMode {
  return checkOneOf(value, name, NORMALIZE_MODES);
}

/**
 * The range to normalise `values[start, end)` with. For a diverging colormap it is `[-m, m]` with
 * `m = max |v|`, so that 0 lands on the centre colour; otherwise it is `[min, max]`.
 *
 * @example
 * valueRange(new Float32Array([-1, 3]), false); // { lo: -1, hi: 3 }
 * valueRange(new Float32Array([-1, 3]), true);  // { lo: -3, hi: 3 }
 */
export function valueRange(values: ArrayLike<number>, diverging: boolean, start = 0, end = values.length): ValueRange {
  let lo = Infinity;
  let hi = -Infinity;
  for (let i = start; i < end; i++) {
    const v = values[i];
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  if (lo > hi) return { lo: 0, hi: 0 }; // empty slice
  if (diverging) {
    const m = Math.max(Math.abs(lo), Math.abs(hi));
    return { lo: -m, hi: m };
  }
  return { lo, hi };
}

/**
 * The union of several ranges (for `'global'` normalisation built from per-tile ranges).
 *
 * @example
 * unionRange([{ lo: 0, hi: 1 }, { lo: -2, hi: 0.5 }]); // { lo: -2, hi: 1 }
 */
export function unionRange(ranges: readonly ValueRange[]): ValueRange {
  if (ranges.length === 0) return { lo: 0, hi: 0 };
  let lo = Infinity;
  let hi = -Infinity;
  for (const r of ranges) {
    lo = Math.min(lo, r.lo);
    hi = Math.max(hi, r.hi);
  }
  return { lo, hi };
}

/**
 * Position of `v` inside `range`, clamped to [0, 1]. A zero-width range (a constant filter, or an
 * all-zero one under a diverging map) gives 0.5, the middle / centre colour, instead of dividing
 * by zero.
 *
 * @example
 * toUnit(2, { lo: 0, hi: 4 }); // 0.5
 * toUnit(7, { lo: 7, hi: 7 }); // 0.5
 */
export function toUnit(v: number, range: ValueRange): number {
  const width = range.hi - range.lo;
  if (!(width > 0)) return 0.5;
  const t = (v - range.lo) / width;
  return t <= 0 ? 0 : t >= 1 ? 1 : t;
}

/**
 * One range per consecutive group of `groupLength` values (e.g. per filter of a `[n, c, kh, kw]`
 * tensor with `groupLength = c * kh * kw`).
 *
 * @example
 * rangesPerGroup(new Float32Array([0, 1, 5, 9]), 2, false); // [{ lo: 0, hi: 1 }, { lo: 5, hi: 9 }]
 */
export function rangesPerGroup(values: ArrayLike<number>, groupLength: number, diverging: boolean): ValueRange[] {
  const ranges: ValueRange[] = [];
  for (let start = 0; start < values.length; start += groupLength) {
    ranges.push(valueRange(values, diverging, start, Math.min(values.length, start + groupLength)));
  }
  return ranges;
}
