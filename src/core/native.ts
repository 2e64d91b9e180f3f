// The one loader of the native addon, and the addon's type. Everything else imports `native` from here.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { packageRoot } from '../util/package-root';

/** The activations the addon implements (ops.activation), the eager path's and the generated TorchScript's. */
export const ACTIVATIONS = ['relu', 'elu', 'tanh', 'sigmoid', 'leaky_relu'] as const;
export type Activation = (typeof ACTIVATIONS)[number];
/** leaky_relu's slope for negative inputs (PyTorch's default): one value for ops.activation, TorchScript and ONNX. */
export const LEAKY_RELU_SLOPE = 0.01;

export type Dtype = 'float32' | 'float64' | 'int32' | 'int64' | 'uint8' | 'int8' | 'int16' | 'bool' | 'bfloat16' | 'float16';
export type TypedArrayOf =
  | Float32Array | Float64Array | Int32Array | BigInt64Array | Uint8Array | Int8Array | Int16Array;
/** The typed array toTypedArray() gives for each dtype: bfloat16 and float16 widen to float32, bool reads as uint8. */
export interface TypedArrayByDtype {
  float32: Float32Array; float64: Float64Array; int32: Int32Array; int64: BigInt64Array; uint8: Uint8Array;
  int8: Int8Array; int16: Int16Array; bool: Uint8Array; bfloat16: Float32Array; float16: Float32Array;
}

/** A libtorch tensor owned by JS. Free it with `dispose()` (or inside a `tidy` scope); the GC is only a fallback. */
export interface NativeTensor {
  readonly shape: number[];
  readonly dtype: Dtype;
  readonly device: string;
  readonly isDisposed: boolean;
  requiresGrad: boolean;
  /** Copies the values out into a new typed array (bfloat16/float16 widen to float32, bool to uint8). */
  toTypedArray(): TypedArrayByDtype[Dtype];
  item(): number;
  grad(): NativeTensor | null;
  backward(): void;
  dispose(): void;
}

/**
 * A copy of a tensor's values typed by its dtype, checked: a tensor of another dtype is a TypeError
 * (the addon's answer is checked before it is used, not cast).
 * @example valuesOf(model.tensor('conv1.weight'), 'float32') // Float32Array
 */
export function valuesOf<D extends Dtype>(tensor: NativeTensor, dtype: D): TypedArrayByDtype[D] {
  if (tensor.dtype !== dtype) throw new TypeError(`Expected a ${dtype} tensor but received one of dtype ${tensor.dtype}`);
  return tensor.toTypedArray() as TypedArrayByDtype[D];
}

/** A floating tensor's values as float32, whatever its dtype (a module saved from Python may hold float64). */
export function float32Values(tensor: NativeTensor): Float32Array {
  const values = tensor.toTypedArray();
  return values instanceof Float32Array ? values : Float32Array.from(values, Number);
}

export interface NativeOptimizer {
  zeroGrad(): void;
  step(): void;
  setLearningRate(lr: number): void;
  saveState(): Buffer;
  loadState(state: Buffer): void;
  dispose(): void;
}

export interface OptimizerSettings {
  kind: 'sgd' | 'adam' | 'adamw';
  learningRate: number;
  momentum?: number;
  nesterov?: boolean;
  weightDecay?: number;
  beta1?: number;
  beta2?: number;
  epsilon?: number;
  /** Parameters (some of the optimizer's) kept from weight decay: a second parameter group with decay 0. */
  undecayed?: NativeTensor[];
}

export interface NativeScriptModel {
  forward(x: NativeTensor): NativeTensor;
  train(on: boolean): void;
  namedParameters(): [string, NativeTensor][];
  save(): Buffer;
  code(): string;
  dispose(): void;
}

export interface EpochJob {
  model: NativeScriptModel;
  optimizer: NativeOptimizer;
  images: NativeTensor;
  labels: NativeTensor;
  order: NativeTensor;
  batchSize: number;
  /** A data-parallel run's Reducer: it averages the gradients over the ranks during each step's backward. */
  reducer?: NativeGradientReducer;
  /** Standardisation: one number, or one per channel. */
  mean?: number | number[];
  std?: number | number[];
  l1?: number;
  l1Params?: NativeTensor[];
  progressEvery?: number;
  dropLast?: boolean;
  precision?: 'fp32' | 'bf16';
  /** Replay full batches from this CUDA graph (builds with `cudaSources`, data on a CUDA device). */
  graph?: NativeStepGraph;
  /** The learning rate of each step of the segment (its length: the segment's steps); else the optimizer's. */
  learningRates?: Float64Array;
  labelSmoothing?: number;
  /** Augmentation of each batch (shift in pixels, left-right flips), padding with `padValues` (one, or one per channel). */
  shift?: number;
  flip?: boolean;
  padValues?: number | number[];
  /** A moving average of the weights updated after the steps it asks for (native/ema.h). */
  ema?: NativeEmaJob;
}

/**
 * The weight average a native epoch keeps: `averages[i]` follows `sources[i]` (same shape, dtype and
 * device) after every `every` steps of the run, with the decay lowered on the first updates when
 * `warmup` (native/ema.h); `firstStep` is the run's index of the segment's first step.
 */
export interface NativeEmaJob { averages: NativeTensor[]; sources: NativeTensor[]; decay: number; warmup: boolean; every: number; firstStep: number }

/** native/ema.h: in-place updates and swaps of tensor lists (each pair of the same shape, dtype and device). */
export interface NativeEma {
  /** averages = decay * averages + (1 - decay) * sources (non-float tensors: copied). */
  update(averages: NativeTensor[], sources: NativeTensor[], decay: number): void;
  /** Exchanges the contents of a[i] and b[i]. */
  swap(a: NativeTensor[], b: NativeTensor[]): void;
}

/** native/whitening.h: patch-whitening filters of uint8 images [N, H, W], [2 k^2, 1, k, k]: v1..vK then -v1..-vK. */
export interface NativeWhitening {
  filters(images: NativeTensor, kernel: number, mean: number, std: number, eps: number): NativeTensor;
}

/** native/tta.h: test-time augmentation's views of a batch [N, C, H, W]. */
export interface NativeTta {
  /** The batch mirrored left-right when `flip`, then moved dy pixels down and dx right, uncovered pixels set to padValue. */
  view(x: NativeTensor, dy: number, dx: number, flip: boolean, padValue: number): NativeTensor;
}

export interface EpochProgress { step: number; steps: number; seen: number; loss: number; correct: number }
export interface EpochOutcome { steps: number; seen: number; lossSum: number; correct: number; cancelled: boolean; nonFiniteStep: number }

/** Large CPU blocks kept for reuse (native/cpu_block_cache.h); hits and misses count the requests of at least 128 KiB. */
export interface CpuBlockCacheStats { cachedBytes: number; cachedBlocks: number; hits: number; misses: number; limitBytes: number }

export interface TorchInfo {
  version: string;
  cuda: boolean;
  cudnn: boolean;
  deviceCount: number;
  threads: number;
  libtorchPath: string;
  /** Linked against a CUDA libtorch (CUDA may still be unavailable: no GPU, no driver). */
  builtWithCuda: boolean;
  /** The CUDA-only sources (native/cuda/) were compiled in: a CUDA libtorch and a CUDA toolkit at build time. */
  cudaSources: boolean;
  /**
   * MKL's CPU check (native/mkl_cpu_check.h): MKL picks its fast kernels only on CPUs whose vendor is
   * Intel unless the check is lifted (`anyCpu`, from $CONVSCOPE_MKL_ANY_CPU, default 1). `mkl`: this
   * libtorch links MKL (Debian's 1.13 uses OpenBLAS); `branch`: the kernel branch MKL chose (its own
   * numbering: 0 generic, higher for newer instruction sets, 7 for AVX-512 on the project's machine),
   * -1 without MKL.
   */
  mklCpuCheck: { mkl: boolean; branch: number; anyCpu: boolean; intelCpu: boolean };
  /**
   * The addon's own kernels (fused Adam, the fused pooling) split their loops over libtorch's OpenMP
   * threads: the addon was compiled with OpenMP (its at::parallel_for loops are compiled into it).
   */
  parallelKernels: boolean;
}

/** The CUDA-only entry points (native/cuda/), present only in builds with `cudaSources`. */
export interface NativeCuda {
  /** Bytes held by libtorch's caching allocator on one GPU (default: the current one). */
  memory(device?: number): { allocated: number; reserved: number; peakAllocated: number };
  synchronize(): void;
  /** Returns cached, unused GPU memory to the driver, cuBLAS's workspaces too while no StepGraph lives. */
  emptyCache(): void;
  /** One run's captured training step (native/cuda/graph_step.h); dispose() frees the graph and its memory pool. */
  StepGraph: new (device?: string) => NativeStepGraph;
  /** StepGraphs alive (not yet disposed, or still held by a running epoch). */
  liveGraphs(): number;
}

export interface NativeStepGraph {
  /** Whether the step has been captured yet (after the warm-up steps). */
  readonly captured: boolean;
  /** Full batches run by replaying the graph so far. */
  readonly replays: number;
  dispose(): void;
}

/** A joined c10d process group (native/distributed.h). Collectives run off the main thread; every rank must issue them in the same order. */
export interface NativeProcessGroup {
  readonly rank: number;
  readonly size: number;
  readonly backend: string;
  /** The element-wise sum of `values` over the ranks. */
  sumOverRanks(values: Float64Array): Promise<Float64Array>;
  /** Rank 0's values of `tensors`, written in place on every rank. */
  broadcast(tensors: NativeTensor[]): Promise<void>;
  /** From now on, training batch norms in this process use the whole group's statistics (SyncBatchNorm), or their own rank's (false; also once the group is left). */
  syncBatchNorm(on: boolean): void;
  dispose(): void;
}

/**
 * c10d's DDP Reducer over one run's parameters (native/reducer.h): their gradients are averaged over
 * the group in buckets during backward, each bucket's allreduce overlapping the rest of backward.
 */
export interface NativeGradientReducer {
  /** The Reducer's buckets now: one until the first backward, then as it rebuilt them in the order gradients came. */
  readonly buckets: number;
  /** Backward passes whose gradients the Reducer averaged (its end-of-backward callback ran). */
  readonly steps: number;
  /** The eager step's backward of `objective`, off the main thread, with the Reducer averaging; resolves to the objective's mean over the ranks. */
  backward(objective: NativeTensor): Promise<number>;
  /**
   * The gradients the parameters hold now averaged over the group as the CUDA graph step averages
   * them beside its graphs (flat buckets of at most 25 MiB, one allreduce each), off the main thread.
   */
  averageBesideGraph(): Promise<void>;
  dispose(): void;
}

/** How a rank joins a group: torchrun's MASTER_ADDR/MASTER_PORT, RANK, WORLD_SIZE, and its agent store; or a shared file. */
export interface NativeGroupConfig {
  /** The TCPStore's host and port (unused with `storeFile`). */
  host?: string;
  port?: number;
  /** A FileStore rendezvous instead: the file every rank opens (torch's init_method='file://...'). */
  storeFile?: string;
  rank: number;
  size: number;
  timeoutMs: number;
  /** Connect to torchrun's agent store at host:port as a client, under `agentPrefix`, instead of rank 0 serving it. */
  agentStore?: boolean;
  agentPrefix?: string;
  /** 'gloo' (CPU tensors, the default) or 'nccl' (CUDA tensors on GPU `device`; CUDA builds that found nccl.h). */
  backend?: 'gloo' | 'nccl';
  device?: number;
}

/** Data-parallel training on c10d (native/distributed.h); `available` is false in the libtorch 1.13 build. */
export interface NativeDistributed {
  readonly available: boolean;
  /** The backends this build can make: ['gloo'], with 'nccl' in a CUDA build that found nccl.h; [] in the libtorch 1.13 build. */
  readonly backends: string[];
  /** TCPStore rendezvous and a Gloo (or NCCL) group; rejects when the peers do not all come within the timeout. */
  joinGroup(config: NativeGroupConfig): Promise<NativeProcessGroup>;
  /** ProcessGroups alive (not yet disposed). */
  liveGroups(): number;
  /** DDP's Reducer over `params` (those that require gradients), averaging over `group`. */
  GradientReducer: new (group: NativeProcessGroup, params: NativeTensor[]) => NativeGradientReducer;
  /** GradientReducers alive (not yet disposed). */
  liveReducers(): number;
}

export interface NativeOps {
  zeros(shape: number[], dtype?: Dtype): NativeTensor;
  uniform(shape: number[], low: number, high: number): NativeTensor;
  /** `channelsLast`: on the CPU, compute in channels-last layout (what a batch norm after it prefers). */
  conv2d(x: NativeTensor, w: NativeTensor, b: NativeTensor | null, stride: [number, number], padding: [number, number, number, number], channelsLast?: boolean): NativeTensor;
  linear(x: NativeTensor, w: NativeTensor, b: NativeTensor | null): NativeTensor;
  maxPool2d(x: NativeTensor, kernel: number, stride: number): NativeTensor;
  /** act(maxPool2d(x, 2, 2)) in one pass each way (native/pool_activation.h); relu or leaky_relu only. */
  maxPoolActivation(x: NativeTensor, name: 'relu' | 'leaky_relu', negativeSlope?: number): NativeTensor;
  /** `negativeSlope` is leaky_relu's (pass LEAKY_RELU_SLOPE); the other activations ignore it. */
  activation(x: NativeTensor, name: Activation, negativeSlope?: number): NativeTensor;
  dropout(x: NativeTensor, rate: number, training: boolean): NativeTensor;
  flatten(x: NativeTensor): NativeTensor;
  /**
   * PyTorch's batch normalisation over dimension 1 of [N, C] or [N, C, H, W]. In training it uses the
   * batch's statistics, updates runningMean/runningVar in place and adds 1 to numBatchesTracked (int64).
   */
  batchNorm(x: NativeTensor, weight: NativeTensor | null, bias: NativeTensor | null, runningMean: NativeTensor, runningVar: NativeTensor,
    numBatchesTracked: NativeTensor | null, training: boolean, momentum: number, eps: number): NativeTensor;
  /** [N, C, H, W] -> [N, C]: the mean of each channel. */
  globalAvgPool(x: NativeTensor): NativeTensor;
  /** `labelSmoothing` in [0, 1), as torch.nn.functional.cross_entropy's. */
  crossEntropy(logits: NativeTensor, labels: NativeTensor, reduction?: 'mean' | 'sum' | 'none', labelSmoothing?: number): NativeTensor;
  sumAbs(tensors: NativeTensor[]): NativeTensor;
  add(a: NativeTensor, b: NativeTensor): NativeTensor;
  mulScalar(x: NativeTensor, factor: number): NativeTensor;
  affine(x: NativeTensor, scale: number, shift: number): NativeTensor;
  softmax(x: NativeTensor, dim: number): NativeTensor;
  argmax(x: NativeTensor, dim: number): NativeTensor;
  confusion(predicted: NativeTensor, labels: NativeTensor, classes: number): NativeTensor;
  countCorrect(logits: NativeTensor, labels: NativeTensor): number;
  stepStats(logits: NativeTensor, labels: NativeTensor, loss: NativeTensor): NativeTensor;
  detach(x: NativeTensor): NativeTensor;
  to(x: NativeTensor, device?: string | null, dtype?: Dtype | null): NativeTensor;
  reshape(x: NativeTensor, shape: number[]): NativeTensor;
  slice(x: NativeTensor, dim: number, start: number, end: number): NativeTensor;
  randperm(n: number, seed: number): NativeTensor;
  /**
   * A float batch [B, C, H, W] of rows indices[start:end] of uint8 [N, H, W], uint8 or float32 [N, C, H, W]
   * images, in [0, 1] and standardised (mean, std: one number, or one per channel), with int64 labels.
   */
  gatherBatch(images: NativeTensor, labels: NativeTensor, indices: NativeTensor, start: number, end: number, mean: number | number[], std: number | number[]): [NativeTensor, NativeTensor];
  /** Random shifts (pad with `padValue`, one or one per channel, then crop) and left-right flips of a batch [N, C, H, W], per image. */
  augment(x: NativeTensor, shift: number, flip: boolean, padValue: number | number[]): NativeTensor;
  /** (x * scale - mean[c]) / std[c] for a batch [N, C, H, W]; mean and std one number or one per channel. */
  standardize(x: NativeTensor, scale: number, mean: number | number[], std: number | number[]): NativeTensor;
  setGradEnabled(enabled: boolean): boolean;
}

export interface NativeAddon {
  Tensor: new (data: TypedArrayOf, shape: number[]) => NativeTensor;
  Optimizer: new (params: NativeTensor[], settings: OptimizerSettings) => NativeOptimizer;
  ScriptModel: new (options: { source: string; parameters: [string, NativeTensor][]; buffers?: [string, NativeTensor][] } | { bytes: Buffer }) => NativeScriptModel;
  ops: NativeOps;
  ema: NativeEma;
  tta: NativeTta;
  whitening: NativeWhitening;
  torchInfo(): TorchInfo;
  cuda?: NativeCuda;
  setNumThreads(n: number): void;
  manualSeed(seed: number): void;
  liveTensors(): number;
  /** Returns memory libtorch freed to the OS: the CPU block cache's blocks, then malloc_trim; true if glibc released any. */
  releaseFreeMemory(): boolean;
  /** malloc_trim alone: the CPU block cache keeps its blocks. */
  trimHeap(): boolean;
  /** The CPU block cache (native/cpu_block_cache.h): what it holds now and how often it served a large block. */
  cpuBlockCache(): CpuBlockCacheStats;
  /** 0 turns the cache off; the blocks it holds are freed either way. */
  setCpuBlockCacheLimit(bytes: number): void;
  /** Switches bfloat16 autocast for this thread on or off (clearing its cast cache when off); returns the previous state. */
  setAutocast(enabled: boolean, device: string): boolean;
  encodeStateDict(entries: Record<string, NativeTensor | string>): Buffer;
  decodeStateDict(bytes: Buffer): Record<string, NativeTensor | string>;
  distributed: NativeDistributed;
  trainEpoch(job: EpochJob, onProgress?: (p: EpochProgress) => void): { promise: Promise<EpochOutcome>; cancel(): void };
}

/** Where the addon may be, in order: $CONVSCOPE_ADDON, node-gyp's build, cmake-js's build. */
export function addonCandidates(): string[] {
  const root = packageRoot();
  const list = [
    path.join(root, 'build', 'Release', 'convscope.node'),
    path.join(root, 'build-cmake', 'Release', 'convscope.node'),
    path.join(root, 'build-cmake', 'convscope.node'),
  ];
  return process.env.CONVSCOPE_ADDON ? [process.env.CONVSCOPE_ADDON, ...list] : list;
}

/** Loads an addon from one file; exported so tests can load each build explicitly. */
export function loadAddonFrom(file: string): NativeAddon {
  try {
    return require(file) as NativeAddon;
  } catch (err) {
    const reason = (err as Error).message.split('\n')[0];
    throw new Error(
      `convscope: the native addon at ${file} could not be loaded: ${reason}\n` +
      'If libtorch is missing or moved, run `scripts/setup.sh` (installs libtorch-dev and rebuilds), ' +
      'or rebuild against your libtorch with `npm run build:addon` (see `node scripts/find-libtorch.js describe`).');
  }
}

/**
 * How libtorch's OpenMP threads wait between parallel ops, unless the user chose (libgomp reads these
 * once, when libtorch loads, so they are set before the addon is required):
 * - OMP_WAIT_POLICY=PASSIVE, OpenMP's portable word for "do not spin for long": on the 2-core project
 *   machine an idle thread spinning for libgomp's default while JavaScript or node's own threads
 *   needed the core once made the eager path ~1.6x slower (2026-11-27, libtorch 1.13).
 * - GOMP_SPINCOUNT=1000000, libgomp's own (it wins over the policy): spin about 20 ms, then sleep.
 *   PASSIVE alone makes a thread sleep at once, and each of the dozens of parallel ops in a training
 *   step then waits for a futex wake-up: the kernel's scheduler was about 6% of a step (perf), and
 *   1,000,000 spins trained 4-8% faster in both modes (2026-12-01, pairs of runs). A process done
 *   with training burns those 20 ms of CPU once (process.cpuUsage over an idle second: 24 ms, against
 *   3 ms without spinning). A user's OMP_WAIT_POLICY alone keeps its meaning: then no spin count is set.
 */
export const DEFAULT_OMP_WAIT_POLICY = 'PASSIVE';
export const DEFAULT_GOMP_SPINCOUNT = '1000000';

/** The OpenMP variables convscope sets for `env` (those the user left unset); the bench gives every contender the same. */
export function openMpDefaults(env: NodeJS.ProcessEnv): Record<string, string> {
  const defaults: Record<string, string> = {};
  if (env.OMP_WAIT_POLICY === undefined && env.GOMP_SPINCOUNT === undefined) defaults.GOMP_SPINCOUNT = DEFAULT_GOMP_SPINCOUNT;
  if (env.OMP_WAIT_POLICY === undefined) defaults.OMP_WAIT_POLICY = DEFAULT_OMP_WAIT_POLICY;
  return defaults;
}

function loadAddon(): NativeAddon {
  Object.assign(process.env, openMpDefaults(process.env));
  const candidates = addonCandidates();
  const file = candidates.find((candidate) => fs.existsSync(candidate));
  if (!file) {
    throw new Error(
      `convscope: no native addon found; looked for ${candidates.join(', ')}.\n` +
      'Build it with `scripts/setup.sh` (or `npm run build:addon` / `npm run build:cmake`).');
  }
  const addon = loadAddonFrom(file);
  // Debian's libtorch starts with one thread; use every core this process may run on.
  addon.setNumThreads(os.availableParallelism());
  return addon;
}

let loaded: NativeAddon | undefined;

/** The addon, loaded on first use so that importing convscope for data or pictures never needs libtorch. */
export function native(): NativeAddon {
  if (!loaded) loaded = loadAddon();
  return loaded;
}
