// tune's options: their defaults, and the validation of all of them (every trial's trainCnn options
// included) before any data is loaded or any trial trains.
import { recordableOptions, resolveTrainOptions } from '../train/options';
import { checkBoolean, checkInteger, checkKnownKeys, checkObject, checkOneOf, checkString, expected } from '../util/validate';
import { checkEarlyStopping, EarlyStopping, EarlyStoppingOptions } from './early-stopping';
import { checkSpace, describeParams, Dimension, gridTrials, randomTrials, SearchKind, SEARCHES, SearchSpace, spaceSize, TrialParams } from './space';
import { BASE_KEYS, trialTrainOptions, TuneBaseOptions } from './trial-options';
import type { TuneEvent } from './trial';

/**
 * Options of tune(). Besides these, the trainCnn options in BASE_KEYS (dataset, spec, mode, device,
 * seed, augment, optimizer, ...) are the base every trial starts from; a hyperparameter in `space`
 * must not also be given there.
 */
export interface TuneOptions extends TuneBaseOptions {
  /** The search folder: trials.json (what resumes), tune.json, tune.png and the best model. Required. */
  dir: string;
  /** What to search (default DEFAULT_SPACE). */
  space?: SearchSpace;
  /** 'random' (default): `trials` draws; 'grid': every combination of the space's lists. */
  search?: SearchKind;
  /** Random search: the number of trials (default 10, or all the combinations of a space of lists with fewer). */
  trials?: number;
  /** Epochs of each trial and of the retraining of the best (default 1). */
  epochs?: number;
  /** Use the first `limit` training images (the validation split comes out of them). */
  limit?: number;
  /** Training images held out for validation, the last ones (default 10% of the training images used). */
  validation?: number;
  /** The final test of the retrained best uses the first `testLimit` test images (default all). */
  testLimit?: number;
  /** The median stopping rule (default { minTrials: 3, graceEpochs: 1 }); false: every trial runs all its epochs. */
  earlyStopping?: EarlyStoppingOptions | false;
  /** Retrain the best trial on training + validation images and test it once (default true). */
  retrain?: boolean;
  /** Aborting stops the trial under way; finished trials stay in trials.json and a rerun resumes. */
  signal?: AbortSignal;
  /** Progress: trials starting, epochs, trials ending or skipped on resume, the retraining. */
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

const TUNE_KEYS = ['dir', 'space', 'search', 'trials', 'epochs', 'limit', 'validation', 'testLimit', 'earlyStopping', 'retrain', 'signal', 'onTrial'];

/** What makes two searches the same search: a rerun resumes only when this is equal to the stored one. */
export interface SearchDefinition {
  search: SearchKind;
  space: Dimension[];
  trials: number;
  epochs: number;
  limit: number | null;
  validation: number | null;
  testLimit: number | null;
  earlyStopping: EarlyStopping;
  /** The base trainCnn options, defaults filled in (dataDir and the evaluation chunk left out: they change no result). */
  base: Record<string, unknown>;
}

export interface ResolvedTuneOptions {
  dir: string;
  search: SearchKind;
  /** Every trial's hyperparameters, trial 1 first. */
  trials: TrialParams[];
  epochs: number;
  limit?: number;
  validation?: number;
  testLimit?: number;
  earlyStopping: EarlyStopping;
  retrain: boolean;
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

/**
 * Every trial's trainCnn options checked as trainCnn would check them, so that a bad spec or a
 * combination the network cannot take (a kernel larger than the image) fails now, naming the trial,
 * and not hours into the search.
 */
function checkTrials(base: TuneBaseOptions, trials: TrialParams[], epochs: number): void {
  trials.forEach((params, i) => {
    try {
      resolveTrainOptions(trialTrainOptions(base, params, epochs));
    } catch (err) {
      (err as Error).message = `trial ${i + 1} (${describeParams(params)}): ${(err as Error).message}`;
      throw err;
    }
  });
}

type DefinitionParts = Omit<SearchDefinition, 'space' | 'trials' | 'base'> & { dimensions: Dimension[]; trials: TrialParams[]; base: TuneBaseOptions };

function searchDefinition(o: DefinitionParts): SearchDefinition {
  // The base as trainCnn resolves it, defaults filled in: a default that changes between versions
  // makes an old search folder a different search, as it should.
  const recorded = recordableOptions(resolveTrainOptions({ ...o.base, epochs: o.epochs }));
  // The searched keys vary by trial and epochs is the search's own; dataDir and the evaluation
  // chunk change no result.
  const dropped = new Set<string>(['dataDir', 'evalChunkSize', 'epochs', ...o.dimensions.map((d) => d.key)]);
  const base: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(recorded)) if (!dropped.has(key) && value !== undefined) base[key] = value;
  return {
    search: o.search, space: o.dimensions, trials: o.trials.length, epochs: o.epochs, limit: o.limit,
    validation: o.validation, testLimit: o.testLimit, earlyStopping: o.earlyStopping, base,
  };
}

/**
 * Checks every option of tune() before any work; throws TypeError/RangeError naming the option and
 * the value received.
 */
export function resolveTuneOptions(input: unknown): ResolvedTuneOptions {
  const o = checkObject(input, 'options');
  checkKnownKeys(o, 'tune options', [...TUNE_KEYS, ...BASE_KEYS]);
  const dir = checkString(o.dir, 'dir');
  const search = checkOneOf(o.search ?? 'random', 'search', SEARCHES);
  const dimensions = checkSpace(o.space ?? DEFAULT_SPACE, search);
  let trials: TrialParams[];
  if (search === 'grid') {
    if (o.trials !== undefined) {
      throw new TypeError(expected(`no trials option for search 'grid' (it runs all ${spaceSize(dimensions)} combinations of space)`, 'trials', o.trials));
    }
    trials = gridTrials(dimensions);
  } else {
    // Unless asked for, no more trials than a space of lists holds.
    const count = checkInteger(o.trials ?? Math.min(DEFAULT_TRIALS, spaceSize(dimensions)), 'trials', 1, 100000);
    trials = randomTrials(dimensions, count, checkInteger(o.seed ?? 42, 'seed', 0, Number.MAX_SAFE_INTEGER));
  }
  const epochs = checkInteger(o.epochs ?? 1, 'epochs', 1, 100000);
  const limit = optionalInteger(o.limit, 'limit');
  const validation = optionalInteger(o.validation, 'validation');
  const testLimit = optionalInteger(o.testLimit, 'testLimit');
  if (limit !== undefined && validation !== undefined && validation >= limit) {
    throw new RangeError(expected(`fewer than limit (${limit}) images, so that some are left to train on`, 'validation', validation));
  }
  const earlyStopping = checkEarlyStopping(o.earlyStopping);
  const retrain = checkBoolean(o.retrain ?? true, 'retrain');
  if (o.signal !== undefined && !(o.signal instanceof AbortSignal)) throw new TypeError(expected('an AbortSignal', 'signal', o.signal));
  if (o.onTrial !== undefined && typeof o.onTrial !== 'function') throw new TypeError(expected('a function', 'onTrial', o.onTrial));
  const base = baseOptions(o, dimensions);
  checkTrials(base, trials, epochs);
  return {
    dir, search, trials, epochs, limit, validation, testLimit, earlyStopping, retrain, base,
    signal: o.signal as AbortSignal | undefined, onTrial: o.onTrial as ResolvedTuneOptions['onTrial'],
    definition: searchDefinition({
      search, dimensions, trials, epochs, limit: limit ?? null, validation: validation ?? null, testLimit: testLimit ?? null, earlyStopping, base,
    }),
  };
}

