// Pure geometry of a tile mosaic: where each tile, the title and the colour bar go in the picture.
// Kept free of canvas so callers (tests, the redundancy marker, report tools) can locate tiles in a
// rendered PNG without drawing anything, and so the renderers and those callers cannot disagree.

import { checkBoolean, checkInteger, checkPositiveInteger, checkString } from '../util/validate';

/** An axis-aligned rectangle in picture pixels; `x, y` is the top-left corner. */
export interface Rect {
  x: number;
  y: number;
  w: number;
  h: number;
}

/** What {@link layoutMosaic} needs to know. Sizes are in output pixels. */
export interface MosaicLayoutSpec {
  /** Number of tiles (filters, channels, maps). */
  count: number;
  /** Width of one tile in pixels (kernel width × scale). */
  tileWidth: number;
  /** Height of one tile in pixels (kernel height × scale). */
  tileHeight: number;
  /** Grid rows; derived from `cols` or chosen near-square when omitted. */
  rows?: number;
  /** Grid columns; `ceil(sqrt(count))` when neither `rows` nor `cols` is given. */
  cols?: number;
  /** Pixels between tiles, also used as the outer border. Default 2. */
  gutter?: number;
  /** Reserve a band above each tile for its index label. */
  labels?: boolean;
  /** Reserve a band above the grid for a title. */
  title?: string;
  /** Reserve room on the right for a colour bar with tick text. */
  colorbar?: boolean;
  /** Reserve a margin on the left for row headers (layer grids: filter index). */
  rowHeaders?: boolean;
  /** Reserve a band above the grid for column headers (layer grids: channel index). */
  colHeaders?: boolean;
}

/** Where everything goes; every coordinate is an integer pixel in the final picture. */
export interface MosaicLayout {
  width: number;
  height: number;
  rows: number;
  cols: number;
  /** One rectangle per tile, in tile order (row-major: tile i is at row ⌊i/cols⌋, column i mod cols). */
  tiles: Rect[];
  /** Band above each tile holding its label, when `labels` is set (same order as `tiles`). */
  labelBands?: Rect[];
  /** The colour gradient itself (high value at the top), when `colorbar` is set. */
  colorbar?: Rect;
  /** Band holding the title, when `title` is set. */
  title?: Rect;
  /** Outer gutter / padding width used. */
  gutter: number;
}

/** Height of the title band. */
export const TITLE_BAND = 24;
/** Height of the per-tile label band. */
export const LABEL_BAND = 12;
/** Width of the row-header margin (layer grids: filter indices). */
export const ROW_HEADER_WIDTH = 36;
/** Height of the column-header band (layer grids: channel indices). */
export const COL_HEADER_BAND = 14;
/** Gap between the grid and the colour bar. */
export const COLORBAR_GAP = 8;
/** Width of the colour bar's gradient. */
export const COLORBAR_WIDTH = 14;
/** Gap between the colour bar and its tick text. */
export const COLORBAR_TEXT_GAP = 4;
/** Room reserved for the colour bar's tick text. */
export const COLORBAR_TEXT_WIDTH = 56;
const COLORBAR_MIN_HEIGHT = 48;
// Titles are drawn in a 14px font; ~8px per character is a safe over-estimate so the picture is
// widened enough for a title longer than a small grid without measuring text (which needs canvas).
const TITLE_CHAR_WIDTH = 8;

/**
 * Picture width needed so `title` fits (estimated, since measuring text needs canvas).
 *
 * @example
 * minWidthForTitle('conv1'); // 56
 */
export function minWidthForTitle(title: string): number {
  return title.length * TITLE_CHAR_WIDTH + 16;
}

/**
 * Rows and columns for `count` tiles. With neither given the grid is near-square with
 * `cols = ceil(sqrt(count))` (32 → 6 x 6, 64 → 8 x 8); with one given the other is derived; with
 * both given they must hold all tiles.
 *
 * @throws TypeError / RangeError (src/validate.ts shape) for non-integer or too-small rows/cols.
 * @example
 * gridShape(32);              // { rows: 6, cols: 6 }
 * gridShape(10, { cols: 5 }); // { rows: 2, cols: 5 }
 */
export function gridShape(count: number, options: { rows?: number; cols?: number } = {}): { rows: number; cols: number } {
  checkPositiveInteger(count, 'count');
  const { rows, cols } = options;
  if (rows !== undefined) checkPositiveInteger(rows, 'options.rows');
  if (cols !== undefined) checkPositiveInteger(cols, 'options.cols');
  if (rows !== undefined && cols !== undefined) {
    if (rows * cols < count) {
      throw new RangeError(
        `Expected options.rows x options.cols to hold at least ${count} tiles but received ${rows} x ${cols} = ${rows * cols}`,
      );
    }
    return { rows, cols };
  }
  if (cols !== undefined) return { rows: Math.ceil(count / cols), cols };
  if (rows !== undefined) return { rows, cols: Math.ceil(count / rows) };
  const c = Math.ceil(Math.sqrt(count));
  return { rows: Math.ceil(count / c), cols: c };
}

/**
 * Computes the geometry of a tile mosaic: tile rectangles, title band, colour bar and the picture
 * size. The renderers in this folder draw exactly here, so this is how to find a tile in their PNGs.
 *
 * @example
 * const layout = layoutMosaic({ count: 32, tileWidth: 60, tileHeight: 60, gutter: 2 });
 * layout.rows;     // 6
 * layout.tiles[7]; // { x: 64, y: 64, w: 60, h: 60 } (row 1, column 1)
 */
export function layoutMosaic(spec: MosaicLayoutSpec): MosaicLayout {
  const count = checkPositiveInteger(spec.count, 'spec.count');
  const tileW = checkPositiveInteger(spec.tileWidth, 'spec.tileWidth');
  const tileH = checkPositiveInteger(spec.tileHeight, 'spec.tileHeight');
  const gutter = spec.gutter === undefined ? 2 : checkInteger(spec.gutter, 'spec.gutter', 0, 256);
  const labels = spec.labels === undefined ? false : checkBoolean(spec.labels, 'spec.labels');
  const colorbar = spec.colorbar === undefined ? false : checkBoolean(spec.colorbar, 'spec.colorbar');
  const rowHeaders = spec.rowHeaders === undefined ? false : checkBoolean(spec.rowHeaders, 'spec.rowHeaders');
  const colHeaders = spec.colHeaders === undefined ? false : checkBoolean(spec.colHeaders, 'spec.colHeaders');
  const title = spec.title === undefined ? undefined : checkString(spec.title, 'spec.title');
  const { rows, cols } = gridShape(count, { rows: spec.rows, cols: spec.cols });

  const labelBand = labels ? LABEL_BAND : 0;
  const top = (title ? TITLE_BAND : 0) + (colHeaders ? COL_HEADER_BAND : 0);
  const left = rowHeaders ? ROW_HEADER_WIDTH : 0;
  const cellW = tileW + gutter;
  const cellH = labelBand + tileH + gutter;

  const tiles: Rect[] = [];
  const labelBands: Rect[] = [];
  for (let i = 0; i < count; i++) {
    const row = Math.floor(i / cols);
    const col = i % cols;
    const x = left + gutter + col * cellW;
    const y = top + gutter + labelBand + row * cellH;
    tiles.push({ x, y, w: tileW, h: tileH });
    if (labels) labelBands.push({ x, y: y - labelBand, w: tileW, h: labelBand });
  }

  const gridRight = left + gutter + cols * cellW; // includes the outer gutter on the right
  const gridBottom = top + gutter + rows * cellH;
  let width = gridRight;
  let height = gridBottom;

  let bar: Rect | undefined;
  if (colorbar) {
    const y = top + gutter + labelBand;
    const h = Math.max(COLORBAR_MIN_HEIGHT, gridBottom - gutter - y);
    bar = { x: gridRight + COLORBAR_GAP, y, w: COLORBAR_WIDTH, h };
    width = bar.x + bar.w + COLORBAR_TEXT_GAP + COLORBAR_TEXT_WIDTH;
    height = Math.max(height, y + h + Math.max(gutter, 6)); // room below for the bottom tick text
  }
  if (title) width = Math.max(width, minWidthForTitle(title));

  return {
    width,
    height,
    rows,
    cols,
    tiles,
    ...(labels ? { labelBands } : {}),
    ...(bar ? { colorbar: bar } : {}),
    ...(title ? { title: { x: 0, y: 0, w: width, h: TITLE_BAND } } : {}),
    gutter,
  };
}

/**
 * Moves every rectangle of a layout by (dx, dy); for composing a mosaic beside another panel.
 *
 * @example
 * const beside = shiftLayout(layoutMosaic({ count: 8, tileWidth: 48, tileHeight: 48 }), 120, 0);
 */
export function shiftLayout(layout: MosaicLayout, dx: number, dy: number): MosaicLayout {
  const move = (r: Rect): Rect => ({ x: r.x + dx, y: r.y + dy, w: r.w, h: r.h });
  return {
    ...layout,
    width: layout.width + dx,
    height: layout.height + dy,
    tiles: layout.tiles.map(move),
    ...(layout.labelBands ? { labelBands: layout.labelBands.map(move) } : {}),
    ...(layout.colorbar ? { colorbar: move(layout.colorbar) } : {}),
    ...(layout.title ? { title: move(layout.title) } : {}),
  };
}
