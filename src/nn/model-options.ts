// Option checks of the functions that build or run a model (createModel, loadModel, loadTorchScript,
// predict): the same message shape as trainCnn's, so a bad value is refused before a native tensor is
// made, and a misspelt key is an error instead of a silent default.
import { Precision, PRECISIONS } from '../core/precision';
import { checkInteger, checkKnownKeys, checkNumber, checkObject, checkOneOf, expected } from '../util/validate';

/**
 * How raw [0, 1] pixels are standardised before the network sees them: (pixel - mean) / std, with one
 * number for every channel or one per channel (a colour model trained with standardisation has three).
 * @example { mean: 0.286, std: 0.353 } // Fashion-MNIST
 * @example { mean: [0.49, 0.48, 0.45], std: [0.25, 0.24, 0.26] } // CIFAR-10
 */
export interface InputNorm { mean: number | number[]; std: number | number[] }
export const NO_NORM: InputNorm = { mean: 0, std: 1 };

/** An InputNorm with a value per channel: a single number stands for every channel. */
export interface ChannelNorm { mean: number[]; std: number[] }

/** The norm's values for each of `channels` channels (a number is repeated; an array must have that length). */
export function channelNorm(norm: InputNorm, channels: number): ChannelNorm {
  const each = (v: number | number[], name: string): number[] => {
    if (typeof v === 'number') return new Array<number>(channels).fill(v);
    if (v.length !== channels) throw new RangeError(expected(`one value per input channel (${channels})`, `inputNorm.${name}`, v));
    return v;
  };
  return { mean: each(norm.mean, 'mean'), std: each(norm.std, 'std') };
}

/** Whether the norm has one value for every channel (then the one-channel path's scalar arithmetic applies). */
export function isUniformNorm(norm: InputNorm): norm is { mean: number; std: number } {
  return typeof norm.mean === 'number' && typeof norm.std === 'number';
}

/** The norm's channel count: the length of its arrays, or undefined when both are numbers (any count). */
export function normChannels(norm: InputNorm): number | undefined {
  if (Array.isArray(norm.mean)) return norm.mean.length;
  if (Array.isArray(norm.std)) return norm.std.length;
  return undefined;
}

/** What predict() and evaluate() accept; see checkInferenceOptions. */
export interface PredictOptions {
  /** Images per chunk (default 128 on the CPU, 1000 on a GPU: see defaultChunkSize). */
  chunkSize?: number;
  /** 'bf16': the forward pass under bfloat16 autocast (src/core/precision.ts); default 'fp32'. */
  precision?: Precision;
}

/**
 * Images per evaluation or prediction chunk when none is given. On the CPU, chunks of 128 are as fast
 * as chunks of 1,000 (0.9 s against 1.0 s for the 10,000 test images, 2026-12-01) for a quarter of the
 * memory (45 MB against 200 MB above the process): the first layers' activations are 13 MB blocks
 * instead of 100 MB ones. (Before the CPU block cache, chunks of 1,000 were 4-5x slower too: glibc
 * mapped and unmapped their blocks around every call; BENCHMARKS.md.) A GPU wants large chunks.
 */
export function defaultChunkSize(device: string): number {
  return device === 'cpu' ? 128 : 1000;
}
/** The largest chunk predict() and evaluate() take: trainCnn's bound on batches. */
export const MAX_CHUNK = 1 << 24;

/** 'cpu', 'cuda' or 'cuda:N', what the addon parses; checked here so that no tensor is made first. */
export function checkDevice(value: unknown, name: string): string {
  if (typeof value !== 'string') throw new TypeError(expected('"cpu", "cuda" or "cuda:N"', name, value));
  if (!/^(cpu|cuda(:\d+)?)$/.test(value)) throw new RangeError(expected('"cpu", "cuda" or "cuda:N"', name, value));
  return value;
}

/**
 * A standardisation { mean, std }: finite, std > 0 (a zero std would divide every pixel by zero); each
 * a number or an array of numbers, one per channel (arrays of the same length).
 */
export function checkInputNorm(value: unknown, name: string): InputNorm {
  const norm = checkObject(value, name);
  checkKnownKeys(norm, name, ['mean', 'std']);
  const values = (v: unknown, field: string, check: (x: unknown, n: string) => number): number | number[] => {
    if (!Array.isArray(v)) return check(v, `${name}.${field}`);
    if (v.length === 0 || v.length > 64) throw new RangeError(expected('1 to 64 values, one per channel', `${name}.${field}`, v));
    return Array.from(v, (x, i) => check(x, `${name}.${field}[${i}]`));
  };
  const mean = values(norm.mean, 'mean', (x, n) => checkNumber(x, n));
  const std = values(norm.std, 'std', (x, n) => checkNumber(x, n, 0, Infinity, { exclusiveMin: true }));
  if (Array.isArray(mean) && Array.isArray(std) && mean.length !== std.length) {
    throw new RangeError(expected(`${mean.length} values (as many as ${name}.mean)`, `${name}.std`, std));
  }
  return { mean, std };
}

/** A seed for libtorch's generator: what trainCnn accepts. */
export function checkSeed(value: unknown, name: string): number {
  return checkInteger(value, name, 0, Number.MAX_SAFE_INTEGER);
}

/**
 * predict()'s and evaluate()'s options (`what` names them in errors), with their defaults. A chunk of 0
 * would never advance, so it is refused.
 */
export function checkInferenceOptions(input: unknown, device: string, what: string): Required<PredictOptions> {
  const options = checkObject(input, 'options');
  checkKnownKeys(options, `${what} options`, ['chunkSize', 'precision']);
  return {
    chunkSize: checkInteger(options.chunkSize ?? defaultChunkSize(device), 'chunkSize', 1, MAX_CHUNK),
    precision: checkOneOf(options.precision ?? 'fp32', 'precision', PRECISIONS),
  };
}

/**
 * Float images must hold finite values: one NaN or Infinity turns every probability of its image
 * into NaN without an error. Names the first bad value's index so that it can be found.
 */
export function checkFinitePixels(images: Uint8Array | Float32Array, name: string): void {
  if (images instanceof Uint8Array) return;
  for (let i = 0; i < images.length; ++i) {
    if (!Number.isFinite(images[i])) {
      throw new RangeError(`Expected finite pixel values for ${name} but ${name}[${i}] is ${images[i]}`);
    }
  }
}
