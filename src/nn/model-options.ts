// Option checks of the functions that build or run a model (createModel, loadModel, loadTorchScript,
// predict): the same message shape as trainCnn's, so a bad value is refused before a native tensor is
// made, and a misspelt key is an error instead of a silent default.
import { Precision, PRECISIONS } from '../core/precision';
import { checkInteger, checkKnownKeys, checkNumber, checkObject, checkOneOf, expected } from '../util/validate';

/** How raw [0, 1] pixels are standardised before the network sees them. */
export interface InputNorm { mean: number; std: number }
export const NO_NORM: InputNorm = { mean: 0, std: 1 };

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

/** A standardisation { mean, std }: finite, std > 0 (a zero std would divide every pixel by zero). */
export function checkInputNorm(value: unknown, name: string): InputNorm {
  const norm = checkObject(value, name);
  checkKnownKeys(norm, name, ['mean', 'std']);
  return {
    mean: checkNumber(norm.mean, `${name}.mean`),
    std: checkNumber(norm.std, `${name}.std`, 0, Infinity, { exclusiveMin: true }),
  };
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
