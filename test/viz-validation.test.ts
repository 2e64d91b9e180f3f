// Bad options fail early with src/validate.ts messages: TypeError for a wrong type, RangeError for
// a value out of range, naming the option and what was expected.

import type { HostTensor } from '../src/core/host-tensor';
import { renderLineChart, renderTrainingCurves } from '../src/viz/charts';
import { encodeGif } from '../src/viz/gif';
import { renderHeatmap } from '../src/viz/heatmap';
import { layoutMosaic, renderFilterChannels, renderFilterMosaic, renderLayerGrid } from '../src/viz/mosaic';

const weights = (shape: number[]): HostTensor => ({ data: new Float32Array(shape.reduce((a, b) => a * b, 1)), shape });
const first = weights([4, 1, 3, 3]);

describe('mosaic options', () => {
  test('unknown colormap: RangeError listing the choices', () => {
    expect(() => renderFilterMosaic(first, { colormap: 'jet' as 'gray' })).toThrow(
      new RangeError('Expected one of gray, viridis, magma, RdBu for options.colormap but received "jet" of type string'),
    );
    expect(() => renderFilterMosaic(first, { colormap: 3 as unknown as 'gray' })).toThrow(TypeError);
  });

  test('weights of the wrong rank or channel count: error naming the expected shape', () => {
    expect(() => renderFilterMosaic(weights([4, 3, 3]))).toThrow(
      new RangeError('Expected shape [n_filters, 1, kh, kw] or [n_filters, 3, kh, kw] for weights.shape but received [4, 3, 3] (renderLayerGrid shows any channel count, one tile per channel)'),
    );
    expect(() => renderFilterMosaic(weights([4, 2, 5, 5]))).toThrow(/Expected shape \[n_filters, 1, kh, kw\] or \[n_filters, 3, kh, kw\] for weights.shape but received \[4, 2, 5, 5\]/);
    expect(() => renderLayerGrid(weights([4, 3, 3]))).toThrow(/Expected shape \[out_channels, in_channels, kh, kw\]/);
    expect(() => renderFilterMosaic({ data: [1, 2] as unknown as Float32Array, shape: [2] })).toThrow(
      new TypeError('Expected a Float32Array for weights.data but received an array of length 2'),
    );
    expect(() => renderFilterMosaic({ data: new Float32Array(5), shape: [1, 1, 2, 2] })).toThrow(
      /Expected 4 values \(shape \[1, 1, 2, 2\]\) for weights.data but received 5/,
    );
    expect(() => renderFilterMosaic(null as unknown as HostTensor)).toThrow(TypeError);
    expect(() => renderFilterMosaic(weights([0, 1, 3, 3]))).toThrow(RangeError);
  });

  test('non-integer and out-of-range numbers', () => {
    expect(() => renderFilterMosaic(first, { rows: 2.5 })).toThrow(new TypeError('Expected positive integer for options.rows but received 2.5 of type number'));
    expect(() => renderFilterMosaic(first, { cols: 0 })).toThrow(RangeError);
    expect(() => renderFilterMosaic(first, { rows: 1, cols: 2 })).toThrow(/Expected options.rows x options.cols to hold at least 4 tiles but received 1 x 2 = 2/);
    expect(() => renderFilterMosaic(first, { scale: 65 })).toThrow(RangeError);
    expect(() => renderFilterMosaic(first, { scale: '2' as unknown as number })).toThrow(TypeError);
    expect(() => renderFilterMosaic(first, { gutter: -1 })).toThrow(RangeError);
    expect(() => layoutMosaic({ count: 3.5, tileWidth: 4, tileHeight: 4 })).toThrow(TypeError);
  });

  test('other options', () => {
    expect(() => renderFilterMosaic(first, { normalize: 'tile' as 'filter' })).toThrow(/Expected one of filter, global for options.normalize/);
    expect(() => renderFilterMosaic(first, { labels: 'yes' as unknown as boolean })).toThrow(TypeError);
    expect(() => renderFilterMosaic(first, { title: '' })).toThrow(TypeError);
    expect(() => renderFilterMosaic(first, { colour: 'x' } as never)).toThrow(/Unknown option "colour" in options/);
    expect(() => renderFilterMosaic(first, { background: 'not-a-colour' })).toThrow(
      new RangeError('Expected a CSS colour for options.background but received "not-a-colour" of type string'),
    );
    expect(() => renderFilterMosaic(first, { highlight: [{ tiles: [4], color: 'red' }] })).toThrow(/Expected a tile index in \[0, 3\] for options.highlight\[0\].tiles\[0\]/);
    expect(() => renderFilterMosaic(first, { highlight: [{ tiles: [1], color: 'reddish' }] })).toThrow(/Expected a CSS colour for options.highlight\[0\].color/);
    expect(() => renderFilterMosaic(first, { highlight: { tiles: [1] } as never })).toThrow(TypeError);
  });

  test('non-finite weights are reported with their index', () => {
    const w = weights([2, 1, 2, 2]);
    w.data[5] = Number.NaN;
    expect(() => renderFilterMosaic(w)).toThrow(new RangeError('Expected finite values for weights.data but received NaN at index 5'));
  });

  test('layer-grid specific options', () => {
    const layer = weights([4, 2, 3, 3]);
    expect(() => renderLayerGrid(layer, { maxFilters: 0 })).toThrow(RangeError);
    expect(() => renderLayerGrid(layer, { rows: 2 } as never)).toThrow(/Unknown option "rows"/);
    expect(() => renderFilterChannels(layer, 4)).toThrow(new RangeError('Expected integer in [0, 3] for filterIndex but received 4 of type number'));
    expect(() => renderFilterChannels(layer, 1.5)).toThrow(TypeError);
  });
});

describe('charts, heatmaps and GIFs', () => {
  test('heatmap input', () => {
    expect(() => renderHeatmap([[1, 2], [3]])).toThrow(RangeError);
    expect(() => renderHeatmap([])).toThrow(TypeError);
    expect(() => renderHeatmap([[1, Number.NaN]])).toThrow(/Expected a finite number for matrix\[0\]\[1\]/);
    expect(() => renderHeatmap([[1, 2]], { labels: ['a', 'b'] })).toThrow(/square matrix/);
    expect(() => renderHeatmap([[1, 2], [3, 4]], { labels: ['a'] })).toThrow(/Expected 2 labels for options.labels/);
    expect(() => renderHeatmap([[1]], { min: 2, max: 1 })).toThrow(RangeError);
    expect(() => renderHeatmap([[1]], { colormap: 'hot' as 'gray' })).toThrow(/Expected one of gray, viridis, magma, RdBu for options.colormap/);
  });

  test('chart input', async () => {
    await expect(renderTrainingCurves([])).rejects.toThrow(TypeError);
    await expect(renderTrainingCurves([{ epoch: 1, trainLoss: Number.NaN, trainAccuracy: 0, testLoss: 0, testAccuracy: 0 }])).rejects.toThrow(
      /Expected a finite number for history\[0\].trainLoss/,
    );
    await expect(
      renderLineChart({ title: 't', xLabel: 'x', yLabel: 'y', logX: true, series: [{ label: 'a', points: [{ x: 0, y: 1 }] }] }),
    ).rejects.toThrow(/Expected a number in \(0, inf\) for spec.series\[0\].points\[0\].x/);
    await expect(renderLineChart({ title: 't', xLabel: 'x', yLabel: 'y', series: [] })).rejects.toThrow(TypeError);
  });

  test('GIF input', () => {
    expect(() => encodeGif([])).toThrow(TypeError);
    expect(() => encodeGif([{ width: 2, height: 2, rgba: new Uint8Array(15) }])).toThrow(/Expected 16 bytes \(2 x 2 x 4\) for frames\[0\].rgba but received 15/);
    expect(() => encodeGif([{ width: 1, height: 1, rgba: new Uint8Array(4) }], { delayMs: -1 })).toThrow(RangeError);
    expect(() => encodeGif([{ width: 1, height: 1, rgba: new Uint8Array(4) }], { palette: 'local' as 'global' })).toThrow(RangeError);
  });
});
