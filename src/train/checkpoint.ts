// Checkpoints as training writes and reads them: a model with its optimizer state and where training
// stood (the file format itself is formats/checkpoint.ts). Loading builds a CnnModel and records the
// optimizer state beside it, so that `model.save(path, { includeOptimizer: true })` keeps it.
import type { NativeOptimizer, NativeTensor, OptimizerSettings } from '../core/native';
import { writeFileAtomic } from '../util/fs-atomic';
import {
  CHECKPOINT_FORMAT, CheckpointEntries, CheckpointError, INPUT_MEAN_KEY, INPUT_STD_KEY, META_KEY, OPTIMIZER_KEY, optimizerStateEntry, readCheckpointEntries, vectorEntry,
} from '../formats/checkpoint';
import { CnnModel, ExecutionMode, freshBuffer, InputNorm, leafCopy, MODES, stateCopy, NO_NORM } from '../nn/model';
import { checkInputNorm } from '../nn/model-options';
import { ANY_TRAINING, checkModelFits, trainingFootprint } from '../nn/model-memory';
import { recordOptimizerState } from '../nn/optimizer-state';
import { BufferShape, CnnSpec, planModel, specsEqual } from '../nn/spec';
import { checkObject, checkOneOf, checkString, expected } from '../util/validate';
import { parseMode, parseOptimizerSettings, parseTrainingState, TrainingState } from './checkpoint-meta';

export { CheckpointError, isCheckpointKey } from '../formats/checkpoint';
export type { OptimizerSnapshot } from '../formats/checkpoint';
export type { PartialEpoch, TrainingState } from './checkpoint-meta';

export interface CheckpointMeta {
  format: string;
  spec: CnnSpec;
  mode: ExecutionMode;
  inputNorm: InputNorm;
  optimizer?: OptimizerSettings;
  training?: TrainingState;
}

export interface SaveOptions {
  /** Also store this optimizer's state (moments, step counts) so training can resume exactly. */
  optimizer?: { native: NativeOptimizer; settings: OptimizerSettings };
  /**
   * Store the optimizer state the model kept from its last training (trainCnn keeps it), so that
   * `trainCnn({ resumeFrom })` continues exactly. An error if the model has none.
   */
  includeOptimizer?: boolean;
  training?: TrainingState;
}

/** Writes a checkpoint atomically: a crash mid-write leaves the previous checkpoint intact. */
export function saveCheckpoint(file: string, model: CnnModel, options: SaveOptions = {}): void {
  checkString(file, 'path');
  const optimizer = options.optimizer && { settings: options.optimizer.settings, state: options.optimizer.native.saveState() };
  writeFileAtomic(file, model.checkpointBytes({ includeOptimizer: options.includeOptimizer, optimizer, training: options.training }));
}

export interface LoadedCheckpoint {
  model: CnnModel;
  meta: CheckpointMeta;
  /** The optimizer's saved state, when the checkpoint has one. */
  optimizerState?: Buffer;
}

export interface LoadOptions {
  /** Execution path of the loaded model (default: the one it was saved from). */
  mode?: ExecutionMode;
  device?: string;
  /** The spec of a plain PyTorch state dict that carries no convscope metadata. */
  spec?: CnnSpec;
  /**
   * The input standardisation of a plain state dict (default: its convscope.input_mean/input_std
   * tensors if it has them, else none). A convscope checkpoint carries its own.
   */
  inputNorm?: InputNorm;
}

/** A plain state dict's input standardisation: the caller's, else its own tensors, else none. */
function plainInputNorm(file: string, entries: CheckpointEntries, given: InputNorm | undefined): InputNorm {
  if (given) return checkInputNorm(given, 'inputNorm');
  const mean = vectorEntry(file, entries, INPUT_MEAN_KEY);
  const std = vectorEntry(file, entries, INPUT_STD_KEY);
  if (mean === undefined && std === undefined) return NO_NORM;
  const scalarShaped = (key: string) => (entries[key] as NativeTensor).shape.length === 0;
  if (mean === undefined || std === undefined || mean.length !== std.length || mean.length === 0 || !mean.every(Number.isFinite) ||
    !std.every((s) => s > 0 && Number.isFinite(s))) {
    throw new CheckpointError(file, `has an invalid input standardisation (${INPUT_MEAN_KEY} ${mean}, ${INPUT_STD_KEY} ${std})`);
  }
  // A scalar (or one-element) pair is the one-channel form; vectors hold one value per channel.
  if (scalarShaped(INPUT_MEAN_KEY) || mean.length === 1) return { mean: mean[0], std: std[0] };
  return { mean, std };
}

/** Whether a checkpoint's metadata inputNorm is well formed: numbers, or arrays of one per channel. */
function validNorm(norm: InputNorm): boolean {
  const values = (v: unknown) => (typeof v === 'number' ? [v] : Array.isArray(v) && v.length > 0 && v.every((x) => typeof x === 'number') ? v as number[] : undefined);
  const mean = values(norm.mean);
  const std = values(norm.std);
  if (!mean || !std || !mean.every(Number.isFinite) || !std.every((s) => s > 0 && Number.isFinite(s))) return false;
  return !(Array.isArray(norm.mean) && Array.isArray(norm.std) && mean.length !== std.length);
}

function parseMeta(file: string, raw: NativeTensor | string | undefined, spec: CnnSpec | undefined, inputNorm: () => InputNorm): CheckpointMeta {
  if (raw === undefined) {
    if (!spec) throw new CheckpointError(file, 'is a state dict without convscope metadata; pass { spec } to say which network it holds');
    return { format: CHECKPOINT_FORMAT, spec, mode: 'eager', inputNorm: inputNorm() };
  }
  if (typeof raw !== 'string') throw new CheckpointError(file, `entry ${META_KEY} is not a string`);
  let meta: CheckpointMeta;
  try {
    meta = JSON.parse(raw) as CheckpointMeta;
  } catch (err) {
    throw new CheckpointError(file, `entry ${META_KEY} is not valid JSON (${(err as Error).message})`);
  }
  if (!meta || typeof meta !== 'object' || meta.format !== CHECKPOINT_FORMAT) {
    throw new CheckpointError(file, `has format ${JSON.stringify(meta?.format)}, expected ${CHECKPOINT_FORMAT}`);
  }
  const norm = meta.inputNorm ?? NO_NORM;
  if (!validNorm(norm)) throw new CheckpointError(file, 'has an invalid inputNorm');
  // Typed from here on: resume trusts these fields (see checkpoint-meta.ts).
  return {
    format: meta.format,
    spec: meta.spec,
    mode: parseMode(file, meta.mode, MODES),
    inputNorm: norm,
    ...(meta.optimizer === undefined ? {} : { optimizer: parseOptimizerSettings(file, meta.optimizer) }),
    ...(meta.training === undefined ? {} : { training: parseTrainingState(file, meta.training) }),
  };
}

/** A spec passed to load a convscope checkpoint must be the one it holds: a different one would be silently ignored. */
function checkSameSpec(file: string, held: CnnSpec, given: CnnSpec | undefined): void {
  if (given === undefined || specsEqual(held, given)) return;
  throw new RangeError(`${expected(`the spec ${file} holds (${JSON.stringify(planModel(held).spec)})`, 'spec', given)}: ` +
    `${JSON.stringify(planModel(given).spec)} (a spec is only needed for plain state dicts)`);
}

/** The state-dict entry `name`, checked to be a tensor of `dtype` and `shape` (the spec's). */
function stateEntry(file: string, entries: CheckpointEntries, name: string, dtype: string, shape: number[]): NativeTensor {
  const tensor = entries[name];
  if (tensor === undefined || typeof tensor === 'string') throw new CheckpointError(file, `lacks the tensor ${name}`);
  if (tensor.dtype !== dtype) throw new CheckpointError(file, `has ${name} of dtype ${tensor.dtype}, expected ${dtype}`);
  if (tensor.shape.join('x') !== shape.join('x')) throw new CheckpointError(file, `has ${name} of shape [${tensor.shape}], expected [${shape}] for its spec`);
  return tensor;
}

/**
 * A buffer (batch normalisation's statistics) from the checkpoint, on `device`. A state dict from a
 * PyTorch older than 0.4.1 has no num_batches_tracked; its count then starts at 0, as PyTorch's
 * load_state_dict does.
 */
function bufferFrom(file: string, entries: CheckpointEntries, b: BufferShape, device: string): NativeTensor {
  if (entries[b.name] === undefined && b.name.endsWith('.num_batches_tracked')) return freshBuffer(b, device);
  return stateCopy(stateEntry(file, entries, b.name, b.dtype, b.shape), device);
}

/**
 * Reads a checkpoint written by saveCheckpoint (or a plain PyTorch state dict, given its spec). A
 * spec whose model cannot fit in memory with what training adds (see checkModelFits) is refused
 * before any parameter is copied, naming its parameter count and bytes.
 */
export function loadCheckpoint(file: string, options: LoadOptions = {}): LoadedCheckpoint {
  checkString(file, 'path');
  checkObject(options, 'options');
  const entries = readCheckpointEntries(file);
  const owned = Object.values(entries).filter((v): v is NativeTensor => typeof v !== 'string');
  const params = new Map<string, NativeTensor>();
  try {
    const meta = parseMeta(file, entries[META_KEY], options.spec, () => plainInputNorm(file, entries, options.inputNorm));
    if (entries[META_KEY] !== undefined && options.inputNorm !== undefined) {
      const given = checkInputNorm(options.inputNorm, 'inputNorm');
      if (JSON.stringify(given) !== JSON.stringify({ mean: meta.inputNorm.mean, std: meta.inputNorm.std })) {
        throw new CheckpointError(file, `carries its own inputNorm ${JSON.stringify(meta.inputNorm)}; loadModel's inputNorm (${JSON.stringify(given)}) is only for plain state dicts`);
      }
    }
    let plan;
    try {
      plan = planModel(meta.spec);
    } catch (err) {
      throw new CheckpointError(file, `holds an invalid spec (${(err as Error).message})`);
    }
    if (entries[META_KEY] !== undefined) checkSameSpec(file, meta.spec, options.spec);
    const mode = options.mode === undefined ? meta.mode : checkOneOf(options.mode, 'mode', MODES);
    const device = options.device ?? 'cpu';
    try {
      // The optimizer the checkpoint was trained with, where it says: its training is what resuming continues.
      checkModelFits(plan, device, meta.optimizer ? trainingFootprint(meta.optimizer.kind, meta.optimizer.momentum) : ANY_TRAINING);
    } catch (err) {
      throw new CheckpointError(file, `holds a spec whose model cannot fit in memory (${(err as Error).message})`);
    }
    for (const p of plan.parameters) params.set(p.name, leafCopy(stateEntry(file, entries, p.name, 'float32', p.shape), device));
    for (const b of plan.buffers) params.set(b.name, bufferFrom(file, entries, b, device));
    const optimizerState = optimizerStateEntry(file, entries);
    if (optimizerState && !meta.optimizer) throw new CheckpointError(file, `has an optimizer state (${OPTIMIZER_KEY}) but no optimizer settings in its metadata`);
    const model = new CnnModel(plan, params, mode, device, meta.inputNorm ?? NO_NORM);
    if (optimizerState && meta.optimizer) recordOptimizerState(model, { settings: meta.optimizer, state: optimizerState });
    return { model, meta, optimizerState };
  } catch (err) {
    for (const t of params.values()) t.dispose();
    throw err;
  } finally {
    for (const t of owned) t.dispose();
  }
}

/**
 * Loads a model saved with `model.save(path)`.
 * @example const model = loadModel('runs/x/model.pt'); const probs = model.predict(images);
 */
export function loadModel(file: string, options: LoadOptions = {}): CnnModel {
  return loadCheckpoint(file, options).model;
}
