// Colour first-layer mosaics: [n, 3, kh, kw] filters drawn in true colour, each filter's three
// channels on one range (AlexNet's figure), and what a run folder of a colour run holds.
import { layoutFilterMosaic, renderFilterMosaic, renderLayerGrid } from '../src/viz/mosaic';
import { decodePng } from './png-pixels';

const K = 3;
const PLANE = K * K;

/** Filters [n, 3, K, K], each channel constant: filter f's channel c holds values[f][c]. */
function constantFilters(values: number[][]): { data: Float32Array; shape: number[] } {
  const data = new Float32Array(values.length * 3 * PLANE);
  values.forEach((rgb, f) => rgb.forEach((v, c) => data.fill(v, (f * 3 + c) * PLANE, (f * 3 + c + 1) * PLANE)));
  return { data, shape: [values.length, 3, K, K] };
}

/** The colour at the centre of tile i. */
function tileColour(png: Buffer, shape: number[], i: number, options: Parameters<typeof layoutFilterMosaic>[1]): number[] {
  const tile = layoutFilterMosaic(shape, options).tiles[i];
  return decodePng(png).rgb(tile.x + Math.floor(tile.w / 2), tile.y + Math.floor(tile.h / 2));
}

describe('colour filter mosaics', () => {
  // Red-only, a faint yellow (small weights), and a blue-green one.
  const filters = constantFilters([[1, -1, -1], [0.1, 0.1, -0.1], [-0.5, 0.5, 0.5]]);

  test('each filter\'s RGB weights are normalised together, on its own range: hue shows, whatever the size', () => {
    const options = { scale: 4 } as const;
    const png = renderFilterMosaic(filters, options);
    // Normalised per channel, each constant plane would be mid-grey; together, the channels keep their order.
    expect(tileColour(png, filters.shape, 0, options)).toEqual([255, 0, 0]);
    expect(tileColour(png, filters.shape, 1, options)).toEqual([255, 255, 0]);
    expect(tileColour(png, filters.shape, 2, options)).toEqual([0, 255, 255]);
  });

  test('normalize "global": one range over every filter, so small filters stay pale', () => {
    const options = { scale: 4, normalize: 'global' } as const;
    const png = renderFilterMosaic(filters, options);
    expect(tileColour(png, filters.shape, 0, options)).toEqual([255, 0, 0]);
    // (0.1 + 1) / 2 * 255 = 140.25 and (-0.1 + 1) / 2 * 255 = 114.75
    expect(tileColour(png, filters.shape, 1, options)).toEqual([140, 140, 115]);
  });

  test('the per-channel view shows each channel of each filter as its own tile', () => {
    const png = decodePng(renderLayerGrid(filters, { colormap: 'gray', normalize: 'global', scale: 4 }));
    expect(png.width).toBeGreaterThan(3 * K * 4);
  });

  test('other channel counts are refused, pointing at the per-channel view', () => {
    expect(() => renderFilterMosaic({ data: new Float32Array(2 * 2 * PLANE), shape: [2, 2, K, K] })).toThrow(
      new RangeError('Expected shape [n_filters, 1, kh, kw] or [n_filters, 3, kh, kw] for weights.shape but received [2, 2, 3, 3] (renderLayerGrid shows any channel count, one tile per channel)'),
    );
  });
});
