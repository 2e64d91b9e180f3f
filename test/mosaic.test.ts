// Pixel-level checks of the weight and feature-map mosaics: every expectation is computed here from
// the weights (independently of src/viz/normalize.ts) and compared with decoded PNG pixels.

import type { HostTensor } from '../src/core/host-tensor';
import { colorAt, COLORMAP_NAMES, type ColormapName } from '../src/viz/colormaps';
import {
  layoutFeatureMaps,
  layoutFilterMosaic,
  layoutLayerGrid,
  layoutMosaic,
  renderFeatureMaps,
  renderFilterChannels,
  renderFilterMosaic,
  renderLayerGrid,
} from '../src/viz/mosaic';
import { colorDistance, decodePng, type DecodedPng } from './png-pixels';

const tensor = (shape: number[], fill: (i: number) => number): HostTensor => {
  const n = shape.reduce((a, b) => a * b, 1);
  return { data: Float32Array.from({ length: n }, (_, i) => fill(i)), shape };
};

// Four 3x3 filters chosen so every normalised position is an exact binary fraction:
// a signed ramp, a constant (all zero), a positive ramp and a wider signed ramp.
const PATTERN = [
  [-4, -3, -2, -1, 0, 1, 2, 3, 4],
  [0, 0, 0, 0, 0, 0, 0, 0, 0],
  [0, 1, 2, 3, 4, 5, 6, 7, 8],
  [-8, -6, -4, -2, 0, 2, 4, 6, 8],
];
const patternWeights = (): HostTensor => ({ data: Float32Array.from(PATTERN.flat()), shape: [4, 1, 3, 3] });

/** Expected t for weight v of filter f, from the definition of each normalisation. */
function expectedT(v: number, f: number, normalize: 'filter' | 'global', diverging: boolean): number {
  const values = normalize === 'filter' ? PATTERN[f] : PATTERN.flat();
  let lo = Math.min(...values);
  let hi = Math.max(...values);
  if (diverging) {
    hi = Math.max(Math.abs(lo), Math.abs(hi));
    lo = -hi;
  }
  return hi === lo ? 0.5 : (v - lo) / (hi - lo);
}

/** Centre pixel of weight (row, col) of tile `rect` at `scale`. */
const weightCentre = (rect: { x: number; y: number }, row: number, col: number, scale: number): [number, number] => [
  rect.x + col * scale + Math.floor(scale / 2),
  rect.y + row * scale + Math.floor(scale / 2),
];

describe('renderFilterMosaic colours', () => {
  for (const colormap of COLORMAP_NAMES) {
    for (const normalize of ['filter', 'global'] as const) {
      test(`${colormap} / ${normalize}: each weight has the colormap colour of its normalised value`, () => {
        const scale = 6;
        const options = { colormap, normalize, scale, gutter: 2 };
        const png = decodePng(renderFilterMosaic(patternWeights(), options));
        const layout = layoutFilterMosaic([4, 1, 3, 3], options);
        expect([png.width, png.height]).toEqual([layout.width, layout.height]);
        const diverging = colormap === 'RdBu';
        PATTERN.forEach((values, f) => {
          values.forEach((v, i) => {
            const [x, y] = weightCentre(layout.tiles[f], Math.floor(i / 3), i % 3, scale);
            const want = colorAt(colormap, expectedT(v, f, normalize, diverging));
            expect({ f, i, rgb: png.rgb(x, y) }).toEqual({ f, i, rgb: want });
            // Nearest-neighbour: the whole scale x scale block has that colour, corners included.
            const x0 = layout.tiles[f].x + (i % 3) * scale;
            const y0 = layout.tiles[f].y + Math.floor(i / 3) * scale;
            expect(png.rgb(x0, y0)).toEqual(want);
            expect(png.rgb(x0 + scale - 1, y0 + scale - 1)).toEqual(want);
          });
        });
      });
    }
  }

  test('sequential maps span low to high: the ramp ends are the colormap ends', () => {
    for (const colormap of ['gray', 'viridis', 'magma'] as ColormapName[]) {
      const png = decodePng(renderFilterMosaic(patternWeights(), { colormap, normalize: 'filter', scale: 4 }));
      const layout = layoutFilterMosaic([4, 1, 3, 3], { scale: 4 });
      const tile = layout.tiles[2]; // 0..8 ramp: top-left is the minimum, bottom-right the maximum
      expect(png.rgb(tile.x, tile.y)).toEqual(colorAt(colormap, 0));
      expect(png.rgb(tile.x + tile.w - 1, tile.y + tile.h - 1)).toEqual(colorAt(colormap, 1));
    }
  });

  test('diverging RdBu puts zero at the near-white centre, negatives red, positives blue', () => {
    const png = decodePng(renderFilterMosaic(patternWeights(), { colormap: 'RdBu', scale: 4 }));
    const layout = layoutFilterMosaic([4, 1, 3, 3], { scale: 4 });
    const [zx, zy] = weightCentre(layout.tiles[3], 1, 1, 4); // the 0 in the middle of filter 3
    const centre = png.rgb(zx, zy);
    expect(centre).toEqual(colorAt('RdBu', 0.5));
    expect(colorDistance(centre, [247, 247, 247])).toBeLessThanOrEqual(2);
    const [nx, ny] = weightCentre(layout.tiles[3], 0, 0, 4); // -8: the most negative weight
    expect(png.rgb(nx, ny)).toEqual([103, 0, 31]); // ColorBrewer #67001f
    const [px, py] = weightCentre(layout.tiles[3], 2, 2, 4); // +8
    expect(png.rgb(px, py)).toEqual([5, 48, 97]); // #053061
    // The all-zero filter is centre-coloured everywhere under both normalisations (no 0/0).
    for (const normalize of ['filter', 'global'] as const) {
      const p = decodePng(renderFilterMosaic(patternWeights(), { colormap: 'RdBu', normalize, scale: 4 }));
      const t = layout.tiles[1];
      expect(p.rgb(t.x + 5, t.y + 5)).toEqual(colorAt('RdBu', 0.5));
    }
  });

  test('a constant non-zero filter maps to the middle colour of a sequential map', () => {
    const w = tensor([2, 1, 2, 2], (i) => (i < 4 ? 3.5 : i));
    const png = decodePng(renderFilterMosaic(w, { colormap: 'gray', normalize: 'filter', scale: 5 }));
    const tile = layoutFilterMosaic(w.shape, { scale: 5 }).tiles[0];
    expect(png.rgb(tile.x + 2, tile.y + 2)).toEqual(colorAt('gray', 0.5));
  });
});

describe('renderFilterMosaic grid layout', () => {
  test('32 filters form a 6 x 6 grid in row-major order, with empty cells left as background', () => {
    const w = tensor([32, 1, 5, 5], (i) => Math.floor(i / 25)); // filter f is constant f
    const layout = layoutFilterMosaic(w.shape, { gutter: 2 });
    expect([layout.rows, layout.cols]).toEqual([6, 6]);
    expect(layout.tiles[0]).toEqual({ x: 2, y: 2, w: 60, h: 60 }); // default scale 12 for 5x5
    expect(layout.tiles[7]).toEqual({ x: 64, y: 64, w: 60, h: 60 }); // row 1, column 1
    expect(layout.tiles[31]).toEqual({ x: 2 + 62, y: 2 + 5 * 62, w: 60, h: 60 }); // row 5, column 1
    expect([layout.width, layout.height]).toEqual([6 * 62 + 2, 6 * 62 + 2]);

    const png = decodePng(renderFilterMosaic(w, { colormap: 'gray', normalize: 'global', background: '#ff00ff' }));
    expect([png.width, png.height]).toEqual([374, 374]);
    for (let f = 0; f < 32; f++) {
      const t = layout.tiles[f];
      expect({ f, rgb: png.rgb(t.x + 30, t.y + 30) }).toEqual({ f, rgb: colorAt('gray', f / 31) });
    }
    // Cells 32..35 of the last row hold no filter.
    for (let cell = 32; cell < 36; cell++) {
      const x = 2 + (cell % 6) * 62 + 30;
      const y = 2 + Math.floor(cell / 6) * 62 + 30;
      expect(png.rgb(x, y)).toEqual([255, 0, 255]);
    }
  });

  test('rows / cols options', () => {
    expect(layoutMosaic({ count: 10, tileWidth: 4, tileHeight: 4, cols: 5 })).toMatchObject({ rows: 2, cols: 5 });
    expect(layoutMosaic({ count: 10, tileWidth: 4, tileHeight: 4, rows: 1 })).toMatchObject({ rows: 1, cols: 10 });
    expect(layoutMosaic({ count: 10, tileWidth: 4, tileHeight: 4, rows: 3, cols: 4 })).toMatchObject({ rows: 3, cols: 4 });
    const w = tensor([6, 1, 3, 3], (i) => i);
    const png = decodePng(renderFilterMosaic(w, { rows: 1, scale: 2, gutter: 1 }));
    expect([png.width, png.height]).toEqual([1 + 6 * 7, 1 + 7]);
  });

  test('1 filter and 64 filters', () => {
    const one = tensor([1, 1, 5, 5], (i) => i);
    const png1 = decodePng(renderFilterMosaic(one, { colormap: 'viridis', gutter: 2 }));
    expect([png1.width, png1.height]).toEqual([64, 64]); // 60 px tile + 2 px border each side
    expect(png1.rgb(2, 2)).toEqual(colorAt('viridis', 0));
    expect(png1.rgb(61, 61)).toEqual(colorAt('viridis', 1));

    const many = tensor([64, 1, 3, 3], (i) => Math.floor(i / 9));
    const layout = layoutFilterMosaic(many.shape);
    expect([layout.rows, layout.cols]).toEqual([8, 8]);
    const png64 = decodePng(renderFilterMosaic(many, { colormap: 'magma' }));
    expect([png64.width, png64.height]).toEqual([layout.width, layout.height]);
    for (const f of [0, 9, 63]) {
      const t = layout.tiles[f];
      expect(png64.rgb(t.x + 1, t.y + 1)).toEqual(colorAt('magma', f / 63));
    }
  });

  test('1024 filters form a 32 x 32 grid; the last tile is where the layout says', () => {
    const w = tensor([1024, 1, 3, 3], (i) => (Math.floor(i / 9) === 1023 ? 1 : 0));
    const layout = layoutFilterMosaic(w.shape, { gutter: 1 });
    expect([layout.rows, layout.cols]).toEqual([32, 32]);
    const png = decodePng(renderFilterMosaic(w, { gutter: 1, colormap: 'gray' }));
    expect([png.width, png.height]).toEqual([layout.width, layout.height]);
    const last = layout.tiles[1023];
    expect(last).toEqual({ x: 1 + 31 * 64, y: 1 + 31 * 64, w: 63, h: 63 }); // scale 21 for 3x3
    expect(png.rgb(last.x + 30, last.y + 30)).toEqual([255, 255, 255]);
    expect(png.rgb(layout.tiles[1022].x + 30, layout.tiles[1022].y + 30)).toEqual([0, 0, 0]);
  });

  test('kernel size 1 and kernel size 28', () => {
    const k1 = tensor([4, 1, 1, 1], (i) => i);
    const l1 = layoutFilterMosaic(k1.shape);
    expect(l1.tiles[0].w).toBe(64); // a 1x1 kernel is scaled to a 64 px square
    const png1 = decodePng(renderFilterMosaic(k1, { colormap: 'gray' }));
    l1.tiles.forEach((t, f) => {
      expect(png1.rgb(t.x, t.y)).toEqual(colorAt('gray', f / 3));
      expect(png1.rgb(t.x + 63, t.y + 63)).toEqual(colorAt('gray', f / 3));
    });

    // 28x28 kernel with a single hot weight at (27, 27) and one cold at (0, 13).
    const k28 = tensor([2, 1, 28, 28], () => 0);
    k28.data[27 * 28 + 27] = 1;
    k28.data[13] = -1;
    const l28 = layoutFilterMosaic(k28.shape);
    expect(l28.tiles[0].w).toBe(56); // scale 2
    const png28 = decodePng(renderFilterMosaic(k28, { colormap: 'RdBu' }));
    const t = l28.tiles[0];
    expect(png28.rgb(t.x + 55, t.y + 55)).toEqual(colorAt('RdBu', 1));
    expect(png28.rgb(t.x + 54, t.y + 54)).toEqual(colorAt('RdBu', 1));
    expect(png28.rgb(t.x + 53, t.y + 53)).toEqual(colorAt('RdBu', 0.5));
    expect(png28.rgb(t.x + 13 * 2, t.y)).toEqual(colorAt('RdBu', 0));
  });

  test('gutter and border pixels have the background colour', () => {
    const w = tensor([4, 1, 3, 3], (i) => i);
    const options = { gutter: 3, scale: 10, background: 'rgb(10, 200, 30)' };
    const png = decodePng(renderFilterMosaic(w, options));
    const layout = layoutFilterMosaic(w.shape, options);
    const [a, b] = layout.tiles;
    expect(b.x - (a.x + a.w)).toBe(3);
    for (let x = a.x + a.w; x < b.x; x++) expect(png.rgb(x, a.y + 15)).toEqual([10, 200, 30]);
    expect(png.rgb(0, 0)).toEqual([10, 200, 30]);
    expect(png.rgb(png.width - 1, png.height - 1)).toEqual([10, 200, 30]);
    expect(png.at(1, 1)[3]).toBe(255); // opaque
  });

  test('highlight frames surround the given tiles in the gutter without covering weights', () => {
    const w = tensor([9, 1, 3, 3], (i) => i % 9);
    const options = { gutter: 3, scale: 8, colormap: 'gray' as const, highlight: [{ tiles: [4], color: '#00ff00' }, { tiles: [0, 8], color: 'red' }] };
    const png = decodePng(renderFilterMosaic(w, options));
    const layout = layoutFilterMosaic(w.shape, options);
    const t4 = layout.tiles[4];
    for (const d of [1, 2, 3]) {
      expect(png.rgb(t4.x - d, t4.y + 10)).toEqual([0, 255, 0]);
      expect(png.rgb(t4.x + t4.w - 1 + d, t4.y + 10)).toEqual([0, 255, 0]);
      expect(png.rgb(t4.x + 10, t4.y - d)).toEqual([0, 255, 0]);
      expect(png.rgb(t4.x + 10, t4.y + t4.h - 1 + d)).toEqual([0, 255, 0]);
    }
    expect(png.rgb(t4.x, t4.y)).toEqual(colorAt('gray', 0)); // the tile's own first weight
    const t8 = layout.tiles[8];
    expect(png.rgb(t8.x - 1, t8.y + 5)).toEqual([255, 0, 0]);
    const t1 = layout.tiles[1];
    expect(png.rgb(t1.x + 5, t1.y - 2)).toEqual([255, 255, 255]); // not highlighted: plain gutter
  });

  test('labels, title and colour bar enlarge the picture as the layout says; the bar runs from high to low', () => {
    const w = tensor([8, 1, 5, 5], (i) => (i % 25) - 12);
    const options = { labels: true, title: 'conv1 filters', colorbar: true, colormap: 'viridis' as const, gutter: 2 };
    const plain = layoutFilterMosaic(w.shape, { gutter: 2 });
    const layout = layoutFilterMosaic(w.shape, options);
    expect(layout.height).toBeGreaterThan(plain.height);
    expect(layout.width).toBeGreaterThan(plain.width);
    expect(layout.tiles[0].y).toBe(24 + 2 + 12); // title band + border + label band
    const png = decodePng(renderFilterMosaic(w, options));
    expect([png.width, png.height]).toEqual([layout.width, layout.height]);
    const bar = layout.colorbar!;
    expect(png.rgb(bar.x + 5, bar.y)).toEqual(colorAt('viridis', 1));
    expect(png.rgb(bar.x + 5, bar.y + bar.h - 1)).toEqual(colorAt('viridis', 0));
    // Tile pixels are still exact with labels on.
    expect(png.rgb(layout.tiles[0].x, layout.tiles[0].y)).toEqual(colorAt('viridis', 0));
    // Some label / title text was drawn (dark pixels in the otherwise white bands).
    const band = layout.labelBands![0];
    let dark = 0;
    for (let y = band.y; y < band.y + band.h; y++) for (let x = band.x; x < band.x + 12; x++) if (png.rgb(x, y)[0] < 128) dark++;
    expect(dark).toBeGreaterThan(0);
  });
});

describe('higher layers', () => {
  // Filter f, channel c is constant 10 * f + c: every tile has its own value.
  const layer = tensor([3, 4, 3, 3], (i) => 10 * Math.floor(i / 36) + (Math.floor(i / 9) % 4));
  const value = (f: number, c: number) => 10 * f + c;

  test('renderLayerGrid: rows are filters, columns channels; picture size follows the grid', () => {
    const layout = layoutLayerGrid(layer.shape, { scale: 4 });
    expect([layout.rows, layout.cols]).toEqual([3, 4]);
    const png = decodePng(renderLayerGrid(layer, { scale: 4, colormap: 'gray', normalize: 'global' }));
    expect([png.width, png.height]).toEqual([layout.width, layout.height]);
    expect(layout.width).toBe(2 + 4 * (12 + 2));
    expect(layout.height).toBe(2 + 3 * (12 + 2));
    for (let f = 0; f < 3; f++) {
      for (let c = 0; c < 4; c++) {
        const t = layout.tiles[f * 4 + c];
        expect(png.rgb(t.x + 6, t.y + 6)).toEqual(colorAt('gray', value(f, c) / 23));
      }
    }
  });

  test('renderLayerGrid: per-filter normalisation spans each row; caps limit rows and columns', () => {
    const png = decodePng(renderLayerGrid(layer, { scale: 4, colormap: 'gray', normalize: 'filter' }));
    const layout = layoutLayerGrid(layer.shape, { scale: 4 });
    for (let f = 0; f < 3; f++) {
      expect(png.rgb(layout.tiles[f * 4].x, layout.tiles[f * 4].y)).toEqual(colorAt('gray', 0));
      expect(png.rgb(layout.tiles[f * 4 + 3].x, layout.tiles[f * 4 + 3].y)).toEqual(colorAt('gray', 1));
    }
    const capped = layoutLayerGrid(layer.shape, { scale: 4, maxFilters: 2, maxChannels: 3 });
    expect([capped.rows, capped.cols]).toEqual([2, 3]);
    const cappedPng = decodePng(renderLayerGrid(layer, { scale: 4, maxFilters: 2, maxChannels: 3, labels: true }));
    const withHeaders = layoutLayerGrid(layer.shape, { scale: 4, maxFilters: 2, maxChannels: 3, labels: true });
    expect([cappedPng.width, cappedPng.height]).toEqual([withHeaders.width, withHeaders.height]);
    expect(withHeaders.tiles[0].x).toBeGreaterThan(capped.tiles[0].x); // room for row headers
    expect(withHeaders.tiles[0].y).toBeGreaterThan(capped.tiles[0].y); // and column headers
  });

  test('renderFilterChannels: one filter, one tile per input channel', () => {
    const png = decodePng(renderFilterChannels(layer, 2, { scale: 5, colormap: 'gray', normalize: 'filter' }));
    const layout = layoutMosaic({ count: 4, tileWidth: 15, tileHeight: 15 });
    expect([png.width, png.height]).toEqual([layout.width, layout.height]);
    for (let c = 0; c < 4; c++) {
      expect(png.rgb(layout.tiles[c].x + 7, layout.tiles[c].y + 7)).toEqual(colorAt('gray', c / 3));
    }
    const global = decodePng(renderFilterChannels(layer, 0, { scale: 5, colormap: 'gray', normalize: 'global' }));
    expect(global.rgb(layout.tiles[3].x, layout.tiles[3].y)).toEqual(colorAt('gray', 3 / 23));
  });
});

describe('renderFeatureMaps', () => {
  test('input on the left in gray, maps in a grid beside it, each map normalised on its own', () => {
    const input = tensor([1, 1, 28, 28], (i) => (i % 28 < 14 ? 0 : 1)); // left half black, right half white
    const maps = tensor([1, 6, 24, 24], (i) => (Math.floor(i / 576) + 1) * ((i % 576) / 575)); // ramps of different heights
    const layout = layoutFeatureMaps(input.shape, maps.shape, { title: 'conv1' });
    const png = decodePng(renderFeatureMaps(input, maps, { title: 'conv1' }));
    expect([png.width, png.height]).toEqual([layout.width, layout.height]);
    expect(layout.input).toEqual({ x: 2, y: 24 + 2, w: 112, h: 112 }); // 28 px x 4
    expect([layout.rows, layout.cols]).toEqual([2, 3]);
    expect(layout.tiles[0].x).toBeGreaterThan(layout.input.x + layout.input.w);
    expect(png.rgb(layout.input.x + 5, layout.input.y + 5)).toEqual([0, 0, 0]);
    expect(png.rgb(layout.input.x + 100, layout.input.y + 5)).toEqual([255, 255, 255]);
    // Per-map normalisation: every map runs from the colormap's low end to its high end.
    for (let c = 0; c < 6; c++) {
      const t = layout.tiles[c];
      expect(png.rgb(t.x, t.y)).toEqual(colorAt('viridis', 0));
      expect(png.rgb(t.x + t.w - 1, t.y + t.h - 1)).toEqual(colorAt('viridis', 1));
    }
  });

  test('accepts [H, W] and [C, h, w] shapes and global normalisation', () => {
    const input = tensor([10, 12], (i) => i);
    const maps = tensor([3, 4, 4], (i) => Math.floor(i / 16));
    const png = decodePng(renderFeatureMaps(input, maps, { normalize: 'global', colormap: 'magma', scale: 8, inputScale: 3 }));
    const layout = layoutFeatureMaps(input.shape, maps.shape, { scale: 8, inputScale: 3 });
    expect([png.width, png.height]).toEqual([layout.width, layout.height]);
    expect(layout.input.w).toBe(36);
    for (let c = 0; c < 3; c++) expect(png.rgb(layout.tiles[c].x + 4, layout.tiles[c].y + 4)).toEqual(colorAt('magma', c / 2));
  });

  test('rejects maps of the wrong rank with the expected shape in the message', () => {
    expect(() => renderFeatureMaps(tensor([28, 28], () => 0), tensor([2, 3, 4, 4], () => 0))).toThrow(
      /Expected shape \[1, C, h, w\] or \[C, h, w\] for maps.shape but received \[2, 3, 4, 4\]/,
    );
  });
});

describe('pictures are PNGs', () => {
  test('every renderer returns PNG bytes that decode', () => {
    const pngs: Buffer[] = [
      renderFilterMosaic(patternWeights()),
      renderLayerGrid(tensor([2, 2, 3, 3], (i) => i)),
      renderFilterChannels(tensor([2, 2, 3, 3], (i) => i), 1),
      renderFeatureMaps(tensor([8, 8], (i) => i), tensor([1, 2, 4, 4], (i) => i)),
    ];
    for (const png of pngs) {
      const decoded: DecodedPng = decodePng(png);
      expect(decoded.width).toBeGreaterThan(0);
    }
  });
});
