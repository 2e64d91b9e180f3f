// What an experiment leaves behind: its settings record and results (settings.json, results.json),
// the figures it drew, and the folder layout that `convscope report` reads back.
import * as os from 'os';
import { native } from '../core/native';
import type { ResolvedExperiment } from './options';

/** File names of an experiment folder. @example path.join(outDir, RESULT_FILES.results) */
export const RESULT_FILES = { settings: 'settings.json', results: 'results.json', markdown: 'results.md' } as const;

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
    optimizer: base.optimizer,
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
