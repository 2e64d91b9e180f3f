// First-layer filter mosaics: every filter of a single-channel conv layer as one tile of a grid.
// This is the picture that shows whether a network learned edge, blob and stroke detectors.

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
 * Normalisation: `'global'` (default) maps the range over all filters, `'filter'` each filter's
 * own range. With the default diverging colormap `'RdBu'` the range is symmetric, `[-m, m]` with
 * `m = max |w|`, so a zero weight is the white centre colour, negative weights red and positive
 * blue (matplotlib's `RdBu` convention). A constant filter maps to the middle colour.
 *
 * @param weights - first-layer weights, `shape = [n_filters, 1, kh, kw]`, any kernel size and count
 * @param options - see {@link MosaicOptions}
 * @returns PNG bytes
 * @throws TypeError / RangeError for a wrong shape, non-finite weights or bad options; Error when
 *   node-canvas cannot be loaded.
 * @example
 * const png = renderFilterMosaic(conv1Weights, { colormap: 'gray', normalize: 'filter', labels: true });
 * fs.writeFileSync('conv1.png', png);
 */
export function renderFilterMosaic(weights: HostTensor, options?: MosaicOptions): Buffer {
  const w = checkHostTensor(weights, 'weights', FIRST_LAYER_DIMS);
  checkFiniteValues(w, 'weights');
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
