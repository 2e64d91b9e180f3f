// Feature maps (a conv layer's output for one image) beside the image that produced them, so one
// can see which parts of the digit each channel responds to.

import { checkFiniteValues, checkHostTensor, formatShape, type HostTensor } from '../core/host-tensor';
import { checkPositiveInteger, expected } from '../util/validate';
import { colormapLut, isDiverging } from './colormaps';
import { paintRgbValues, paintValues } from './draw';
import { LABEL_BAND, TITLE_BAND, layoutMosaic, minWidthForTitle, shiftLayout, type MosaicLayout, type Rect } from './mosaic-layout';
import { MAX_SCALE, checkHighlightRange, resolveMosaicOptions, type MosaicOptions, type ResolvedMosaicOptions } from './mosaic-options';
import { colorbarText, paintMosaic } from './mosaic-paint';
import { rangesPerGroup, unionRange, valueRange } from './normalize';

/**
 * Options of {@link renderFeatureMaps}: the mosaic options (applied to the maps) plus the input
 * image's scale. Defaults differ from the weight mosaics: `colormap: 'viridis'` (activations after
 * ReLU are non-negative) and `normalize: 'filter'`, i.e. each map its own min..max, so weak maps
 * still show their pattern; `'global'` uses one range over all maps.
 *
 * @example
 * const options: FeatureMapOptions = { colormap: 'magma', title: 'conv1 on test image 0', labels: true };
 */
export interface FeatureMapOptions extends MosaicOptions {
  /** Output pixels per input pixel. Default: the largest integer keeping the image ≤ 128 px. */
  inputScale?: number;
}

/** Geometry of a feature-map picture: the maps' mosaic layout plus where the input image goes. */
export interface FeatureMapLayout extends MosaicLayout {
  input: Rect;
}

const FEATURE_MAP_KEYS = [
  'colormap', 'normalize', 'scale', 'inputScale', 'gutter', 'rows', 'cols', 'labels', 'title', 'colorbar', 'background', 'highlight',
] as const;
const INPUT_TARGET = 128;
const MAP_TARGET = 64;
const PANEL_SEPARATION = 8;

interface Resolved {
  o: ResolvedMosaicOptions;
  inputScale?: number;
}

function resolve(options: unknown): Resolved {
  const o = resolveMosaicOptions(options, FEATURE_MAP_KEYS, { colormap: 'viridis', normalize: 'filter' });
  const raw = (options ?? {}) as FeatureMapOptions;
  const inputScale = raw.inputScale === undefined ? undefined : checkPositiveInteger(raw.inputScale, 'options.inputScale', MAX_SCALE * 2);
  return { o, inputScale };
}

/**
 * `[H, W]`, `[1, H, W]`, `[1, 1, H, W]` (grey) or `[3, H, W]`, `[1, 3, H, W]` (colour, channel-planar)
 * → `[H, W]` and the channel count.
 */
function imageSize(s: readonly number[]): [number, number] {
  return imageShape(s).size;
}

function imageShape(s: readonly number[]): { size: [number, number]; channels: 1 | 3 } {
  const channels = s.length === 4 ? s[1] : s.length === 3 ? s[0] : 1;
  const ok = (s.length === 2) || (s.length === 3 && (s[0] === 1 || s[0] === 3)) || (s.length === 4 && s[0] === 1 && (s[1] === 1 || s[1] === 3));
  if (!ok || s.some((d) => d === 0)) {
    throw new RangeError(`Expected shape [1, 1, H, W], [1, 3, H, W] or [H, W] for input.shape but received ${formatShape(s)}`);
  }
  return { size: [s[s.length - 2], s[s.length - 1]], channels: channels as 1 | 3 };
}

/** `[1, C, h, w]` or `[C, h, w]` → `[C, h, w]`. */
function mapsSize(s: readonly number[]): [number, number, number] {
  const ok = (s.length === 3) || (s.length === 4 && s[0] === 1);
  if (!ok || s.some((d) => d === 0)) {
    throw new RangeError(`Expected shape [1, C, h, w] or [C, h, w] for maps.shape but received ${formatShape(s)}`);
  }
  return [s[s.length - 3], s[s.length - 2], s[s.length - 1]];
}

function checkShape(shape: unknown, name: string): number[] {
  if (!Array.isArray(shape) || !shape.every((d) => Number.isInteger(d) && d >= 0)) {
    throw new TypeError(expected('an array of non-negative integers', name, shape));
  }
  return shape;
}

function layoutFrom(imageHW: [number, number], mapsCHW: [number, number, number], r: Resolved): FeatureMapLayout {
  const [H, W] = imageHW;
  const [C, h, w] = mapsCHW;
  const { o } = r;
  const scale = o.scale ?? Math.max(1, Math.floor(MAP_TARGET / Math.max(h, w)));
  const inputScale = r.inputScale ?? Math.max(1, Math.floor(INPUT_TARGET / Math.max(H, W)));
  const top = o.title ? TITLE_BAND : 0;
  const input: Rect = { x: o.gutter, y: top + o.gutter + (o.labels ? LABEL_BAND : 0), w: W * inputScale, h: H * inputScale };
  const grid = layoutMosaic({
    count: C,
    tileWidth: w * scale,
    tileHeight: h * scale,
    rows: o.rows,
    cols: o.cols,
    gutter: o.gutter,
    labels: o.labels,
    colorbar: o.colorbar,
  });
  // The grid's own left gutter plus this separation keeps the panels apart even with gutter 0.
  const shifted = shiftLayout(grid, input.x + input.w + PANEL_SEPARATION, top);
  const width = Math.max(shifted.width, o.title ? minWidthForTitle(o.title) : 0);
  const height = Math.max(shifted.height, input.y + input.h + o.gutter);
  return {
    ...shifted,
    width,
    height,
    input,
    ...(o.title ? { title: { x: 0, y: 0, w: width, h: TITLE_BAND } } : {}),
  };
}

/**
 * Where {@link renderFeatureMaps} puts the input image (`layout.input`) and each map
 * (`layout.tiles[c]`), without drawing.
 *
 * @example
 * const layout = layoutFeatureMaps([1, 1, 28, 28], [1, 8, 24, 24]);
 * layout.input; // { x: 2, y: 2, w: 112, h: 112 }
 */
export function layoutFeatureMaps(inputShape: readonly number[], mapsShape: readonly number[], options?: FeatureMapOptions): FeatureMapLayout {
  return layoutFrom(imageSize(checkShape(inputShape, 'inputShape')), mapsSize(checkShape(mapsShape, 'mapsShape')), resolve(options));
}

/**
 * Renders an input image (gray, or colour for three channels; its own min..max) on the left and the
 * `C` feature maps it produced in a grid beside it, as PNG.
 *
 * @param input - the image, `shape = [1, 1, H, W]` or `[H, W]`, or `[1, 3, H, W]` / `[3, H, W]` in colour
 * @param maps - one layer's activations for it, `shape = [1, C, h, w]` or `[C, h, w]`
 * @param options - see {@link FeatureMapOptions}
 * @returns PNG bytes
 * @example
 * const png = renderFeatureMaps(image, conv1Output, { title: 'conv1', colormap: 'magma' });
 */
export function renderFeatureMaps(input: HostTensor, maps: HostTensor, options?: FeatureMapOptions): Buffer {
  const imageHW = imageSize(checkHostTensor(input, 'input').shape);
  const mapsCHW = mapsSize(checkHostTensor(maps, 'maps').shape);
  checkFiniteValues(input, 'input');
  checkFiniteValues(maps, 'maps');
  const r = resolve(options);
  const [C, h, w] = mapsCHW;
  checkHighlightRange(r.o.highlight, C);
  const layout = layoutFrom(imageHW, mapsCHW, r);
  const diverging = isDiverging(r.o.colormap);
  const perMap = rangesPerGroup(maps.data, h * w, diverging);
  const global = unionRange(perMap);
  const scale = layout.tiles[0].w / w;
  const inputScale = layout.input.w / imageHW[1];
  return paintMosaic({
    layout,
    data: maps.data,
    tiles: perMap.map((range, c) => ({ offset: c * h * w, rows: h, cols: w, range: r.o.normalize === 'filter' ? range : global })),
    scale,
    options: r.o,
    colorbarText: colorbarText(r.o.normalize, global, diverging),
    extra: ({ ctx }) => {
      const [H, W] = imageHW;
      const range = valueRange(input.data, false);
      if (imageShape(input.shape).channels === 3) paintRgbValues(ctx, layout.input, input.data, 0, H * W, H, W, inputScale, range);
      else paintValues(ctx, layout.input, input.data, 0, H, W, inputScale, range, colormapLut('gray'));
    },
  });
}
