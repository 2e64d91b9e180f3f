// What L1 and L2 penalties do to the first-layer filters: the same network trained without a
// penalty, with L2 (weight decay) and with L1, compared on accuracy and on how sparse and how
// smooth the filters became, with each run's filters drawn the same way.
import * as path from 'path';
import { writeFileAtomic } from '../util/fs-atomic';
import type { CnnModel } from '../nn/model';
import { trainCnn } from '../train/train-cnn';
import { checkNumber } from '../util/validate';
import { percent } from './markdown';
import { type ExperimentOptions, resolveExperiment } from './options';
import { type Figure, type ResultsTable, settingsRecord } from './results';
import { layerWeights, secondsPerEpoch, trainingLine, trainOptions, warmUp } from './training';
import { writeResults } from './write-results';

/** Options of {@link compareRegularization}. @example const o: RegularizationOptions = { l1: 1e-3, l2: 5e-2, limit: 20000 }; */
export interface RegularizationOptions extends ExperimentOptions {
  /** L1 penalty: l1 * sum|w| over all weights is added to the loss (default 1e-4). */
  l1?: number;
  /** L2 penalty, applied by Adam as weight decay (default 1e-3). */
  l2?: number;
  /** A weight counts as near zero when |w| < zeroThreshold * max|w| of its layer (default 0.01). */
  zeroThreshold?: number;
}

/** Sparsity and smoothness of one trained network's weights. @example row.stats // { conv1MaxAbs: 0.25, conv1NearZero: 0.01, conv1TotalVariation: 2.04, ... } */
export interface FilterStatistics {
  /** Largest |w| of conv1. */
  conv1MaxAbs: number;
  /** Mean |w| of conv1. */
  conv1MeanAbs: number;
  /** Fraction of conv1 weights with |w| < zeroThreshold * max|w| of conv1. */
  conv1NearZero: number;
  /** The same over every weight matrix of the network (each against its own layer's max|w|). */
  allNearZero: number;
  /**
   * Mean over conv1 filters of the filter's total variation divided by its L1 norm:
   * TV(w) = sum |w[i][j+1] - w[i][j]| + sum |w[i+1][j] - w[i][j]| (over every input channel),
   * normalised as TV(w) / sum |w|. Scale-free: 0 for a constant filter, about 4 for a
   * pixel checkerboard; lower means smoother. Filters that are all zero are left out.
   */
  conv1TotalVariation: number;
}

/** One of the three trainings. @example rows[1] // { penalty: 'L2', strength: 0.05, testAccuracy: 0.75, stats: {...}, mosaic: 'conv1-l2.png' } */
export interface RegularizationRow {
  penalty: 'none' | 'L2' | 'L1';
  /** The penalty's coefficient (0 for 'none'). */
  strength: number;
  testAccuracy: number;
  testLoss: number;
  secondsPerEpoch: number;
  stats: FilterStatistics;
  /** The run's conv1 mosaic, relative to outDir. */
  mosaic: string;
}

/** What {@link compareRegularization} measured and where it wrote it. @example (await compareRegularization()).files.mosaics // [.../conv1-none.png, ...] */
export interface RegularizationResult {
  outDir: string;
  settings: Record<string, unknown>;
  rows: RegularizationRow[];
  table: ResultsTable;
  files: { settings: string; results: string; markdown: string; mosaics: string[]; histogram: string };
}

const HISTOGRAM_FILE = 'conv1-weight-histogram.png';

function nearZeroCount(values: Float32Array, relative: number): { near: number; maxAbs: number } {
  let maxAbs = 0;
  for (const v of values) maxAbs = Math.max(maxAbs, Math.abs(v));
  const limit = relative * maxAbs;
  let near = 0;
  for (const v of values) if (Math.abs(v) < limit || maxAbs === 0) near++;
  return { near, maxAbs };
}

/**
 * Mean normalised total variation of a layer's filters (see {@link FilterStatistics.conv1TotalVariation}).
 * @example filterTotalVariation({ data: new Float32Array([1, -1, -1, 1]), shape: [1, 1, 2, 2] }) // 2
 */
export function filterTotalVariation(weights: { data: Float32Array; shape: number[] }): number {
  const [out, inCh, kh, kw] = weights.shape;
  let sum = 0;
  let counted = 0;
  for (let f = 0; f < out; f++) {
    let tv = 0;
    let l1 = 0;
    for (let c = 0; c < inCh; c++) {
      const base = (f * inCh + c) * kh * kw;
      for (let i = 0; i < kh; i++) {
        for (let j = 0; j < kw; j++) {
          const v = weights.data[base + i * kw + j];
          l1 += Math.abs(v);
          if (j + 1 < kw) tv += Math.abs(weights.data[base + i * kw + j + 1] - v);
          if (i + 1 < kh) tv += Math.abs(weights.data[base + (i + 1) * kw + j] - v);
        }
      }
    }
    if (l1 > 0) {
      sum += tv / l1;
      counted++;
    }
  }
  return counted === 0 ? 0 : sum / counted;
}

/** Sparsity and smoothness of a model's weights; `zeroThreshold` is relative to each layer's max|w|. @example filterStatistics(model, 0.01).conv1NearZero // 0.02 */
export function filterStatistics(model: CnnModel, zeroThreshold: number): FilterStatistics {
  const conv1 = layerWeights(model, 'conv1');
  const c1 = nearZeroCount(conv1.data, zeroThreshold);
  let near = 0;
  let total = 0;
  for (const p of model.parameters()) {
    if (!p.name.endsWith('.weight')) continue;
    near += nearZeroCount(p.values, zeroThreshold).near;
    total += p.values.length;
  }
  const meanAbs = conv1.data.reduce((s, v) => s + Math.abs(v), 0) / conv1.data.length;
  return {
    conv1MaxAbs: c1.maxAbs, conv1MeanAbs: meanAbs, conv1NearZero: c1.near / conv1.data.length, allNearZero: near / total,
    conv1TotalVariation: filterTotalVariation(conv1),
  };
}

/** Histogram of weights as chart points: fraction of weights per bin, bins over [-range, range]. */
function histogram(values: Float32Array, range: number, bins: number): { x: number; y: number }[] {
  const counts = new Array<number>(bins).fill(0);
  for (const v of values) counts[Math.min(bins - 1, Math.max(0, Math.floor(((v + range) / (2 * range)) * bins)))]++;
  return counts.map((c, i) => ({ x: -range + (i + 0.5) * ((2 * range) / bins), y: c / values.length }));
}

/** The table shown in results.md, printed by the CLI and embedded in the report. @example regularizationTable(rows, 0.01).rows[1][0] // 'L2' */
export function regularizationTable(rows: RegularizationRow[], zeroThreshold: number): ResultsTable {
  return {
    headers: ['penalty', 'strength', 'test accuracy', 'test loss', 'conv1 max abs(w)', 'conv1 mean abs(w)', `conv1 near zero (<${zeroThreshold} max)`,
      'all weights near zero', 'conv1 TV / L1 (smoothness, lower = smoother)', 'seconds/epoch'],
    rows: rows.map((r) => [r.penalty, String(r.strength), percent(r.testAccuracy), r.testLoss.toFixed(4), r.stats.conv1MaxAbs.toFixed(4),
      r.stats.conv1MeanAbs.toFixed(4), percent(r.stats.conv1NearZero), percent(r.stats.allNearZero), r.stats.conv1TotalVariation.toFixed(3),
      r.secondsPerEpoch.toFixed(2)]),
  };
}

/**
 * Trains the network three times with the same data, seed and budget: without penalty, with L2
 * (`weightDecay: l2`) and with L1 (`l1`), and writes each run's conv1 mosaic (`conv1-none.png`,
 * `conv1-l2.png`, `conv1-l1.png`, each with its own colour range and a colour bar showing it), a
 * histogram of the conv1 weights of all three, settings.json, results.json and results.md (whose
 * figure table puts the three mosaics side by side).
 * @example
 * const { rows } = await compareRegularization({ l1: 1e-4, l2: 1e-3, limit: 10000, outDir: 'experiments/regularization' });
 * rows.map((r) => [r.penalty, r.testAccuracy, r.stats.conv1NearZero]);
 */
export async function compareRegularization(options: RegularizationOptions = {}): Promise<RegularizationResult> {
  const { base, raw } = resolveExperiment('regularization', options, ['l1', 'l2', 'zeroThreshold']);
  const l1 = checkNumber(raw.l1 ?? 1e-4, 'l1', 0, Infinity, { exclusiveMin: true });
  const l2 = checkNumber(raw.l2 ?? 1e-3, 'l2', 0, Infinity, { exclusiveMin: true });
  const zeroThreshold = checkNumber(raw.zeroThreshold ?? 0.01, 'zeroThreshold', 0, 1, { exclusiveMin: true });
  const { renderFilterMosaic } = require('../viz/mosaic') as typeof import('../viz/mosaic');
  const runs = [
    { penalty: 'none' as const, strength: 0, overrides: {}, mosaic: 'conv1-none.png' },
    { penalty: 'L2' as const, strength: l2, overrides: { weightDecay: l2 }, mosaic: 'conv1-l2.png' },
    { penalty: 'L1' as const, strength: l1, overrides: { l1 }, mosaic: 'conv1-l1.png' },
  ];
  const rows: RegularizationRow[] = [];
  const conv1Values: Float32Array[] = [];
  await warmUp(base);
  for (const run of runs) {
    const result = await trainCnn(trainOptions(base, run.overrides));
    try {
      const weights = layerWeights(result.model, 'conv1');
      conv1Values.push(weights.data);
      writeFileAtomic(path.join(base.outDir, run.mosaic), renderFilterMosaic(weights, {
        colormap: 'RdBu', normalize: 'global', labels: true, colorbar: true,
        title: `conv1, ${run.penalty === 'none' ? 'no penalty' : `${run.penalty} ${run.strength}`}: ${percent(result.testAccuracy)}`,
      }));
      rows.push({
        penalty: run.penalty, strength: run.strength, testAccuracy: result.testAccuracy, testLoss: result.testLoss,
        secondsPerEpoch: secondsPerEpoch(result), stats: filterStatistics(result.model, zeroThreshold), mosaic: run.mosaic,
      });
      base.log(trainingLine(`penalty ${run.penalty}`, result));
    } finally {
      result.model.dispose();
    }
  }
  const { renderLineChart } = require('../viz/charts') as typeof import('../viz/charts');
  const range = Math.max(...rows.map((r) => r.stats.conv1MaxAbs)) || 1;
  const histogramFile = path.join(base.outDir, HISTOGRAM_FILE);
  writeFileAtomic(histogramFile, await renderLineChart({
    title: 'conv1 weight distribution', xLabel: 'weight value', yLabel: 'fraction of conv1 weights',
    series: rows.map((r, i) => ({ label: r.penalty === 'none' ? 'no penalty' : `${r.penalty} ${r.strength}`, points: histogram(conv1Values[i], range, 41) })),
  }));

  const settings = settingsRecord(base, { l1, l2, zeroThreshold });
  const table = regularizationTable(rows, zeroThreshold);
  const figures: Figure[] = [
    ...rows.map((r) => ({
      file: r.mosaic, group: 'conv1 mosaics side by side',
      caption: `conv1 filters, ${r.penalty === 'none' ? 'no penalty' : `${r.penalty} ${r.strength}`} (${percent(r.testAccuracy)})`,
    })),
    { file: HISTOGRAM_FILE, caption: 'Distribution of the conv1 weights under each penalty' },
  ];
  const files = writeResults(base.outDir, {
    experiment: 'regularization', title: 'L1 and L2 penalties and the first-layer filters', settings, table, figures,
    notes: [
      `Near zero: |w| < ${zeroThreshold} x the layer's max|w|. Smoothness: each filter's total variation (sum of absolute differences ` +
        'between horizontally and vertically adjacent weights) divided by its L1 norm, averaged over filters; lower is smoother.',
    ],
    data: { rows },
  });
  return { outDir: base.outDir, settings, rows, table, files: { ...files, mosaics: runs.map((r) => path.join(base.outDir, r.mosaic)), histogram: histogramFile } };
}
