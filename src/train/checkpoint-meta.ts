// A checkpoint's metadata (the JSON under convscope.meta) parsed into typed values. The archive's
// CRCs only prove that the bytes are the ones written, not that whoever wrote them wrote sensible
// values: a crafted or hand-edited file can say `epoch: "1"` (which would train no epoch) or
// `epoch: -5` (epochs numbered -4..2). Every field resume relies on is checked here, and an error
// names the file and the field.
import type { OptimizerSettings } from '../core/native';
import { CheckpointError } from '../formats/checkpoint';
import { checkBoolean, checkInteger, checkNumber, checkObject, checkOneOf, expected } from '../util/validate';
import type { EpochRecord } from './options';
import { checkTta } from './tta';
import { checkEma } from './ema';

export { CheckpointError };

/**
 * Where an epoch stopped when an abort wrote the checkpoint: steps done and the totals so far. The
 * totals are the whole group's (a single process's own): rank 0's scaled by the number of ranks.
 */
export interface PartialEpoch {
  /** Steps of each rank's share of the epoch (a single process's steps). */
  step: number;
  lossSum: number;
  correct: number;
  seen: number;
  /**
   * Images of the epoch's permutation done, over all ranks (global samples): where any number of
   * ranks continues. Absent in checkpoints written before it was recorded: they continue at `step`.
   */
  samples?: number;
  /** The ranks of the run that wrote it (1 for a single process); absent in older checkpoints. */
  worldSize?: number;
}

/** Where training stood when a checkpoint was written; enough to resume. */
export interface TrainingState {
  /** Epochs completed. */
  epoch: number;
  seed: number;
  /** One record per completed epoch, epochs 1 to `epoch`. */
  history: EpochRecord[];
  options: Record<string, unknown>;
  /** Set when an abort wrote the checkpoint during epoch `epoch + 1`. */
  partial?: PartialEpoch;
}

const OPTIMIZER_KINDS = ['adam', 'adamw', 'sgd'] as const;
const RECORD_NUMBERS = ['trainLoss', 'trainAccuracy', 'testLoss', 'testAccuracy', 'seconds', 'imagesPerSecond', 'learningRate'] as const;
const OPTIONAL_RECORD_NUMBERS = ['validationLoss', 'validationAccuracy', 'evaluationSeconds'] as const;

/** Runs a field's check and turns its TypeError/RangeError into a CheckpointError naming the file. */
function field<T>(file: string, check: () => T): T {
  try {
    return check();
  } catch (err) {
    if (err instanceof CheckpointError) throw err;
    throw new CheckpointError(file, `has invalid metadata: ${(err as Error).message}`);
  }
}

/** A number as JSON can hold it: finite (JSON has no NaN). */
function anyNumber(value: unknown, name: string): number {
  return checkNumber(value, name);
}

function parseRecord(value: unknown, index: number): EpochRecord {
  const name = `training.history[${index}]`;
  const r = checkObject(value, name);
  const epoch = checkInteger(r.epoch, `${name}.epoch`, 1);
  if (epoch !== index + 1) throw new RangeError(expected(`epoch ${index + 1}`, `${name}.epoch`, r.epoch));
  const record = { epoch } as EpochRecord;
  for (const key of RECORD_NUMBERS) record[key] = anyNumber(r[key], `${name}.${key}`);
  for (const key of OPTIONAL_RECORD_NUMBERS) if (r[key] !== undefined) record[key] = anyNumber(r[key], `${name}.${key}`);
  if (r.evaluatedWith !== undefined) {
    // How the epoch was evaluated (TTA, the weight average): kept through a resume, checked as the options are.
    const how = checkObject(r.evaluatedWith, `${name}.evaluatedWith`);
    const tta = how.tta !== undefined ? checkTta(how.tta, `${name}.evaluatedWith.tta`) : undefined;
    const ema = how.ema !== undefined ? checkEma(how.ema, `${name}.evaluatedWith.ema`) : undefined;
    record.evaluatedWith = { ...(tta ? { tta } : {}), ...(ema ? { ema } : {}) };
  }
  return record;
}

function parsePartial(value: unknown): PartialEpoch {
  const p = checkObject(value, 'training.partial');
  const step = checkInteger(p.step, 'training.partial.step', 1);
  const seen = checkInteger(p.seen, 'training.partial.seen', 1);
  return {
    step,
    seen,
    lossSum: checkNumber(p.lossSum, 'training.partial.lossSum', 0),
    correct: checkInteger(p.correct, 'training.partial.correct', 0, seen),
    ...(p.samples === undefined ? {} : { samples: checkInteger(p.samples, 'training.partial.samples', 1) }),
    ...(p.worldSize === undefined ? {} : { worldSize: checkInteger(p.worldSize, 'training.partial.worldSize', 1, 1 << 20) }),
  };
}

/** training: completed epochs, seed, one history record per completed epoch, options, where an abort stopped. */
export function parseTrainingState(file: string, value: unknown): TrainingState {
  return field(file, () => {
    const t = checkObject(value, 'training');
    const epoch = checkInteger(t.epoch, 'training.epoch', 0, 100000);
    if (!Array.isArray(t.history)) throw new TypeError(expected('an array of epoch records', 'training.history', t.history));
    if (t.history.length !== epoch) throw new RangeError(expected(`${epoch} epoch records (training.epoch)`, 'training.history', t.history));
    return {
      epoch,
      seed: checkInteger(t.seed, 'training.seed', 0, Number.MAX_SAFE_INTEGER),
      history: t.history.map(parseRecord),
      options: checkObject(t.options ?? {}, 'training.options'),
      ...(t.partial === undefined ? {} : { partial: parsePartial(t.partial) }),
    };
  });
}

/** optimizer: the settings the saved optimizer state belongs to. */
export function parseOptimizerSettings(file: string, value: unknown): OptimizerSettings {
  return field(file, () => {
    const o = checkObject(value, 'optimizer');
    const settings: OptimizerSettings = {
      kind: checkOneOf(o.kind, 'optimizer.kind', OPTIMIZER_KINDS),
      learningRate: checkNumber(o.learningRate, 'optimizer.learningRate', 0, Infinity, { exclusiveMin: true }),
    };
    if (o.momentum !== undefined) settings.momentum = checkNumber(o.momentum, 'optimizer.momentum', 0, 1, { exclusiveMax: true });
    if (o.nesterov !== undefined) settings.nesterov = checkBoolean(o.nesterov, 'optimizer.nesterov');
    if (o.weightDecay !== undefined) settings.weightDecay = checkNumber(o.weightDecay, 'optimizer.weightDecay', 0);
    for (const key of ['beta1', 'beta2', 'epsilon'] as const) {
      if (o[key] !== undefined) settings[key] = checkNumber(o[key], `optimizer.${key}`, 0, Infinity, { exclusiveMin: key === 'epsilon' });
    }
    return settings;
  });
}

/** mode: the execution path the model was saved from. */
export function parseMode<T extends string>(file: string, value: unknown, modes: readonly T[]): T {
  return field(file, () => checkOneOf(value, 'mode', modes));
}
