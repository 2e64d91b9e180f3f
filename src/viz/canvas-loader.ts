// node-canvas is a native module built against cairo/pango; on a machine without those libraries it
// fails to load. Training must keep working there, so nothing under src/ imports it at module top
// level: renderers call these loaders at draw time and get one actionable error if it is missing.

import type * as CanvasModule from 'canvas';
import type * as ChartJsNodeCanvasModule from 'chartjs-node-canvas';

/** The `canvas` (node-canvas) module's type, for code that receives it from {@link loadCanvas}. */
export type Canvas = typeof CanvasModule;

/** The `chartjs-node-canvas` module's type. */
export type ChartJsNodeCanvas = typeof ChartJsNodeCanvasModule;

const APT_PACKAGES = 'build-essential pkg-config libcairo2-dev libpango1.0-dev libjpeg-dev libgif-dev librsvg2-dev';

function missingCanvasError(cause: unknown, what: string): Error {
  const reason = cause instanceof Error ? cause.message.split('\n')[0] : String(cause);
  return new Error(
    `${what} needs node-canvas (the optional npm package "canvas"), which failed to load: ${reason}. ` +
      `node-canvas builds from cairo and pango: install them (Debian/Ubuntu: ` +
      `sudo apt-get install ${APT_PACKAGES}), then run \`npm rebuild canvas\`. ` +
      `Training does not need it; only pictures and charts do.`,
    { cause },
  );
}

let canvasModule: Canvas | undefined;

/**
 * Loads node-canvas on first use and returns the module.
 *
 * @throws Error explaining which apt packages node-canvas builds from and to run
 *   `npm rebuild canvas`, when it cannot be loaded.
 * @example
 * const { createCanvas } = loadCanvas();
 * const png = createCanvas(10, 10).toBuffer('image/png');
 */
export function loadCanvas(): Canvas {
  if (!canvasModule) {
    try {
      canvasModule = require('canvas') as Canvas;
    } catch (err) {
      throw missingCanvasError(err, 'Drawing pictures');
    }
  }
  return canvasModule;
}

let chartModule: ChartJsNodeCanvas | undefined;

/**
 * Loads chartjs-node-canvas (Chart.js rendered through node-canvas) on first use.
 *
 * @throws the same actionable Error as {@link loadCanvas} when node-canvas or Chart.js is missing.
 * @example
 * const { ChartJSNodeCanvas } = loadChartJsNodeCanvas();
 */
export function loadChartJsNodeCanvas(): ChartJsNodeCanvas {
  if (!chartModule) {
    loadCanvas(); // a missing canvas gives the canvas message rather than a chart.js stack
    try {
      chartModule = require('chartjs-node-canvas') as ChartJsNodeCanvas;
    } catch (err) {
      throw missingCanvasError(err, 'Drawing charts (chartjs-node-canvas and chart.js)');
    }
  }
  return chartModule;
}
