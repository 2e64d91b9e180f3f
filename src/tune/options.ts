// tune's options: their defaults, and the validation of all of them (the trainCnn options of every
// trial the space allows included) before any data is loaded, any storage opened or any trial trained.
import * as os from 'os';
import * as path from 'path';
import { recordableOptions, resolveTrainOptions } from '../train/options';
import { checkBoolean, checkInteger, checkKnownKeys, checkObject, checkOneOf, checkString, expected } from '../util/validate';
import { checkSpace, describeParams, Dimension, gridTrials, SamplerKind, SAMPLERS, SearchSpace, spaceSize, TrialParams } from './space';
import { BASE_KEYS, trialTrainOptions, TuneBaseOptions } from './trial-options';
import type { TuneEvent } from './trial';

/** Optuna's pruners: median (default: below the completed trials' median at the same epoch), successive halving, Hyperband, none. */
export const PRUNERS = ['median', 'successive-halving', 'hyperband', 'none'] as const;
export type PrunerKind = (typeof PRUNERS)[number];

/** The pruner's settings. */
export interface PruningOptions {
  /** median: completed trials needed before any trial is pruned, and at the epoch compared (default 3). */
  minTrials?: number;
  /** Epochs every trial trains before it can be pruned (default 1); successive halving's and Hyperband's minimum resource. */
  graceEpochs?: number;
  /** Successive halving and Hyperband: the fraction 1/n of trials promoted at each rung (default 3). */
  reductionFactor?: number;
}

/**
 * Options of tune(). Besides these, the trainCnn options in BASE_KEYS (dataset, spec, mode, device,
 * seed, augment, optimizer, ...) are the base every trial starts from; a hyperparameter in `space`
 * must not also be given there.
 */
export interface TuneOptions extends TuneBaseOptions {
  /** The search folder: the study (study.db, unless `storage` is given), tune.json, tune.png and the best model. Required. */
  dir: string;
  /** What to search (default DEFAULT_SPACE). */
  space?: SearchSpace;
  /** Optuna's sampler: 'tpe' (default), 'random', 'grid' (every combination of the space's lists) or 'cmaes'. */
  sampler?: SamplerKind;
  /** The trial budget (default 10, or all the combinations of a space of lists with fewer; grid: every combination). */
  trials?: number;
  /** tpe and cmaes: trials drawn at random before the model takes over (default a quarter of the trials, 2 to 10). */
  startupTrials?: number;
  /** Epochs of each trial and of the retraining of the best (default 1). */
  epochs?: number;
  /** Use the first `limit` training images (the validation split comes out of them). */
  limit?: number;
  /** Training images held out for validation, the last ones (default 10% of the training images used). */
  validation?: number;
  /** The final test of the retrained best uses the first `testLimit` test images (default all). */
  testLimit?: number;
  /** Optuna's pruner, which decides after each epoch whether a trial goes on (default 'median'). */
  pruner?: PrunerKind;
  /** The pruner's settings (default { minTrials: 3, graceEpochs: 1, reductionFactor: 3 }). */
  pruning?: PruningOptions;
  /** Where the study lives: an SQLAlchemy URL Optuna accepts (default sqlite:///<dir>/study.db; postgresql://... to share it between machines). */
  storage?: string;
  /** The study's name in the storage (default the dir's name). */
  study?: string;
  /** Worker processes on this machine, all on the one study (default 1: the trials run in this process). */
  workers?: number;
  /** libtorch threads of each worker (default the cores / workers). */
  threads?: number;
  /** Seconds between a running trial's heartbeats; a trial silent for 3 of them is failed and run again (default 10). */
  heartbeat?: number;
  /** Retrain the best trial on training + validation images and test it once (default true). */
  retrain?: boolean;
  /** Aborting stops the trials under way (failed, and enqueued again); finished trials stay in the study and a rerun resumes. */
  signal?: AbortSignal;
  /** Progress: trials starting, epochs, trials ending or found finished on resume, the retraining. */
  onTrial?: (event: TuneEvent) => void;
}

/** The default space: 24 combinations of the tutorial network's main knobs. */
export const DEFAULT_SPACE: SearchSpace = {
  learningRate: [3e-4, 1e-3, 3e-3],
  batchSize: [64, 128],
  dropout: [0.25, 0.4],
  filters: [0.5, 1],
};

const DEFAULT_TRIALS = 10;
export const DEFAULT_PRUNING: Required<PruningOptions> = { minTrials: 3, graceEpochs: 1, reductionFactor: 3 };
export const DEFAULT_HEARTBEAT = 10;
/** The study's file in the search folder when no storage is given. */
export const STUDY_FILE = 'study.db';

const TUNE_KEYS = [
  'dir', 'space', 'sampler', 'trials', 'startupTrials', 'epochs', 'limit', 'validation', 'testLimit', 'pruner', 'pruning', 'storage', 'study',
  'workers', 'threads', 'heartbeat', 'retrain', 'signal', 'onTrial',
];

/** Options of convscope before tune ran on Optuna, and what replaced them. */
const REPLACED: Record<string, string> = {
  search: "sampler ('tpe', 'random', 'grid' or 'cmaes')",
  earlyStopping: "pruner ('median', 'successive-halving', 'hyperband' or 'none') and pruning: { minTrials, graceEpochs }",
};

/** What makes two searches the same search: a study resumes only when this is equal to the one stored in it. */
export interface SearchDefinition {
  sampler: { kind: SamplerKind; startupTrials: number | null };
  pruner: { kind: PrunerKind } & Required<PruningOptions>;
  space: Dimension[];
  trials: number;
  epochs: number;
  limit: number | null;
  validation: number | null;
  testLimit: number | null;
  /** The base trainCnn options, defaults filled in (dataDir and the evaluation chunk left out: they change no result). */
  base: Record<string, unknown>;
}

export interface ResolvedTuneOptions {
  dir: string;
  sampler: SamplerKind;
  dimensions: Dimension[];
  /** The trial budget. */
  trials: number;
  epochs: number;
  limit?: number;
  validation?: number;
  testLimit?: number;
  retrain: boolean;
  /** Undefined: the study.db in dir. */
  storage?: string;
  study: string;
  workers: number;
  /** libtorch threads per worker, when given. */
  threads?: number;
  heartbeat: number;
  signal?: AbortSignal;
  onTrial?: (event: TuneEvent) => void;
  base: TuneBaseOptions;
  definition: SearchDefinition;
}

function optionalInteger(value: unknown, name: string): number | undefined {
  return value === undefined ? undefined : checkInteger(value, name, 1);
}

/** The base options: the BASE_KEYS given, none of them searched. */
function baseOptions(o: Record<string, unknown>, dimensions: Dimension[]): TuneBaseOptions {
  for (const d of dimensions) {
    if (o[d.key] !== undefined && (BASE_KEYS as readonly string[]).includes(d.key)) {
      throw new TypeError(`${expected(`no ${d.key} option (space.${d.key} searches it)`, d.key, o[d.key])}; drop one of the two`);
    }
  }
  const base: Record<string, unknown> = {};
  for (const key of BASE_KEYS) if (o[key] !== undefined) base[key] = o[key];
  return base as TuneBaseOptions;
}

/** Combinations checked one by one before the search; a larger space is checked a dimension at a time. */
const MAX_CHECKED = 4096;

/**
 * The trainCnn options of the trials the space allows, checked as trainCnn would check them, so that
 * a bad spec or a value the network cannot take (a kernel larger than the image) fails now, naming
 * the values, and not hours into the search. Each list's values and each range's ends are tried: all
 * their combinations when there are at most MAX_CHECKED, else each dimension's with the others' first.
 */
export function checkTrialOptions(base: TuneBaseOptions, dimensions: Dimension[], epochs: number): void {
  const candidates = dimensions.map((d) => (d.kind === 'values' ? d.values : [d.min, d.max]));
  const count = candidates.reduce((n, c) => n * c.length, 1);
  let trials: TrialParams[];
  if (count <= MAX_CHECKED) {
    trials = [{}];
    dimensions.forEach((d, i) => { trials = trials.flatMap((t) => candidates[i].map((v) => ({ ...t, [d.key]: v }))); });
  } else {
    const first = Object.fromEntries(dimensions.map((d, i) => [d.key, candidates[i][0]])) as TrialParams;
    trials = dimensions.flatMap((d, i) => candidates[i].map((v) => ({ ...first, [d.key]: v })));
  }
  for (const params of trials) {
    try {
      resolveTrainOptions(trialTrainOptions(base, params, epochs));
    } catch (err) {
      (err as Error).message = `a trial with ${describeParams(params)}: ${(err as Error).message}`;
      throw err;
    }
  }
}

type DefinitionParts = Omit<SearchDefinition, 'space' | 'base'> & { dimensions: Dimension[]; base: TuneBaseOptions };

function searchDefinition(o: DefinitionParts): SearchDefinition {
  // The base as trainCnn resolves it, defaults filled in: a default that changes between versions
  // makes an old study a different search, as it should.
  const recorded = recordableOptions(resolveTrainOptions({ ...o.base, epochs: o.epochs }));
  // The searched keys vary by trial and epochs is the search's own; dataDir and the evaluation
  // chunk change no result.
  const dropped = new Set<string>(['dataDir', 'evalChunkSize', 'epochs', ...o.dimensions.map((d) => d.key)]);
  const base: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(recorded)) if (!dropped.has(key) && value !== undefined) base[key] = value;
  return {
    sampler: o.sampler, pruner: o.pruner, space: o.dimensions, trials: o.trials, epochs: o.epochs, limit: o.limit,
    validation: o.validation, testLimit: o.testLimit, base,
  };
}

function checkPruning(value: unknown): Required<PruningOptions> {
  if (value === undefined) return { ...DEFAULT_PRUNING };
  const o = checkObject(value, 'pruning');
  checkKnownKeys(o, 'pruning', ['minTrials', 'graceEpochs', 'reductionFactor']);
  return {
    minTrials: checkInteger(o.minTrials ?? DEFAULT_PRUNING.minTrials, 'pruning.minTrials', 1),
    graceEpochs: checkInteger(o.graceEpochs ?? DEFAULT_PRUNING.graceEpochs, 'pruning.graceEpochs', 1),
    reductionFactor: checkInteger(o.reductionFactor ?? DEFAULT_PRUNING.reductionFactor, 'pruning.reductionFactor', 2),
  };
}

/** An SQLAlchemy URL: a scheme (dialect, optional +driver) and '://'. */
export function checkStorageUrl(value: unknown, name = 'storage'): string {
  const url = checkString(value, name);
  if (!/^[a-z][a-z0-9]*(\+[a-z0-9_]+)?:\/\//i.test(url)) {
    throw new RangeError(expected('an SQLAlchemy URL Optuna accepts, such as sqlite:///runs/tune/study.db or postgresql://user@host/db', name, value));
  }
  return url;
}

/** The study name: what Optuna stores (at most 512 characters). */
export function checkStudyName(value: unknown, name = 'study'): string {
  const study = checkString(value, name);
  if (study.length > 512) throw new RangeError(expected('a name of at most 512 characters', name, value));
  return study;
}

/** The default number of random trials before TPE or CMA-ES model the results: a quarter of the budget, 2 to 10 (Optuna's default). */
export function defaultStartupTrials(trials: number): number {
  return Math.min(10, Math.max(2, Math.round(trials / 4)));
}

/**
 * Checks every option of tune() before any work; throws TypeError/RangeError naming the option and
 * the value received.
 */
export function resolveTuneOptions(input: unknown): ResolvedTuneOptions {
  const o = checkObject(input, 'options');
  for (const [old, now] of Object.entries(REPLACED)) {
    if (o[old] !== undefined) throw new TypeError(`${expected(`no ${old} option (tune runs on Optuna now: use ${now})`, old, o[old])}`);
  }
  checkKnownKeys(o, 'tune options', [...TUNE_KEYS, ...BASE_KEYS]);
  const dir = checkString(o.dir, 'dir');
  const sampler = checkOneOf(o.sampler ?? 'tpe', 'sampler', SAMPLERS);
  const dimensions = checkSpace(o.space ?? DEFAULT_SPACE, sampler);
  let trials: number;
  if (sampler === 'grid') {
    if (o.trials !== undefined) {
      throw new TypeError(expected(`no trials option for sampler 'grid' (it runs all ${spaceSize(dimensions)} combinations of space)`, 'trials', o.trials));
    }
    trials = gridTrials(dimensions).length;
  } else {
    // Unless asked for, no more trials than a space of lists holds; never more than it holds.
    const size = spaceSize(dimensions);
    trials = checkInteger(o.trials ?? Math.min(DEFAULT_TRIALS, size), 'trials', 1, 100000);
    if (trials > size) {
      throw new RangeError(expected(`at most ${size} trials (the distinct combinations of space's lists; add a range or use sampler 'grid')`, 'trials', trials));
    }
  }
  if (sampler === 'cmaes' && dimensions.filter((d) => d.kind === 'range').length < 2) {
    throw new RangeError(expected("at least two ranges for sampler 'cmaes' (CMA-ES draws ranges together; lists are drawn at random beside it)", 'space', o.space ?? DEFAULT_SPACE));
  }
  const modelled = sampler === 'tpe' || sampler === 'cmaes';
  if (!modelled && o.startupTrials !== undefined) {
    throw new TypeError(expected(`no startupTrials option for sampler '${sampler}' (it is tpe's and cmaes')`, 'startupTrials', o.startupTrials));
  }
  const startupTrials = modelled ? checkInteger(o.startupTrials ?? defaultStartupTrials(trials), 'startupTrials', 1) : null;
  const epochs = checkInteger(o.epochs ?? 1, 'epochs', 1, 100000);
  const limit = optionalInteger(o.limit, 'limit');
  const validation = optionalInteger(o.validation, 'validation');
  const testLimit = optionalInteger(o.testLimit, 'testLimit');
  if (limit !== undefined && validation !== undefined && validation >= limit) {
    throw new RangeError(expected(`fewer than limit (${limit}) images, so that some are left to train on`, 'validation', validation));
  }
  const pruner = checkOneOf(o.pruner ?? 'median', 'pruner', PRUNERS);
  const pruning = checkPruning(o.pruning);
  const storage = o.storage === undefined ? undefined : checkStorageUrl(o.storage);
  const study = o.study === undefined ? path.basename(path.resolve(dir)) : checkStudyName(o.study);
  const workers = checkInteger(o.workers ?? 1, 'workers', 1, 256);
  const threads = o.threads === undefined ? undefined : checkInteger(o.threads, 'threads', 1, 4096);
  const heartbeat = checkInteger(o.heartbeat ?? DEFAULT_HEARTBEAT, 'heartbeat', 1, 3600);
  const retrain = checkBoolean(o.retrain ?? true, 'retrain');
  if (o.signal !== undefined && !(o.signal instanceof AbortSignal)) throw new TypeError(expected('an AbortSignal', 'signal', o.signal));
  if (o.onTrial !== undefined && typeof o.onTrial !== 'function') throw new TypeError(expected('a function', 'onTrial', o.onTrial));
  const base = baseOptions(o, dimensions);
  checkTrialOptions(base, dimensions, epochs);
  return {
    dir, sampler, dimensions, trials, epochs, limit, validation, testLimit, retrain, storage, study, workers, threads, heartbeat, base,
    signal: o.signal as AbortSignal | undefined, onTrial: o.onTrial as ResolvedTuneOptions['onTrial'],
    definition: searchDefinition({
      sampler: { kind: sampler, startupTrials }, pruner: { kind: pruner, ...pruning }, dimensions, trials, epochs,
      limit: limit ?? null, validation: validation ?? null, testLimit: testLimit ?? null, base,
    }),
  };
}

/** libtorch threads per worker: the given number, else this machine's cores shared among the workers. */
export function threadsPerWorker(workers: number, threads?: number): number {
  return threads ?? Math.max(1, Math.floor(os.availableParallelism() / workers));
}
