// What every experiment shares: its options (data, budget, training settings, output folder), the
// one load of the dataset they all train from, the record of the settings used, and the results
// folder layout (settings.json, results.json, results.md) that `convscope report` reads back.
import * as os from 'os';
import * as path from 'path';
import { loadDataset } from '../data/datasets';
import { writeFileAtomic } from '../fs-atomic';
import { native } from '../native';
import type { CnnModel, ExecutionMode } from '../nn/model';
import { MODES } from '../nn/model';
import { CnnSpec, ConvLayerSpec, defaultSpec, planModel } from '../nn/spec';
import { LabelledImages, takeImages } from '../train/evaluate';
import { DATASETS, DatasetName, DEVICES, InMemoryDataset, TrainOptions } from '../train/options';
import type { TrainResult } from '../train/train-cnn';
import { checkInteger, checkKnownKeys, checkNumber, checkObject, checkOneOf, checkString, expected } from '../validate';

/**
 * Default budget: a few minutes per experiment on a 2-core CPU. `'all'` lifts a limit.
 * @example sweepKernelSizes({ limit: DEFAULT_LIMIT * 2 })
 */
export const DEFAULT_LIMIT = 10000;
/** Default number of test images per evaluation. @example fewerFilters({ testLimit: DEFAULT_TEST_LIMIT }) */
export const DEFAULT_TEST_LIMIT = 2000;

/**
 * Options every experiment takes. The defaults keep one experiment to a few minutes on a 2-core
 * CPU; `limit: 'all', testLimit: 'all'` (CLI `--full`) trains on all 60,000 images and tests on
 * all 10,000.
 * @example const options: ExperimentOptions = { epochs: 1, limit: 10000, testLimit: 2000, outDir: 'experiments/x' };
 */
export interface ExperimentOptions {
  /** 'fashion-mnist' (default), 'mnist', or a dataset already loaded with loadDataset(). */
  dataset?: DatasetName | InMemoryDataset;
  /** Folder holding the dataset's IDX files (see loadDataset). */
  dataDir?: string;
  /** Epochs per training (default 1). */
  epochs?: number;
  /** Training images per training (default 10,000; 'all' for the whole training set). */
  limit?: number | 'all';
  /** Test images for every evaluation (default 2,000; 'all' for the whole test set). */
  testLimit?: number | 'all';
  /** Seed of every training (default 42): runs differ only in what the experiment varies. */
  seed?: number;
  batchSize?: number;
  learningRate?: number;
  /**
   * 'script' (default: the whole epoch runs natively, several times faster on a CPU than 'eager',
   * and gives the same numbers) or 'eager'.
   */
  mode?: ExecutionMode;
  device?: (typeof DEVICES)[number];
  /** The network the experiment starts from (default: defaultSpec(), the TensorFlow-tutorial CNN). */
  spec?: CnnSpec;
  /** Folder for pictures, settings.json, results.json and results.md (default experiments/<name>). */
  outDir?: string;
  /** Receives one line per finished training (the CLI prints them to stderr). */
  log?: (line: string) => void;
}

const EXPERIMENT_KEYS = [
  'dataset', 'dataDir', 'epochs', 'limit', 'testLimit', 'seed', 'batchSize', 'learningRate', 'mode', 'device', 'spec', 'outDir', 'log',
] as const;

/** The shared options after checking, with the dataset loaded. @example const { base } = resolveExperiment('x', {}, []); base.outDir; // 'experiments/x' */
export interface ResolvedExperiment {
  name: string;
  dataset: InMemoryDataset;
  epochs: number;
  limit?: number;
  testLimit?: number;
  seed: number;
  batchSize: number;
  learningRate: number;
  mode: ExecutionMode;
  device: (typeof DEVICES)[number];
  spec: CnnSpec;
  outDir: string;
  log: (line: string) => void;
}

function checkLimit(value: unknown, name: string, fallback: number): number | undefined {
  if (value === undefined) return fallback;
  if (value === 'all') return undefined;
  if (typeof value === 'string') throw new TypeError(expected("a positive integer or 'all'", name, value));
  return checkInteger(value, name, 1);
}

/**
 * Validates the shared options (unknown keys are errors; `extraKeys` are the experiment's own) and
 * loads the dataset once, so every training of the experiment reuses the same decoded images.
 * @example const { base, raw } = resolveExperiment('sweep-kernel', options, ['sizes']); raw.sizes;
 */
export function resolveExperiment(name: string, input: unknown, extraKeys: readonly string[]): { base: ResolvedExperiment; raw: Record<string, unknown> } {
  const o = checkObject(input ?? {}, 'options');
  checkKnownKeys(o, `${name} options`, [...EXPERIMENT_KEYS, ...extraKeys]);
  const spec = (o.spec ?? defaultSpec()) as CnnSpec;
  const plan = planModel(spec);
  if (plan.conv.length === 0) throw new RangeError(`Expected at least one conv layer in spec for ${name} but received none`);
  if (o.log !== undefined && typeof o.log !== 'function') throw new TypeError(expected('a function', 'log', o.log));
  const limit = checkLimit(o.limit, 'limit', DEFAULT_LIMIT);
  const testLimit = checkLimit(o.testLimit, 'testLimit', DEFAULT_TEST_LIMIT);
  const base: ResolvedExperiment = {
    name,
    dataset: resolveDataset(o.dataset, o.dataDir, limit, testLimit),
    epochs: checkInteger(o.epochs ?? 1, 'epochs', 1, 100000),
    limit,
    testLimit,
    seed: checkInteger(o.seed ?? 42, 'seed', 0, Number.MAX_SAFE_INTEGER),
    batchSize: checkInteger(o.batchSize ?? 128, 'batchSize', 1, 1 << 24),
    learningRate: checkNumber(o.learningRate ?? 1e-3, 'learningRate', 0, Infinity, { exclusiveMin: true }),
    mode: checkOneOf(o.mode ?? 'script', 'mode', MODES),
    device: checkOneOf(o.device ?? 'cpu', 'device', DEVICES),
    spec,
    outDir: o.outDir === undefined ? path.join('experiments', name) : checkString(o.outDir, 'outDir'),
    log: (o.log as (line: string) => void) ?? (() => undefined),
  };
  return { base, raw: o };
}

function resolveDataset(value: unknown, dataDir: unknown, limit: number | undefined, testLimit: number | undefined): InMemoryDataset {
  if (value !== undefined && typeof value === 'object' && value !== null) {
    const d = value as InMemoryDataset;
    if (!d.train || !d.test || !Array.isArray(d.classNames)) throw new TypeError(expected('a dataset from loadDataset()', 'dataset', value));
    return d;
  }
  const name = checkOneOf(value ?? 'fashion-mnist', 'dataset', DATASETS);
  const dir = dataDir === undefined ? undefined : checkString(dataDir, 'dataDir');
  // Only the images the experiment uses are kept (the file is still read whole once).
  return loadDataset(name, { dataDir: dir, limit: { train: limit, test: testLimit } }) as unknown as InMemoryDataset;
}

/** The test images every evaluation of the experiment uses. @example await evaluate(model, testImages(base)) */
export function testImages(base: ResolvedExperiment): LabelledImages {
  return takeImages(base.dataset.test, base.testLimit);
}

/** trainCnn options for one training of the experiment: same data, budget and seed; no run folder. @example await trainCnn(trainOptions(base, { l1: 1e-4 })) */
export function trainOptions(base: ResolvedExperiment, overrides: Partial<TrainOptions> = {}): TrainOptions {
  return {
    dataset: base.dataset, spec: base.spec, epochs: base.epochs, seed: base.seed, batchSize: base.batchSize,
    learningRate: base.learningRate, mode: base.mode, device: base.device,
    ...(base.limit !== undefined ? { limit: base.limit } : {}),
    ...(base.testLimit !== undefined ? { testLimit: base.testLimit } : {}),
    ...overrides,
  };
}

/** A deep copy of a spec with the first conv layer changed. @example withFirstLayer(defaultSpec(), { kernelSize: 9 }) */
export function withFirstLayer(spec: CnnSpec, change: Partial<ConvLayerSpec>): CnnSpec {
  const copy: CnnSpec = JSON.parse(JSON.stringify(spec));
  copy.conv[0] = { ...copy.conv[0], ...change };
  return copy;
}

/**
 * One throw-away training on two batches. The first training of a process pays one-off costs
 * (thread pools, the TorchScript executor's first compilations, page faults on the dataset) that
 * would otherwise inflate the seconds per epoch of whichever configuration happens to run first.
 * @example await warmUp(base); // then time the real trainings
 */
export async function warmUp(base: ResolvedExperiment): Promise<void> {
  const { trainCnn } = require('../train/train-cnn') as typeof import('../train/train-cnn');
  const result = await trainCnn(trainOptions(base, { limit: Math.min(2 * base.batchSize, base.dataset.train.count), testLimit: Math.min(100, base.dataset.test.count), epochs: 1 }));
  result.model.dispose();
}

/** Mean seconds per epoch of a training. @example secondsPerEpoch(await trainCnn(options)) // 7.3 */
export function secondsPerEpoch(result: TrainResult): number {
  return result.history.reduce((sum, r) => sum + r.seconds, 0) / Math.max(result.history.length, 1);
}

/** A layer's weights as a host tensor, e.g. conv1's [filters, 1, kh, kw]. @example renderFilterMosaic(layerWeights(model, 'conv1')) */
export function layerWeights(model: CnnModel, layer: string): { data: Float32Array; shape: number[] } {
  const names = model.plan.conv.map((c) => c.name);
  if (!names.includes(layer)) throw new RangeError(expected(`one of ${names.join(', ')}`, 'layer', layer));
  const p = model.parameters().find((q) => q.name === `${layer}.weight`)!;
  return { data: p.values, shape: p.shape };
}

/** The machine the numbers were measured on: they are only comparable on the same one. */
function machineDescription(): Record<string, unknown> {
  const cpus = os.cpus();
  let torch: Record<string, unknown> = {};
  try {
    const info = native().torchInfo();
    torch = { version: info.version, threads: info.threads, cuda: info.cuda };
  } catch {
    // The record is informative only; a missing addon would already have failed the training.
  }
  return { cpu: cpus[0]?.model ?? 'unknown', cores: cpus.length, memoryGiB: Math.round(os.totalmem() / 2 ** 30), platform: `${os.platform()} ${os.arch()}`, node: process.version, torch };
}

/** What settings.json records: enough to rerun the experiment and to know what its numbers mean. @example settingsRecord(base, { sizes: [3, 5] }).trainImages // 10000 */
export function settingsRecord(base: ResolvedExperiment, extra: Record<string, unknown>): Record<string, unknown> {
  return {
    experiment: base.name,
    date: new Date().toISOString(),
    dataset: base.dataset.name,
    trainImages: Math.min(base.limit ?? Infinity, base.dataset.train.count),
    testImages: Math.min(base.testLimit ?? Infinity, base.dataset.test.count),
    epochs: base.epochs,
    batchSize: base.batchSize,
    learningRate: base.learningRate,
    optimizer: 'adam',
    mode: base.mode,
    device: base.device,
    seed: base.seed,
    spec: base.spec,
    ...extra,
    machine: machineDescription(),
  };
}

/** A results table as plain strings: what results.md, the CLI and the report all show. @example const t: ResultsTable = { headers: ['k', 'accuracy'], rows: [['3x3', '85.10%']] }; */
export interface ResultsTable {
  headers: string[];
  rows: string[][];
}

/** A picture an experiment wrote, relative to its folder. @example const f: Figure = { file: 'conv1-k3.png', caption: '3x3', group: 'mosaics' }; */
export interface Figure {
  file: string;
  caption: string;
  /** Consecutive figures with the same group are shown side by side in one table, titled by it. */
  group?: string;
}

/** Figures in order, consecutive ones of the same group gathered (a lone figure is its own group). @example groupFigures(results.figures).map((g) => g.figures.length) // [1, 7] */
export function groupFigures(figures: Figure[]): { title?: string; figures: Figure[] }[] {
  const out: { title?: string; figures: Figure[] }[] = [];
  for (const f of figures) {
    const last = out[out.length - 1];
    if (f.group !== undefined && last && last.title === f.group) last.figures.push(f);
    else out.push({ title: f.group, figures: [f] });
  }
  return out;
}

/** What results.json holds; the report reads it for any experiment. @example const r = JSON.parse(fs.readFileSync('results.json', 'utf8')) as ResultsFile; */
export interface ResultsFile {
  experiment: string;
  title: string;
  settings: Record<string, unknown>;
  table: ResultsTable;
  figures: Figure[];
  /** Sentences stating what the table answers (e.g. the fewest filters within 1 point). */
  notes: string[];
  /** The experiment's own numbers, unformatted. */
  data: unknown;
}

/** File names of an experiment folder. @example path.join(outDir, RESULT_FILES.results) */
export const RESULT_FILES = { settings: 'settings.json', results: 'results.json', markdown: 'results.md' } as const;

/** Escapes a Markdown table cell. */
function cell(text: string): string {
  return text.replace(/\|/g, '\\|').replace(/\n/g, ' ');
}

/**
 * A GitHub-flavoured Markdown table.
 * @example markdownTable({ headers: ['k', 'acc'], rows: [['3', '85.1%']] }) // '| k | acc |\n| --- | --- |\n| 3 | 85.1% |'
 */
export function markdownTable(table: ResultsTable): string {
  const line = (cells: string[]) => `| ${cells.map(cell).join(' | ')} |`;
  return [line(table.headers), line(table.headers.map(() => '---')), ...table.rows.map(line)].join('\n');
}

/** The settings as a short Markdown list. */
function settingsMarkdown(settings: Record<string, unknown>): string {
  const s = settings;
  const machine = (s.machine ?? {}) as Record<string, unknown>;
  return [
    `- dataset: ${s.dataset}, ${s.trainImages} training / ${s.testImages} test images, ${s.epochs} epoch(s), batch ${s.batchSize}, Adam lr ${s.learningRate}, seed ${s.seed}, ${s.mode} mode on ${s.device}`,
    `- machine: ${machine.cpu} (${machine.cores} cores), ${s.date}`,
  ].join('\n');
}

/** results.md: title, settings, the table, notes and the figures (relative links). @example fs.writeFileSync('results.md', resultsMarkdown(results)) */
export function resultsMarkdown(results: ResultsFile): string {
  const parts = [`# ${results.title}`, '', settingsMarkdown(results.settings), '', markdownTable(results.table), ''];
  for (const note of results.notes) parts.push(note, '');
  for (const group of groupFigures(results.figures)) {
    if (group.title === undefined) {
      const f = group.figures[0];
      parts.push(`![${f.caption}](${f.file})`, '', `*${f.caption}*`, '');
    } else {
      // Side by side: captions as the header row, pictures in the row below.
      parts.push(`**${group.title}**`, '', markdownTable({
        headers: group.figures.map((f) => f.caption),
        rows: [group.figures.map((f) => `![${f.caption}](${f.file})`)],
      }), '');
    }
  }
  return parts.join('\n');
}

/** Writes settings.json, results.json and results.md into the experiment folder (atomically). @example writeResults('experiments/x', results).markdown // 'experiments/x/results.md' */
export function writeResults(outDir: string, results: ResultsFile): { settings: string; results: string; markdown: string } {
  const files = {
    settings: path.join(outDir, RESULT_FILES.settings),
    results: path.join(outDir, RESULT_FILES.results),
    markdown: path.join(outDir, RESULT_FILES.markdown),
  };
  writeFileAtomic(files.settings, JSON.stringify(results.settings, null, 2) + '\n');
  writeFileAtomic(files.results, JSON.stringify(results, null, 2) + '\n');
  writeFileAtomic(files.markdown, resultsMarkdown(results));
  return files;
}

/** How every accuracy is shown. @example percent(0.8532) // '85.32%' */
export function percent(fraction: number): string {
  return `${(100 * fraction).toFixed(2)}%`;
}

/** Checks a list of distinct positive integers (kernel sizes, filter counts); returns it sorted ascending. @example checkCountList([5, 3], 'sizes', 56) // [3, 5] */
export function checkCountList(value: unknown, name: string, max: number): number[] {
  if (!Array.isArray(value) || value.length === 0) throw new TypeError(expected('a non-empty array of positive integers', name, value));
  const list = value.map((v, i) => checkInteger(v, `${name}[${i}]`, 1, max));
  if (new Set(list).size !== list.length) throw new RangeError(expected('distinct values', name, value));
  return [...list].sort((a, b) => a - b);
}

/** One line for the log after a training. @example trainingLine('kernel 5x5', result) // 'kernel 5x5: test accuracy 85.10%, 7.3 s/epoch' */
export function trainingLine(what: string, result: TrainResult): string {
  return `${what}: test accuracy ${percent(result.testAccuracy)}, ${secondsPerEpoch(result).toFixed(1)} s/epoch`;
}
