// The options every experiment shares (data, budget, training settings, output folder), checked
// once, and the one load of the dataset all of an experiment's trainings use.
import * as path from 'path';
import { loadDataset } from '../data/datasets';
import { MODES, type ExecutionMode } from '../nn/model';
import { CnnSpec, defaultSpec, planModel } from '../nn/spec';
import { DATASETS, DatasetName, DEFAULT_OPTIMIZER, DEVICES, InMemoryDataset, OPTIMIZERS } from '../train/options';
import { presetOptions } from '../train/presets';
import { specForData } from '../train/training-data';
import { checkInteger, checkKnownKeys, checkNumber, checkObject, checkOneOf, checkString, expected } from '../util/validate';

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
  /** 'adam' (default, as trainCnn's) or 'sgd'. */
  optimizer?: (typeof OPTIMIZERS)[number];
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
  'dataset', 'dataDir', 'epochs', 'limit', 'testLimit', 'seed', 'batchSize', 'learningRate', 'optimizer', 'mode', 'device', 'spec', 'outDir', 'log',
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
  optimizer: (typeof OPTIMIZERS)[number];
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
  const given = o.spec as CnnSpec | undefined;
  const plan = planModel(given ?? defaultSpec());
  if (plan.conv.length === 0) throw new RangeError(`Expected at least one conv layer in spec for ${name} but received none`);
  if (o.log !== undefined && typeof o.log !== 'function') throw new TypeError(expected('a function', 'log', o.log));
  const limit = checkLimit(o.limit, 'limit', DEFAULT_LIMIT);
  const testLimit = checkLimit(o.testLimit, 'testLimit', DEFAULT_TEST_LIMIT);
  const dataset = resolveDataset(o.dataset, o.dataDir, limit, testLimit);
  // Without a spec, the tutorial's network shaped for the data (its channels, size and classes: colour data too).
  const spec = given ?? planModel(specForData(presetOptions('tutorial', dataset.name).spec, dataset.train, dataset.classNames)).spec;
  const base: ResolvedExperiment = {
    name,
    dataset,
    epochs: checkInteger(o.epochs ?? 1, 'epochs', 1, 100000),
    limit,
    testLimit,
    seed: checkInteger(o.seed ?? 42, 'seed', 0, Number.MAX_SAFE_INTEGER),
    batchSize: checkInteger(o.batchSize ?? 128, 'batchSize', 1, 1 << 24),
    learningRate: checkNumber(o.learningRate ?? 1e-3, 'learningRate', 0, Infinity, { exclusiveMin: true }),
    optimizer: checkOneOf(o.optimizer ?? DEFAULT_OPTIMIZER, 'optimizer', OPTIMIZERS),
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
  return loadDataset(name, { dataDir: dir, limit: { train: limit, test: testLimit } });
}

/** Checks a list of distinct positive integers (kernel sizes, filter counts); returns it sorted ascending. @example checkCountList([5, 3], 'sizes', 56) // [3, 5] */
export function checkCountList(value: unknown, name: string, max: number): number[] {
  if (!Array.isArray(value) || value.length === 0) throw new TypeError(expected('a non-empty array of positive integers', name, value));
  const list = value.map((v, i) => checkInteger(v, `${name}[${i}]`, 1, max));
  if (new Set(list).size !== list.length) throw new RangeError(expected('distinct values', name, value));
  return [...list].sort((a, b) => a - b);
}
