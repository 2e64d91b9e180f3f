// A search as an Optuna study: what convscope stores in it (the study's user attribute `convscope`:
// the search's definition, the images it runs on, and what a worker on another machine needs to
// train its trials), the checks that a stored study is this search, the sampler, pruner and
// distributions a worker configures from it, and its trials read back as convscope's trial results.
import * as fs from 'fs';
import * as path from 'path';
import { checkInteger, checkNumber, checkObject, checkString, expected } from '../util/validate';
import type { PrunerConfig, SamplerConfig, StoredTrial, StudyDescription, WireDistribution } from './optuna-helper';
import { DEFAULT_PRUNING, ResolvedTuneOptions, SearchDefinition, STUDY_FILE } from './options';
import { BEST_MODEL_FILE } from './retrain';
import { decodeParams, Dimension, distributionsOf, gridOf, SPACE_KEYS } from './space';
import type { SearchData } from './splits';
import type { RetrainResult, TrialResult, TrialStatus } from './trial';
import type { TuneBaseOptions } from './trial-options';

export const STUDY_ATTR = 'convscope';
export const RETRAIN_ATTR = 'convscope_retrain';
const FORMAT = 'convscope-tune-study';
const VERSION = 1;
/** The search folder's file of convscope before tune ran on Optuna. */
export const OLD_TRIALS_FILE = 'trials.json';

/** The study's `convscope` user attribute. */
export interface StudyAttrs {
  format: typeof FORMAT;
  version: typeof VERSION;
  definition: SearchDefinition;
  data: SearchData['fingerprint'];
  /** What a worker started elsewhere (`convscope tune --worker`) trains with. */
  worker: {
    /** The base trainCnn options without the data (dataset and dataDir). */
    base: Omit<TuneBaseOptions, 'dataset' | 'dataDir'>;
    /** The dataset's name, which a worker loads itself; null when the search was given the images in memory. */
    dataset: string | null;
  };
}

/** The default storage: the study file in the search folder. */
export function defaultStorage(dir: string): string {
  return `sqlite:///${path.resolve(dir, STUDY_FILE)}`;
}

/** A storage URL for messages: without its password. @example redactUrl('postgresql://me:secret@db/x') // 'postgresql://me:***@db/x' */
export function redactUrl(url: string): string {
  return url.replace(/^([a-z][a-z0-9+]*:\/\/[^:/@]*):[^@/]*@/i, '$1:***@');
}

/** How messages name a study: `study "name" in <storage>`. */
export function studyLabel(storage: string, study: string): string {
  const file = storage.startsWith('sqlite:///') ? storage.slice('sqlite:///'.length) : undefined;
  return `study "${study}" in ${file ?? redactUrl(storage)}`;
}

/** The study's convscope attribute for a new search. */
export function studyAttrs(options: ResolvedTuneOptions, data: SearchData): StudyAttrs {
  const { dataset, dataDir: _dataDir, ...base } = options.base;
  return {
    format: FORMAT, version: VERSION, definition: options.definition, data: data.fingerprint,
    worker: { base, dataset: typeof dataset === 'object' ? null : dataset ?? 'fashion-mnist' },
  };
}

/** A folder of convscope before Optuna: refused, saying why and what to do. */
export function refuseOldFolder(dir: string): void {
  const file = path.join(dir, OLD_TRIALS_FILE);
  if (fs.existsSync(file)) {
    throw new Error(`${file} is a search of convscope before tune ran on Optuna; this version cannot resume it (its trials were drawn ` +
      'by another sampler). Give another dir for a new search; the old folder\'s tune.json, tune.png and best.pt stay as they are');
  }
}

/** JSON with sorted keys: two definitions are the same search when these strings are equal. */
function canonical(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) => (v && typeof v === 'object' && !Array.isArray(v)
    ? Object.fromEntries(Object.entries(v as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
    : v));
}

/** The paths (up to two levels deep) where two definitions differ, for the error message. */
function differences(a: unknown, b: unknown, at: string, depth = 2): string[] {
  const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
  if (depth > 0 && isObject(a) && isObject(b)) {
    const keys = [...new Set([...Object.keys(a), ...Object.keys(b)])];
    return keys.flatMap((k) => differences(a[k], b[k], at ? `${at}.${k}` : k, depth - 1));
  }
  return canonical(a) === canonical(b) ? [] : [at];
}

/** A stored and a new value side by side, kept short. */
function contrast(stored: unknown, now: unknown, at: string): string {
  const short = (v: unknown): string => {
    const text = v === undefined ? 'none' : canonical(v);
    return text.length > 60 ? `${text.slice(0, 57)}...` : text;
  };
  return `${at}: ${short(stored)} there, ${short(now)} now`;
}

function valueAt(root: unknown, at: string): unknown {
  return at.split('.').reduce<unknown>((v, k) => (v as Record<string, unknown> | undefined)?.[k], root);
}

function mismatch(label: string, what: string, a: unknown, b: unknown): Error | undefined {
  const diff = differences(a, b, '');
  if (diff.length === 0) return undefined;
  const details = diff.map((at) => contrast(valueAt(a, at), valueAt(b, at), at)).join('; ');
  return new Error(`${label} holds a different search (${what}: ${details}). ` +
    'Resume it with the options it was started with, or give another study name (--study) for a new search.');
}

/**
 * The convscope attribute of a stored study, checked field by field: a study created by another
 * program (no such attribute, or a direction other than maximize), by another version, or edited by
 * hand fails here, naming what is wrong, before any data is loaded.
 */
export function storedAttrs(described: StudyDescription, label: string, searchedKeys: readonly string[]): StudyAttrs {
  const attrs = described.userAttrs?.[STUDY_ATTR];
  if (attrs === undefined || JSON.stringify(described.directions) !== '["maximize"]') {
    const params = described.paramNames ?? [];
    throw new Error(`${label} was not created by convscope tune (it has no convscope search definition` +
      `${params.length > 0 ? `; its ${described.trialCount} trial(s) search ${params.join(', ')}` : ''}; this search: ${searchedKeys.join(', ')}). ` +
      'Give another study name (--study), or another storage, for this search');
  }
  try {
    const a = checkObject(attrs, STUDY_ATTR);
    if (a.format !== FORMAT || a.version !== VERSION) {
      throw new RangeError(expected(`format "${FORMAT}" version ${VERSION}`, `${STUDY_ATTR}.format and version`, `${String(a.format)} ${String(a.version)}`));
    }
    const d = checkObject(a.definition, `${STUDY_ATTR}.definition`);
    checkObject(d.sampler, `${STUDY_ATTR}.definition.sampler`);
    checkObject(d.pruner, `${STUDY_ATTR}.definition.pruner`);
    if (!Array.isArray(d.space)) throw new TypeError(expected('an array', `${STUDY_ATTR}.definition.space`, d.space));
    checkInteger(d.trials, `${STUDY_ATTR}.definition.trials`, 1);
    checkInteger(d.epochs, `${STUDY_ATTR}.definition.epochs`, 1);
    checkObject(d.base, `${STUDY_ATTR}.definition.base`);
    const data = checkObject(a.data, `${STUDY_ATTR}.data`);
    checkString(data.sha256, `${STUDY_ATTR}.data.sha256`);
    const worker = checkObject(a.worker, `${STUDY_ATTR}.worker`);
    checkObject(worker.base, `${STUDY_ATTR}.worker.base`);
    if (worker.dataset !== null) checkString(worker.dataset, `${STUDY_ATTR}.worker.dataset`);
  } catch (err) {
    throw Object.assign(new Error(`${label} has a convscope attribute this version cannot use: ${(err as Error).message}; ` +
      'give another study name (--study) for a new search'), { name: (err as Error).name });
  }
  return attrs as StudyAttrs;
}

/** Throws unless the stored study is this search (every option that changes a trial's result). */
export function checkSameSearch(attrs: StudyAttrs, definition: SearchDefinition, label: string): void {
  const err = mismatch(label, 'options that differ', attrs.definition, definition);
  if (err) throw err;
}

/** Throws unless the stored study ran on these images. */
export function checkSameData(attrs: StudyAttrs, data: SearchData['fingerprint'], label: string): void {
  const err = mismatch(label, 'different images', { data: attrs.data }, { data });
  if (err) throw err;
}

/** The sampler, pruner and distributions of a stored definition: what every worker configures its helper with. */
export function optunaConfig(definition: SearchDefinition): { sampler: SamplerConfig; pruner: PrunerConfig; distributions: WireDistribution[] } {
  const space = definition.space;
  const seed = Number(definition.base.seed ?? 42);
  const kind = definition.sampler.kind;
  return {
    sampler: {
      kind, seed,
      ...(definition.sampler.startupTrials !== null ? { startupTrials: definition.sampler.startupTrials } : {}),
      ...(kind === 'grid' ? { grid: gridOf(space) } : {}),
    },
    pruner: { ...DEFAULT_PRUNING, ...definition.pruner, epochs: definition.epochs },
    distributions: distributionsOf(space),
  };
}

const numbers = (value: unknown): number[] => (Array.isArray(value) ? value.filter((v): v is number => typeof v === 'number') : []);
const lastOf = (values: number[]): number | null => (values.length > 0 ? values[values.length - 1] : null);

/** A stored trial as convscope reports it (a waiting trial with no parameters yet is not one: undefined). */
export function trialResult(t: StoredTrial, dimensions: Dimension[]): TrialResult | undefined {
  if (t.state === 'waiting') return undefined;
  const a = t.userAttrs;
  const curve = t.intermediate.map(([, v]) => v).filter((v): v is number => v !== null);
  const losses = numbers(a.validation_loss);
  const trainAccuracies = numbers(a.train_accuracy);
  let status: TrialStatus;
  switch (t.state) {
    case 'complete': status = 'completed'; break;
    case 'pruned': status = 'pruned'; break;
    case 'running': status = 'running'; break;
    default: status = a.status === 'diverged' ? 'diverged' : 'failed';
  }
  const seconds = typeof a.seconds === 'number' ? a.seconds
    : t.start && t.complete ? (Date.parse(t.complete) - Date.parse(t.start)) / 1000 : null;
  return {
    trial: t.number, params: decodeParams(dimensions, t.params), status, epochs: curve.length,
    validationAccuracy: status === 'completed' && t.value !== null ? t.value : lastOf(curve),
    validationLoss: lastOf(losses), trainAccuracy: lastOf(trainAccuracies), curve,
    ...(typeof a.reason === 'string' ? { reason: a.reason } : {}),
    ...(typeof a.pruned_below_median === 'number' ? { prunedBelowMedian: a.pruned_below_median } : {}),
    ...(t.retryOf !== null && t.retryOf !== undefined ? { retryOf: t.retryOf } : {}),
    ...(typeof a.worker === 'string' ? { worker: a.worker } : {}),
    seconds,
  };
}

/** Trials with an outcome: completed, pruned or diverged (a failed trial is run again; it is not one). */
export function finished(trials: TrialResult[]): TrialResult[] {
  return trials.filter((t) => t.status === 'completed' || t.status === 'pruned' || t.status === 'diverged');
}

/** The stored retraining of the best, when it is of `trial` and its model is in the folder. */
export function storedRetrain(userAttrs: Record<string, unknown>, trial: number, dir: string): RetrainResult | undefined {
  const r = userAttrs[RETRAIN_ATTR] as RetrainResult | undefined;
  try {
    const o = checkObject(r, RETRAIN_ATTR);
    if (o.trial !== trial || o.model !== BEST_MODEL_FILE) return undefined;
    checkNumber(o.testAccuracy, 'testAccuracy');
    checkNumber(o.testLoss, 'testLoss');
  } catch {
    return undefined;
  }
  return fs.existsSync(path.join(dir, BEST_MODEL_FILE)) ? r : undefined;
}

/** The searched keys, in the space's order, for messages. */
export function searchedKeys(dimensions: Dimension[]): string[] {
  return SPACE_KEYS.filter((k) => dimensions.some((d) => d.key === k));
}
