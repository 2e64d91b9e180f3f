// The overlay picture of an explanation: one row per image, three tiles each: the image (grey, or in
// colour for a 3-channel model), its per-pixel map (coloured, normalised per image) and the map
// blended over the image. Signed maps (gradient x
// input, integrated gradients, occlusion) use the diverging RdBu map centred on zero (blue raises
// the target's logit, red lowers it); non-negative maps (saliency, the CAMs) use magma.
import { colormapLut, lutIndex, type ColormapName } from '../viz/colormaps';
import { createSurface, drawText, encodePng } from '../viz/draw';
import { toUnit, valueRange } from '../viz/normalize';
import type { MethodName } from './options';
import { displayImages } from './images';

/** Methods whose maps take both signs. */
export const SIGNED_METHODS: readonly MethodName[] = ['gradient-x-input', 'integrated-gradients', 'occlusion'];

export interface OverlayOptions {
  /** One caption per row (image index, target, prediction). */
  captions: string[];
  /** Whether the maps are signed (a diverging colormap centred on zero). */
  signed: boolean;
  /** The images' channels (default 1): `pixels` holds C planes per image; 3 is drawn in colour, other counts as their mean. */
  channels?: number;
  /** Screen pixels per image pixel. Default 4. */
  scale?: number;
  title?: string;
}

const GUTTER = 8;
const CAPTION_BAND = 16;
const TITLE_BAND = 22;
const HEADER_BAND = 14;
const COLUMNS = ['image', 'map', 'blend'];
const TEXT = '#222222';

/** Where renderOverlay puts things: the picture's size and the top-left corner of each tile (row = image, column 0 image, 1 map, 2 blend). */
export function overlayGeometry(count: number, height: number, width: number, scale: number, titled: boolean) {
  const tileW = width * scale;
  const tileH = height * scale;
  const top = GUTTER + (titled ? TITLE_BAND : 0) + HEADER_BAND;
  const rowH = CAPTION_BAND + tileH + GUTTER;
  return {
    width: GUTTER + COLUMNS.length * (tileW + GUTTER),
    height: top + count * rowH,
    top,
    tileW,
    tileH,
    caption: (row: number) => ({ x: GUTTER, y: top + row * rowH }),
    tile: (row: number, column: number) => ({ x: GUTTER + column * (tileW + GUTTER), y: top + row * rowH + CAPTION_BAND }),
  };
}

/**
 * A PNG with one row per image: the image, its map, and the map over the image (each map scaled to
 * its own range: [-max|v|, max|v|] for signed maps, [0, max] otherwise). `maps` has one value per
 * pixel (for a colour model, the per-pixel maps: explanationPixelMaps).
 * @example fs.writeFileSync('overlay.png', renderOverlay(pixels, e.maps, 28, 28, { captions, signed: true }));
 */
export function renderOverlay(pixels: Float32Array, maps: Float32Array, height: number, width: number, options: OverlayOptions): Buffer {
  const count = options.captions.length;
  const scale = options.scale ?? 4;
  const g = overlayGeometry(count, height, width, scale, Boolean(options.title));
  const { tileW, tileH, top } = g;
  const surface = createSurface(g.width, g.height, '#ffffff');
  const { ctx } = surface;
  if (options.title) drawText(ctx, options.title, GUTTER, GUTTER, { font: 'bold 13px sans-serif', color: TEXT, baseline: 'top' });
  COLUMNS.forEach((name, c) => drawText(ctx, name, g.tile(0, c).x + tileW / 2, top - 2, { color: TEXT, align: 'center', baseline: 'bottom' }));
  const colormap: ColormapName = options.signed ? 'RdBu' : 'magma';
  const lut = colormapLut(colormap);
  const n = height * width;
  const shown = displayImages(pixels.subarray(0, count * (options.channels ?? 1) * n), count, options.channels ?? 1, n);
  const planes = shown.channels;
  for (let i = 0; i < count; ++i) {
    const caption = g.caption(i);
    drawText(ctx, options.captions[i], caption.x, caption.y + CAPTION_BAND - 3, { color: TEXT, baseline: 'bottom' });
    const range = valueRange(maps, options.signed, i * n, (i + 1) * n);
    if (!options.signed) range.lo = Math.min(range.lo, 0);
    const tiles = COLUMNS.map(() => ctx.createImageData(tileW, tileH));
    for (let py = 0; py < tileH; ++py) {
      for (let px = 0; px < tileW; ++px) {
        const q = Math.floor(py / scale) * width + Math.floor(px / scale);
        const p = i * n + q;
        // The image's red, green and blue (one plane repeated for grey).
        const image = [0, 1, 2].map((k) => Math.round(255 * Math.min(Math.max(shown.data[(i * planes + (planes === 3 ? k : 0)) * n + q], 0), 1)));
        const t = toUnit(maps[p], range);
        const c = lutIndex(t) * 3;
        // The blend: the map's colour over the image, as opaque as the value is strong.
        const alpha = options.signed ? Math.abs(2 * t - 1) : t;
        const colours = [image, [lut[c], lut[c + 1], lut[c + 2]],
          [0, 1, 2].map((k) => Math.round((1 - alpha) * image[k] * 0.8 + alpha * lut[c + k]))];
        const at = (py * tileW + px) * 4;
        tiles.forEach((tile, k) => {
          tile.data[at] = colours[k][0];
          tile.data[at + 1] = colours[k][1];
          tile.data[at + 2] = colours[k][2];
          tile.data[at + 3] = 255;
        });
      }
    }
    tiles.forEach((tile, k) => ctx.putImageData(tile, g.tile(i, k).x, g.tile(i, k).y));
  }
  return encodePng(surface);
}
