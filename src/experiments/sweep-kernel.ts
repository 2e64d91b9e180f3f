// How large should the first layer's filters be? Trains the same network with each first-layer
// kernel size ('same' padding, so every later layer keeps its shape) and records test accuracy,
// parameter count and time per epoch, with each size's filters as a mosaic.
import * as path from 'path';
import { writeFileAtomic } from '../util/fs-atomic';
import { shapeSize } from '../core/host-tensor';
import { countParameters, planModel } from '../nn/spec';
import { trainCnn } from '../train/train-cnn';
import { percent } from './markdown';
import { checkCountList, type ExperimentOptions, resolveExperiment } from './options';
import { type Figure, type ResultsTable, settingsRecord } from './results';
import { layerWeights, secondsPerEpoch, trainingLine, trainOptions, warmUp, withFirstLayer } from './training';
import { writeResults } from './write-results';

/** Options of {@link sweepKernelSizes}. @example const o: KernelSweepOptions = { sizes: [3, 5, 28], epochs: 1, limit: 10000 }; */
export interface KernelSweepOptions extends ExperimentOptions {
  /** First-layer kernel sizes to train (default [3, 5, 7, 9, 13, 19, 28]). */
  sizes?: number[];
}

/** One trained kernel size. @example rows[0] // { kernelSize: 3, testAccuracy: 0.84, parameters: 3274122, conv1Parameters: 320, secondsPerEpoch: 7.1, ... } */
export interface KernelSweepRow {
  kernelSize: number;
  testAccuracy: number;
  testLoss: number;
  /** Trainable values of the whole network. */
  parameters: number;
  /** Trainable values of the first layer (weights and biases). */
  conv1Parameters: number;
  secondsPerEpoch: number;
  /** The size's conv1 mosaic, relative to outDir. */
  mosaic: string;
}

/** What {@link sweepKernelSizes} measured and where it wrote it. @example (await sweepKernelSizes()).files.chart // 'experiments/sweep-kernel/accuracy-vs-kernel-size.png' */
export interface KernelSweepResult {
  outDir: string;
  settings: Record<string, unknown>;
  rows: KernelSweepRow[];
  table: ResultsTable;
  files: { settings: string; results: string; markdown: string; chart: string; mosaics: string[] };
}

/** Kernel sizes tried by default: 3x3 up to a kernel as large as the image. @example sweepKernelSizes({ sizes: DEFAULT_KERNEL_SIZES }) */
export const DEFAULT_KERNEL_SIZES = [3, 5, 7, 9, 13, 19, 28];
const CHART_FILE = 'accuracy-vs-kernel-size.png';

/** The table shown in results.md, printed by the CLI and embedded in the report. @example kernelSweepTable(rows).headers[0] // 'kernel size' */
export function kernelSweepTable(rows: KernelSweepRow[]): ResultsTable {
  return {
    headers: ['kernel size', 'test accuracy', 'test loss', 'parameters', 'conv1 parameters', 'seconds/epoch'],
    rows: rows.map((r) => [`${r.kernelSize}x${r.kernelSize}`, percent(r.testAccuracy), r.testLoss.toFixed(4), String(r.parameters),
      String(r.conv1Parameters), r.secondsPerEpoch.toFixed(2)]),
  };
}

/**
 * Trains the network (default: the TensorFlow-tutorial CNN) once per first-layer kernel size and
 * writes into `outDir`: `conv1-k<size>.png` (the filters, RdBu, one range per mosaic),
 * `accuracy-vs-kernel-size.png`, `settings.json`, `results.json` and `results.md`.
 * Every training uses the same data, seed and budget; only the kernel size differs.
 * @example
 * const { rows } = await sweepKernelSizes({ sizes: [3, 5, 28], limit: 10000, testLimit: 2000, outDir: 'experiments/sweep-kernel' });
 * rows[0]; // { kernelSize: 3, testAccuracy: 0.84, parameters: 3274058, secondsPerEpoch: 7.1, ... }
 */
export async function sweepKernelSizes(options: KernelSweepOptions = {}): Promise<KernelSweepResult> {
  const { base, raw } = resolveExperiment('sweep-kernel', options, ['sizes']);
  const [height, width] = planModel(base.spec).spec.inputSize;
  // 'same' padding accepts kernels up to twice the input; beyond the input size they only add zeros.
  const sizes = checkCountList(raw.sizes ?? DEFAULT_KERNEL_SIZES, 'sizes', 2 * Math.min(height, width));
  const rows: KernelSweepRow[] = [];
  const mosaics: string[] = [];
  const { renderFilterMosaic } = require('../viz/mosaic') as typeof import('../viz/mosaic');
  await warmUp(base);
  for (const size of sizes) {
    const spec = withFirstLayer(base.spec, { kernelSize: size, padding: 'same' });
    const plan = planModel(spec);
    const result = await trainCnn(trainOptions(base, { spec }));
    try {
      const mosaic = `conv1-k${size}.png`;
      writeFileAtomic(path.join(base.outDir, mosaic), renderFilterMosaic(layerWeights(result.model, 'conv1'), {
        colormap: 'RdBu', normalize: 'global', colorbar: true, title: `conv1 ${size}x${size}: ${percent(result.testAccuracy)}`,
      }));
      mosaics.push(path.join(base.outDir, mosaic));
      const conv1 = plan.parameters.filter((p) => p.name.startsWith('conv1.')).reduce((s, p) => s + shapeSize(p.shape), 0);
      rows.push({
        kernelSize: size, testAccuracy: result.testAccuracy, testLoss: result.testLoss, parameters: countParameters(plan),
        conv1Parameters: conv1, secondsPerEpoch: secondsPerEpoch(result), mosaic,
      });
      base.log(trainingLine(`kernel ${size}x${size}`, result));
    } finally {
      result.model.dispose();
    }
  }

  const { renderLineChart } = require('../viz/charts') as typeof import('../viz/charts');
  const chart = path.join(base.outDir, CHART_FILE);
  writeFileAtomic(chart, await renderLineChart({
    title: 'test accuracy vs first-layer kernel size', xLabel: 'kernel size (pixels)', yLabel: 'test accuracy',
    series: [{ label: 'test accuracy', points: rows.map((r) => ({ x: r.kernelSize, y: r.testAccuracy })) }],
  }));
  const settings = settingsRecord(base, { sizes });
  const table = kernelSweepTable(rows);
  const best = rows.reduce((a, b) => (b.testAccuracy > a.testAccuracy ? b : a));
  const figures: Figure[] = [
    { file: CHART_FILE, caption: 'Test accuracy against the first-layer kernel size' },
    ...rows.map((r) => ({ file: r.mosaic, group: 'conv1 filters per kernel size', caption: `${r.kernelSize}x${r.kernelSize} (${percent(r.testAccuracy)})` })),
  ];
  const files = writeResults(base.outDir, {
    experiment: 'sweep-kernel', title: 'First-layer kernel size sweep', settings, table, figures,
    notes: [`Best: ${best.kernelSize}x${best.kernelSize} at ${percent(best.testAccuracy)}.`],
    data: { rows },
  });
  return { outDir: base.outDir, settings, rows, table, files: { ...files, chart, mosaics } };
}
