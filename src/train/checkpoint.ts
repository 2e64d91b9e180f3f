// Checkpoints in PyTorch's own format: torch.load(path) in Python (weights_only=True, PyTorch 2.x's
// default, included) returns a dict whose tensor entries are the model's state dict under PyTorch's
// names (conv1.weight, ...). convscope's own entries are prefixed "convscope.": the input
// standardisation as two float32 scalars (convscope.input_mean, convscope.input_std: the network
// expects (pixels / 255 - mean) / std), the spec and training state as JSON, the optimizer state as
// bytes. In Python drop them with {k: v for k, v in sd.items() if not k.startswith('convscope.')}.
import { writeFileAtomic } from '../fs-atomic';
import { readRegularFile, UnreadableFileError } from '../fs-read';
import { checkArchive } from './archive-check';
import { CheckpointError, parseMode, parseOptimizerSettings, parseTrainingState, TrainingState } from './checkpoint-meta';
import { native, NativeOptimizer, NativeTensor, OptimizerSettings } from '../native';
import { CnnModel, ExecutionMode, InputNorm, leafCopy, MODES, NO_NORM } from '../nn/model';
import { checkInputNorm } from '../nn/model-options';
import { CnnSpec, planModel, specsEqual } from '../nn/spec';
import { checkObject, checkOneOf, checkString, expected } from '../validate';

export { CheckpointError } from './checkpoint-meta';
export type { PartialEpoch, TrainingState } from './checkpoint-meta';

export const CHECKPOINT_FORMAT = 'convscope-checkpoint/1';
const META_KEY = 'convscope.meta';
const OPTIMIZER_KEY = 'convscope.optimizer';
/** The input standardisation, as tensors a Python user reads without parsing convscope's JSON. */
export const INPUT_MEAN_KEY = 'convscope.input_mean';
export const INPUT_STD_KEY = 'convscope.input_std';
const PREFIX = 'convscope.';
/** A checkpoint larger than this is refused before it is read (the default network's is ~13 MB). */
const MAX_CHECKPOINT_BYTES = 4 * 1024 ** 3;

export interface CheckpointMeta {
  format: string;
  spec: CnnSpec;
  mode: ExecutionMode;
  inputNorm: InputNorm;
  optimizer?: OptimizerSettings;
  training?: TrainingState;
}

/** An optimizer's settings and its state as libtorch archives it (moments, step counts). */
export interface OptimizerSnapshot {
  settings: OptimizerSettings;
  state: Buffer;
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

/** Encodes a model (and optionally its optimizer) as torch.save-format bytes. */
export function encodeCheckpoint(model: CnnModel, options: SaveOptions = {}): Buffer {
  model.check('save');
  const entries: Record<string, NativeTensor | string> = {};
  model.plan.parameters.forEach((p) => { entries[p.name] = model.tensor(p.name); });
  const meta: CheckpointMeta = { format: CHECKPOINT_FORMAT, spec: model.spec, mode: model.mode, inputNorm: model.inputNorm };
  const temporaries: NativeTensor[] = [];
  for (const [key, value] of [[INPUT_MEAN_KEY, model.inputNorm.mean], [INPUT_STD_KEY, model.inputNorm.std]] as const) {
    const scalar = new (native().Tensor)(new Float32Array([value]), []);
    temporaries.push(scalar);
    entries[key] = scalar;
  }
  const snapshot: OptimizerSnapshot | undefined = options.optimizer
    ? { settings: options.optimizer.settings, state: options.optimizer.native.saveState() }
    : options.includeOptimizer ? model.optimizerSnapshot : undefined;
  if (options.includeOptimizer && !snapshot) {
    throw new Error('includeOptimizer: this model has no optimizer state (it was not trained by trainCnn in this process, nor loaded from a checkpoint with one)');
  }
  if (snapshot) {
    meta.optimizer = snapshot.settings;
    const state = snapshot.state;
    // The optimizer's archive travels as a uint8 tensor so the whole checkpoint stays one torch.save file.
    const stateTensor = new (native().Tensor)(new Uint8Array(state.buffer, state.byteOffset, state.length), [state.length]);
    temporaries.push(stateTensor);
    entries[OPTIMIZER_KEY] = stateTensor;
  }
  if (options.training) meta.training = options.training;
  entries[META_KEY] = JSON.stringify(meta);
  try {
    return native().encodeStateDict(entries);
  } finally {
    for (const t of temporaries) t.dispose();
  }
}

/** Writes a checkpoint atomically: a crash mid-write leaves the previous checkpoint intact. */
export function saveCheckpoint(file: string, model: CnnModel, options: SaveOptions = {}): void {
  checkString(file, 'path');
  writeFileAtomic(file, encodeCheckpoint(model, options));
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

function readCheckpointBytes(file: string): Buffer {
  try {
    return readRegularFile(file, MAX_CHECKPOINT_BYTES);
  } catch (err) {
    if (!(err instanceof UnreadableFileError)) throw err;
    throw new CheckpointError(file, err.reason === 'missing' ? 'no such checkpoint file' : err.detail);
  }
}

/** The scalar a float32 tensor entry holds, or undefined when the entry is absent. */
function scalarEntry(file: string, entries: Record<string, NativeTensor | string>, key: string): number | undefined {
  const entry = entries[key];
  if (entry === undefined) return undefined;
  if (typeof entry === 'string' || entry.shape.reduce((a, b) => a * b, 1) !== 1) throw new CheckpointError(file, `entry ${key} is not a one-element tensor`);
  return entry.item();
}

/** A plain state dict's input standardisation: the caller's, else its own tensors, else none. */
function plainInputNorm(file: string, entries: Record<string, NativeTensor | string>, given: InputNorm | undefined): InputNorm {
  if (given) return checkInputNorm(given, 'inputNorm');
  const mean = scalarEntry(file, entries, INPUT_MEAN_KEY);
  const std = scalarEntry(file, entries, INPUT_STD_KEY);
  if (mean === undefined && std === undefined) return NO_NORM;
  if (mean === undefined || std === undefined || !Number.isFinite(mean) || !(std > 0) || !Number.isFinite(std)) {
    throw new CheckpointError(file, `has an invalid input standardisation (${INPUT_MEAN_KEY} ${mean}, ${INPUT_STD_KEY} ${std})`);
  }
  return { mean, std };
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
  if (typeof norm.mean !== 'number' || typeof norm.std !== 'number' || !(norm.std > 0)) {
    throw new CheckpointError(file, 'has an invalid inputNorm');
  }
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

/** Reads a checkpoint written by saveCheckpoint (or a plain PyTorch state dict, given its spec). */
export function loadCheckpoint(file: string, options: LoadOptions = {}): LoadedCheckpoint {
  checkString(file, 'path');
  checkObject(options, 'options');
  const bytes = readCheckpointBytes(file);
  let entries: Record<string, NativeTensor | string>;
  try {
    checkArchive(bytes);
    entries = native().decodeStateDict(bytes);
  } catch (err) {
    throw new CheckpointError(file, `is not a readable PyTorch checkpoint (${(err as Error).message})`);
  }
  const owned = Object.values(entries).filter((v): v is NativeTensor => typeof v !== 'string');
  const params = new Map<string, NativeTensor>();
  try {
    const meta = parseMeta(file, entries[META_KEY], options.spec, () => plainInputNorm(file, entries, options.inputNorm));
    if (entries[META_KEY] !== undefined && options.inputNorm !== undefined) {
      const given = checkInputNorm(options.inputNorm, 'inputNorm');
      if (given.mean !== meta.inputNorm.mean || given.std !== meta.inputNorm.std) {
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
    for (const p of plan.parameters) {
      const tensor = entries[p.name];
      if (tensor === undefined || typeof tensor === 'string') throw new CheckpointError(file, `lacks the tensor ${p.name}`);
      if (tensor.dtype !== 'float32') throw new CheckpointError(file, `has ${p.name} of dtype ${tensor.dtype}, expected float32`);
      if (tensor.shape.join('x') !== p.shape.join('x')) {
        throw new CheckpointError(file, `has ${p.name} of shape [${tensor.shape}], expected [${p.shape}] for its spec`);
      }
      params.set(p.name, leafCopy(tensor, options.device ?? 'cpu'));
    }
    const stateTensor = entries[OPTIMIZER_KEY];
    let optimizerState: Buffer | undefined;
    if (stateTensor !== undefined) {
      if (typeof stateTensor === 'string' || stateTensor.dtype !== 'uint8') throw new CheckpointError(file, `entry ${OPTIMIZER_KEY} is not a uint8 tensor`);
      optimizerState = Buffer.from((stateTensor.toTypedArray() as Uint8Array).buffer);
      if (!meta.optimizer) throw new CheckpointError(file, `has an optimizer state (${OPTIMIZER_KEY}) but no optimizer settings in its metadata`);
    }
    const model = new CnnModel(plan, params, mode, options.device ?? 'cpu', meta.inputNorm ?? NO_NORM);
    if (optimizerState && meta.optimizer) model.optimizerSnapshot = { settings: meta.optimizer, state: optimizerState };
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

export function isCheckpointKey(name: string): boolean {
  return name.startsWith(PREFIX);
}

