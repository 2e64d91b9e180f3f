// tune(): hyperparameter search. Trials run one at a time: each trainCnn already uses every core
// libtorch is given (two on the machine this was built on), so trials side by side would only
// share them and each take twice as long. Each trial is scored on a validation split carved from
// the training images; the best is retrained on all of them and tested once.
import * as fs from 'fs';
import * as path from 'path';
import { removeStaleTemporaries, writeFileAtomic } from '../util/fs-atomic';
import { lockFolder } from '../util/folder-lock';
import { ResolvedTuneOptions, resolveTuneOptions, TuneOptions } from './options';
import { retrainBest } from './retrain';
import { selectBest } from './select';
import { describeParams, ParamKey } from './space';
import { loadSearchData, SearchData } from './splits';
import { runTrial, TrialResult } from './trial';
import { checkSameData, checkSameSearch, checkStoredTrials, readState, TRIALS_FILE, TuneState, writeState } from './trials-file';
import { renderTuneChart } from './tune-chart';
import { BestTrial, TuneReportInput, writeTuneJson } from './tune-report';

export const TUNE_CHART = 'tune.png';

export interface TuneResult extends TuneReportInput {
  dir: string;
  best?: BestTrial;
  /** Trials read from trials.json, finished by an earlier run of the search. */
  resumed: number;
  files: { trials: string; json: string; chart?: string; model?: string };
  /** Why tune.png was not drawn (node-canvas missing), when it was not. */
  chartSkipped?: string;
}

/** A search stopped by its signal: `name` is 'AbortError' (as trainCnn's); finished trials are kept. */
export class TuneAbortedError extends Error {
  constructor(readonly finished: number, readonly trials: number, readonly dir: string) {
    super(`the search was stopped with ${finished} of ${trials} trials finished; they are kept in ${path.join(dir, TRIALS_FILE)}, ` +
      'and running the search again with the same options and dir resumes it');
    this.name = 'AbortError';
  }
}

/** The search's state: the stored one when this dir holds the same search, a new one otherwise. */
async function openSearch(options: ResolvedTuneOptions): Promise<{ state: TuneState; data: SearchData }> {
  // The stored definition is checked before the data is loaded: a wrong dir fails at once.
  const stored = readState(options.dir);
  if (stored) {
    checkSameSearch(stored, options.definition, options.dir);
    checkStoredTrials(stored, options.trials, options.dir);
  }
  const data = await loadSearchData(options.base, options);
  if (stored) checkSameData(stored, data.fingerprint, options.dir);
  const state: TuneState = stored ?? { format: 'convscope-tune-trials', version: 1, definition: options.definition, data: data.fingerprint, trials: [] };
  // Written now, before the first trial: a folder that cannot be written fails here, not after a trial.
  writeState(options.dir, state);
  return { state, data };
}

/** Every trial not finished yet, one after the other, each recorded in trials.json as it ends. */
async function runTrials(options: ResolvedTuneOptions, state: TuneState, data: SearchData): Promise<void> {
  const total = options.trials.length;
  for (const result of state.trials) options.onTrial?.({ type: 'trial-skipped', trials: total, result });
  for (let i = state.trials.length; i < total; ++i) {
    if (options.signal?.aborted) throw new TuneAbortedError(state.trials.length, total, options.dir);
    let result: TrialResult;
    try {
      result = await runTrial({
        base: options.base, epochs: options.epochs, trials: total, data, earlyStopping: options.earlyStopping,
        completedCurves: state.trials.filter((t) => t.status === 'completed').map((t) => t.curve),
        signal: options.signal, onTrial: options.onTrial,
      }, i + 1, options.trials[i]);
    } catch (err) {
      if (options.signal?.aborted && (err as Error).name === 'AbortError') throw new TuneAbortedError(state.trials.length, total, options.dir);
      (err as Error).message = `trial ${i + 1} (${describeParams(options.trials[i])}): ${(err as Error).message}`;
      throw err;
    }
    state.trials.push(result);
    writeState(options.dir, state);
    options.onTrial?.({ type: 'trial-end', trials: total, result });
  }
}

/** The best trial, retrained and tested once unless `retrain` is false (a stored retraining of the same trial is reused). */
async function finishBest(options: ResolvedTuneOptions, state: TuneState, data: SearchData): Promise<BestTrial | undefined> {
  const best = selectBest(state.trials);
  if (!best || !options.retrain) return best;
  let reused = true;
  if (state.retrain?.trial !== best.trial) {
    reused = false;
    options.onTrial?.({ type: 'retrain-start', trial: best.trial, params: best.params, trainImages: data.pool.count });
    try {
      state.retrain = await retrainBest(best, data, { base: options.base, epochs: options.epochs, dir: options.dir, signal: options.signal });
    } catch (err) {
      if (options.signal?.aborted && (err as Error).name === 'AbortError') throw new TuneAbortedError(state.trials.length, options.trials.length, options.dir);
      throw err;
    }
    writeState(options.dir, state);
  }
  const retrain = state.retrain!;
  options.onTrial?.({ type: 'retrain-end', retrain, reused });
  return { ...best, testAccuracy: retrain.testAccuracy, testLoss: retrain.testLoss, retrain };
}

/** tune.png, or why it was skipped: a missing node-canvas costs the picture, not the search. */
async function writeChart(options: ResolvedTuneOptions, report: TuneReportInput): Promise<{ chart?: string; chartSkipped?: string }> {
  try {
    const title = `${options.definition.search} search, ${report.trials.length} trials, ${options.epochs} epoch(s) each: validation accuracy`;
    const png = await renderTuneChart(options.definition.space, report.trials, report.best?.trial, title);
    const chart = path.join(options.dir, TUNE_CHART);
    writeFileAtomic(chart, png);
    return { chart };
  } catch (err) {
    const reason = (err as Error).message.split('\n')[0];
    process.emitWarning(`convscope: ${TUNE_CHART} skipped for ${options.dir}: ${reason}`);
    return { chartSkipped: reason };
  }
}

/**
 * Searches hyperparameters: trains a trial per sampled set of values (random search, or every
 * combination for grid search), one at a time, scores each on validation images held out of the
 * training images, stops poor trials early (median rule), and retrains the best on all the
 * training images to test it once. Finished trials are kept in `<dir>/trials.json` as they end;
 * running the same search again in the same dir skips them. Writes tune.json, tune.png and best.pt.
 * @example
 * const r = await tune({ dir: 'runs/tune-lr', space: { learningRate: { min: 1e-4, max: 1e-2, log: true } }, trials: 8, epochs: 2, limit: 10000 });
 * console.log(r.best?.params, r.best?.validationAccuracy, r.best?.testAccuracy);
 */
export async function tune(input: TuneOptions): Promise<TuneResult> {
  const options = resolveTuneOptions(input);
  // One search per folder: a second one (this process or another) is refused while the first runs,
  // instead of both rewriting trials.json and one search being lost.
  const created = !fs.existsSync(options.dir);
  fs.mkdirSync(options.dir, { recursive: true });
  const unlock = lockFolder(options.dir, 'search', 'search (dir)');
  let finished = false;
  try {
    removeStaleTemporaries(options.dir);
    const result = await searchInLockedFolder(options);
    finished = true;
    return result;
  } finally {
    unlock();
    // A search that failed before writing anything (its data could not be loaded) leaves no empty folder.
    if (!finished && created) removeEmptyFolder(options.dir);
  }
}

function removeEmptyFolder(dir: string): void {
  try {
    fs.rmdirSync(dir);
  } catch {
    // Not empty: the search's files are kept.
  }
}

async function searchInLockedFolder(options: ResolvedTuneOptions): Promise<TuneResult> {
  const { state, data } = await openSearch(options);
  const resumed = state.trials.length;
  await runTrials(options, state, data);
  const best = await finishBest(options, state, data);
  const report: TuneReportInput = {
    definition: options.definition, data: state.data, keys: options.definition.space.map((d) => d.key as ParamKey), trials: state.trials, best,
  };
  const json = writeTuneJson(options.dir, report);
  const { chart, chartSkipped } = await writeChart(options, report);
  return {
    ...report, dir: options.dir, resumed,
    files: {
      trials: path.join(options.dir, TRIALS_FILE), json,
      ...(chart ? { chart } : {}), ...(best?.retrain ? { model: path.join(options.dir, best.retrain.model) } : {}),
    },
    ...(chartSkipped ? { chartSkipped } : {}),
  };
}
