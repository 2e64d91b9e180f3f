// Colormaps as 256-entry RGB lookup tables, looked up the way matplotlib does (entry
// floor(t * 256), clipped to 255), so a picture made here matches one made with matplotlib's
// `imshow(..., cmap=name)` of the same normalised values.

import { checkNumber, checkOneOf } from '../util/validate';
import { GRAY_ANCHORS, MAGMA_ANCHORS, RDBU_ANCHORS, VIRIDIS_ANCHORS, type ColorAnchor } from './colormap-data';

/** Names accepted wherever a `colormap` option is taken. */
export const COLORMAP_NAMES = ['gray', 'viridis', 'magma', 'RdBu'] as const;

/**
 * A colormap name. `gray`, `viridis` and `magma` are sequential (low → dark, high → bright);
 * `RdBu` is diverging and follows matplotlib's convention: low (negative) values red, the centre
 * near-white, high (positive) values blue.
 */
export type ColormapName = (typeof COLORMAP_NAMES)[number];

/** An RGB colour with channels 0..255. */
export type Rgb = [r: number, g: number, b: number];

const LUT_SIZE = 256;

const ANCHORS: Record<ColormapName, readonly ColorAnchor[]> = {
  gray: GRAY_ANCHORS,
  viridis: VIRIDIS_ANCHORS,
  magma: MAGMA_ANCHORS,
  RdBu: RDBU_ANCHORS,
};

const DIVERGING: ReadonlySet<ColormapName> = new Set<ColormapName>(['RdBu']);

// Built on first use: a process that never draws never pays for them.
const lutCache = new Map<ColormapName, Uint8Array>();

function buildLut(anchors: readonly ColorAnchor[]): Uint8Array {
  const lut = new Uint8Array(LUT_SIZE * 3);
  let segment = 0;
  for (let i = 0; i < LUT_SIZE; i++) {
    while (segment < anchors.length - 2 && i > anchors[segment + 1][0]) segment++;
    const [i0, r0, g0, b0] = anchors[segment];
    const [i1, r1, g1, b1] = anchors[segment + 1];
    const f = i1 === i0 ? 0 : (i - i0) / (i1 - i0);
    lut[i * 3] = Math.round((r0 + (r1 - r0) * f) * 255);
    lut[i * 3 + 1] = Math.round((g0 + (g1 - g0) * f) * 255);
    lut[i * 3 + 2] = Math.round((b0 + (b1 - b0) * f) * 255);
  }
  return lut;
}

/**
 * The 256-entry lookup table of a colormap as packed RGB bytes (`lut[3*i .. 3*i+2]`).
 * Meant for renderers that colour many pixels; unchecked, so validate the name first.
 *
 * @example
 * const lut = colormapLut('viridis'); // lut.length === 768
 */
export function colormapLut(name: ColormapName): Uint8Array {
  let lut = lutCache.get(name);
  if (!lut) {
    lut = buildLut(ANCHORS[name]);
    lutCache.set(name, lut);
  }
  return lut;
}

/**
 * Table index for t in [0, 1], as matplotlib computes it; NaN maps to the lowest entry.
 *
 * @example
 * lutIndex(0.5); // 128
 * lutIndex(1);   // 255
 */
export function lutIndex(t: number): number {
  if (!(t > 0)) return 0;
  return Math.min(LUT_SIZE - 1, Math.floor(t * LUT_SIZE));
}

/**
 * Checks a `colormap` option value: TypeError for a non-string, RangeError listing the choices for
 * an unknown name.
 *
 * @example
 * const name = checkColormap(options.colormap ?? 'viridis', 'options.colormap');
 */
export function checkColormap(value: unknown, name: string): ColormapName {
  return checkOneOf(value, name, COLORMAP_NAMES);
}

/**
 * The colour a colormap gives a normalised value.
 *
 * @param name - one of {@link COLORMAP_NAMES}
 * @param t - position in [0, 1]; 0 is the low end, 1 the high end, 0.5 the centre of a diverging map
 * @returns `[r, g, b]`, each 0..255
 * @example
 * colorAt('gray', 1);     // [255, 255, 255]
 * colorAt('RdBu', 0);     // [103, 0, 31]   dark red
 * colorAt('RdBu', 0.5);   // near-white centre
 */
export function colorAt(name: ColormapName, t: number): Rgb {
  const lut = colormapLut(checkColormap(name, 'name'));
  const i = lutIndex(checkNumber(t, 't', 0, 1)) * 3;
  return [lut[i], lut[i + 1], lut[i + 2]];
}

/**
 * Whether a colormap is diverging, i.e. meant for signed data with zero at its centre colour.
 * Renderers use a range symmetric around zero for these.
 *
 * @example
 * isDiverging('RdBu');    // true
 * isDiverging('viridis'); // false
 */
export function isDiverging(name: ColormapName): boolean {
  return DIVERGING.has(checkColormap(name, 'name'));
}
