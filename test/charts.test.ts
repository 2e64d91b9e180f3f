// Training curves and line charts (Chart.js) and heatmaps (canvas), checked through their pixels.

import { colorAt } from '../src/viz/colormaps';
import { layoutHeatmap, renderHeatmap, renderLineChart, renderTrainingCurves, SERIES_COLORS } from '../src/viz/charts';
import { colorDistance, decodePng, type DecodedPng } from './png-pixels';

const hexRgb = (hex: string) => [1, 3, 5].map((i) => parseInt(hex.slice(i, i + 2), 16));

/** Pixels within `tolerance` of `color` inside the column range [x0, x1). */
function countColor(png: DecodedPng, color: number[], x0 = 0, x1 = png.width, tolerance = 12): number {
  let n = 0;
  for (let y = 0; y < png.height; y++) for (let x = x0; x < x1; x++) if (colorDistance(png.rgb(x, y), color) <= tolerance) n++;
  return n;
}

const history = Array.from({ length: 8 }, (_, e) => ({
  epoch: e + 1,
  trainLoss: 1 / (e + 1),
  testLoss: 1.2 / (e + 1),
  trainAccuracy: 1 - 0.3 / (e + 1),
  testAccuracy: 1 - 0.4 / (e + 1),
  learningRate: 0.01, // extra fields are ignored
}));

describe('renderTrainingCurves', () => {
  test('two panels side by side, each with a train (blue) and a test (orange) line', async () => {
    const png = decodePng(await renderTrainingCurves(history, { panelWidth: 400, height: 300 }));
    expect([png.width, png.height]).toEqual([800, 300]);
    const [blue, orange] = SERIES_COLORS.slice(0, 2).map(hexRgb);
    for (const [x0, x1] of [[0, 400], [400, 800]]) {
      expect(countColor(png, blue, x0, x1)).toBeGreaterThan(200);
      expect(countColor(png, orange, x0, x1)).toBeGreaterThan(200);
    }
    expect(png.rgb(2, 2)).toEqual([255, 255, 255]); // white background, not transparent
  });

  test('a title adds a band on top', async () => {
    const png = decodePng(await renderTrainingCurves(history.slice(0, 2), { title: 'LeNet' }));
    expect([png.width, png.height]).toEqual([960, 320 + 24]);
  });
});

describe('renderLineChart', () => {
  test('one colour per series, linear or logarithmic x', async () => {
    const series = [
      { label: 'sgd', points: [1, 3, 5, 7].map((k) => ({ x: k, y: 0.9 + k / 100 })) },
      { label: 'adam', points: [1, 3, 5, 7].map((k) => ({ x: k, y: 0.92 + k / 100 })) },
      { label: 'rmsprop', points: [1, 3, 5, 7].map((k) => ({ x: k, y: 0.91 + k / 200 })) },
    ];
    for (const logX of [false, true]) {
      const png = decodePng(await renderLineChart({ title: 'accuracy vs kernel size', xLabel: 'kernel size', yLabel: 'test accuracy', series, logX, width: 500, height: 350 }));
      expect([png.width, png.height]).toEqual([500, 350]);
      for (const color of SERIES_COLORS.slice(0, 3).map(hexRgb)) expect(countColor(png, color)).toBeGreaterThan(100);
    }
  });
});

describe('renderHeatmap', () => {
  test('each cell has the colour of its value; labels and colour bar as laid out', () => {
    const matrix = [
      [9, 1, 0],
      [2, 7, 1],
      [0, 3, 6],
    ];
    const options = { labels: ['a', 'b', 'c'], colormap: 'viridis' as const, title: 'confusion' };
    const png = decodePng(renderHeatmap(matrix, options));
    const layout = layoutHeatmap(3, 3, options);
    expect([png.width, png.height]).toEqual([layout.width, layout.height]);
    matrix.forEach((row, r) =>
      row.forEach((v, c) => {
        const cell = layout.cells[r][c];
        const want = colorAt('viridis', v / 9);
        expect(png.rgb(cell.x + 1, cell.y + 1)).toEqual(want);
        expect(png.rgb(cell.x + cell.w - 1, cell.y + cell.h - 1)).toEqual(want);
        expect(png.rgb(cell.x + cell.w / 2, cell.y + cell.h / 2)).toEqual(want); // no annotation by default
      }),
    );
    const bar = layout.colorbar!;
    expect(png.rgb(bar.x + 3, bar.y)).toEqual(colorAt('viridis', 1));
    expect(png.rgb(bar.x + 3, bar.y + bar.h - 1)).toEqual(colorAt('viridis', 0));
    expect(layout.cells[0][0].x).toBeGreaterThan(8); // room for the row labels
  });

  test('diverging maps are symmetric around zero; explicit min/max clamp', () => {
    const m = [[-2, 0, 1]];
    const png = decodePng(renderHeatmap(m, { colormap: 'RdBu', colorbar: false }));
    const layout = layoutHeatmap(1, 3, { colormap: 'RdBu', colorbar: false });
    expect(png.rgb(layout.cells[0][0].x + 2, layout.cells[0][0].y + 2)).toEqual(colorAt('RdBu', 0));
    expect(png.rgb(layout.cells[0][1].x + 2, layout.cells[0][1].y + 2)).toEqual(colorAt('RdBu', 0.5));
    expect(png.rgb(layout.cells[0][2].x + 2, layout.cells[0][2].y + 2)).toEqual(colorAt('RdBu', 0.75));
    expect(layout.colorbar).toBeUndefined();

    const clamped = decodePng(renderHeatmap([[0, 5, 10]], { colormap: 'gray', min: 0, max: 5, cellSize: 10 }));
    const l2 = layoutHeatmap(1, 3, { cellSize: 10 });
    expect(clamped.rgb(l2.cells[0][2].x + 5, l2.cells[0][2].y + 5)).toEqual([255, 255, 255]);
    expect(clamped.rgb(l2.cells[0][0].x + 5, l2.cells[0][0].y + 5)).toEqual([0, 0, 0]);
  });

  test('annotations write the value into the cell; long column labels are rotated into a taller band', () => {
    const plain = layoutHeatmap(2, 2, { labels: ['x', 'y'], cellSize: 40 });
    const long = layoutHeatmap(2, 2, { labels: ['a long label', 'another one'], cellSize: 40 });
    expect(long.cells[0][0].y).toBeGreaterThan(plain.cells[0][0].y);
    const png = decodePng(renderHeatmap([[100, 0], [0, 100]], { annotate: true, colormap: 'gray', cellSize: 40, colorbar: false }));
    const layout = layoutHeatmap(2, 2, { cellSize: 40, colorbar: false });
    const cell = layout.cells[0][0]; // white cell: its number is drawn in dark text
    let dark = 0;
    for (let y = cell.y; y < cell.y + cell.h; y++) for (let x = cell.x; x < cell.x + cell.w; x++) if (png.rgb(x, y)[0] < 100) dark++;
    expect(dark).toBeGreaterThan(5);
  });
});
