// Draws a computed mosaic layout: tiles, labels/headers, title, colour bar and highlight frames.
// The public renderers only validate input, choose tiles and ranges, and call this, so all mosaics
// look alike and put pixels exactly where their layout says.

import { colormapLut } from './colormaps';
import { COL_HEADER_BAND, ROW_HEADER_WIDTH, TITLE_BAND, type MosaicLayout } from './mosaic-layout';
import type { ResolvedMosaicOptions } from './mosaic-options';
import { checkCssColor, createSurface, drawColorbar, drawFrame, drawText, drawTitle, encodePng, formatTick, paintRgbValues, paintValues, textColorFor, type Surface } from './draw';
import type { NormalizeMode, ValueRange } from './normalize';

/** One tile to paint: a `rows x cols` block of `data` starting at `offset`, mapped with `range`. */
export interface TileSource {
  offset: number;
  rows: number;
  cols: number;
  range: ValueRange;
  label?: string;
}

/** Everything {@link paintMosaic} draws. */
export interface MosaicPaintJob {
  layout: MosaicLayout;
  data: ArrayLike<number>;
  tiles: TileSource[];
  scale: number;
  options: ResolvedMosaicOptions;
  /** Tick text for the colour bar's top and bottom, when the layout has one. */
  colorbarText?: { hi: string; lo: string };
  /** Text left of each grid row / above each grid column (layer grids). */
  rowHeaders?: string[];
  colHeaders?: string[];
  /** Draws anything else (e.g. the input image beside feature maps) before encoding. */
  extra?: (surface: Surface) => void;
  /**
   * Tiles are true colour: each tile's red, green and blue planes lie `rgbPlane` values apart (from
   * its offset), all mapped with the tile's range; the colormap is not used.
   */
  rgbPlane?: number;
}

/**
 * Paints the job onto a fresh canvas and returns the PNG bytes.
 *
 * @example
 * const png = paintMosaic({ layout, data: w.data, tiles, scale: 12, options: resolved });
 */
export function paintMosaic(job: MosaicPaintJob): Buffer {
  const { layout, options } = job;
  const surface = createSurface(layout.width, layout.height, options.background);
  const { ctx } = surface;
  const textColor = textColorFor(ctx.fillStyle as string);
  const lut = colormapLut(options.colormap);
  const frameColors = options.highlight.map((group, i) => checkCssColor(ctx, group.color, `options.highlight[${i}].color`));

  job.tiles.forEach((tile, i) => {
    if (job.rgbPlane !== undefined) paintRgbValues(ctx, layout.tiles[i], job.data, tile.offset, job.rgbPlane, tile.rows, tile.cols, job.scale, tile.range);
    else paintValues(ctx, layout.tiles[i], job.data, tile.offset, tile.rows, tile.cols, job.scale, tile.range, lut);
  });
  layout.labelBands?.forEach((band, i) => {
    const label = job.tiles[i].label ?? String(i);
    drawText(ctx, label, band.x, band.y + band.h - 1, { color: textColor, baseline: 'bottom' });
  });
  if (job.rowHeaders) {
    job.rowHeaders.forEach((text, row) => {
      const tile = layout.tiles[row * layout.cols];
      drawText(ctx, text, ROW_HEADER_WIDTH - 4, tile.y + tile.h / 2, { color: textColor, align: 'right', baseline: 'middle' });
    });
  }
  if (job.colHeaders) {
    const y = (layout.title ? TITLE_BAND : 0) + COL_HEADER_BAND / 2;
    job.colHeaders.forEach((text, col) => {
      const tile = layout.tiles[col];
      drawText(ctx, text, tile.x + tile.w / 2, y, { color: textColor, align: 'center', baseline: 'middle' });
    });
  }
  if (layout.title && options.title) drawTitle(ctx, layout.title, options.title, textColor);
  if (layout.colorbar && job.rgbPlane === undefined) {
    const text = job.colorbarText ?? { hi: 'max', lo: 'min' };
    drawColorbar(ctx, layout.colorbar, lut, text.hi, text.lo, textColor);
  }
  options.highlight.forEach((group, i) => {
    for (const t of group.tiles) drawFrame(ctx, layout.tiles[t], frameColors[i], layout.gutter);
  });
  job.extra?.(surface);
  return encodePng(surface);
}

/**
 * Text for the colour bar ends: the actual range under `'global'` normalisation; under
 * `'filter'` every tile has its own range, so the ends are named instead of numbered.
 *
 * @example
 * colorbarText('global', { lo: -0.5, hi: 0.5 }, true); // { hi: '0.5', lo: '-0.5' }
 */
export function colorbarText(mode: NormalizeMode, range: ValueRange, diverging: boolean): { hi: string; lo: string } {
  if (mode === 'global') return { hi: formatTick(range.hi), lo: formatTick(range.lo) };
  return diverging ? { hi: '+max|w|', lo: '-max|w|' } : { hi: 'max', lo: 'min' };
}
