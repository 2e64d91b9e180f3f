// How few first-layer filters does the network need? Two answers side by side: (a) prune a trained
// network down to its k most distinct first-layer filters (measured at once, then after a short
// fine-tune), and (b) train networks with n first-layer filters from scratch.
import * as path from 'path';
import { writeFileAtomic } from '../util/fs-atomic';
import { CnnModel, modelFromParameters, ParameterInfo } from '../nn/model';
import { CnnSpec, countParameters, planModel } from '../nn/spec';
import { loadModel } from '../train/checkpoint';
import { evaluate } from '../train/evaluate';
import { trainCnn, TrainResult } from '../train/train-cnn';
import { checkInteger, checkNumber, checkString, expected } from '../util/validate';
import { percent } from './markdown';
import { checkCountList, type ExperimentOptions, resolveExperiment, type ResolvedExperiment } from './options';
import { type Figure, type ResultsTable, settingsRecord } from './results';
import { layerWeights, secondsPerEpoch, testImages, trainingLine, trainOptions, warmUp, withFirstLayer } from './training';
import { writeResults } from './write-results';
import { findRedundantFilters } from './redundancy';

/** Options of {@link fewerFilters}. @example const o: FewerFiltersOptions = { counts: [2, 4, 8], fineTuneEpochs: 1, limit: 10000 }; */
export interface FewerFiltersOptions extends ExperimentOptions {
  /** First-layer filter counts trained from scratch (default [2, 4, 8, 16, 32]). */
  counts?: number[];
  /** How many filters the pruned networks keep (default: the counts below the trained network's). */
  keep?: number[];
  /** Epochs of fine-tuning after pruning (default 1; 0 measures the pruned network only). */
  fineTuneEpochs?: number;
  /** A trained model to prune (a run's model.pt); default: train the network first with the same budget. */
  checkpoint?: string;
  /** "Similar accuracy" means within this much of the full network (default 0.01: one percentage point). */
  tolerance?: number;
}

/** One pruned network. @example r.pruned[0] // { keep: 2, kept: [4, 19], prunedAccuracy: 0.31, fineTunedAccuracy: 0.80, ... } */
export interface PrunedRow {
  keep: number;
  /** Indices of the kept first-layer filters in the trained network. */
  kept: number[];
  parameters: number;
  /** Test accuracy right after pruning, before any further training. */
  prunedAccuracy: number;
  /** Test accuracy after fineTuneEpochs of training (absent when fineTuneEpochs is 0). */
  fineTunedAccuracy?: number;
  /** Picture of the trained network's conv1 with the kept filters framed, relative to outDir. */
  mosaic: string;
}

/** One network trained from scratch. @example r.scratch[0] // { filters: 2, parameters: 3225854, testAccuracy: 0.79, secondsPerEpoch: 4.2 } */
export interface ScratchRow {
  filters: number;
  parameters: number;
  testAccuracy: number;
  secondsPerEpoch: number;
}

/** What {@link fewerFilters} measured and where it wrote it. @example const { answer } = await fewerFilters(); answer.scratch; // 8 */
export interface FewerFiltersResult {
  outDir: string;
  settings: Record<string, unknown>;
  /** The trained network that was pruned. */
  full: { filters: number; testAccuracy: number; parameters: number; source: string };
  pruned: PrunedRow[];
  scratch: ScratchRow[];
  /** Fewest filters within `tolerance` of the full network's accuracy (undefined: none reached it). */
  answer: { tolerance: number; scratch?: number; pruned?: number; fineTuned?: number };
  /** The answer in words, as results.md states it. */
  notes: string[];
  table: ResultsTable;
  files: { settings: string; results: string; markdown: string; chart: string };
}

/** First-layer filter counts tried by default. @example fewerFilters({ counts: DEFAULT_FILTER_COUNTS.slice(0, 3) }) */
export const DEFAULT_FILTER_COUNTS = [2, 4, 8, 16, 32];
const CHART_FILE = 'accuracy-vs-filters.png';
const BASE_MOSAIC = 'conv1-full.png';

/**
 * Chooses `k` of a layer's filters that are as different from each other as possible, greedily:
 * while more than `k` remain, take the most similar remaining pair (cosine of the zero-mean
 * filters, see findRedundantFilters) and drop the one of the two whose mean similarity to the other
 * remaining filters is higher (the more redundant one; on a tie, the higher index). The sign
 * matters here: after a ReLU, `w` and `-w` respond to opposite edges, so both are kept.
 * @returns the kept filter indices, ascending
 * @example selectDistinctFilters(conv1Weights, 8) // [0, 3, 7, 12, 15, 21, 26, 30]
 */
export function selectDistinctFilters(weights: { data: Float32Array; shape: number[] }, k: number): number[] {
  const count = weights.shape[0];
  checkInteger(k, 'k', 1, count);
  const { similarity } = findRedundantFilters(weights, { threshold: 1 });
  const remaining = new Set(Array.from({ length: count }, (_, i) => i));
  const meanSimilarity = (i: number): number => {
    let sum = 0;
    for (const j of remaining) if (j !== i) sum += similarity[i][j];
    return sum / Math.max(remaining.size - 1, 1);
  };
  while (remaining.size > k) {
    let best: [number, number] | undefined;
    let bestSimilarity = -Infinity;
    for (const a of remaining) {
      for (const b of remaining) {
        if (b > a && similarity[a][b] > bestSimilarity) {
          bestSimilarity = similarity[a][b];
          best = [a, b];
        }
      }
    }
    const [a, b] = best!;
    remaining.delete(meanSimilarity(a) > meanSimilarity(b) ? a : b);
  }
  return [...remaining].sort((x, y) => x - y);
}

/** Rows `keep` of a [rows, ...rest] tensor. */
function takeRows(p: ParameterInfo, keep: number[]): ParameterInfo {
  const size = p.values.length / p.shape[0];
  const values = new Float32Array(keep.length * size);
  keep.forEach((r, i) => values.set(p.values.subarray(r * size, (r + 1) * size), i * size));
  return { name: p.name, shape: [keep.length, ...p.shape.slice(1)], values };
}

/** Input channels (dimension 1) `keep` of a [out, channels, ...] tensor; `inner` values per channel. */
function takeChannels(p: ParameterInfo, keep: number[], channels: number, shape: number[]): ParameterInfo {
  const out = p.shape[0];
  const inner = p.values.length / (out * channels);
  const values = new Float32Array(out * keep.length * inner);
  for (let o = 0; o < out; o++) {
    keep.forEach((c, i) => {
      const from = (o * channels + c) * inner;
      values.set(p.values.subarray(from, from + inner), (o * keep.length + i) * inner);
    });
  }
  return { name: p.name, shape, values };
}

/**
 * A new network with only the `kept` first-layer filters: conv1's weight and bias rows (and its batch
 * normalisation's), and the matching input channels of the next layer (conv2's weight[:, kept], or, for a single conv layer,
 * fc1's columns of those channels). Every other weight is copied unchanged.
 * @example const small = pruneFirstLayer(model, [0, 3, 7]); await evaluate(small, test);
 */
export function pruneFirstLayer(model: CnnModel, kept: number[]): CnnModel {
  const plan = model.plan;
  const filters = plan.conv[0].outChannels;
  kept.forEach((f, i) => checkInteger(f, `kept[${i}]`, 0, filters - 1));
  if (kept.length === 0 || new Set(kept).size !== kept.length) throw new RangeError(expected('distinct filter indices', 'kept', kept));
  const spec = withFirstLayer(plan.spec, { filters: kept.length });
  const prunedPlan = planModel(spec);
  const next = plan.conv.length > 1 ? 'conv2.weight' : 'fc1.weight';
  // One row per filter: conv1's weight and bias, or its batch normalisation's scale, shift and statistics.
  const bn = plan.conv[0].batchNorm;
  const perFilter = new Set(['conv1.weight', 'conv1.bias', ...(bn ? ['weight', 'bias', 'running_mean', 'running_var'].map((f) => `${bn}.${f}`) : [])]);
  const edited = [...model.parameters(), ...model.buffers()].map((p) => {
    if (perFilter.has(p.name)) return takeRows(p, kept);
    if (p.name === next) {
      // fc1 after a single conv layer sees the flattened [channels, h, w] maps: a channel's block of columns.
      const shape = prunedPlan.parameters.find((q) => q.name === next)!.shape;
      return takeChannels(p, kept, filters, shape);
    }
    return p;
  });
  return modelFromParameters(spec, edited, { mode: model.mode, device: model.device, inputNorm: model.inputNorm });
}

function parameterCount(spec: CnnSpec): number {
  return countParameters(planModel(spec));
}

function fewestWithin(rows: { count: number; accuracy?: number }[], reference: number, tolerance: number): number | undefined {
  return rows.filter((r) => r.accuracy !== undefined && r.accuracy >= reference - tolerance).map((r) => r.count).sort((a, b) => a - b)[0];
}

/** The table shown in results.md, printed by the CLI and embedded in the report. @example fewerFiltersTable(result, 1).rows[0] // ['2', '3225854', '71.20%', ...] */
export function fewerFiltersTable(result: Pick<FewerFiltersResult, 'pruned' | 'scratch' | 'full'>, fineTuneEpochs: number): ResultsTable {
  const counts = [...new Set([...result.scratch.map((s) => s.filters), ...result.pruned.map((p) => p.keep)])].sort((a, b) => a - b);
  const dash = '-';
  return {
    headers: ['conv1 filters', 'parameters', 'from scratch', `pruned from ${result.full.filters}`, `pruned + ${fineTuneEpochs} epoch fine-tune`, 'seconds/epoch (scratch)'],
    rows: counts.map((n) => {
      const s = result.scratch.find((r) => r.filters === n);
      const p = result.pruned.find((r) => r.keep === n);
      return [String(n), String(s?.parameters ?? p?.parameters ?? dash), s ? percent(s.testAccuracy) : dash, p ? percent(p.prunedAccuracy) : dash,
        p?.fineTunedAccuracy !== undefined ? percent(p.fineTunedAccuracy) : dash, s ? s.secondsPerEpoch.toFixed(2) : dash];
    }),
  };
}

/**
 * Answers "how few first-layer filters reach a similar accuracy?" two ways and writes the table
 * (results.md/json), an accuracy-vs-filters chart, the full network's conv1 mosaic and, per pruned
 * size, that mosaic with the kept filters framed (`kept-k<k>.png`).
 *
 * (a) Pruning: the full network (trained first with the same budget, or `checkpoint`) keeps its k
 * most distinct first-layer filters (see selectDistinctFilters), is evaluated at once, then
 * fine-tuned for `fineTuneEpochs` on the same training images. (b) From scratch: the same network
 * with n first-layer filters, trained with the same budget and seed. When the full network was
 * trained here, its own result is reused for the from-scratch row of its filter count (same seed,
 * same data: the training would be identical).
 * @example
 * const r = await fewerFilters({ counts: [2, 4, 8, 16, 32], limit: 10000, outDir: 'experiments/fewer-filters' });
 * r.answer; // { tolerance: 0.01, scratch: 8, fineTuned: 4 }
 */
/** The fewer-filters options after checking. */
interface FewerFiltersPlan {
  counts: number[];
  keepRequested?: number[];
  fineTuneEpochs: number;
  tolerance: number;
  checkpoint?: string;
}

function resolveFewerFilters(raw: Record<string, unknown>): FewerFiltersPlan {
  return {
    counts: checkCountList(raw.counts ?? DEFAULT_FILTER_COUNTS, 'counts', 4096),
    fineTuneEpochs: checkInteger(raw.fineTuneEpochs ?? 1, 'fineTuneEpochs', 0, 100000),
    tolerance: checkNumber(raw.tolerance ?? 0.01, 'tolerance', 0, 1),
    checkpoint: raw.checkpoint === undefined ? undefined : checkString(raw.checkpoint, 'checkpoint'),
    keepRequested: raw.keep === undefined ? undefined : checkCountList(raw.keep, 'keep', 4096),
  };
}

/** The full network: loaded from the checkpoint, or trained with the experiment's budget (its result kept for reuse). */
async function fullNetwork(base: ResolvedExperiment, checkpoint: string | undefined): Promise<{ full: CnnModel; fullResult?: TrainResult }> {
  if (checkpoint) return { full: loadModel(checkpoint, { mode: base.mode }) };
  const fullResult = await trainCnn(trainOptions(base));
  base.log(trainingLine(`full network (${fullResult.model.plan.conv[0].outChannels} filters)`, fullResult));
  return { full: fullResult.model, fullResult };
}

/** The pruned sizes: those asked for, else the counts below the full network's; none may exceed it. */
function keptSizes(plan: FewerFiltersPlan, fullFilters: number): number[] {
  const keep = plan.keepRequested ?? plan.counts.filter((n) => n < fullFilters);
  keep.forEach((k, i) => {
    if (k > fullFilters) throw new RangeError(expected(`at most the ${fullFilters} filters of the trained network`, `keep[${i}]`, k));
  });
  return keep;
}

/** (a) The full network's mosaic, then per size k: its k most distinct filters kept, evaluated, fine-tuned. */
async function pruneAndFineTune(base: ResolvedExperiment, full: CnnModel, fullAccuracy: number, keep: number[], fineTuneEpochs: number): Promise<PrunedRow[]> {
  const { renderFilterMosaic } = require('../viz/mosaic') as typeof import('../viz/mosaic');
  const test = testImages(base);
  const fullFilters = full.plan.conv[0].outChannels;
  const conv1 = layerWeights(full, 'conv1');
  writeFileAtomic(path.join(base.outDir, BASE_MOSAIC), renderFilterMosaic(conv1, {
    colormap: 'RdBu', normalize: 'global', labels: true, colorbar: true, title: `conv1, ${fullFilters} filters: ${percent(fullAccuracy)}`,
  }));
  const pruned: PrunedRow[] = [];
  for (const k of keep) {
    const kept = selectDistinctFilters(conv1, k);
    const mosaic = `kept-k${k}.png`;
    writeFileAtomic(path.join(base.outDir, mosaic), renderFilterMosaic(conv1, {
      colormap: 'RdBu', normalize: 'global', labels: true, gutter: 4, title: `the ${k} most distinct filters (framed)`,
      highlight: [{ tiles: kept, color: '#2ca02c' }],
    }));
    const model = pruneFirstLayer(full, kept);
    try {
      const row: PrunedRow = { keep: k, kept, parameters: countParameters(model.plan), prunedAccuracy: (await evaluate(model, test)).accuracy, mosaic };
      if (fineTuneEpochs > 0) {
        const tuned = await trainCnn(trainOptions(base, { spec: model.spec, initialModel: model, epochs: fineTuneEpochs }));
        row.fineTunedAccuracy = tuned.testAccuracy;
        tuned.model.dispose();
      }
      pruned.push(row);
      base.log(`pruned to ${k}: ${percent(row.prunedAccuracy)} at once` + (row.fineTunedAccuracy !== undefined ? `, ${percent(row.fineTunedAccuracy)} after fine-tuning` : ''));
    } finally {
      model.dispose();
    }
  }
  return pruned;
}

/** (b) The same network with n first-layer filters, trained from scratch (the full network's own result reused for its count). */
async function trainFromScratch(base: ResolvedExperiment, spec: CnnSpec, counts: number[], fullFilters: number, fullResult: TrainResult | undefined): Promise<ScratchRow[]> {
  const scratch: ScratchRow[] = [];
  for (const n of counts) {
    const nSpec = withFirstLayer(spec, { filters: n });
    if (fullResult && n === fullFilters) {
      scratch.push({ filters: n, parameters: parameterCount(nSpec), testAccuracy: fullResult.testAccuracy, secondsPerEpoch: secondsPerEpoch(fullResult) });
      continue;
    }
    const result = await trainCnn(trainOptions(base, { spec: nSpec }));
    scratch.push({ filters: n, parameters: parameterCount(nSpec), testAccuracy: result.testAccuracy, secondsPerEpoch: secondsPerEpoch(result) });
    base.log(trainingLine(`from scratch, ${n} filters`, result));
    result.model.dispose();
  }
  return scratch;
}

/** Accuracy against the number of first-layer filters, each way, with the full network as a line. */
async function writeFewerFiltersChart(file: string, rows: { pruned: PrunedRow[]; scratch: ScratchRow[]; full: FewerFiltersResult['full'] }, xs: number[], fineTuneEpochs: number): Promise<void> {
  const { renderLineChart } = require('../viz/charts') as typeof import('../viz/charts');
  const { pruned, scratch, full } = rows;
  const series = [
    { label: 'from scratch', points: scratch.map((s) => ({ x: s.filters, y: s.testAccuracy })) },
    { label: 'pruned, no fine-tune', points: pruned.map((p) => ({ x: p.keep, y: p.prunedAccuracy })) },
    ...(fineTuneEpochs > 0 ? [{ label: `pruned + ${fineTuneEpochs} epoch fine-tune`, points: pruned.map((p) => ({ x: p.keep, y: p.fineTunedAccuracy! })) }] : []),
    { label: `full network (${full.filters} filters)`, points: [Math.min(...xs), Math.max(...xs)].map((x) => ({ x, y: full.testAccuracy })) },
  ].filter((s) => s.points.length > 0);
  writeFileAtomic(file, await renderLineChart({
    title: 'test accuracy vs number of first-layer filters', xLabel: 'conv1 filters (log scale)', yLabel: 'test accuracy', logX: true, series,
  }));
}

/** The sentences under the table: the full network, and the fewest filters within the tolerance each way. */
function fewerFiltersNotes(full: FewerFiltersResult['full'], answer: FewerFiltersResult['answer'], fineTuneEpochs: number): string[] {
  const say = (n: number | undefined, how: string) => `${how}: ${n === undefined ? 'none of those tried' : `${n}`}`;
  return [
    `Full network: ${full.filters} filters, ${percent(full.testAccuracy)} (${full.source}).`,
    `Fewest conv1 filters within ${100 * answer.tolerance} percentage point(s) of it: ${say(answer.scratch, 'from scratch')}; ${say(answer.pruned, 'pruned without fine-tuning')}` +
      (fineTuneEpochs > 0 ? `; ${say(answer.fineTuned, 'pruned and fine-tuned')}.` : '.'),
    ...(fineTuneEpochs > 0 ? [`The fine-tuned networks trained ${fineTuneEpochs} epoch(s) more than the others (the full network's training, then the fine-tune).`] : []),
  ];
}

/**
 * Answers "how few first-layer filters reach a similar accuracy?" two ways and writes the table
 * (results.md/json), an accuracy-vs-filters chart, the full network's conv1 mosaic and, per pruned
 * size, that mosaic with the kept filters framed (`kept-k<k>.png`).
 *
 * (a) Pruning: the full network (trained first with the same budget, or `checkpoint`) keeps its k
 * most distinct first-layer filters (see selectDistinctFilters), is evaluated at once, then
 * fine-tuned for `fineTuneEpochs` on the same training images. (b) From scratch: the same network
 * with n first-layer filters, trained with the same budget and seed. When the full network was
 * trained here, its own result is reused for the from-scratch row of its filter count (same seed,
 * same data: the training would be identical).
 * @example
 * const r = await fewerFilters({ counts: [2, 4, 8, 16, 32], limit: 10000, outDir: 'experiments/fewer-filters' });
 * r.answer; // { tolerance: 0.01, scratch: 8, fineTuned: 4 }
 */
export async function fewerFilters(options: FewerFiltersOptions = {}): Promise<FewerFiltersResult> {
  const { base, raw } = resolveExperiment('fewer-filters', options, ['counts', 'keep', 'fineTuneEpochs', 'checkpoint', 'tolerance']);
  const plan = resolveFewerFilters(raw);
  const { counts, fineTuneEpochs, tolerance, checkpoint } = plan;
  await warmUp(base);
  const { full, fullResult } = await fullNetwork(base, checkpoint);
  const scratchSpec = full.spec;
  const fullFilters = full.plan.conv[0].outChannels;
  let fullInfo: FewerFiltersResult['full'];
  let keep: number[];
  let pruned: PrunedRow[];
  try {
    keep = keptSizes(plan, fullFilters);
    const fullAccuracy = fullResult ? fullResult.testAccuracy : (await evaluate(full, testImages(base))).accuracy;
    fullInfo = { filters: fullFilters, testAccuracy: fullAccuracy, parameters: countParameters(full.plan), source: checkpoint ?? 'trained with these settings' };
    pruned = await pruneAndFineTune(base, full, fullAccuracy, keep, fineTuneEpochs);
  } finally {
    full.dispose();
  }
  const scratch = await trainFromScratch(base, scratchSpec, counts, fullFilters, fullResult);

  const answer: FewerFiltersResult['answer'] = {
    tolerance,
    scratch: fewestWithin(scratch.map((s) => ({ count: s.filters, accuracy: s.testAccuracy })), fullInfo.testAccuracy, tolerance),
    pruned: fewestWithin(pruned.map((p) => ({ count: p.keep, accuracy: p.prunedAccuracy })), fullInfo.testAccuracy, tolerance),
    fineTuned: fewestWithin(pruned.map((p) => ({ count: p.keep, accuracy: p.fineTunedAccuracy })), fullInfo.testAccuracy, tolerance),
  };
  const chart = path.join(base.outDir, CHART_FILE);
  await writeFewerFiltersChart(chart, { pruned, scratch, full: fullInfo }, [...counts, ...keep, fullFilters], fineTuneEpochs);
  const settings = settingsRecord(base, { counts, keep, fineTuneEpochs, checkpoint: checkpoint ?? null, tolerance, fullSpec: scratchSpec });
  const table = fewerFiltersTable({ pruned, scratch, full: fullInfo }, fineTuneEpochs);
  const notes = fewerFiltersNotes(fullInfo, answer, fineTuneEpochs);
  const figures: Figure[] = [
    { file: CHART_FILE, caption: 'Test accuracy against the number of first-layer filters' },
    { file: BASE_MOSAIC, caption: `conv1 of the full network (${fullFilters} filters)` },
    ...pruned.map((p) => ({ file: p.mosaic, group: 'filters kept by pruning (framed)', caption: `keep ${p.keep}` })),
  ];
  const files = writeResults(base.outDir, {
    experiment: 'fewer-filters', title: 'How few first-layer filters are enough?', settings, table, figures, notes,
    data: { full: fullInfo, pruned, scratch, answer },
  });
  return { outDir: base.outDir, settings, full: fullInfo, pruned, scratch, answer, notes, table, files: { ...files, chart } };
}
