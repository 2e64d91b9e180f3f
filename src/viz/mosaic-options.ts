// Options shared by the weight and activation mosaics, checked once here so every renderer rejects
// the same mistakes with the same messages (src/validate.ts shape).

import { checkBoolean, checkInteger, checkKnownKeys, checkObject, checkPositiveInteger, checkString, expected } from '../util/validate';
import { checkColormap, type ColormapName } from './colormaps';
import { layoutMosaic, type MosaicLayout } from './mosaic-layout';
import { checkNormalizeMode, type NormalizeMode } from './normalize';

/** A group of tiles to frame in one colour, e.g. filters found to be near-duplicates. */
export interface TileHighlight {
  /** Tile indices (filter index for a first-layer mosaic, channel index for one filter's channels). */
  tiles: number[];
  /** Any CSS colour node-canvas understands: `'red'`, `'#ff8800'`, `'rgb(0, 128, 255)'`. */
  color: string;
}

/**
 * Options of the filter mosaics ({@link renderFilterMosaic}, `renderFilterChannels`, and, without
 * `rows`/`cols`, `renderLayerGrid`).
 *
 * @example
 * const options: MosaicOptions = { colormap: 'gray', normalize: 'filter', gutter: 4, labels: true };
 */
export interface MosaicOptions {
  /**
   * Colormap. Default `'RdBu'`: weights are signed, and with a diverging map and a range symmetric
   * around zero a weight's sign reads as its hue (red negative, blue positive, white zero).
   */
  colormap?: ColormapName;
  /** `'global'` (default): one range over the whole tensor; `'filter'`: each filter its own range. */
  normalize?: NormalizeMode;
  /** Output pixels per weight (nearest-neighbour). Default: the largest integer keeping a tile ≤ 64 px, at least 1. */
  scale?: number;
  /** Pixels between tiles and around the grid. Default 2. */
  gutter?: number;
  /** Grid rows (default: near-square, see `gridShape`). */
  rows?: number;
  /** Grid columns (default `ceil(sqrt(n))`). */
  cols?: number;
  /** Draw each tile's index above it. Default false. */
  labels?: boolean;
  /** Title drawn above the grid. */
  title?: string;
  /** Draw a colour bar with the value range on the right. Default false. */
  colorbar?: boolean;
  /** CSS colour of the gutters and margins. Default `'#ffffff'`. */
  background?: string;
  /** Frames drawn around groups of tiles, in the gutter around each tile. */
  highlight?: TileHighlight[];
}

/** {@link MosaicOptions} after checking, with defaults filled in (scale stays optional). */
export interface ResolvedMosaicOptions {
  colormap: ColormapName;
  normalize: NormalizeMode;
  scale?: number;
  gutter: number;
  rows?: number;
  cols?: number;
  labels: boolean;
  title?: string;
  colorbar: boolean;
  background: string;
  highlight: TileHighlight[];
}

/** Largest kernel-to-pixel scale: keeps a 1x1 kernel at 64 px wide at most. */
export const MAX_SCALE = 64;
const TARGET_TILE = 64;

/**
 * Default output pixels per weight: the largest integer scale keeping the tile at most 64 px
 * (so 44..64 px for kernels 1..28), never below 1.
 *
 * @example
 * defaultScale(5, 5);   // 12 → 60 px tiles
 * defaultScale(28, 28); // 2  → 56 px tiles
 */
export function defaultScale(height: number, width: number): number {
  return Math.max(1, Math.floor(TARGET_TILE / Math.max(height, width)));
}

/**
 * Checks mosaic options and fills defaults. `allowed` limits which keys this renderer takes; an
 * unknown key is a TypeError so a typo is not silently ignored.
 *
 * @example
 * const o = resolveMosaicOptions(options, ['colormap', 'scale'], { colormap: 'RdBu', normalize: 'global' });
 */
export function resolveMosaicOptions(
  options: unknown,
  allowed: readonly string[],
  defaults: { colormap: ColormapName; normalize: NormalizeMode },
): ResolvedMosaicOptions {
  const o = options === undefined ? {} : checkObject(options, 'options');
  checkKnownKeys(o, 'options', allowed);
  const resolved: ResolvedMosaicOptions = {
    colormap: o.colormap === undefined ? defaults.colormap : checkColormap(o.colormap, 'options.colormap'),
    normalize: o.normalize === undefined ? defaults.normalize : checkNormalizeMode(o.normalize, 'options.normalize'),
    gutter: o.gutter === undefined ? 2 : checkInteger(o.gutter, 'options.gutter', 0, 256),
    labels: o.labels === undefined ? false : checkBoolean(o.labels, 'options.labels'),
    colorbar: o.colorbar === undefined ? false : checkBoolean(o.colorbar, 'options.colorbar'),
    background: o.background === undefined ? '#ffffff' : checkString(o.background, 'options.background'),
    highlight: o.highlight === undefined ? [] : checkHighlights(o.highlight),
  };
  if (o.scale !== undefined) resolved.scale = checkPositiveInteger(o.scale, 'options.scale', MAX_SCALE);
  if (o.rows !== undefined) resolved.rows = checkPositiveInteger(o.rows, 'options.rows');
  if (o.cols !== undefined) resolved.cols = checkPositiveInteger(o.cols, 'options.cols');
  if (o.title !== undefined) resolved.title = checkString(o.title, 'options.title');
  return resolved;
}

function checkHighlights(value: unknown): TileHighlight[] {
  if (!Array.isArray(value)) throw new TypeError(expected('an array of { tiles, color }', 'options.highlight', value));
  return value.map((entry, i) => {
    const name = `options.highlight[${i}]`;
    const h = checkObject(entry, name);
    checkKnownKeys(h, name, ['tiles', 'color']);
    if (!Array.isArray(h.tiles)) throw new TypeError(expected('an array of tile indices', `${name}.tiles`, h.tiles));
    const tiles = h.tiles.map((t, j) => checkInteger(t, `${name}.tiles[${j}]`, 0));
    return { tiles, color: checkString(h.color, `${name}.color`) };
  });
}

/**
 * Throws a RangeError when a highlight names a tile the picture does not have.
 *
 * @example
 * checkHighlightRange([{ tiles: [0, 40], color: 'red' }], 32); // RangeError: tile 40
 */
export function checkHighlightRange(highlight: readonly TileHighlight[], count: number): void {
  highlight.forEach((h, i) =>
    h.tiles.forEach((t, j) => {
      if (t >= count) {
        throw new RangeError(expected(`a tile index in [0, ${count - 1}]`, `options.highlight[${i}].tiles[${j}]`, t));
      }
    }),
  );
}

/**
 * The grid of `count` kernel tiles of kh x kw weights, each scaled up by the options' scale (or the
 * default for that kernel size): what a filter mosaic and one filter's channels both draw.
 */
export function layoutKernelTiles(count: number, kh: number, kw: number, o: ResolvedMosaicOptions): { layout: MosaicLayout; scale: number } {
  const scale = o.scale ?? defaultScale(kh, kw);
  const layout = layoutMosaic({
    count,
    tileWidth: kw * scale,
    tileHeight: kh * scale,
    rows: o.rows,
    cols: o.cols,
    gutter: o.gutter,
    labels: o.labels,
    title: o.title,
    colorbar: o.colorbar,
  });
  return { layout, scale };
}
