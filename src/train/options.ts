// trainCnn's options: their defaults and the up-front validation that keeps bad values away from the
// addon. Each error names the option and the value received.
import type { CnnSpec } from '../nn/spec';
import { defaultSpec, planModel } from '../nn/spec';
import { CnnModel, ExecutionMode, MODES } from '../nn/model';
import { checkDistributed, DistributedOptions, ResolvedDistributedOptions } from '../distributed/environment';
import { checkBoolean, checkInteger, checkKnownKeys, checkNumber, checkObject, checkOneOf, checkString, expected } from '../util/validate';
import { checkSplit, LabelledImages } from './evaluate';
import { SCHEDULES, ScheduleKind } from './schedule';
import { PresetName, presetOptions, PRESETS } from './presets';
import { datasetSourceType, resolveImageDatasetOptions, type LoadImageDatasetOptions } from '../data/load-image-dataset';
import { checkTta, ResolvedTta, TtaOptions } from './tta';
import { checkEma, EmaOptions, ResolvedEma } from './ema';
import { checkBatchSizes } from './batch-schedule';
import { WEIGHT_DECAY_ON, WeightDecayOn } from './weight-decay';
import { checkWhiten, ResolvedWhiten, WhitenOptions } from './whitening';

export const DATASETS = ['mnist', 'fashion-mnist'] as const;
export type DatasetName = (typeof DATASETS)[number];
/**
 * trainCnn's `data` options: how loadImageDataset reads the dataset. `dataDir`, `validation` and
 * `limit` are trainCnn's own options, so they are refused here.
 */
export type TrainDataOptions = Omit<LoadImageDatasetOptions, 'dataDir' | 'validation' | 'limit'>;
const DATA_OPTION_KEYS = ['cacheDir', 'imageSize', 'channels', 'testFraction', 'seed', 'layout', 'labels', 'cifar100Labels', 'cache', 'download', 'verify'];
export const OPTIMIZERS = ['adam', 'adamw', 'sgd'] as const;
/** trainCnn's optimizer when none is named. */
export const DEFAULT_OPTIMIZER: (typeof OPTIMIZERS)[number] = 'adam';
export const DEVICES = ['cpu', 'cuda', 'auto'] as const;

/** A dataset already in memory (what loadDataset returns), accepted instead of a name. */
export interface InMemoryDataset {
  name: string;
  train: LabelledImages;
  test: LabelledImages;
  validation?: LabelledImages;
  classNames: string[];
}

export interface StepProgress {
  type: 'step';
  epoch: number;
  step: number;
  steps: number;
  /** Mean training loss over the epoch so far. */
  loss: number;
  /** Training accuracy over the epoch so far. */
  accuracy: number;
  imagesPerSecond: number;
}

export interface EpochRecord {
  epoch: number;
  trainLoss: number;
  trainAccuracy: number;
  testLoss: number;
  testAccuracy: number;
  validationLoss?: number;
  validationAccuracy?: number;
  /** Seconds of the epoch's training steps. */
  seconds: number;
  /** Seconds of the epoch's evaluation (test split, and validation split if any). */
  evaluationSeconds?: number;
  imagesPerSecond: number;
  learningRate: number;
  /** How the test and validation figures were taken, when not from the plain model: TTA views, the weight average. */
  evaluatedWith?: { tta?: ResolvedTta; ema?: ResolvedEma };
}

export interface EpochProgress {
  type: 'epoch';
  epoch: number;
  epochs: number;
  record: EpochRecord;
}

export type TrainProgress = StepProgress | EpochProgress;

/**
 * Options of trainCnn. Every option is optional; the defaults train the TensorFlow-tutorial network
 * on Fashion-MNIST for one epoch with Adam (1e-3), batch 128, on the CPU, eagerly.
 */
export interface TrainOptions {
  /**
   * 'fashion-mnist' (default), 'mnist', 'cifar10', 'cifar100', 'idx', an IDX set in dataDir, an image
   * folder, an .npz/.npy file (see loadImageDataset), or a dataset already in memory.
   * @example trainCnn({ dataset: './my-images', data: { imageSize: '32x32' } })
   */
  dataset?: string | InMemoryDataset;
  /** Folder holding a named dataset's files (else CONVSCOPE_DATA, the cache, installed copies). */
  dataDir?: string;
  /**
   * How a dataset given by name or path is read: image size and channels of an image folder, its test
   * share and seed, an array layout, CIFAR-100's labels, the cache (loadImageDataset's options).
   * @example trainCnn({ dataset: 'cifar100', data: { cifar100Labels: 'coarse' } })
   */
  data?: TrainDataOptions;
  spec?: CnnSpec;
  /** 'eager': ops run one by one from TS; 'script': a TorchScript graph, a whole epoch natively. */
  mode?: ExecutionMode;
  epochs?: number;
  batchSize?: number;
  learningRate?: number;
  optimizer?: (typeof OPTIMIZERS)[number];
  /** SGD momentum (default 0). */
  momentum?: number;
  nesterov?: boolean;
  /** L2 penalty, applied by the optimizer as weight decay (AdamW: decoupled weight decay, default 0.01). */
  weightDecay?: number;
  /** L1 penalty: l1 * sum|w| over all weights (not biases) is added to the loss. */
  l1?: number;
  device?: (typeof DEVICES)[number];
  seed?: number;
  /** Images per evaluation chunk (default 128 on the CPU, 1000 on a GPU). */
  evalChunkSize?: number;
  /** Train on the first `limit` training images only (quick runs). */
  limit?: number;
  /** Evaluate on the first `testLimit` test images only. */
  testLimit?: number;
  /** Hold out the last n training images as a validation split (of a named or an in-memory dataset). */
  validation?: number;
  /** Standardise inputs with the training set's mean and std (default true; false keeps pixels in [0, 1]). */
  standardize?: boolean;
  /** Drop the last, smaller batch of each epoch. */
  dropLast?: boolean;
  /**
   * Progress events. For an 'epoch' event a returned promise is awaited before the next epoch starts
   * (tune asks its pruner there), and its rejection rejects the training; any other return value is
   * ignored, as for the other events.
   */
  onProgress?: (event: TrainProgress) => unknown;
  signal?: AbortSignal;
  /** Folder for config.json, history.json, model.pt and pictures; none when omitted. */
  runDir?: string;
  /** Record first-layer filters every n steps (default: once per epoch). */
  snapshotEvery?: number;
  /** Continue from a checkpoint written by a run (weights, optimizer state, epoch, history). */
  resumeFrom?: string;
  /** Start from a copy of this model's weights and spec (fine-tuning); the given model is not changed. */
  initialModel?: import('../nn/model').CnnModel;
  /** Write pictures (mosaics, GIF, curves) into runDir (default true when runDir is set). */
  pictures?: boolean;
  /** 'bf16': forward pass and loss under bfloat16 autocast (weights and optimizer stay fp32). */
  precision?: 'fp32' | 'bf16';
  /**
   * When an abort (signal) stops a run that has a runDir, write a checkpoint of where it stopped,
   * mid-epoch, that resumeFrom continues from (default true).
   */
  checkpointOnAbort?: boolean;
  /**
   * Also keep each epoch's weights in runDir as epoch-<n>.pt (weights and spec, no optimizer state;
   * loadModel reads them), for comparing explanations across training. Default false; needs runDir.
   * @example trainCnn({ epochs: 5, runDir: 'runs/a', keepEpochCheckpoints: true })
   */
  keepEpochCheckpoints?: boolean;
  /**
   * Scripted training on CUDA: capture the whole step (gather, forward, loss, backward, update) in one
   * CUDA graph and replay it for every full batch (default true on CUDA in script mode). Needs mode
   * 'script', a CUDA device and a build with the CUDA sources (torchInfo().cudaSources).
   */
  cudaGraph?: boolean;
  /**
   * How the learning rate moves over the run's steps (default 'constant'): 'cosine' anneals it to 0,
   * 'one-cycle' rises from learningRate / 25 to learningRate and falls to 1/10^4 of its start
   * (PyTorch's OneCycleLR). The rate of every step goes to TensorBoard.
   */
  schedule?: ScheduleKind;
  /** constant, cosine: steps of linear warm-up to learningRate (default 0); one-cycle: its rising phase (default 30% of the run). */
  warmupSteps?: number;
  /** Label smoothing of the training loss, in [0, 1) (default 0; evaluation reports the plain loss). */
  labelSmoothing?: number;
  /**
   * Augmentation of every training batch on the training device, seeded with the run: random shifts
   * by up to `shift` pixels (padding by `shift`, then cropping back at a random offset: the random crop
   * with padding of CIFAR's recipe is `{ shift: 4, flip: true }`) and left-right flips (default: none),
   * every channel of an image alike. Flips suit Fashion-MNIST's clothes and CIFAR's objects, not
   * MNIST's digits.
   */
  augment?: AugmentOptions;
  /**
   * Start from a named recipe (src/train/presets.ts): 'tutorial' (the exercise's network and training)
   * 'fast' (a batch-norm CNN with AdamW, one-cycle, label smoothing and augmentation, scripted) or
   * 'speedrun' / 'speedrun-wide' (time to accuracy: a small batch-norm CNN, eager / a wider one,
   * scripted, with those tricks, a weight average and, on Fashion-MNIST, flip test-time augmentation;
   * docs/recipes.md). Options given alongside it win over the preset's.
   */
  preset?: PresetName;
  /**
   * Train as one rank of a data-parallel group (c10d: Gloo on CPUs), joining the group that torchrun's
   * environment describes (RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT, ...). batchSize is per rank;
   * every rank returns the same weights; only rank 0 writes runDir. `true`, or `{ timeout }` in seconds
   * (default 300) for the rendezvous and every collective. README's "More than one process" says more.
   * @example trainCnn({ distributed: true, batchSize: 64 }) // under torchrun --nproc-per-node 2
   */
  distributed?: boolean | DistributedOptions;
  /**
   * Test-time augmentation of every evaluation of the run (the test accuracy of each epoch and the
   * final one): the logits averaged over the image, its left-right mirror (`flip`) and copies moved
   * by `shift` pixels down-right and up-left (src/train/tta.ts). Default none (false: none, also
   * over a preset's); the history records it.
   * @example trainCnn({ dataset: 'fashion-mnist', tta: { flip: true } })
   */
  tta?: TtaOptions | false;
  /**
   * Keep an exponential moving average of the weights and batch-norm statistics (src/train/ema.ts),
   * updated every `every` steps (default 1) with `decay` (default 0.99; lower on the first updates
   * unless `warmup: false`). Each epoch is evaluated with
   * the average, and the model returned and the run folder's model.pt (and epoch-<n>.pt) hold it: the
   * weights the figures describe. resumeFrom continues training from those weights, the average
   * starting again from them; an aborted run's checkpoint holds the training weights. Default: none
   * (false: none, also over a preset's).
   * @example trainCnn({ epochs: 5, ema: { decay: 0.995 } })
   */
  ema?: EmaOptions | false;
  /**
   * Progressive batch sizes: the batch size of each epoch, the last one for every later epoch (e.g.
   * small batches first, larger and faster ones later); replaces batchSize. The learning-rate
   * schedule runs over the steps this gives (src/train/batch-schedule.ts). Default: batchSize throughout.
   * @example trainCnn({ epochs: 4, batchSizes: [128, 256, 512] })
   */
  batchSizes?: number[];
  /**
   * What weight decay reaches: 'all' parameters (default, PyTorch's way) or only the convolution and
   * dense 'weights', not biases nor batch normalisation's scales and shifts (src/train/weight-decay.ts).
   * @example trainCnn({ optimizer: 'adamw', weightDecay: 0.05, weightDecayOn: 'weights' })
   */
  weightDecayOn?: WeightDecayOn;
  /**
   * Patch-whitening initialisation of a new model's first convolution (src/train/whitening.ts): its
   * first filters (up to 2 k^2) become the whitening filters of the training images' k x k patches, in
   * pairs of opposite sign; they train on from there (not frozen). true for the defaults. Not with
   * initialModel (whose weights are given); a resumed run keeps its checkpoint's weights. Default none.
   * @example trainCnn({ preset: 'speedrun', whiten: true })
   */
  whiten?: boolean | WhitenOptions;
}

export interface AugmentOptions {
  /** Pad by this many pixels and crop back at a random offset per image (0: none). */
  shift?: number;
  /** Mirror each image left-right with probability 1/2. */
  flip?: boolean;
  /**
   * What the padding holds: 'zero' (default) black pixels, as torchvision's RandomCrop pads before
   * Normalize; 'mean' each channel's mean (0 once standardised).
   */
  fill?: 'zero' | 'mean';
}

export const AUGMENT_FILLS = ['zero', 'mean'] as const;

/** Options that stay optional once defaults are applied; every other option gets a value. */
type OptionalAfterResolve = 'dataDir' | 'limit' | 'testLimit' | 'validation' | 'onProgress' | 'signal' | 'runDir'
  | 'snapshotEvery' | 'resumeFrom' | 'initialModel' | 'cudaGraph' | 'preset' | 'evalChunkSize' | 'ema' | 'batchSizes';
/** Options resolved to another type than they are given in. */
type Reshaped = 'augment' | 'tta' | 'ema' | 'whiten' | 'distributed';

/** TrainOptions after validation, with every default filled in. */
export type ResolvedTrainOptions = Required<Omit<TrainOptions, OptionalAfterResolve | Reshaped>>
  & Pick<TrainOptions, Exclude<OptionalAfterResolve, 'ema'>> & { augment: Required<AugmentOptions>; tta: ResolvedTta; ema?: ResolvedEma; whiten?: ResolvedWhiten; distributed?: ResolvedDistributedOptions };

const KNOWN = [
  'dataset', 'dataDir', 'data', 'spec', 'mode', 'epochs', 'batchSize', 'learningRate', 'optimizer', 'momentum', 'nesterov',
  'weightDecay', 'l1', 'device', 'seed', 'evalChunkSize', 'limit', 'testLimit', 'validation', 'standardize', 'dropLast',
  'onProgress', 'signal', 'runDir', 'snapshotEvery', 'resumeFrom', 'initialModel', 'pictures', 'precision', 'checkpointOnAbort', 'keepEpochCheckpoints',
  'cudaGraph', 'schedule', 'warmupSteps', 'labelSmoothing', 'augment', 'preset', 'distributed', 'tta', 'ema', 'batchSizes', 'weightDecayOn', 'whiten',
];

/**
 * A dataset given in memory: checked like a loaded one would be, so that an empty object, a split of
 * no images, float images or too few labels fail here, naming the field, instead of in the addon.
 */
function checkInMemoryDataset(value: Record<string, unknown>): InMemoryDataset {
  checkString(value.name, 'dataset.name');
  checkSplit(value.train, 'dataset.train');
  checkSplit(value.test, 'dataset.test');
  if (value.validation !== undefined) checkSplit(value.validation, 'dataset.validation');
  if (!Array.isArray(value.classNames) || !value.classNames.every((n) => typeof n === 'string')) {
    throw new TypeError(expected('an array of class names', 'dataset.classNames', value.classNames));
  }
  return value as unknown as InMemoryDataset;
}

/** trainCnn's `data` option: loadImageDataset's options without the three trainCnn has itself. */
function checkDataOptions(value: unknown): TrainDataOptions {
  if (value === undefined) return {};
  const data = checkObject(value, 'data');
  checkKnownKeys(data, 'data', DATA_OPTION_KEYS);
  resolveImageDatasetOptions(data, 'data');
  return data as TrainDataOptions;
}

/** `validation` carves the last training images of an in-memory dataset: it must leave some, and not replace a given split. */
function checkValidationFits(dataset: InMemoryDataset, value: unknown): void {
  if (dataset.validation) {
    throw new RangeError(`Expected either dataset.validation or the validation option but received both (validation: ${JSON.stringify(value)})`);
  }
  checkInteger(value, 'validation', 1, dataset.train.count - 1);
}

function checkAugment(value: unknown): Required<AugmentOptions> {
  if (value === undefined) return { shift: 0, flip: false, fill: 'zero' };
  const a = checkObject(value, 'augment');
  checkKnownKeys(a, 'augment', ['shift', 'flip', 'fill']);
  return {
    shift: checkInteger(a.shift ?? 0, 'augment.shift', 0, 1024),
    flip: checkBoolean(a.flip ?? false, 'augment.flip'),
    fill: checkOneOf(a.fill ?? 'zero', 'augment.fill', AUGMENT_FILLS),
  };
}

function optional<T>(value: unknown, check: (v: unknown) => T): T | undefined {
  return value === undefined ? undefined : check(value);
}

/** The options with a preset's values under them: every option given (not undefined) wins. */
function withPreset(given: Record<string, unknown>): Record<string, unknown> {
  if (given.preset === undefined) return given;
  const preset = checkOneOf(given.preset, 'preset', PRESETS);
  const dataset = typeof given.dataset === 'object' && given.dataset !== null ? (given.dataset as { name?: unknown }).name : given.dataset;
  const merged: Record<string, unknown> = { ...presetOptions(preset, typeof dataset === 'string' ? dataset : 'fashion-mnist') };
  for (const [key, value] of Object.entries(given)) if (value !== undefined) merged[key] = value;
  return merged;
}

/** The default network without an input shape or classes: trainCnn takes the data's channels, size and classes (training-data.ts's specForData). */
function dataShapedDefaultSpec(): CnnSpec {
  const { inputSize: _size, inputChannels: _channels, classes: _classes, ...rest } = defaultSpec();
  return rest;
}

/** Validates every option before any work starts; throws TypeError/RangeError naming the option. */
export function resolveTrainOptions(input: unknown = {}): ResolvedTrainOptions {
  const given = checkObject(input, 'options');
  checkKnownKeys(given, 'trainCnn options', KNOWN);
  const o = withPreset(given);
  let dataset: string | InMemoryDataset;
  if (o.dataset === undefined) dataset = 'fashion-mnist';
  else if (typeof o.dataset === 'object' && o.dataset !== null) dataset = checkInMemoryDataset(o.dataset as Record<string, unknown>);
  else {
    // Known name, existing path or IDX set: checked now, read after every other option is.
    datasetSourceType(o.dataset, o.dataDir === undefined ? undefined : checkString(o.dataDir, 'dataDir'));
    dataset = o.dataset as string;
  }
  const data = checkDataOptions(o.data);
  const spec = (o.spec ?? dataShapedDefaultSpec()) as CnnSpec;
  planModel(spec);
  if (o.onProgress !== undefined && typeof o.onProgress !== 'function') throw new TypeError(expected('a function', 'onProgress', o.onProgress));
  if (o.signal !== undefined && !(o.signal instanceof AbortSignal)) throw new TypeError(expected('an AbortSignal', 'signal', o.signal));
  if (o.resumeFrom !== undefined && o.initialModel !== undefined) {
    // Both say where the weights come from; one of them would be silently ignored.
    throw new TypeError(expected('either resumeFrom or initialModel', 'initialModel', o.initialModel) + ' together with resumeFrom');
  }
  if (o.validation !== undefined && typeof dataset === 'object') checkValidationFits(dataset, o.validation);
  const mode = checkOneOf(o.mode ?? 'eager', 'mode', MODES);
  if (o.keepEpochCheckpoints === true && o.runDir === undefined) {
    throw new TypeError(expected('a runDir to keep epoch checkpoints in (keepEpochCheckpoints: true)', 'runDir', undefined));
  }
  if (o.whiten !== undefined && o.whiten !== false && o.initialModel !== undefined) {
    // Whitening initialises a new model; the given model's weights would be overwritten.
    throw new TypeError(expected('either whiten or initialModel', 'whiten', o.whiten) + ' together with initialModel');
  }
  if (o.cudaGraph === true && mode !== 'script') {
    // The eager path issues every op from JS; there is no native step to capture.
    throw new RangeError(expected("mode 'script' for cudaGraph: true (a CUDA graph holds the scripted step)", 'mode', mode));
  }
  const distributed = checkDistributed(o.distributed);
  if (o.cudaGraph === true && distributed?.syncBatchNorm) {
    // A graph replays its collectives only where the averaging sits beside it; synced batch norms sum inside forward.
    throw new RangeError(expected('cudaGraph left unset or false with distributed.syncBatchNorm (batch norms sync inside the step, which a CUDA graph cannot hold)', 'cudaGraph', true));
  }
  return {
    dataset,
    dataDir: optional(o.dataDir, (v) => checkString(v, 'dataDir')),
    data,
    spec,
    mode,
    epochs: checkInteger(o.epochs ?? 1, 'epochs', 1, 100000),
    batchSize: checkInteger(o.batchSize ?? 128, 'batchSize', 1, 1 << 24),
    learningRate: checkNumber(o.learningRate ?? 1e-3, 'learningRate', 0, Infinity, { exclusiveMin: true }),
    optimizer: checkOneOf(o.optimizer ?? DEFAULT_OPTIMIZER, 'optimizer', OPTIMIZERS),
    momentum: checkNumber(o.momentum ?? 0, 'momentum', 0, 1, { exclusiveMax: true }),
    nesterov: checkBoolean(o.nesterov ?? false, 'nesterov'),
    // AdamW's weight decay is decoupled and defaults to PyTorch's 0.01; elsewhere an L2 penalty, default 0.
    weightDecay: checkNumber(o.weightDecay ?? (o.optimizer === 'adamw' ? 0.01 : 0), 'weightDecay', 0),
    l1: checkNumber(o.l1 ?? 0, 'l1', 0),
    device: checkOneOf(o.device ?? 'cpu', 'device', DEVICES),
    seed: checkInteger(o.seed ?? 42, 'seed', 0, Number.MAX_SAFE_INTEGER),
    evalChunkSize: optional(o.evalChunkSize, (v) => checkInteger(v, 'evalChunkSize', 1, 1 << 24)),
    limit: optional(o.limit, (v) => checkInteger(v, 'limit', 1)),
    testLimit: optional(o.testLimit, (v) => checkInteger(v, 'testLimit', 1)),
    validation: optional(o.validation, (v) => checkInteger(v, 'validation', 1)),
    standardize: checkBoolean(o.standardize ?? true, 'standardize'),
    dropLast: checkBoolean(o.dropLast ?? false, 'dropLast'),
    onProgress: o.onProgress as ResolvedTrainOptions['onProgress'],
    signal: o.signal as AbortSignal | undefined,
    runDir: optional(o.runDir, (v) => checkString(v, 'runDir')),
    snapshotEvery: optional(o.snapshotEvery, (v) => checkInteger(v, 'snapshotEvery', 1)),
    resumeFrom: optional(o.resumeFrom, (v) => checkString(v, 'resumeFrom')),
    initialModel: optional(o.initialModel, (v) => {
      if (!(v instanceof CnnModel)) throw new TypeError(expected('a CnnModel', 'initialModel', v));
      v.check('initialModel');
      return v;
    }),
    pictures: checkBoolean(o.pictures ?? true, 'pictures'),
    precision: checkOneOf(o.precision ?? 'fp32', 'precision', ['fp32', 'bf16'] as const),
    checkpointOnAbort: checkBoolean(o.checkpointOnAbort ?? true, 'checkpointOnAbort'),
    keepEpochCheckpoints: checkBoolean(o.keepEpochCheckpoints ?? false, 'keepEpochCheckpoints'),
    cudaGraph: optional(o.cudaGraph, (v) => checkBoolean(v, 'cudaGraph')),
    schedule: checkOneOf(o.schedule ?? 'constant', 'schedule', SCHEDULES),
    warmupSteps: checkInteger(o.warmupSteps ?? 0, 'warmupSteps', 0, Number.MAX_SAFE_INTEGER),
    labelSmoothing: checkNumber(o.labelSmoothing ?? 0, 'labelSmoothing', 0, 1, { exclusiveMax: true }),
    augment: checkAugment(o.augment),
    preset: o.preset as PresetName | undefined,
    distributed,
    tta: checkTta(o.tta, 'tta'),
    ema: checkEma(o.ema, 'ema'),
    batchSizes: checkBatchSizes(o.batchSizes, 'batchSizes'),
    weightDecayOn: checkOneOf(o.weightDecayOn ?? 'all', 'weightDecayOn', WEIGHT_DECAY_ON),
    whiten: checkWhiten(o.whiten, 'whiten'),
  };
}

/** The options as they go into config.json: everything but callbacks and signals. */
export function recordableOptions(options: ResolvedTrainOptions): Record<string, unknown> {
  const { onProgress: _p, signal: _s, initialModel, data, ...rest } = options;
  const dataset = typeof rest.dataset === 'string' ? rest.dataset : rest.dataset.name;
  // Data options only when given: a run (or a search folder) without them records what it did before them.
  return { ...rest, dataset, ...(Object.keys(data).length > 0 ? { data } : {}), ...(initialModel ? { initialModel: 'given', spec: initialModel.spec } : {}) };
}
