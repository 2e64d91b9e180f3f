// tune.png: the validation score of every trial against each searched hyperparameter, one small
// scatter panel per hyperparameter, drawn by Chart.js. node-canvas is loaded only here, at draw time
// (see viz/canvas-loader.ts): a machine without it still searches, and skips the chart.
import type { ChartConfiguration } from 'chart.js';
import { loadChartJsNodeCanvas } from '../viz/canvas-loader';
import { composePanels, SERIES_COLORS } from '../viz/charts';
import type { Dimension } from './space';
import { formatParam, PARAM_LABELS, TrialParams } from './space';
import type { TrialResult } from './trial';

const PANEL = { width: 360, height: 280 };
const COLUMNS = 3;
const TITLE_HEIGHT = 30;

/** How a hyperparameter's panel lays out its x axis. */
type Axis = { kind: 'linear' | 'logarithmic' } | { kind: 'category'; labels: string[] };

/** Numbers spanning a decade or more read better on a log axis (learning rates, weight decays, batch sizes). */
function axisFor(d: Dimension): Axis {
  if (d.kind === 'range') return { kind: d.log ? 'logarithmic' : 'linear' };
  if (d.values.every((v) => typeof v === 'number')) {
    const values = d.values as number[];
    const min = Math.min(...values);
    return { kind: min > 0 && Math.max(...values) / min >= 10 ? 'logarithmic' : 'linear' };
  }
  // Schedules, and filter counts given per layer: one tick per value, in the space's order.
  return { kind: 'category', labels: d.values.map((v) => formatParam(d.key, v)) };
}

function xOf(d: Dimension, axis: Axis, params: TrialParams): number | string {
  const value = params[d.key];
  return axis.kind === 'category' ? formatParam(d.key, value) : value as number;
}

function panelConfig(d: Dimension, trials: TrialResult[], bestTrial: number | undefined): ChartConfiguration {
  const axis = axisFor(d);
  const scored = trials.filter((t) => t.validationAccuracy !== null && (t.status === 'completed' || t.status === 'pruned'));
  const group = (label: string, color: string, pick: (t: TrialResult) => boolean, radius: number) => ({
    label, backgroundColor: color, borderColor: color, pointRadius: radius,
    data: scored.filter(pick).map((t) => ({ x: xOf(d, axis, t.params), y: t.validationAccuracy! })),
  });
  const datasets = [
    group('completed', SERIES_COLORS[0], (t) => t.status === 'completed' && t.trial !== bestTrial, 4),
    group('pruned', SERIES_COLORS[7], (t) => t.status === 'pruned', 4),
    group('best', SERIES_COLORS[3], (t) => t.trial === bestTrial, 7),
  ].filter((s) => s.data.length > 0);
  return {
    type: 'scatter',
    data: { datasets: datasets as never },
    options: {
      devicePixelRatio: 1,
      plugins: {
        title: { display: true, text: PARAM_LABELS[d.key] },
        legend: { display: true, position: 'bottom', labels: { usePointStyle: true } },
      },
      scales: {
        // offset: points at the ends of an axis are drawn whole, not cut in half by the frame.
        x: axis.kind === 'category'
          ? { type: 'category', labels: axis.labels, offset: true, title: { display: true, text: PARAM_LABELS[d.key] } }
          : { type: axis.kind, offset: true, title: { display: true, text: PARAM_LABELS[d.key] } },
        y: { type: 'linear', grace: '5%', title: { display: true, text: 'validation accuracy' } },
      },
    },
  } as ChartConfiguration;
}

/**
 * The chart as PNG bytes: a panel per searched hyperparameter (three per row), each trial a point
 * at its last validation accuracy; the best in red, pruned trials in grey (at the epoch they were
 * pruned), diverged, failed and running ones left out.
 * @throws Error explaining how to install node-canvas when it cannot be loaded
 */
export async function renderTuneChart(dimensions: Dimension[], trials: TrialResult[], bestTrial: number | undefined, title: string): Promise<Buffer> {
  const { ChartJSNodeCanvas } = loadChartJsNodeCanvas();
  const renderer = new ChartJSNodeCanvas({ width: PANEL.width, height: PANEL.height, backgroundColour: 'white' });
  const panels: Buffer[] = [];
  for (const d of dimensions) panels.push(await renderer.renderToBuffer(panelConfig(d, trials, bestTrial)));
  return composePanels(panels, { width: PANEL.width, height: PANEL.height, columns: COLUMNS, title, titleHeight: TITLE_HEIGHT });
}
