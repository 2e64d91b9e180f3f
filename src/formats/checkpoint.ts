// The checkpoint file: PyTorch's own format, so torch.load(path) in Python (weights_only=True, PyTorch
// 2.x's default, included) returns a dict whose tensor entries are the model's state dict under
// PyTorch's names (conv1.weight, ...). convscope's own entries are prefixed "convscope.": the input
// standardisation as two float32 scalars (convscope.input_mean, convscope.input_std: the network
// expects (pixels / 255 - mean) / std), or two float32 vectors of one value per channel for a colour
// model standardised per channel (broadcast as mean[None, :, None, None]), the spec and training state as JSON, the optimizer state as
// bytes. In Python drop them with {k: v for k, v in sd.items() if not k.startswith('convscope.')}.
// This file knows the entries and their encoding; what the metadata means is nn's and train's.
import { native, NativeTensor, OptimizerSettings, valuesOf } from '../core/native';
import { readRegularFile, UnreadableFileError } from '../util/fs-read';
import { checkArchive } from './archive-check';
import { isTensorFileGlobal } from './pickle-scan';

export const CHECKPOINT_FORMAT = 'convscope-checkpoint/1';
export const META_KEY = 'convscope.meta';
export const OPTIMIZER_KEY = 'convscope.optimizer';
/** The input standardisation, as tensors a Python user reads without parsing convscope's JSON. */
export const INPUT_MEAN_KEY = 'convscope.input_mean';
export const INPUT_STD_KEY = 'convscope.input_std';
const PREFIX = 'convscope.';
/** A checkpoint larger than this is refused before it is read (the default network's is ~13 MB). */
const MAX_CHECKPOINT_BYTES = 4 * 1024 ** 3;

export class CheckpointError extends Error {
  constructor(readonly file: string, message: string) {
    super(`${file}: ${message}`);
    this.name = 'CheckpointError';
  }
}

/** An optimizer's settings and its state as libtorch archives it (moments, step counts). */
export interface OptimizerSnapshot {
  settings: OptimizerSettings;
  state: Buffer;
}

/** A decoded checkpoint: tensors by name, and the JSON metadata as a string. */
export type CheckpointEntries = Record<string, NativeTensor | string>;

/** What a checkpoint file holds, before encoding. */
export interface CheckpointContents {
  /** The state dict, in PyTorch's order. */
  parameters: [string, NativeTensor][];
  /** One value, or one per channel (then stored as 1-D tensors). */
  inputNorm: { mean: number | number[]; std: number | number[] };
  /** The metadata's model fields (spec, mode, inputNorm); `format` is added here. */
  meta: Record<string, unknown>;
  /** Stored as bytes, its settings in the metadata. */
  optimizer?: OptimizerSnapshot;
  /** Where training stood, stored in the metadata as it is. */
  training?: unknown;
}

/** Encodes a checkpoint as torch.save-format bytes. */
export function encodeCheckpoint(contents: CheckpointContents): Buffer {
  const entries: CheckpointEntries = Object.fromEntries(contents.parameters);
  const meta: Record<string, unknown> = { format: CHECKPOINT_FORMAT, ...contents.meta };
  const temporaries: NativeTensor[] = [];
  for (const [key, value] of [[INPUT_MEAN_KEY, contents.inputNorm.mean], [INPUT_STD_KEY, contents.inputNorm.std]] as const) {
    const scalar = typeof value === 'number'
      ? new (native().Tensor)(new Float32Array([value]), [])
      : new (native().Tensor)(Float32Array.from(value), [value.length]);
    temporaries.push(scalar);
    entries[key] = scalar;
  }
  if (contents.optimizer) {
    meta.optimizer = contents.optimizer.settings;
    const state = contents.optimizer.state;
    // The optimizer's archive travels as a uint8 tensor so the whole checkpoint stays one torch.save file.
    const stateTensor = new (native().Tensor)(new Uint8Array(state.buffer, state.byteOffset, state.length), [state.length]);
    temporaries.push(stateTensor);
    entries[OPTIMIZER_KEY] = stateTensor;
  }
  if (contents.training) meta.training = contents.training;
  entries[META_KEY] = JSON.stringify(meta);
  try {
    return native().encodeStateDict(entries);
  } finally {
    for (const t of temporaries) t.dispose();
  }
}

function readCheckpointBytes(file: string): Buffer {
  try {
    return readRegularFile(file, MAX_CHECKPOINT_BYTES);
  } catch (err) {
    if (!(err instanceof UnreadableFileError)) throw err;
    throw new CheckpointError(file, err.reason === 'missing' ? 'no such checkpoint file' : err.detail);
  }
}

/** Reads and decodes a checkpoint file; the caller owns (and disposes) the tensors. */
export function readCheckpointEntries(file: string): CheckpointEntries {
  const bytes = readCheckpointBytes(file);
  try {
    // A checkpoint holds tensors and strings: any other global is named here, before libtorch reads it.
    checkArchive(bytes, { allowGlobal: isTensorFileGlobal });
    // The addon gives the OrderedDict hint only where that is libtorch's failure, else libtorch's own message (issue 34 #14).
    return ownEntries(native().decodeStateDict(bytes));
  } catch (err) {
    throw new CheckpointError(file, `is not a readable PyTorch checkpoint (${(err as Error).message})`);
  }
}

/**
 * The decoded entries, refused when an entry named `__proto__` became the object's prototype instead
 * of one of its keys (the addon sets entries by assignment): every tensor, that one included, is
 * freed first.
 */
function ownEntries(entries: CheckpointEntries): CheckpointEntries {
  // An object literal's prototype: some realm's Object.prototype (the addon's objects come from Node's
  // own realm, not jest's), the one object with a prototype of null and its own hasOwnProperty.
  const prototype = Object.getPrototypeOf(entries) as object | null;
  if (prototype !== null && Object.getPrototypeOf(prototype) === null && Object.prototype.hasOwnProperty.call(prototype, 'hasOwnProperty')) return entries;
  for (const value of [...Object.values(entries), prototype]) {
    if (typeof value === 'object' && value !== null && typeof (value as { dispose?: unknown }).dispose === 'function') (value as NativeTensor).dispose();
  }
  throw new Error('it has an entry named __proto__, which no model has');
}

/** The values of a float32 vector entry (one per channel), or undefined when the entry is absent. */
export function vectorEntry(file: string, entries: CheckpointEntries, key: string): number[] | undefined {
  const entry = entries[key];
  if (entry === undefined) return undefined;
  if (typeof entry === 'string' || entry.shape.length > 1) throw new CheckpointError(file, `entry ${key} is not a scalar or a vector`);
  return Array.from(valuesOf(entry, 'float32'));
}

/** The scalar a float32 tensor entry holds, or undefined when the entry is absent. */
export function scalarEntry(file: string, entries: CheckpointEntries, key: string): number | undefined {
  const entry = entries[key];
  if (entry === undefined) return undefined;
  if (typeof entry === 'string' || entry.shape.reduce((a, b) => a * b, 1) !== 1) throw new CheckpointError(file, `entry ${key} is not a one-element tensor`);
  return entry.item();
}

/** The optimizer state entry's bytes, when the checkpoint has one. */
export function optimizerStateEntry(file: string, entries: CheckpointEntries): Buffer | undefined {
  const stateTensor = entries[OPTIMIZER_KEY];
  if (stateTensor === undefined) return undefined;
  if (typeof stateTensor === 'string' || stateTensor.dtype !== 'uint8') throw new CheckpointError(file, `entry ${OPTIMIZER_KEY} is not a uint8 tensor`);
  return Buffer.from(valuesOf(stateTensor, 'uint8').buffer);
}

export function isCheckpointKey(name: string): boolean {
  return name.startsWith(PREFIX);
}
