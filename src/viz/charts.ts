// Line charts (training curves, accuracy-vs-hyperparameter sweeps) drawn by Chart.js through
// chartjs-node-canvas, so axes, ticks and legends are Chart.js's rather than hand-made. Both are
// loaded at call time (see canvas-loader.ts): importing this module never needs node-canvas.

import type { ChartConfiguration } from 'chart.js';
import { checkBoolean, checkInteger, checkKnownKeys, checkNumber, checkObject, checkString, expected } from '../util/validate';
import { loadCanvas, loadChartJsNodeCanvas } from './canvas-loader';
import { TITLE_BAND } from './mosaic-layout';

export { renderHeatmap, layoutHeatmap, type HeatmapOptions, type HeatmapLayout } from './heatmap';

/** One epoch of a training history; extra fields (learning rate, throughput) are ignored. */
export interface EpochMetrics {
  epoch: number;
  trainLoss: number;
  trainAccuracy: number;
  testLoss: number;
  testAccuracy: number;
}

/** Options of {@link renderTrainingCurves}. */
export interface TrainingCurveOptions {
  /** Width of each of the two panels in pixels. Default 480. */
  panelWidth?: number;
  /** Height of the panels in pixels. Default 320. */
  height?: number;
  /** Title above both panels. */
  title?: string;
}

/** One line of a {@link renderLineChart}. */
export interface LineSeries {
  label: string;
  points: { x: number; y: number }[];
}

/** What {@link renderLineChart} draws. */
export interface LineChartSpec {
  title: string;
  xLabel: string;
  yLabel: string;
  series: LineSeries[];
  /** Logarithmic x axis (e.g. learning rates, batch sizes); every x must then be > 0. */
  logX?: boolean;
  /** Width in pixels. Default 640. */
  width?: number;
  /** Height in pixels. Default 400. */
  height?: number;
}

/** matplotlib's `tab10` colours, so charts match the rest of the Python-side tooling. */
export const SERIES_COLORS = ['#1f77b4', '#ff7f0e', '#2ca02c', '#d62728', '#9467bd', '#8c564b', '#e377c2', '#7f7f7f', '#bcbd22', '#17becf'];

type Renderer = { renderToBuffer(config: ChartConfiguration): Promise<Buffer> };
// One renderer per size: each ChartJSNodeCanvas loads its own Chart.js instance, which is slow.
const renderers = new Map<string, Renderer>();

function rendererFor(width: number, height: number): Renderer {
  const key = `${width}x${height}`;
  let r = renderers.get(key);
  if (!r) {
    const { ChartJSNodeCanvas } = loadChartJsNodeCanvas();
    r = new ChartJSNodeCanvas({ width, height, backgroundColour: 'white' }) as Renderer;
    renderers.set(key, r);
  }
  return r;
}

function lineConfig(
  title: string,
  xLabel: string,
  yLabel: string,
  series: LineSeries[],
  options: { logX?: boolean; yMin?: number; yMax?: number; integerX?: boolean } = {},
): ChartConfiguration {
  return {
    type: 'line',
    data: {
      datasets: series.map((s, i) => ({
        label: s.label,
        data: s.points.map((p) => ({ x: p.x, y: p.y })),
        borderColor: SERIES_COLORS[i % SERIES_COLORS.length],
        backgroundColor: SERIES_COLORS[i % SERIES_COLORS.length],
        borderWidth: 2,
        pointRadius: 2.5,
        tension: 0,
      })),
    },
    options: {
      devicePixelRatio: 1,
      plugins: {
        title: { display: true, text: title, font: { size: 14 } },
        legend: { display: true, position: 'top' },
      },
      scales: {
        x: options.logX
          ? { type: 'logarithmic', title: { display: true, text: xLabel } }
          : {
            type: 'linear',
            title: { display: true, text: xLabel },
            // Epochs are whole numbers: no 1.10, 1.20 ticks between them.
            ...(options.integerX ? { ticks: { stepSize: 1, precision: 0 } } : {}),
          },
        y: {
          type: 'linear',
          title: { display: true, text: yLabel },
          ...(options.yMin !== undefined ? { suggestedMin: options.yMin } : {}),
          ...(options.yMax !== undefined ? { suggestedMax: options.yMax } : {}),
        },
      },
    },
  };
}

function checkHistory(history: unknown): EpochMetrics[] {
  if (!Array.isArray(history) || history.length === 0) {
    throw new TypeError(expected('a non-empty array of epoch records', 'history', history));
  }
  return history.map((entry, i) => {
    const r = checkObject(entry, `history[${i}]`);
    const field = (key: keyof EpochMetrics) => checkNumber(r[key], `history[${i}].${key}`);
    return {
      epoch: field('epoch'),
      trainLoss: field('trainLoss'),
      trainAccuracy: field('trainAccuracy'),
      testLoss: field('testLoss'),
      testAccuracy: field('testAccuracy'),
    };
  });
}

/**
 * Renders training curves as one PNG with two Chart.js panels side by side: loss per epoch (left)
 * and accuracy per epoch (right), each with a train and a test line.
 *
 * @param history - one record per epoch (extra fields are ignored)
 * @returns PNG bytes, `2 * panelWidth` wide (plus nothing) and `height` (+ a title band) tall
 * @throws TypeError / RangeError for an empty history or non-finite metrics; Error when
 *   node-canvas / chartjs-node-canvas cannot be loaded
 * @example
 * fs.writeFileSync('curves.png', await renderTrainingCurves(history, { title: 'LeNet, lr 0.01' }));
 */
export async function renderTrainingCurves(history: EpochMetrics[], options: TrainingCurveOptions = {}): Promise<Buffer> {
  const rows = checkHistory(history);
  const o = checkObject(options, 'options');
  checkKnownKeys(o, 'options', ['panelWidth', 'height', 'title']);
  const panelWidth = o.panelWidth === undefined ? 480 : checkInteger(o.panelWidth, 'options.panelWidth', 160, 4096);
  const height = o.height === undefined ? 320 : checkInteger(o.height, 'options.height', 120, 4096);
  const title = o.title === undefined ? undefined : checkString(o.title, 'options.title');

  const series = (train: keyof EpochMetrics, test: keyof EpochMetrics): LineSeries[] => [
    { label: 'train', points: rows.map((r) => ({ x: r.epoch, y: r[train] })) },
    { label: 'test', points: rows.map((r) => ({ x: r.epoch, y: r[test] })) },
  ];
  const accuracies = rows.flatMap((r) => [r.trainAccuracy, r.testAccuracy]);
  // Accuracies given as fractions get a 0..1 axis hint so small changes are not blown up.
  const fraction = accuracies.every((a) => a >= 0 && a <= 1);
  const renderer = rendererFor(panelWidth, height);
  const loss = await renderer.renderToBuffer(lineConfig('loss', 'epoch', 'loss', series('trainLoss', 'testLoss'), { yMin: 0, integerX: true }));
  const accuracy = await renderer.renderToBuffer(
    lineConfig('accuracy', 'epoch', 'accuracy', series('trainAccuracy', 'testAccuracy'), fraction ? { yMax: 1, integerX: true } : { integerX: true }),
  );

  return composePanels([loss, accuracy], { width: panelWidth, height, columns: 2, title, titleHeight: TITLE_BAND });
}

/**
 * Chart panels (PNG bytes, each `width` x `height`) laid out `columns` to a row on white, under a
 * centred bold title in a band of `titleHeight` (no band without a title): one picture of several charts.
 */
export function composePanels(panels: Buffer[], layout: { width: number; height: number; columns: number; title?: string; titleHeight: number }): Buffer {
  const { createCanvas, Image } = loadCanvas();
  const top = layout.title ? layout.titleHeight : 0;
  const rows = Math.ceil(panels.length / layout.columns);
  const canvas = createCanvas(Math.min(layout.columns, panels.length) * layout.width, rows * layout.height + top);
  const ctx = canvas.getContext('2d');
  ctx.fillStyle = '#ffffff';
  ctx.fillRect(0, 0, canvas.width, canvas.height);
  panels.forEach((png, i) => {
    const img = new Image();
    img.src = png;
    ctx.drawImage(img, (i % layout.columns) * layout.width, top + Math.floor(i / layout.columns) * layout.height);
  });
  if (layout.title) {
    ctx.fillStyle = '#222222';
    ctx.font = 'bold 14px sans-serif';
    ctx.textAlign = 'center';
    ctx.textBaseline = 'middle';
    ctx.fillText(layout.title, canvas.width / 2, top / 2);
  }
  return canvas.toBuffer('image/png');
}

function checkSeries(value: unknown, logX: boolean): LineSeries[] {
  if (!Array.isArray(value) || value.length === 0) throw new TypeError(expected('a non-empty array of series', 'spec.series', value));
  return value.map((entry, i) => {
    const s = checkObject(entry, `spec.series[${i}]`);
    checkKnownKeys(s, `spec.series[${i}]`, ['label', 'points']);
    const label = checkString(s.label, `spec.series[${i}].label`);
    if (!Array.isArray(s.points)) throw new TypeError(expected('an array of { x, y }', `spec.series[${i}].points`, s.points));
    const points = s.points.map((p, j) => {
      const point = checkObject(p, `spec.series[${i}].points[${j}]`);
      const name = `spec.series[${i}].points[${j}]`;
      const x = logX ? checkNumber(point.x, `${name}.x`, 0, Infinity, { exclusiveMin: true }) : checkNumber(point.x, `${name}.x`);
      return { x, y: checkNumber(point.y, `${name}.y`) };
    });
    return { label, points };
  });
}

/**
 * Renders a generic multi-series line chart (e.g. test accuracy against kernel size, one series per
 * optimiser) as PNG.
 *
 * @returns PNG bytes of `width x height`
 * @throws TypeError / RangeError for a malformed spec (x must be > 0 with `logX`)
 * @example
 * const png = await renderLineChart({
 *   title: 'accuracy vs kernel size', xLabel: 'kernel size', yLabel: 'test accuracy',
 *   series: [{ label: 'sgd', points: [{ x: 3, y: 0.98 }, { x: 5, y: 0.985 }] }],
 * });
 */
export async function renderLineChart(spec: LineChartSpec): Promise<Buffer> {
  const s = checkObject(spec, 'spec');
  checkKnownKeys(s, 'spec', ['title', 'xLabel', 'yLabel', 'series', 'logX', 'width', 'height']);
  const logX = s.logX === undefined ? false : checkBoolean(s.logX, 'spec.logX');
  const title = checkString(s.title, 'spec.title');
  const xLabel = checkString(s.xLabel, 'spec.xLabel');
  const yLabel = checkString(s.yLabel, 'spec.yLabel');
  const series = checkSeries(s.series, logX);
  const width = s.width === undefined ? 640 : checkInteger(s.width, 'spec.width', 160, 4096);
  const height = s.height === undefined ? 400 : checkInteger(s.height, 'spec.height', 120, 4096);
  return rendererFor(width, height).renderToBuffer(lineConfig(title, xLabel, yLabel, series, { logX }));
}
