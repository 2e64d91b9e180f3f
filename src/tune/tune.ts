// tune(): hyperparameter search on Optuna. The study (in <dir>/study.db, or any storage Optuna
// accepts) holds the search's definition and its trials; this process creates or resumes it, runs
// its workers (itself, or N worker processes), then reads the study back: each trial scored on a
// validation split carved from the training images, the best retrained on all of them and tested
// once, the table, tune.json and tune.png.
import * as fs from 'fs';
import * as path from 'path';
import { native } from '../core/native';
import { removeStaleTemporaries, writeFileAtomic } from '../util/fs-atomic';
import { lockFolder } from '../util/folder-lock';
import { OptunaHelper } from './optuna-helper';
import { ResolvedTuneOptions, resolveTuneOptions, STUDY_FILE, threadsPerWorker, TuneOptions } from './options';
import { retrainBest } from './retrain';
import { selectBest } from './select';
import { ParamKey } from './space';
import { loadSearchData, SearchData } from './splits';
import {
  checkSameData, checkSameSearch, defaultStorage, finished, optunaConfig, refuseOldFolder, RETRAIN_ATTR, searchedKeys, storedAttrs,
  storedRetrain, STUDY_ATTR, studyAttrs, StudyAttrs, studyLabel, trialResult,
} from './study';
import type { TrialResult } from './trial';
import { renderTuneChart } from './tune-chart';
import { BestTrial, TuneReportInput, writeTuneJson } from './tune-report';
import { runWorker } from './worker';
import { runWorkerProcesses } from './workers';

export const TUNE_CHART = 'tune.png';

export interface TuneResult extends TuneReportInput {
  dir: string;
  best?: BestTrial;
  /** Trials finished before this run (read from the study). */
  resumed: number;
  /** Workers that were killed during this run (their trials were failed and run again). */
  lostWorkers: string[];
  files: { study: string; json: string; chart?: string; model?: string };
  /** Why tune.png was not drawn (node-canvas missing), when it was not. */
  chartSkipped?: string;
}

/** A search stopped by its signal: `name` is 'AbortError' (as trainCnn's); finished trials stay in the study. */
export class TuneAbortedError extends Error {
  constructor(readonly finished: number, readonly trials: number, readonly study: string) {
    super(`the search was stopped with ${finished} of ${trials} trials finished; they are kept in ${study}, ` +
      'and running the search again with the same options resumes it (the trials under way are run again)');
    this.name = 'AbortError';
  }
}

/** A search whose workers all ended before its budget was met (killed). */
export class TuneIncompleteError extends Error {
  constructor(readonly finished: number, readonly trials: number, study: string, lost: string[]) {
    super(`the search's workers ended with ${finished} of ${trials} trials finished (${lost.join('; ')}); they are kept in ${study}, ` +
      'and running the search again resumes it');
    this.name = 'TuneIncompleteError';
  }
}

interface OpenStudy {
  storage: string;
  label: string;
  attrs: StudyAttrs;
  data: SearchData;
}

/**
 * Opens the storage and the study: an existing one is checked against this search before the data
 * is loaded (a wrong study fails at once), a new one is created with one waiting trial per trial of
 * the budget. With the default storage (the folder's own study.db, which this process has locked),
 * trials left running by a killed search are failed and enqueued again.
 */
async function openStudy(helper: OptunaHelper, options: ResolvedTuneOptions): Promise<OpenStudy> {
  const storage = options.storage ?? defaultStorage(options.dir);
  const label = studyLabel(storage, options.study);
  const keys = searchedKeys(options.dimensions);
  let described = await helper.open(storage, options.study, options.heartbeat);
  if (described.exists) checkSameSearch(storedAttrs(described, label, keys), options.definition, label);
  const data = await loadSearchData(options.base, options);
  if (!described.exists) {
    described = await helper.create(options.study, { [STUDY_ATTR]: studyAttrs(options, data) }, options.trials);
    // Another process created it meanwhile: the same checks as for a stored study.
    if (!described.created) checkSameSearch(storedAttrs(described, label, keys), options.definition, label);
  }
  const attrs = storedAttrs(described, label, keys);
  checkSameData(attrs, data.fingerprint, label);
  const config = optunaConfig(options.definition);
  await helper.configure(config.sampler, config.pruner, config.distributions);
  if (options.storage === undefined) {
    const failed = await helper.failRunning('left running by a search that was killed; failed on resume and run again');
    if (failed.length > 0) options.onTrial?.({ type: 'trials-failed-on-resume', trials: failed });
  }
  return { storage, label, attrs, data };
}

async function readTrials(helper: OptunaHelper, options: ResolvedTuneOptions): Promise<{ trials: TrialResult[]; userAttrs: Record<string, unknown> }> {
  const { trials, userAttrs } = await helper.trials();
  return { trials: trials.map((t) => trialResult(t, options.dimensions)).filter((t): t is TrialResult => t !== undefined), userAttrs };
}

/** The workers: this process alone, or `workers` worker processes. */
async function runWorkers(helper: OptunaHelper, options: ResolvedTuneOptions, study: OpenStudy): Promise<string[]> {
  const config = optunaConfig(options.definition);
  const data = { name: study.data.name, classNames: study.data.classNames, train: study.data.train, validation: study.data.validation };
  const pruning = config.pruner.kind !== 'none';
  if (options.workers === 1) {
    const before = options.threads === undefined ? undefined : native().torchInfo().threads;
    if (options.threads !== undefined) native().setNumThreads(options.threads);
    try {
      await runWorker({
        helper, base: options.base, dimensions: options.dimensions, epochs: options.epochs, trials: options.trials, pruning, data,
        signal: options.signal, onTrial: options.onTrial,
      });
    } finally {
      if (before !== undefined) native().setNumThreads(before);
    }
    return [];
  }
  const { lost } = await runWorkerProcesses(options.workers, {
    storage: study.storage, study: options.study, heartbeat: options.heartbeat, threads: threadsPerWorker(options.workers, options.threads),
    base: options.base, dimensions: options.dimensions, epochs: options.epochs, trials: options.trials, config, data,
  }, { signal: options.signal, onTrial: options.onTrial });
  return lost;
}

/** The best trial, retrained and tested once unless `retrain` is false (a stored retraining of the same trial is reused). */
async function finishBest(helper: OptunaHelper, options: ResolvedTuneOptions, trials: TrialResult[], userAttrs: Record<string, unknown>, study: OpenStudy): Promise<BestTrial | undefined> {
  const best = selectBest(trials);
  if (!best || !options.retrain) return best;
  let retrain = storedRetrain(userAttrs, best.trial, options.dir);
  const reused = retrain !== undefined;
  if (!retrain) {
    options.onTrial?.({ type: 'retrain-start', trial: best.trial, params: best.params, trainImages: study.data.pool.count });
    retrain = await retrainBest(best, study.data, { base: options.base, epochs: options.epochs, dir: options.dir, signal: options.signal });
    await helper.setStudyAttr(RETRAIN_ATTR, retrain);
  }
  options.onTrial?.({ type: 'retrain-end', retrain, reused });
  return { ...best, testAccuracy: retrain.testAccuracy, testLoss: retrain.testLoss, retrain };
}

/** tune.png, or why it was skipped: a missing node-canvas costs the picture, not the search. */
async function writeChart(options: ResolvedTuneOptions, report: TuneReportInput): Promise<{ chart?: string; chartSkipped?: string }> {
  try {
    const { sampler, pruner } = options.definition;
    const title = `${sampler.kind} sampler, ${pruner.kind === 'none' ? 'no' : pruner.kind} pruner, ${finished(report.trials).length} trials, ${options.epochs} epoch(s) each: validation accuracy`;
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
 * Searches hyperparameters with Optuna: a study (default `<dir>/study.db`; `storage` for a database
 * that workers on other machines share) whose sampler (TPE by default) draws each trial's values,
 * whose pruner (median by default) stops poor trials after an epoch, and whose trials are trained by
 * this process or by `workers` worker processes. Trials are scored on validation images held out of
 * the training images; the best is retrained on all of them and tested once. Running the same
 * search again resumes the study: only the missing trials are trained. Writes tune.json, tune.png
 * and best.pt.
 * @example
 * const r = await tune({ dir: 'runs/tune-lr', space: { learningRate: { min: 1e-4, max: 1e-2, log: true } }, trials: 8, epochs: 2, limit: 10000 });
 * console.log(r.best?.params, r.best?.validationAccuracy, r.best?.testAccuracy);
 */
export async function tune(input: TuneOptions): Promise<TuneResult> {
  const options = resolveTuneOptions(input);
  // One search per folder: a second one (this process or another) is refused while the first runs.
  const created = !fs.existsSync(options.dir);
  fs.mkdirSync(options.dir, { recursive: true });
  const unlock = lockFolder(options.dir, 'search', 'search (dir)');
  const progress = { done: false, trained: false };
  try {
    removeStaleTemporaries(options.dir);
    refuseOldFolder(options.dir);
    const result = await searchInLockedFolder(options, progress);
    progress.done = true;
    return result;
  } finally {
    unlock();
    // A search that failed before any trial (a bad storage, a study that is another search, no data)
    // leaves no folder it made: at most the study file it had just created, with no trial run.
    if (!progress.done && !progress.trained && created) fs.rmSync(options.dir, { recursive: true, force: true });
  }
}

async function searchInLockedFolder(options: ResolvedTuneOptions, progress: { trained: boolean }): Promise<TuneResult> {
  const helper = await OptunaHelper.start();
  try {
    const study = await openStudy(helper, options);
    const before = await readTrials(helper, options);
    const resumed = finished(before.trials);
    for (const result of resumed) options.onTrial?.({ type: 'trial-skipped', trials: options.trials, result });
    let lostWorkers: string[];
    progress.trained = true;
    try {
      lostWorkers = await runWorkers(helper, options, study);
    } catch (err) {
      if (options.signal?.aborted && (err as Error).name === 'AbortError') {
        const now = await readTrials(helper, options).catch(() => before);
        throw new TuneAbortedError(finished(now.trials).length, options.trials, study.label);
      }
      throw err;
    }
    const { trials, userAttrs } = await readTrials(helper, options);
    const outcomes = finished(trials).length;
    if (outcomes < options.trials && lostWorkers.length > 0) throw new TuneIncompleteError(outcomes, options.trials, study.label, lostWorkers);
    let best: BestTrial | undefined;
    try {
      best = await finishBest(helper, options, trials, userAttrs, study);
    } catch (err) {
      if (options.signal?.aborted && (err as Error).name === 'AbortError') throw new TuneAbortedError(outcomes, options.trials, study.label);
      throw err;
    }
    const report: TuneReportInput = {
      definition: options.definition, data: study.attrs.data, keys: options.dimensions.map((d) => d.key as ParamKey), trials, best,
      study: { name: options.study, storage: study.label.replace(/^study "[^"]*" in /, '') },
    };
    const json = writeTuneJson(options.dir, report);
    const { chart, chartSkipped } = await writeChart(options, report);
    return {
      ...report, dir: options.dir, resumed: resumed.length, lostWorkers,
      files: {
        study: options.storage === undefined ? path.join(options.dir, STUDY_FILE) : study.label, json,
        ...(chart ? { chart } : {}), ...(best?.retrain ? { model: path.join(options.dir, best.retrain.model) } : {}),
      },
      ...(chartSkipped ? { chartSkipped } : {}),
    };
  } finally {
    await helper.close();
  }
}
