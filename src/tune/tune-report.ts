// A search's results as people and programs read them: a table (cli-table3) and tune.json.
import * as path from 'path';
import { writeFileAtomic } from '../util/fs-atomic';
import type { SearchDefinition } from './options';
import { formatParam, PARAM_LABELS, ParamKey, TrialParams } from './space';
import type { SearchData } from './splits';
import type { RetrainResult, TrialResult } from './trial';

export const TUNE_JSON = 'tune.json';

/** The best trial, with the test figures of its retraining when there was one. */
export interface BestTrial extends TrialResult {
  /** The retrained best's accuracy on the test images: measured once, after the choice. */
  testAccuracy?: number;
  testLoss?: number;
  retrain?: RetrainResult;
}

/** What a report is drawn from. */
export interface TuneReportInput {
  definition: SearchDefinition;
  data: SearchData['fingerprint'];
  keys: ParamKey[];
  trials: TrialResult[];
  best?: BestTrial;
  /** The Optuna study the trials are in: its name and storage (a file, or a URL without its password). */
  study: { name: string; storage: string };
}

const percent = (x: number | null | undefined): string => (x === null || x === undefined ? '-' : `${(100 * x).toFixed(2)}%`);

/** A trial's status with the retries that link failed trials to their reruns (tune.json holds the reasons). */
function statusText(t: TrialResult, trials: TrialResult[]): string {
  const notes: string[] = [];
  if (t.retryOf !== undefined) notes.push(`retry of ${t.retryOf}`);
  const rerun = trials.filter((r) => r.retryOf === t.retryOf && r.retryOf !== undefined && r.trial > t.trial).concat(
    t.retryOf === undefined ? trials.filter((r) => r.retryOf === t.trial) : []);
  if (t.status === 'failed' && rerun.length > 0) notes.push(`run again as ${rerun[0].trial}`);
  return `${t.status}${notes.length > 0 ? ` (${notes.join(', ')})` : ''}`;
}

/**
 * One row per trial (Optuna's trial numbers): its parameters, status, epochs, validation accuracy
 * and loss, seconds; the best trial is starred. Plain text off a terminal.
 * @example process.stdout.write(tuneTable(result) + '\n');
 */
export function tuneTable(report: TuneReportInput, options: { color?: boolean } = {}): string {
  const Table = require('cli-table3') as typeof import('cli-table3');
  const style = options.color ? {} : { style: { head: [], border: [] } };
  const table = new Table({
    head: ['trial', ...report.keys.map((k) => PARAM_LABELS[k]), 'status', 'epochs', 'val acc', 'val loss', 'seconds'], ...style,
  });
  for (const t of report.trials) {
    table.push([
      `${t.trial}${report.best?.trial === t.trial ? ' *' : ''}`,
      ...report.keys.map((k) => formatParam(k, t.params[k as keyof TrialParams])),
      statusText(t, report.trials), t.epochs, percent(t.validationAccuracy), t.validationLoss === null ? '-' : t.validationLoss.toFixed(4), t.seconds === null ? '-' : t.seconds.toFixed(1),
    ]);
  }
  return table.toString();
}

/** The lines under the table: what was chosen, on what, and its one test. */
export function bestSummary(report: TuneReportInput): string[] {
  const { best, data } = report;
  if (!best) return ['no trial completed: nothing to choose (every trial was pruned, diverged or failed)'];
  const lines = [`best: trial ${best.trial}, chosen on validation accuracy ${percent(best.validationAccuracy)} ` +
    `(${data.validation} held-out training images; the test images were not used)`];
  if (best.retrain) {
    lines.push(`retrained on all ${best.retrain.trainImages} training images for ${best.retrain.epochs} epoch(s): ` +
      `test accuracy ${percent(best.retrain.testAccuracy)} on ${best.retrain.testImages} test images (tested once)`);
  }
  return lines;
}

/** The contents of tune.json: the study, how the search was defined, every trial, and the best. */
export function tuneJson(report: TuneReportInput): Record<string, unknown> {
  return {
    selection: 'validation accuracy of the completed trials, on the last validation images of the training images used; the test images are used once, by the retrained best',
    study: report.study,
    definition: report.definition,
    data: report.data,
    best: report.best ?? null,
    trials: report.trials,
  };
}

/** Writes tune.json into the search folder (atomically) and returns its path. */
export function writeTuneJson(dir: string, report: TuneReportInput): string {
  const file = path.join(dir, TUNE_JSON);
  writeFileAtomic(file, JSON.stringify(tuneJson(report), null, 2) + '\n');
  return file;
}
