// First-layer filter mosaics: every filter of a grey (1-channel) or colour (3-channel) conv layer as
// one tile of a grid. This is the picture that shows whether a network learned edge, blob and stroke
// detectors (and, in colour, colour-opponent ones).

import { checkFiniteValues, checkHostTensor, type HostTensor } from '../core/host-tensor';
import { isDiverging } from './colormaps';
import type { MosaicLayout } from './mosaic-layout';
import { checkHighlightRange, defaultScale, layoutKernelTiles, resolveMosaicOptions, type MosaicOptions, type ResolvedMosaicOptions } from './mosaic-options';
import { colorbarText, paintMosaic } from './mosaic-paint';
import { rangesPerGroup, unionRange } from './normalize';

export { gridShape, layoutMosaic, type MosaicLayout, type MosaicLayoutSpec, type Rect } from './mosaic-layout';
export { defaultScale, type MosaicOptions, type TileHighlight } from './mosaic-options';
export { renderFilterChannels, renderLayerGrid, layoutLayerGrid, type LayerGridOptions } from './layer-grid';
export { renderFeatureMaps, layoutFeatureMaps, type FeatureMapOptions, type FeatureMapLayout } from './feature-maps';

/** Option keys {@link renderFilterMosaic} accepts. */
export const FILTER_MOSAIC_KEYS = [
  'colormap', 'normalize', 'scale', 'gutter', 'rows', 'cols', 'labels', 'title', 'colorbar', 'background', 'highlight',
] as const;

const FIRST_LAYER_DIMS = ['n_filters', 1, 'kh', 'kw'] as const;
const COLOUR_LAYER_DIMS = ['n_filters', 3, 'kh', 'kw'] as const;

/** `weights` checked as a first layer's: [n, 1, kh, kw] (grey) or [n, 3, kh, kw] (colour). */
function checkFirstLayer(weights: HostTensor): HostTensor {
  const shape = (weights as { shape?: unknown })?.shape;
  const colour = Array.isArray(shape) && shape.length === 4 && shape[1] === 3;
  try {
    return checkHostTensor(weights, 'weights', colour ? COLOUR_LAYER_DIMS : FIRST_LAYER_DIMS);
  } catch (err) {
    if (!(err instanceof RangeError)) throw err;
    throw new RangeError(`${err.message.replace('[n_filters, 1, kh, kw]', '[n_filters, 1, kh, kw] or [n_filters, 3, kh, kw]')}` +
      ' (renderLayerGrid shows any channel count, one tile per channel)');
  }
}

/**
 * Where {@link renderFilterMosaic} puts each tile for weights of shape `[n, 1, kh, kw]` and the
 * same options, without drawing. Use it to find filter `i` in the PNG (`layout.tiles[i]`).
 *
 * @example
 * const layout = layoutFilterMosaic([32, 1, 5, 5]);
 * layout.rows; layout.cols;  // 6, 6
 * layout.tiles[0];           // { x: 2, y: 2, w: 60, h: 60 }
 */
export function layoutFilterMosaic(shape: readonly number[], options?: MosaicOptions): MosaicLayout {
  const o = resolveMosaicOptions(options, FILTER_MOSAIC_KEYS, { colormap: 'RdBu', normalize: 'global' });
  return layoutFromResolved(shape, o);
}

function layoutFromResolved(shape: readonly number[], o: ResolvedMosaicOptions): MosaicLayout {
  const [n, , kh, kw] = shape;
  return layoutKernelTiles(n, kh, kw, o).layout;
}

/**
 * Renders first-layer filters `[n_filters, 1, kh, kw]` as a PNG mosaic, one tile per filter in
 * row-major order, each weight a `scale x scale` square (nearest neighbour).
 *
 * Colour filters `[n_filters, 3, kh, kw]` are drawn in true colour, as in AlexNet's figure: each
 * filter's red, green and blue weights are mapped to 0..255 with one range, the filter's own min..max
 * over its three channels (`normalize: 'filter'`, the default for colour) or the range over every
 * filter (`'global'`), so a filter's hue shows which channels it weighs. The colormap and colour bar
 * do not apply; renderLayerGrid shows each channel of each filter on its own (a per-channel view).
 *
 * Normalisation: `'global'` (default) maps the range over all filters, `'filter'` each filter's
 * own range. With the default diverging colormap `'RdBu'` the range is symmetric, `[-m, m]` with
 * `m = max |w|`, so a zero weight is the white centre colour, negative weights red and positive
 * blue (matplotlib's `RdBu` convention). A constant filter maps to the middle colour.
 *
 * @param weights - first-layer weights, `shape = [n_filters, 1, kh, kw]` or `[n_filters, 3, kh, kw]`, any kernel size and count
 * @param options - see {@link MosaicOptions}
 * @returns PNG bytes
 * @throws TypeError / RangeError for a wrong shape, non-finite weights or bad options; Error when
 *   node-canvas cannot be loaded.
 * @example
 * const png = renderFilterMosaic(conv1Weights, { colormap: 'gray', normalize: 'filter', labels: true });
 * fs.writeFileSync('conv1.png', png);
 */
export function renderFilterMosaic(weights: HostTensor, options?: MosaicOptions): Buffer {
  const w = checkFirstLayer(weights);
  checkFiniteValues(w, 'weights');
  if (w.shape[1] === 3) return renderColourMosaic(w, options);
  const o = resolveMosaicOptions(options, FILTER_MOSAIC_KEYS, { colormap: 'RdBu', normalize: 'global' });
  const [n, , kh, kw] = w.shape;
  checkHighlightRange(o.highlight, n);
  const layout = layoutFromResolved(w.shape, o);
  const diverging = isDiverging(o.colormap);
  const perFilter = rangesPerGroup(w.data, kh * kw, diverging);
  const global = unionRange(perFilter);
  return paintMosaic({
    layout,
    data: w.data,
    tiles: perFilter.map((range, i) => ({
      offset: i * kh * kw,
      rows: kh,
      cols: kw,
      range: o.normalize === 'filter' ? range : global,
    })),
    scale: o.scale ?? defaultScale(kh, kw),
    options: o,
    colorbarText: colorbarText(o.normalize, global, diverging),
  });
}

/** renderFilterMosaic for colour filters [n, 3, kh, kw]: one true-colour tile per filter, its three channels on one range. */
function renderColourMosaic(w: HostTensor, options: MosaicOptions | undefined): Buffer {
  const o = { ...resolveMosaicOptions(options, FILTER_MOSAIC_KEYS, { colormap: 'RdBu', normalize: 'filter' }), colorbar: false };
  const [n, , kh, kw] = w.shape;
  checkHighlightRange(o.highlight, n);
  const layout = layoutFromResolved(w.shape, o);
  const plane = kh * kw;
  const perFilter = rangesPerGroup(w.data, 3 * plane, false);
  const global = unionRange(perFilter);
  return paintMosaic({
    layout,
    data: w.data,
    tiles: perFilter.map((range, i) => ({ offset: i * 3 * plane, rows: kh, cols: kw, range: o.normalize === 'filter' ? range : global })),
    scale: o.scale ?? defaultScale(kh, kw),
    options: o,
    rgbPlane: plane,
  });
}
