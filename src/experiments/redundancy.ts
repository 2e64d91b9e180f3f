// Which filters of a conv layer learned (nearly) the same pattern: pairwise cosine similarity of the
// zero-mean filters, and groups of filters linked by a similarity above a threshold. The command
// form (redundancyReport) loads a checkpoint and draws the similarity matrix and the groups.
import * as path from 'path';
import { writeFileAtomic } from '../util/fs-atomic';
import { checkFiniteValues, checkHostTensor } from '../core/host-tensor';
import { loadModel } from '../train/checkpoint';
import { checkBoolean, checkKnownKeys, checkNumber, checkObject, checkString } from '../util/validate';
import { layerWeights } from './training';

/** Options of {@link findRedundantFilters}. @example const o: RedundancyOptions = { threshold: 0.8, signInvariant: true }; */
export interface RedundancyOptions {
  /** Filters whose similarity is at least this are linked (default 0.9); in (0, 1]. */
  threshold?: number;
  /** Compare |cos|: a filter and its negation count as the same pattern (default false). */
  signInvariant?: boolean;
}

/** A linked pair of filters, `a < b`. @example result.pairs[0] // { a: 3, b: 17, similarity: 0.97 } */
export interface SimilarPair {
  a: number;
  b: number;
  similarity: number;
}

/** What {@link findRedundantFilters} finds. @example const { similarity, groups, constant } = findRedundantFilters(w); */
export interface RedundancyResult {
  /** similarity[i][j]: cosine (|cosine| when signInvariant) of zero-mean filters i and j; 1 on the diagonal. */
  similarity: number[][];
  /** Connected components of the linked filters, each sorted, only those of 2 or more filters, ordered by first filter. */
  groups: number[][];
  /** Every linked pair, most similar first. */
  pairs: SimilarPair[];
  /** Filters with (numerically) zero variance: no pattern, similarity 0 to every other filter. */
  constant: number[];
}

/**
 * A filter whose centred norm is below this fraction of its raw norm is constant at float32
 * precision (~1e-7 relative); its direction after removing the mean is rounding noise.
 */
const CONSTANT_RELATIVE_NORM = 1e-6;

/** Each filter flattened over all its input channels, mean removed, scaled to unit length (null when constant). */
function unitCentredFilters(data: Float32Array, count: number): (Float64Array | null)[] {
  const size = data.length / count;
  const out: (Float64Array | null)[] = [];
  for (let f = 0; f < count; f++) {
    const v = new Float64Array(size);
    let mean = 0;
    let raw = 0;
    for (let i = 0; i < size; i++) {
      v[i] = data[f * size + i];
      mean += v[i];
      raw += v[i] * v[i];
    }
    mean /= size;
    let norm = 0;
    for (let i = 0; i < size; i++) {
      v[i] -= mean;
      norm += v[i] * v[i];
    }
    norm = Math.sqrt(norm);
    if (norm === 0 || norm <= CONSTANT_RELATIVE_NORM * Math.sqrt(raw)) {
      out.push(null);
      continue;
    }
    for (let i = 0; i < size; i++) v[i] /= norm;
    out.push(v);
  }
  return out;
}

function dot(a: Float64Array, b: Float64Array): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] * b[i];
  // Rounding can carry a unit vector's self-product a hair past 1.
  return Math.max(-1, Math.min(1, s));
}

/** Connected components (union-find) of the graph whose edges are `pairs`. */
function components(count: number, pairs: SimilarPair[]): number[][] {
  const parent = Array.from({ length: count }, (_, i) => i);
  const find = (i: number): number => {
    while (parent[i] !== i) {
      parent[i] = parent[parent[i]];
      i = parent[i];
    }
    return i;
  };
  for (const { a, b } of pairs) parent[find(a)] = find(b);
  const byRoot = new Map<number, number[]>();
  for (let i = 0; i < count; i++) {
    const root = find(i);
    byRoot.set(root, [...(byRoot.get(root) ?? []), i]);
  }
  return [...byRoot.values()].filter((g) => g.length >= 2).sort((g, h) => g[0] - h[0]);
}

/**
 * Cosine similarity between every pair of filters of a conv layer and the groups of near-duplicates.
 *
 * Each filter is flattened across all its input channels (`in * kh * kw` values) and its mean is
 * subtracted first, so two filters that differ only by a constant offset (a brightness bias) count
 * as the same pattern. With `signInvariant` the similarity is |cos|: `w` and `-w` detect the same
 * edge with opposite polarity. Groups are the connected components of the graph linking filters
 * with similarity >= threshold, so a group may contain two filters that are only linked through a
 * third.
 *
 * A constant (zero-variance) filter has no direction once its mean is removed: its similarity to
 * every other filter is 0 (never NaN), 1 to itself, it is listed in `constant` and joins no group
 * (two constant filters are not grouped either: they carry no pattern to share).
 *
 * @param weights - a conv layer's weights, `shape = [out, in, kh, kw]`
 * @example
 * const conv1 = model.parameters().find((p) => p.name === 'conv1.weight')!;
 * const { groups, pairs } = findRedundantFilters({ data: conv1.values, shape: conv1.shape }, { threshold: 0.9 });
 * // groups: [[3, 17], [5, 9, 22]]; pairs[0]: { a: 3, b: 17, similarity: 0.97 }
 */
export function findRedundantFilters(weights: { data: Float32Array; shape: number[] }, options: RedundancyOptions = {}): RedundancyResult {
  const w = checkHostTensor(weights, 'weights', ['out_channels', 'in_channels', 'kh', 'kw']);
  checkFiniteValues(w, 'weights');
  const o = checkObject(options, 'options');
  checkKnownKeys(o, 'findRedundantFilters options', ['threshold', 'signInvariant']);
  const threshold = checkNumber(o.threshold ?? 0.9, 'threshold', 0, 1, { exclusiveMin: true });
  const signInvariant = checkBoolean(o.signInvariant ?? false, 'signInvariant');

  const count = w.shape[0];
  const units = unitCentredFilters(w.data, count);
  const similarity = Array.from({ length: count }, () => new Array<number>(count).fill(0));
  const pairs: SimilarPair[] = [];
  for (let a = 0; a < count; a++) {
    similarity[a][a] = 1;
    for (let b = a + 1; b < count; b++) {
      const ua = units[a];
      const ub = units[b];
      let s = ua && ub ? dot(ua, ub) : 0;
      if (signInvariant) s = Math.abs(s);
      similarity[a][b] = similarity[b][a] = s;
      if (ua && ub && s >= threshold) pairs.push({ a, b, similarity: s });
    }
  }
  pairs.sort((p, q) => q.similarity - p.similarity || p.a - q.a || p.b - q.b);
  const constant = units.flatMap((u, i) => (u ? [] : [i]));
  return { similarity, groups: components(count, pairs), pairs, constant };
}

/** Options of {@link redundancyReport} (`convscope redundancy`). @example const o: RedundancyReportOptions = { layer: 'conv2', threshold: 0.8, outDir: 'redundancy' }; */
export interface RedundancyReportOptions extends RedundancyOptions {
  /** Conv layer to analyse (default 'conv1'). */
  layer?: string;
  /** Folder for the pictures and groups.json (default 'redundancy'). */
  outDir?: string;
}

/** What {@link redundancyReport} found and wrote. @example redundancyReport('model.pt').files.mosaic // 'redundancy/redundant-filters.png' */
export interface RedundancyReport extends RedundancyResult {
  checkpoint: string;
  layer: string;
  threshold: number;
  signInvariant: boolean;
  outDir: string;
  files: { similarity: string; groups: string; mosaic: string };
}

/** File names `convscope redundancy` writes. @example path.join(outDir, REDUNDANCY_FILES.groups) */
export const REDUNDANCY_FILES = { similarity: 'similarity.png', groups: 'groups.json', mosaic: 'redundant-filters.png' } as const;

/** Frame colour of group i: tab10 first (matches the charts), then well-spread hues for layers with many groups. @example groupColor(0) // '#d62728' */
export function groupColor(i: number): string {
  const tab10 = ['#d62728', '#1f77b4', '#2ca02c', '#ff7f0e', '#9467bd', '#8c564b', '#e377c2', '#7f7f7f', '#bcbd22', '#17becf'];
  return i < tab10.length ? tab10[i] : `hsl(${Math.round((i * 137.5) % 360)}, 80%, 45%)`;
}

/**
 * One tile per filter for the mosaic: a first-layer filter as it is; for a deeper layer the mean
 * over its input channels. That mean is only a summary (channels of opposite sign cancel): the
 * similarity itself is always computed on the full filter. A mosaic keeps one tile per filter,
 * which is what lets each group be framed; renderLayerGrid would need a row of frames per filter.
 * @example renderFilterMosaic(channelMeanFilters(conv2Weights)) // 64 tiles of 5x5
 */
export function channelMeanFilters(weights: { data: Float32Array; shape: number[] }): { data: Float32Array; shape: number[] } {
  const [out, inCh, kh, kw] = weights.shape;
  if (inCh === 1) return weights;
  const size = kh * kw;
  const data = new Float32Array(out * size);
  for (let f = 0; f < out; f++) {
    for (let c = 0; c < inCh; c++) {
      const base = (f * inCh + c) * size;
      for (let i = 0; i < size; i++) data[f * size + i] += weights.data[base + i] / inCh;
    }
  }
  return { data, shape: [out, 1, kh, kw] };
}

/**
 * Loads a checkpoint and writes, for one conv layer: the similarity matrix as a heatmap
 * (similarity.png), the groups and pairs (groups.json), and a mosaic of the filters with each
 * redundant group framed in its own colour (redundant-filters.png; for layers after the first, the
 * tiles show each filter's mean over its input channels).
 * @example
 * const report = redundancyReport('runs/x/model.pt', { layer: 'conv1', threshold: 0.9, outDir: 'redundancy' });
 * report.groups; // [[3, 17]]
 */
export function redundancyReport(checkpoint: string, options: RedundancyReportOptions = {}): RedundancyReport {
  checkString(checkpoint, 'checkpoint');
  const o = checkObject(options, 'options');
  checkKnownKeys(o, 'redundancy options', ['layer', 'threshold', 'signInvariant', 'outDir']);
  const layer = checkString(o.layer ?? 'conv1', 'layer');
  const outDir = checkString(o.outDir ?? 'redundancy', 'outDir');
  const threshold = checkNumber(o.threshold ?? 0.9, 'threshold', 0, 1, { exclusiveMin: true });
  const signInvariant = checkBoolean(o.signInvariant ?? false, 'signInvariant');
  const model = loadModel(checkpoint);
  let weights;
  try {
    weights = layerWeights(model, layer);
  } finally {
    model.dispose();
  }
  const found = findRedundantFilters(weights, { threshold, signInvariant });
  const { renderHeatmap } = require('../viz/heatmap') as typeof import('../viz/heatmap');
  const { renderFilterMosaic } = require('../viz/mosaic') as typeof import('../viz/mosaic');
  const files = {
    similarity: path.join(outDir, REDUNDANCY_FILES.similarity),
    groups: path.join(outDir, REDUNDANCY_FILES.groups),
    mosaic: path.join(outDir, REDUNDANCY_FILES.mosaic),
  };
  const count = weights.shape[0];
  const labels = Array.from({ length: count }, (_, i) => String(i));
  writeFileAtomic(files.similarity, renderHeatmap(found.similarity, {
    labels, colormap: signInvariant ? 'viridis' : 'RdBu', min: signInvariant ? 0 : -1, max: 1,
    title: `${layer}: ${signInvariant ? '|cosine|' : 'cosine'} similarity of zero-mean filters`,
  }));
  const tiles = channelMeanFilters(weights);
  writeFileAtomic(files.mosaic, renderFilterMosaic(tiles, {
    colormap: 'RdBu', normalize: 'global', labels: true, gutter: 4,
    title: `${layer}${weights.shape[1] > 1 ? ' (mean over input channels)' : ''}: ${found.groups.length} group(s) at >= ${threshold}`,
    highlight: found.groups.map((g, i) => ({ tiles: g, color: groupColor(i) })),
  }));
  const record = {
    checkpoint, layer, threshold, signInvariant, filters: count, shape: weights.shape,
    groups: found.groups.map((g, i) => ({ filters: g, color: groupColor(i) })),
    pairs: found.pairs, constant: found.constant,
  };
  writeFileAtomic(files.groups, JSON.stringify(record, null, 2) + '\n');
  return { ...found, checkpoint, layer, threshold, signInvariant, outDir, files };
}
