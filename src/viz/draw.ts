// Low-level drawing shared by the mosaic, feature-map and heatmap renderers. Data pixels are written
// with putImageData (exact colours, no antialiasing or blending) so a tile's pixels are precisely
// the colormap's colours; only text goes through the antialiased path.

import type { Canvas as CanvasElement, CanvasRenderingContext2D } from 'canvas';
import { expected } from '../util/validate';
import { loadCanvas } from './canvas-loader';
import { lutIndex } from './colormaps';
import type { Rect } from './mosaic-layout';
import { toUnit, type ValueRange } from './normalize';

/** A canvas with its 2-D context. */
export interface Surface {
  canvas: CanvasElement;
  ctx: CanvasRenderingContext2D;
}

// cairo refuses surfaces past 32767 px a side; stay well below and fail with a hint instead.
const MAX_SIDE = 16384;
const SENTINELS = ['#010203', '#040506'];

/**
 * Creates a canvas filled with `background` (checked to be a CSS colour node-canvas understands).
 * Loads node-canvas lazily.
 *
 * @example
 * const surface = createSurface(100, 50, '#ffffff');
 */
export function createSurface(width: number, height: number, background: string, backgroundName = 'options.background'): Surface {
  if (width > MAX_SIDE || height > MAX_SIDE) {
    throw new RangeError(
      `Expected a picture at most ${MAX_SIDE} px a side but the options give ${width} x ${height}; ` +
        `use a smaller scale or gutter, or fewer tiles`,
    );
  }
  const { createCanvas } = loadCanvas();
  const canvas = createCanvas(width, height);
  const ctx = canvas.getContext('2d');
  ctx.fillStyle = checkCssColor(ctx, background, backgroundName);
  ctx.fillRect(0, 0, width, height);
  return { canvas, ctx };
}

/**
 * Returns `value` normalised by the canvas colour parser (e.g. `'red'` → `'#ff0000'`).
 *
 * @throws TypeError for a non-string, RangeError for a string canvas cannot parse as a colour.
 * @example
 * checkCssColor(ctx, 'red', 'options.background'); // '#ff0000'
 */
export function checkCssColor(ctx: CanvasRenderingContext2D, value: unknown, name: string): string {
  if (typeof value !== 'string' || value.length === 0) throw new TypeError(expected('a CSS colour string', name, value));
  // An unparsable colour leaves fillStyle unchanged; two different sentinels tell "unchanged" apart
  // from a colour that happens to equal one of them.
  const parsed = SENTINELS.map((sentinel) => {
    ctx.fillStyle = sentinel;
    ctx.fillStyle = value;
    return ctx.fillStyle as string;
  });
  if (parsed[0] !== parsed[1]) throw new RangeError(expected('a CSS colour', name, value));
  return parsed[0];
}

/**
 * Red, green, blue (0..255) of a colour string as normalised by {@link checkCssColor}.
 *
 * @example
 * parseNormalizedColor('#ff8800'); // [255, 136, 0]
 */
export function parseNormalizedColor(color: string): [number, number, number] {
  if (color.startsWith('#')) {
    return [1, 3, 5].map((i) => parseInt(color.slice(i, i + 2), 16)) as [number, number, number];
  }
  const m = /rgba?\((\d+),\s*(\d+),\s*(\d+)/.exec(color);
  return m ? [Number(m[1]), Number(m[2]), Number(m[3])] : [255, 255, 255];
}

/**
 * Dark text on light backgrounds and light text on dark ones.
 *
 * @example
 * textColorFor('#ffffff'); // '#222222'
 */
export function textColorFor(background: string): string {
  const [r, g, b] = parseNormalizedColor(background);
  return 0.299 * r + 0.587 * g + 0.114 * b > 140 ? '#222222' : '#eeeeee';
}

/**
 * Paints an `rows x cols` block of values (row-major from `offset`) into `rect`, each value as a
 * `scale x scale` square (nearest neighbour), coloured through `lut` after mapping with `range`.
 *
 * @example
 * paintValues(ctx, { x: 2, y: 2, w: 15, h: 15 }, weights.data, 0, 3, 3, 5, { lo: -1, hi: 1 }, colormapLut('RdBu'));
 */
export function paintValues(
  ctx: CanvasRenderingContext2D,
  rect: Rect,
  values: ArrayLike<number>,
  offset: number,
  rows: number,
  cols: number,
  scale: number,
  range: ValueRange,
  lut: Uint8Array,
): void {
  paintCells(ctx, rect, rows, cols, scale, (cell, px, p) => {
    const c = lutIndex(toUnit(values[offset + cell], range)) * 3;
    px[p] = lut[c];
    px[p + 1] = lut[c + 1];
    px[p + 2] = lut[c + 2];
  });
}

/**
 * Fills `rect` with a rows x cols grid scaled by nearest neighbour: `write` sets the red, green and
 * blue bytes at `px[p..p+2]` of the cell `row * cols + col` each pixel shows (alpha is opaque).
 */
function paintCells(
  ctx: CanvasRenderingContext2D, rect: Rect, rows: number, cols: number, scale: number,
  write: (cell: number, px: Uint8ClampedArray, p: number) => void,
): void {
  const image = ctx.createImageData(rect.w, rect.h);
  const px = image.data;
  for (let y = 0; y < rect.h; y++) {
    const row = Math.min(rows - 1, Math.floor(y / scale));
    for (let x = 0; x < rect.w; x++) {
      const col = Math.min(cols - 1, Math.floor(x / scale));
      const p = (y * rect.w + x) * 4;
      write(row * cols + col, px, p);
      px[p + 3] = 255;
    }
  }
  ctx.putImageData(image, rect.x, rect.y);
}

/**
 * Paints three planes of `values` (red at `offset`, green at `offset + plane`, blue at
 * `offset + 2 * plane`) as true colour, every plane mapped to 0..255 with the same `range`, so that
 * the three channels of a filter keep their proportions (AlexNet's figure of first-layer filters).
 */
export function paintRgbValues(
  ctx: CanvasRenderingContext2D,
  rect: Rect,
  values: ArrayLike<number>,
  offset: number,
  plane: number,
  rows: number,
  cols: number,
  scale: number,
  range: ValueRange,
): void {
  paintCells(ctx, rect, rows, cols, scale, (cell, px, p) => {
    for (let c = 0; c < 3; c++) px[p + c] = Math.round(255 * toUnit(values[offset + cell + c * plane], range));
  });
}

/**
 * Paints a vertical colour gradient: the top row is the colormap's high end, the bottom its low end.
 *
 * @example
 * paintColorbar(ctx, { x: 300, y: 10, w: 14, h: 200 }, colormapLut('viridis'));
 */
export function paintColorbar(ctx: CanvasRenderingContext2D, rect: Rect, lut: Uint8Array): void {
  const image = ctx.createImageData(rect.w, rect.h);
  for (let y = 0; y < rect.h; y++) {
    const t = rect.h === 1 ? 1 : 1 - y / (rect.h - 1);
    const c = lutIndex(t) * 3;
    for (let x = 0; x < rect.w; x++) {
      const p = (y * rect.w + x) * 4;
      image.data[p] = lut[c];
      image.data[p + 1] = lut[c + 1];
      image.data[p + 2] = lut[c + 2];
      image.data[p + 3] = 255;
    }
  }
  ctx.putImageData(image, rect.x, rect.y);
}

/** Text options for {@link drawText}. */
export interface TextStyle {
  font?: string;
  color: string;
  align?: 'left' | 'center' | 'right';
  baseline?: 'top' | 'middle' | 'bottom' | 'alphabetic';
}

/**
 * Draws one line of text.
 *
 * @example
 * drawText(ctx, '12', 10, 20, { color: '#222222', baseline: 'bottom' });
 */
export function drawText(ctx: CanvasRenderingContext2D, text: string, x: number, y: number, style: TextStyle): void {
  ctx.font = style.font ?? '10px sans-serif';
  ctx.fillStyle = style.color;
  ctx.textAlign = style.align ?? 'left';
  ctx.textBaseline = style.baseline ?? 'alphabetic';
  ctx.fillText(text, x, y);
}

/**
 * Draws a title centred in its band.
 *
 * @example
 * drawTitle(ctx, { x: 0, y: 0, w: 400, h: 24 }, 'conv1 filters', '#222222');
 */
export function drawTitle(ctx: CanvasRenderingContext2D, band: Rect, title: string, color: string): void {
  drawText(ctx, title, band.x + band.w / 2, band.y + band.h / 2, { font: 'bold 14px sans-serif', color, align: 'center', baseline: 'middle' });
}

/**
 * Frames a tile with a solid band 1..3 px thick (the gutter width, clamped). With room in the gutter the frame sits
 * outside the tile so no weight is covered; with no gutter it is drawn on the tile's edge.
 *
 * @example
 * drawFrame(ctx, layout.tiles[3], '#ff8800', layout.gutter);
 */
export function drawFrame(ctx: CanvasRenderingContext2D, tile: Rect, color: string, gutter: number): void {
  const thickness = Math.max(1, Math.min(3, gutter));
  const outer = gutter >= 1 ? { x: tile.x - thickness, y: tile.y - thickness, w: tile.w + 2 * thickness, h: tile.h + 2 * thickness } : tile;
  const t = gutter >= 1 ? thickness : 1;
  ctx.fillStyle = color;
  ctx.fillRect(outer.x, outer.y, outer.w, t); // top
  ctx.fillRect(outer.x, outer.y + outer.h - t, outer.w, t); // bottom
  ctx.fillRect(outer.x, outer.y, t, outer.h); // left
  ctx.fillRect(outer.x + outer.w - t, outer.y, t, outer.h); // right
}

/**
 * Short tick text for a value: three significant digits, exponent form for very small or large
 * magnitudes (`0.0123`, `-1.5`, `2.5e-5`).
 *
 * @example
 * formatTick(0.012345); // '0.0123'
 */
export function formatTick(v: number): string {
  if (v === 0) return '0';
  const a = Math.abs(v);
  if (a >= 1e4 || a < 1e-3) return v.toExponential(1);
  return String(Number(v.toPrecision(3)));
}

/**
 * Draws the colour bar gradient and its high (top) and low (bottom) tick text.
 *
 * @example
 * drawColorbar(ctx, layout.colorbar!, colormapLut('RdBu'), '0.31', '-0.31', '#222222');
 */
export function drawColorbar(ctx: CanvasRenderingContext2D, rect: Rect, lut: Uint8Array, hiText: string, loText: string, textColor: string): void {
  paintColorbar(ctx, rect, lut);
  const x = rect.x + rect.w + 4;
  drawText(ctx, hiText, x, rect.y, { color: textColor, baseline: 'top' });
  drawText(ctx, loText, x, rect.y + rect.h, { color: textColor, baseline: 'bottom' });
}

/**
 * Encodes the canvas as PNG.
 *
 * @example
 * fs.writeFileSync('out.png', encodePng(surface));
 */
export function encodePng(surface: Surface): Buffer {
  return surface.canvas.toBuffer('image/png');
}
