// Pictures of deeper conv layers, whose filters have many input channels: the whole layer as a
// filters x channels grid, or one filter's channels as a mosaic.

import { checkFiniteValues, checkHostTensor, type HostTensor } from '../core/host-tensor';
import { checkInteger, checkPositiveInteger } from '../util/validate';
import { isDiverging } from './colormaps';
import { layoutMosaic, type MosaicLayout } from './mosaic-layout';
import { checkHighlightRange, defaultScale, layoutKernelTiles, resolveMosaicOptions, type MosaicOptions, type ResolvedMosaicOptions } from './mosaic-options';
import { colorbarText, paintMosaic } from './mosaic-paint';
import { rangesPerGroup, unionRange } from './normalize';

/**
 * Options of {@link renderLayerGrid}: the mosaic options without `rows`/`cols` (the grid is
 * always filters x channels), plus caps on how much of a wide layer is drawn.
 *
 * Normalisation `'filter'` takes one range per output filter over all its input channels (so the
 * relative strength of a filter's channels stays visible); `'global'` one range over the tensor.
 * `labels: true` writes filter indices left of the rows and channel indices above the columns.
 * Highlight tile indices count row-major over the drawn grid: filter `f`, channel `c` is tile
 * `f * shownChannels + c`.
 *
 * @example
 * const options: LayerGridOptions = { maxFilters: 16, maxChannels: 8, labels: true };
 */
export interface LayerGridOptions extends Omit<MosaicOptions, 'rows' | 'cols'> {
  /** Draw at most this many output filters (the first ones). Default: all. */
  maxFilters?: number;
  /** Draw at most this many input channels (the first ones). Default: all. */
  maxChannels?: number;
}

const LAYER_GRID_KEYS = [
  'colormap', 'normalize', 'scale', 'gutter', 'labels', 'title', 'colorbar', 'background', 'highlight', 'maxFilters', 'maxChannels',
] as const;
const CHANNELS_KEYS = [
  'colormap', 'normalize', 'scale', 'gutter', 'rows', 'cols', 'labels', 'title', 'colorbar', 'background', 'highlight',
] as const;
const LAYER_DIMS = ['out_channels', 'in_channels', 'kh', 'kw'] as const;
const DEFAULTS = { colormap: 'RdBu', normalize: 'global' } as const;

interface ResolvedGrid {
  o: ResolvedMosaicOptions;
  filters: number;
  channels: number;
}

function resolveGrid(shape: readonly number[], options: unknown): ResolvedGrid {
  const raw = (options ?? {}) as LayerGridOptions;
  const o = resolveMosaicOptions(options, LAYER_GRID_KEYS, DEFAULTS);
  const maxFilters = raw.maxFilters === undefined ? Infinity : checkPositiveInteger(raw.maxFilters, 'options.maxFilters');
  const maxChannels = raw.maxChannels === undefined ? Infinity : checkPositiveInteger(raw.maxChannels, 'options.maxChannels');
  return { o, filters: Math.min(shape[0], maxFilters), channels: Math.min(shape[1], maxChannels) };
}

function gridLayout(shape: readonly number[], g: ResolvedGrid): MosaicLayout {
  const [, , kh, kw] = shape;
  const scale = g.o.scale ?? defaultScale(kh, kw);
  return layoutMosaic({
    count: g.filters * g.channels,
    tileWidth: kw * scale,
    tileHeight: kh * scale,
    rows: g.filters,
    cols: g.channels,
    gutter: g.o.gutter,
    title: g.o.title,
    colorbar: g.o.colorbar,
    rowHeaders: g.o.labels,
    colHeaders: g.o.labels,
  });
}

/**
 * Where {@link renderLayerGrid} puts each tile for weights of shape `[out, in, kh, kw]`;
 * filter `f`, channel `c` is `layout.tiles[f * layout.cols + c]`.
 *
 * @example
 * const layout = layoutLayerGrid([16, 8, 3, 3], { maxFilters: 4 });
 * layout.rows; layout.cols; // 4, 8
 */
export function layoutLayerGrid(shape: readonly number[], options?: LayerGridOptions): MosaicLayout {
  return gridLayout(shape, resolveGrid(shape, options));
}

/**
 * Renders a conv layer's weights `[out_channels, in_channels, kh, kw]` as a PNG grid: one row per
 * output filter, one column per input channel.
 *
 * @param weights - layer weights, `shape = [out_channels, in_channels, kh, kw]`
 * @param options - see {@link LayerGridOptions}
 * @returns PNG bytes
 * @example
 * const png = renderLayerGrid(conv2Weights, { maxFilters: 16, maxChannels: 16, labels: true });
 */
export function renderLayerGrid(weights: HostTensor, options?: LayerGridOptions): Buffer {
  const w = checkHostTensor(weights, 'weights', LAYER_DIMS);
  checkFiniteValues(w, 'weights');
  const g = resolveGrid(w.shape, options);
  const [, inChannels, kh, kw] = w.shape;
  checkHighlightRange(g.o.highlight, g.filters * g.channels);
  const diverging = isDiverging(g.o.colormap);
  const perFilter = rangesPerGroup(w.data, inChannels * kh * kw, diverging);
  const global = unionRange(perFilter);
  const tiles = [];
  for (let f = 0; f < g.filters; f++) {
    for (let c = 0; c < g.channels; c++) {
      tiles.push({
        offset: (f * inChannels + c) * kh * kw,
        rows: kh,
        cols: kw,
        range: g.o.normalize === 'filter' ? perFilter[f] : global,
      });
    }
  }
  return paintMosaic({
    layout: gridLayout(w.shape, g),
    data: w.data,
    tiles,
    scale: g.o.scale ?? defaultScale(kh, kw),
    options: g.o,
    colorbarText: colorbarText(g.o.normalize, global, diverging),
    ...(g.o.labels
      ? {
          rowHeaders: Array.from({ length: g.filters }, (_, f) => `f${f}`),
          colHeaders: Array.from({ length: g.channels }, (_, c) => `c${c}`),
        }
      : {}),
  });
}

/**
 * Renders the input channels of one filter of `[out_channels, in_channels, kh, kw]` weights as a
 * mosaic (tile `c` = channel `c`), with the same options as {@link renderFilterMosaic}.
 * `'filter'` normalisation uses this filter's range, `'global'` the whole layer's, so pictures
 * of different filters of one layer are comparable under `'global'`.
 *
 * @param weights - layer weights, `shape = [out_channels, in_channels, kh, kw]`
 * @param filterIndex - which output filter, `0 <= filterIndex < out_channels`
 * @returns PNG bytes
 * @example
 * const png = renderFilterChannels(conv2Weights, 3, { labels: true, colorbar: true });
 */
export function renderFilterChannels(weights: HostTensor, filterIndex: number, options?: MosaicOptions): Buffer {
  const w = checkHostTensor(weights, 'weights', LAYER_DIMS);
  const [outChannels, inChannels, kh, kw] = w.shape;
  checkInteger(filterIndex, 'filterIndex', 0, outChannels - 1);
  checkFiniteValues(w, 'weights');
  const o = resolveMosaicOptions(options, CHANNELS_KEYS, DEFAULTS);
  checkHighlightRange(o.highlight, inChannels);
  const diverging = isDiverging(o.colormap);
  const perFilter = rangesPerGroup(w.data, inChannels * kh * kw, diverging);
  const range = o.normalize === 'filter' ? perFilter[filterIndex] : unionRange(perFilter);
  const { layout, scale } = layoutKernelTiles(inChannels, kh, kw, o);
  const base = filterIndex * inChannels * kh * kw;
  return paintMosaic({
    layout,
    data: w.data,
    tiles: Array.from({ length: inChannels }, (_, c) => ({ offset: base + c * kh * kw, rows: kh, cols: kw, range })),
    scale,
    options: o,
    // Under 'filter' there is one range for the whole picture here, so the real numbers are shown.
    colorbarText: colorbarText('global', range, diverging),
  });
}
