// Matrix heatmaps (confusion matrices, filter-similarity matrices) drawn directly with canvas:
// each cell is an exact, unblended colour square, so the picture can be read back and checked.

import { checkBoolean, checkInteger, checkKnownKeys, checkNumber, checkObject, checkString, expected } from '../util/validate';
import { checkColormap, colormapLut, isDiverging, lutIndex, type ColormapName } from './colormaps';
import { createSurface, drawColorbar, drawText, drawTitle, encodePng, formatTick, textColorFor } from './draw';
import { COLORBAR_GAP, COLORBAR_TEXT_GAP, COLORBAR_TEXT_WIDTH, COLORBAR_WIDTH, TITLE_BAND, minWidthForTitle, type Rect } from './mosaic-layout';
import { toUnit, type ValueRange } from './normalize';

/**
 * Options of {@link renderHeatmap}.
 *
 * @example
 * const options: HeatmapOptions = { labels: ['0', '1', '2'], colormap: 'viridis', title: 'confusion' };
 */
export interface HeatmapOptions {
  /** Labels for both rows and columns (square matrices such as confusion matrices). */
  labels?: string[];
  /** Row labels (overrides `labels` for rows). */
  rowLabels?: string[];
  /** Column labels (overrides `labels` for columns). */
  colLabels?: string[];
  /** Colormap. Default `'viridis'`; a diverging map gets a range symmetric around zero. */
  colormap?: ColormapName;
  /** Title above the matrix. */
  title?: string;
  /** Value mapped to the low end (default: the data minimum, or `-max|v|` for a diverging map). */
  min?: number;
  /** Value mapped to the high end (default: the data maximum, or `max|v|` for a diverging map). */
  max?: number;
  /** Side of a cell in pixels. Default: fits the matrix in about 480 px, 8..48 px per cell. */
  cellSize?: number;
  /** Write each cell's value in it. Default false. */
  annotate?: boolean;
  /** Draw a colour bar with the range. Default true. */
  colorbar?: boolean;
}

/** Geometry of a heatmap picture; `cells[r][c]` is the square of matrix entry (r, c). */
export interface HeatmapLayout {
  width: number;
  height: number;
  cells: Rect[][];
  colorbar?: Rect;
  title?: Rect;
}

const HEATMAP_KEYS = ['labels', 'rowLabels', 'colLabels', 'colormap', 'title', 'min', 'max', 'cellSize', 'annotate', 'colorbar'] as const;
const PAD = 8;
const LABEL_CHAR_WIDTH = 6; // 10px font; an over-estimate so labels fit without measuring
const LABEL_GAP = 4;

interface ResolvedHeatmap {
  rows: number;
  cols: number;
  rowLabels?: string[];
  colLabels?: string[];
  colormap: ColormapName;
  title?: string;
  min?: number;
  max?: number;
  cellSize: number;
  annotate: boolean;
  colorbar: boolean;
}

function checkMatrix(matrix: unknown): number[][] {
  if (!Array.isArray(matrix) || matrix.length === 0) throw new TypeError(expected('a non-empty array of rows', 'matrix', matrix));
  const cols = Array.isArray(matrix[0]) ? matrix[0].length : 0;
  return matrix.map((row, r) => {
    if (!Array.isArray(row) || row.length === 0 || row.length !== cols) {
      throw new RangeError(expected(`a row of ${cols || 'at least 1'} numbers (all rows equally long)`, `matrix[${r}]`, row));
    }
    return row.map((v, c) => checkNumber(v, `matrix[${r}][${c}]`));
  });
}

function checkLabels(value: unknown, name: string, count: number): string[] | undefined {
  if (value === undefined) return undefined;
  if (!Array.isArray(value) || !value.every((s) => typeof s === 'string')) throw new TypeError(expected('an array of strings', name, value));
  if (value.length !== count) throw new RangeError(expected(`${count} labels`, name, value));
  return value;
}

function resolve(rows: number, cols: number, options: unknown): ResolvedHeatmap {
  const o = checkObject(options ?? {}, 'options');
  checkKnownKeys(o, 'options', HEATMAP_KEYS);
  const shared = o.labels;
  if (shared !== undefined && rows !== cols && o.rowLabels === undefined && o.colLabels === undefined) {
    throw new RangeError(`Expected a square matrix for options.labels (used for rows and columns) but received ${rows} x ${cols}; use rowLabels and colLabels`);
  }
  const r: ResolvedHeatmap = {
    rows,
    cols,
    rowLabels: checkLabels(o.rowLabels ?? shared, o.rowLabels !== undefined ? 'options.rowLabels' : 'options.labels', rows),
    colLabels: checkLabels(o.colLabels ?? shared, o.colLabels !== undefined ? 'options.colLabels' : 'options.labels', cols),
    colormap: o.colormap === undefined ? 'viridis' : checkColormap(o.colormap, 'options.colormap'),
    cellSize: o.cellSize === undefined ? Math.max(8, Math.min(48, Math.floor(480 / Math.max(rows, cols)))) : checkInteger(o.cellSize, 'options.cellSize', 1, 512),
    annotate: o.annotate === undefined ? false : checkBoolean(o.annotate, 'options.annotate'),
    colorbar: o.colorbar === undefined ? true : checkBoolean(o.colorbar, 'options.colorbar'),
  };
  if (o.title !== undefined) r.title = checkString(o.title, 'options.title');
  if (o.min !== undefined) r.min = checkNumber(o.min, 'options.min');
  if (o.max !== undefined) r.max = checkNumber(o.max, 'options.max');
  if (r.min !== undefined && r.max !== undefined && r.min > r.max) {
    throw new RangeError(expected(`a number >= options.min (${r.min})`, 'options.max', r.max));
  }
  return r;
}

function geometry(r: ResolvedHeatmap): HeatmapLayout & { colLabelsRotated: boolean } {
  const cell = r.cellSize;
  const longest = (labels?: string[]) => (labels ? Math.max(...labels.map((l) => l.length)) : 0);
  const rowLabelWidth = r.rowLabels ? longest(r.rowLabels) * LABEL_CHAR_WIDTH + LABEL_GAP : 0;
  const colChars = longest(r.colLabels);
  // Column labels wider than a cell are written vertically so neighbours do not overlap.
  const colLabelsRotated = colChars * LABEL_CHAR_WIDTH > cell;
  const colLabelBand = r.colLabels ? (colLabelsRotated ? colChars * LABEL_CHAR_WIDTH : 12) + LABEL_GAP : 0;
  const titleBand = r.title ? TITLE_BAND : 0;
  const top = PAD + titleBand + colLabelBand;
  const left = PAD + rowLabelWidth;
  const cells: Rect[][] = [];
  for (let i = 0; i < r.rows; i++) {
    cells.push(Array.from({ length: r.cols }, (_, j) => ({ x: left + j * cell, y: top + i * cell, w: cell, h: cell })));
  }
  const gridRight = left + r.cols * cell;
  const gridH = r.rows * cell;
  let width = gridRight + PAD;
  let height = top + gridH + PAD;
  let colorbar: Rect | undefined;
  if (r.colorbar) {
    colorbar = { x: gridRight + COLORBAR_GAP, y: top, w: COLORBAR_WIDTH, h: Math.max(gridH, 48) };
    width = colorbar.x + COLORBAR_WIDTH + COLORBAR_TEXT_GAP + COLORBAR_TEXT_WIDTH;
    height = Math.max(height, top + colorbar.h + PAD);
  }
  if (r.title) width = Math.max(width, minWidthForTitle(r.title));
  return {
    width,
    height,
    cells,
    colLabelsRotated,
    ...(colorbar ? { colorbar } : {}),
    ...(r.title ? { title: { x: 0, y: PAD / 2, w: width, h: TITLE_BAND } } : {}),
  };
}

/**
 * Where {@link renderHeatmap} puts each cell for a `rows x cols` matrix and these options.
 *
 * @example
 * const layout = layoutHeatmap(10, 10, { labels: digits });
 * layout.cells[3][7]; // the square of row 3, column 7
 */
export function layoutHeatmap(rows: number, cols: number, options?: HeatmapOptions): HeatmapLayout {
  checkInteger(rows, 'rows', 1);
  checkInteger(cols, 'cols', 1);
  const { colLabelsRotated: _, ...layout } = geometry(resolve(rows, cols, options));
  return layout;
}

/**
 * Renders a matrix as a PNG heatmap: cell (r, c) is a square coloured by its value, rows top to
 * bottom, columns left to right, with optional labels, title, per-cell values and a colour bar.
 *
 * @param matrix - rows of equal length, finite numbers
 * @returns PNG bytes
 * @example
 * const png = renderHeatmap(confusion, { labels: classNames, colormap: 'viridis', title: 'confusion', annotate: true });
 */
export function renderHeatmap(matrix: number[][], options?: HeatmapOptions): Buffer {
  const m = checkMatrix(matrix);
  const r = resolve(m.length, m[0].length, options);
  const layout = geometry(r);
  const diverging = isDiverging(r.colormap);
  const flat = m.flat();
  let lo = r.min ?? flat.reduce((a, b) => Math.min(a, b), Infinity);
  let hi = r.max ?? flat.reduce((a, b) => Math.max(a, b), -Infinity);
  if (diverging && r.min === undefined && r.max === undefined) {
    hi = Math.max(Math.abs(lo), Math.abs(hi));
    lo = -hi;
  }
  const range: ValueRange = { lo, hi };
  const lut = colormapLut(r.colormap);

  const surface = createSurface(layout.width, layout.height, '#ffffff');
  const { ctx } = surface;
  const textColor = textColorFor('#ffffff');
  m.forEach((row, i) =>
    row.forEach((v, j) => {
      const c = lutIndex(toUnit(v, range)) * 3;
      const cell = layout.cells[i][j];
      ctx.fillStyle = `rgb(${lut[c]}, ${lut[c + 1]}, ${lut[c + 2]})`;
      ctx.fillRect(cell.x, cell.y, cell.w, cell.h);
      if (r.annotate) {
        const onCell = textColorFor(`rgb(${lut[c]}, ${lut[c + 1]}, ${lut[c + 2]})`);
        const font = `${Math.max(6, Math.min(12, Math.floor(cell.h / 2.5)))}px sans-serif`;
        drawText(ctx, formatTick(v), cell.x + cell.w / 2, cell.y + cell.h / 2, { font, color: onCell, align: 'center', baseline: 'middle' });
      }
    }),
  );
  r.rowLabels?.forEach((label, i) => {
    const cell = layout.cells[i][0];
    drawText(ctx, label, cell.x - LABEL_GAP, cell.y + cell.h / 2, { color: textColor, align: 'right', baseline: 'middle' });
  });
  r.colLabels?.forEach((label, j) => {
    const cell = layout.cells[0][j];
    if (layout.colLabelsRotated) {
      ctx.save();
      ctx.translate(cell.x + cell.w / 2, cell.y - LABEL_GAP);
      ctx.rotate(-Math.PI / 2);
      drawText(ctx, label, 0, 0, { color: textColor, align: 'left', baseline: 'middle' });
      ctx.restore();
    } else {
      drawText(ctx, label, cell.x + cell.w / 2, cell.y - LABEL_GAP, { color: textColor, align: 'center', baseline: 'bottom' });
    }
  });
  if (layout.title && r.title) drawTitle(ctx, layout.title, r.title, textColor);
  if (layout.colorbar) drawColorbar(ctx, layout.colorbar, lut, formatTick(hi), formatTick(lo), textColor);
  return encodePng(surface);
}
