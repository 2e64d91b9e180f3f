// trainCnn: the main job. Loads the data, builds (or resumes) the model, trains it epoch by epoch on
// the eager or the scripted path, evaluates in chunks, and records the run.
import { loadImageDataset } from '../data/load-image-dataset';
import { native, NativeOptimizer, NativeStepGraph, NativeTensor, OptimizerSettings, valuesOf } from '../core/native';
import { DataParallel, ReducerReport } from '../distributed/data-parallel';
import { rankDevice, rankEnvironment } from '../distributed/environment';
import { resumedOrder } from '../distributed/sampler';
import { CnnModel, createModelFor, InputNorm, NO_NORM } from '../nn/model';
import { checkModelFits, trainingFootprint } from '../nn/model-memory';
import { ops } from '../core/ops';
import { tidy } from '../core/tidy';
import { withPrecision } from '../core/precision';
import { recordOptimizerState } from '../nn/optimizer-state';
import { CnnSpec, planModel } from '../nn/spec';
import { expected } from '../util/validate';
import type { PartialEpoch, TrainingState } from './checkpoint';
import { evaluate, EvaluationResult, LabelledImages, sliceImages, takeImages } from './evaluate';
import { EpochRecord, InMemoryDataset, recordableOptions, ResolvedTrainOptions, resolveTrainOptions, TrainOptions } from './options';
import { augmentedBatch, augments, checkClassNames, checkSplitsFit, datasetNorm, DeviceData, padValues, specForData, uploadTrainingData } from './training-data';
import { openResume, Resume } from './resume';
import { RunRecorder } from './run-recorder';
import { isScheduled, learningRateAt, learningRates, Schedule } from './schedule';
import { WeightAverage } from './ema';
import { epochBatchSize, epochStepBase, epochSteps, largestBatch, runSteps } from './batch-schedule';
import { undecayedParameters } from './weight-decay';
import { whitenFirstConvolution } from './whitening';
import { evaluateEpoch, evaluationRecord } from './epoch-evaluation';

export interface TrainResult {
  model: CnnModel;
  history: EpochRecord[];
  testAccuracy: number;
  testLoss: number;
  /** confusion[true][predicted] on the test split after the last epoch. */
  confusion: number[][];
  classNames: string[];
  runDir?: string;
  seconds: number;
  /** Full batches run by replaying the scripted step's CUDA graph (0 without one; see TrainOptions.cudaGraph). */
  cudaGraphReplays: number;
  /**
   * Seconds of this call's training steps and evaluations (the history's seconds + evaluationSeconds):
   * no data loading, model building or run-folder writing; what time-to-accuracy counts.
   */
  trainingSeconds: number;
  /** A distributed run's rank and world size, and what DDP's Reducer did on this rank. */
  distributed?: { rank: number; worldSize: number } & ReducerReport;
}

/** Rejection of an aborted training: `name` is 'AbortError', as for fetch(). */
export class TrainingAbortedError extends Error {
  constructor(readonly epoch: number, readonly step: number) {
    super(`training was aborted at epoch ${epoch}, step ${step}`);
    this.name = 'AbortError';
  }
}

/**
 * A NaN or infinite loss: training stops before the weights are updated with it. `weightsFinite`
 * says whether the weights handed back (`err.model`) are all finite: an update computed from a
 * finite loss can itself overflow them (Adam at learningRate 1e308), and the loss only shows it a
 * step later; then the message says so.
 */
export class TrainingDivergedError extends Error {
  constructor(readonly epoch: number, readonly step: number, readonly learningRate: number, readonly weightsFinite = true) {
    super(`training diverged: the loss became NaN or infinite at epoch ${epoch}, step ${step} ` +
      `(learning rate ${learningRate}); ${weightsFinite
        ? 'the weights were not updated with it'
        : 'the weights are no longer finite (an earlier update overflowed them), and the model is returned as it is'}. ` +
      'Lower learningRate or add regularisation.');
    this.name = 'TrainingDivergedError';
  }
}

/** Whether every parameter of the model is finite (copies them to the host: for the error path only). */
function weightsAreFinite(model: CnnModel): boolean {
  return model.parameters().every((p) => p.values.every(Number.isFinite));
}

/** The divergence error for a model, saying whether its weights are still finite. */
function divergedError(model: CnnModel, epoch: number, step: number, learningRate: number): TrainingDivergedError {
  return new TrainingDivergedError(epoch, step, learningRate, weightsAreFinite(model));
}

/** Seeds derived per epoch, so an epoch's shuffle and dropout masks do not depend on what ran before it (resume gives the same run). */
function epochSeed(seed: number, epoch: number): number {
  return (seed * 1000003 + epoch * 7919) % 2147483647;
}

const yieldToEventLoop = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

function resolveDevice(device: ResolvedTrainOptions['device']): string {
  const info = native().torchInfo();
  if (device === 'auto') return info.cuda ? 'cuda' : 'cpu';
  if (device === 'cuda' && !info.cuda) {
    throw new Error(`CUDA was asked for but is not available: convscope's addon is linked to the libtorch at ${info.libtorchPath}, ` +
      `which ${info.builtWithCuda ? 'sees no GPU' : 'has no CUDA support'}. Build against a CUDA libtorch: ` +
      '`LIBTORCH=/path/to/libtorch-cuda npm run build:addon` or `TORCH_PYTHON=/path/to/python-with-cuda-torch npm run build:addon`.');
  }
  return device;
}

/**
 * Whether the run's scripted step is replayed from a CUDA graph: by default on CUDA in script mode
 * where the addon has the CUDA sources; `cudaGraph: true` where that is impossible is an error. A
 * data-parallel run replays one only when asked (`cudaGraph: true`): its gradients are then averaged
 * beside the graph, between the replays of backward's graph and the update's (graph_step.h), a path
 * compiled by the CUDA compile check but not yet run on GPUs, so not the default.
 */
function wantsStepGraph(options: ResolvedTrainOptions, device: string): boolean {
  const possible = options.mode === 'script' && device.startsWith('cuda') && native().cuda?.StepGraph !== undefined;
  if (options.cudaGraph === true && !possible) {
    const why = !device.startsWith('cuda') ? `the run's device is ${device}` : 'this build of the addon has no CUDA sources (torchInfo().cudaSources is false)';
    throw new RangeError(expected('a scripted run on a CUDA device for cudaGraph: true', 'cudaGraph', true) + `, but ${why}`);
  }
  if (options.distributed) return possible && options.cudaGraph === true;
  return possible && options.cudaGraph !== false;
}

async function loadData(options: ResolvedTrainOptions): Promise<InMemoryDataset> {
  if (typeof options.dataset !== 'string') return carveValidation(options.dataset, options.validation);
  // MNIST and Fashion-MNIST may be downloaded into the cache when no local copy exists (never in CI or tests).
  return loadImageDataset(options.dataset, { ...options.data, dataDir: options.dataDir, validation: options.validation });
}

/**
 * An in-memory dataset with its last `count` training images moved to a validation split, as
 * loadDataset({ validation }) does for a named one (resolveTrainOptions checked that they fit).
 */
function carveValidation(dataset: InMemoryDataset, count: number | undefined): InMemoryDataset {
  if (count === undefined) return dataset;
  const { train } = dataset;
  const kept = train.count - count;
  return { ...dataset, train: sliceImages(train, 0, kept), validation: sliceImages(train, kept, train.count) };
}

function optimizerSettings(options: ResolvedTrainOptions): OptimizerSettings {
  return {
    kind: options.optimizer,
    learningRate: options.learningRate,
    momentum: options.momentum,
    nesterov: options.nesterov,
    weightDecay: options.weightDecay,
  };
}

interface EpochTotals { lossSum: number; correct: number; seen: number }

interface EpochContext {
  model: CnnModel;
  optimizer: NativeOptimizer;
  data: DeviceData;
  order: NativeTensor;
  /** Rows of `order`: the training images, or this rank's share of them in a distributed run. */
  rows: number;
  /** A distributed run's rank: gradients are averaged over the ranks before each update. */
  parallel?: DataParallel;
  options: ResolvedTrainOptions;
  epoch: number;
  steps: number;
  /** This epoch's batch size (TrainOptions.batchSizes can change it per epoch). */
  batchSize: number;
  /** The step to start from: 0, or where an aborted run stopped when it is resumed. */
  firstStep: number;
  /** The epoch's running totals, updated in place: the caller reads them when an abort stops the epoch. */
  totals: EpochTotals;
  /** Steps between reading training statistics back from the device (and between progress reports). */
  syncEvery: number;
  /** The run's CUDA graph of the scripted step, if it has one. */
  stepGraph?: NativeStepGraph;
  /** The run's moving average of the weights, if it keeps one (updated after each step it asks for). */
  average?: WeightAverage;
  /** The learning rate of every step of the run; `stepBase` is this epoch's first step in it. */
  schedule: Schedule;
  stepBase: number;
  /** Called at step boundaries where a snapshot is due. */
  onStepBoundary: (stepsDone: number) => Promise<void> | void;
  report: (stepsDone: number, totals: EpochTotals) => void;
}

function stepCount(count: number, batchSize: number, dropLast: boolean): number {
  return dropLast ? Math.floor(count / batchSize) : Math.ceil(count / batchSize);
}

/**
 * Steps between reading training statistics back from the device: every step on the CPU, where it
 * costs nothing and lets a non-finite loss stop training before the weights take it; every 50 on a
 * GPU, which a read-back would synchronise. Read once per run (syncEveryFor) and passed to both
 * epoch paths; tests change `cpu` to run the GPU logic on the CPU.
 */
export const SYNC_EVERY = { cpu: 1, device: 50 };

function syncEveryFor(device: string): number {
  return device === 'cpu' ? SYNC_EVERY.cpu : SYNC_EVERY.device;
}

/** Eager steps between returning glibc's free memory to the OS (see runEagerEpoch). */
const TRIM_EVERY_STEPS = 16;

/** The eager path: every op of every step is issued from here. */
async function runEagerEpoch(ctx: EpochContext): Promise<EpochTotals> {
  const { model, optimizer, order, options, epoch, steps, totals, syncEvery, rows, parallel, batchSize } = ctx;
  const data = { ...ctx.data, count: rows };
  const weights = options.l1 > 0 ? model.weightTensors() : [];
  const { mean, std } = model.inputNorm;
  const scheduled = isScheduled(ctx.schedule);
  // On a GPU, [loss sum, correct] accumulate on the device between read-backs.
  let pending: NativeTensor | undefined;
  let pendingFrom = ctx.firstStep;
  /** Reads the device-side totals since the last read-back into `totals`. */
  const readBack = (step: number): void => {
    const [lossSum, correct] = valuesOf(pending!, 'float64');
    pending!.dispose();
    pending = undefined;
    if (!Number.isFinite(lossSum)) throw divergedError(model, epoch, pendingFrom, options.learningRate);
    totals.lossSum += lossSum;
    totals.correct += correct;
    totals.seen += Math.min(data.count, step * batchSize) - Math.min(data.count, pendingFrom * batchSize);
    pendingFrom = step;
  };
  try {
    for (let step = ctx.firstStep; step < steps; ++step) {
      if (options.signal?.aborted) {
        // The totals must cover every step the weights took, for the abort's checkpoint.
        if (pending) readBack(step);
        throw new TrainingAbortedError(epoch, step);
      }
      const start = step * batchSize;
      const end = Math.min(data.count, start + batchSize);
      if (scheduled) optimizer.setLearningRate(learningRateAt(ctx.schedule, ctx.stepBase + step));
      // Forward and (single process) backward; the four tensors kept are freed after the update.
      // With synced batch norms the forward sums statistics over the group (on the main thread).
      let pass: { logits: NativeTensor; y: NativeTensor; loss: NativeTensor; objective: NativeTensor };
      try {
        pass = tidy(() => {
          const [gathered, y] = ops().gatherBatch(data.images, data.labels, order, start, end, mean, std);
          const x = augmentedBatch(gathered, options, model.inputNorm);
          const { logits, loss } = withPrecision(options.precision, model.device, () => {
            const out = model.forward(x, { training: true });
            return { logits: out, loss: ops().crossEntropy(out, y, 'mean', options.labelSmoothing) };
          });
          const objective = options.l1 > 0 ? ops().add(loss, ops().mulScalar(ops().sumAbs(weights), options.l1)) : loss;
          optimizer.zeroGrad();
          if (!parallel) objective.backward();
          return { logits, y, loss, objective };
        });
      } catch (err) {
        throw parallel?.syncsBatchNorm ? parallel.explain(err, 'batch-norm statistics sum') : err;
      }
      let outcome: { loss: number; correct: number } | null;
      try {
        // Distributed: backward runs off the main thread, as it waits for the Reducer's last bucket
        // (native/reducer.h), and every rank decides on the mean objective, so that all of them stop together.
        const meanObjective = parallel ? await parallel.reducedBackward(pass.objective) : undefined;
        const { logits, y, loss, objective } = pass;
        outcome = tidy(() => {
          if (syncEvery === 1) {
            // Stop before a non-finite loss corrupts the weights.
            if (!Number.isFinite(meanObjective ?? objective.item())) return null;
            optimizer.step();
            ctx.average?.afterStep(ctx.stepBase + step);
            return { loss: loss.item(), correct: ops().countCorrect(logits, y) };
          }
          optimizer.step();
          ctx.average?.afterStep(ctx.stepBase + step);
          const stats = native().ops.stepStats(logits, y, loss);
          const sum = pending ? native().ops.add(pending, stats) : stats;
          if (pending) { pending.dispose(); stats.dispose(); }
          pending = sum;
          return { loss: 0, correct: 0 };
        });
      } finally {
        for (const t of new Set(Object.values(pass))) t.dispose();
      }
      if (!outcome) throw divergedError(model, epoch, step, options.learningRate);
      if (syncEvery === 1) {
        totals.lossSum += outcome.loss * (end - start);
        totals.correct += outcome.correct;
        totals.seen += end - start;
      } else if ((step + 1) % syncEvery === 0 || step + 1 === steps) {
        readBack(step + 1);
      }
      if (syncEvery === 1 || pendingFrom === step + 1) ctx.report(step + 1, totals);
      // Freeing a step's tensors in JS order leaves glibc's heap fragmented, so the process would keep
      // growing a little every step; handing glibc's free memory back every few steps bounds it. The
      // large blocks stay in the CPU block cache for the next steps. (On a GPU the activations are not
      // in the host's heap, and the trim would only cost time.)
      if (model.device === 'cpu' && (step + 1) % TRIM_EVERY_STEPS === 0) native().trimHeap();
      await ctx.onStepBoundary(step + 1);
      // One step at most between turns of the event loop: timers and I/O keep running during an epoch.
      await yieldToEventLoop();
    }
  } finally {
    pending?.dispose();
  }
  return totals;
}

/** The scripted path: whole segments of the epoch run natively off the main thread. */
async function runScriptEpoch(ctx: EpochContext, segmentSteps: number): Promise<EpochTotals> {
  const { model, optimizer, data, order, options, epoch, steps, totals, parallel, batchSize } = ctx;
  const script = model.scriptModule!;
  const { mean, std } = model.inputNorm;
  for (let first = ctx.firstStep; first < steps; first += segmentSteps) {
    if (options.signal?.aborted) throw new TrainingAbortedError(epoch, first);
    const last = Math.min(steps, first + segmentSteps);
    const rowsEnd = Math.min(ctx.rows, last * batchSize);
    const segment = native().ops.slice(order, 0, first * batchSize, rowsEnd);
    const base = { ...totals };
    // A throwing onProgress must reject training as it does in eager mode: an exception thrown from
    // inside the addon's callback would be lost, so it is kept, the job cancelled, and thrown below.
    let callbackError: { error: unknown } | undefined;
    const job = native().trainEpoch({
      model: script, optimizer, images: data.images, labels: data.labels, order: segment,
      batchSize, mean, std, l1: options.l1, l1Params: options.l1 > 0 ? model.weightTensors() : [],
      progressEvery: ctx.syncEvery, dropLast: options.dropLast, precision: options.precision,
      labelSmoothing: options.labelSmoothing, shift: options.augment.shift, flip: options.augment.flip, padValues: padValues(options, model.inputNorm),
      ...(isScheduled(ctx.schedule) ? { learningRates: learningRates(ctx.schedule, ctx.stepBase + first, ctx.stepBase + last) } : {}),
      ...(ctx.stepGraph ? { graph: ctx.stepGraph } : {}),
      ...(parallel ? { reducer: parallel.nativeReducer } : {}),
      ...(ctx.average ? { ema: ctx.average.job(ctx.stepBase + first) } : {}),
    }, (p) => {
      if (callbackError) return;
      try {
        ctx.report(first + p.step, { lossSum: base.lossSum + p.loss, correct: base.correct + p.correct, seen: base.seen + p.seen });
      } catch (error) {
        callbackError = { error };
        job.cancel();
      }
    });
    const abort = (): void => job.cancel();
    options.signal?.addEventListener('abort', abort);
    let outcome;
    try {
      outcome = await job.promise;
    } catch (err) {
      throw parallel ? parallel.explain(err, 'epoch') : err;
    } finally {
      options.signal?.removeEventListener('abort', abort);
      segment.dispose();
    }
    if (callbackError) throw callbackError.error;
    if (outcome.nonFiniteStep >= 0) throw divergedError(model, epoch, first + outcome.nonFiniteStep, options.learningRate);
    totals.lossSum += outcome.lossSum;
    totals.correct += outcome.correct;
    totals.seen += outcome.seen;
    if (outcome.cancelled) throw new TrainingAbortedError(epoch, first + outcome.steps);
    await ctx.onStepBoundary(last);
  }
  return totals;
}

/** What the run trains: the split sizes and pixels fit the spec, and every epoch has at least one step (checked before any native work). */
function checkTrainingData(train: LabelledImages, rows: number, splits: [string, LabelledImages | undefined][], spec: Required<CnnSpec>, options: ResolvedTrainOptions, classNames: string[]): void {
  checkClassNames(classNames, spec);
  const whose = options.resumeFrom !== undefined ? `the checkpoint ${options.resumeFrom}` : options.initialModel ? 'initialModel' : 'the spec';
  checkSplitsFit(splits, spec, whose);
  const largest = largestBatch(options, options.epochs);
  if (stepCount(rows, largest, options.dropLast) === 0) {
    // Otherwise every epoch would record a NaN loss and the run would fail late, at its checkpoint.
    const what = rows === train.count ? `${rows} (the training images)` : `${rows} (this rank's share of the ${train.count} training images)`;
    throw new RangeError(expected(`at most ${what} with dropLast, so that an epoch has a step,`,
      options.batchSizes ? 'batchSizes' : 'batchSize', options.batchSizes ?? options.batchSize));
  }

}

/** The spec the run trains: the resumed checkpoint's, the initial model's, or the options'. */
function runSpec(options: ResolvedTrainOptions, resume: Resume | undefined, train: LabelledImages, classNames: string[]): Required<CnnSpec> {
  return resume?.model.spec ?? options.initialModel?.spec ?? planModel(specForData(options.spec, train, classNames)).spec;
}

/** The model a run starts from (a resumed one is already loaded). */
function startingModel(options: ResolvedTrainOptions, device: string, train: LabelledImages, spec: Required<CnnSpec>): CnnModel {
  if (options.initialModel) return options.initialModel.convert(options.mode).toDeviceOwned(device);
  const inputNorm = options.standardize ? datasetNorm(train) : NO_NORM;
  const model = createModelFor(trainingFootprint(options.optimizer, options.momentum), spec, { mode: options.mode, device, seed: options.seed, inputNorm });
  try {
    if (options.whiten) whitenFirstConvolution(model, train, options.whiten);
  } catch (err) {
    model.dispose();
    throw err;
  }
  return model;
}

/**
 * After an abort, a checkpoint of where the run stopped, mid-epoch, so that resumeFrom continues
 * from there (Ctrl-C in a one-epoch run would otherwise leave nothing to resume). A failure to write
 * it is a warning: the AbortError is what the caller asked for.
 */
function writeAbortCheckpoint(recorder: RunRecorder, model: CnnModel, optimizer: { native: NativeOptimizer; settings: OptimizerSettings }, state: TrainingState): void {
  try {
    recorder.abortCheckpoint(model, { optimizer, training: state });
  } catch (err) {
    process.emitWarning(`convscope: the checkpoint of the aborted run could not be written: ${(err as Error).message}`);
  }
}

/** One run's state: what it was asked, where it stands, and everything native it holds. */
interface Run {
  options: ResolvedTrainOptions;
  device: string;
  recorder?: RunRecorder;
  resume?: Resume;
  settings: OptimizerSettings;
  history: EpochRecord[];
  firstEpoch: number;
  /**
   * Where the epoch under way started in global samples (images of its permutation, over all ranks)
   * and at which step: an abort's checkpoint counts its position from it.
   */
  epochOrigin: { samples: number; step: number };
  /** The epoch under way and its running totals: an abort's checkpoint reads them. */
  epoch: number;
  totals: EpochTotals;
  model?: CnnModel;
  optimizer?: NativeOptimizer;
  deviceData?: DeviceData;
  wantsStepGraph: boolean;
  stepGraph?: NativeStepGraph;
  /** A distributed run's rank (joined after the options are checked). */
  parallel?: DataParallel;
  average?: WeightAverage;
  /** Seconds of the epochs' steps and evaluations in this call (TrainResult.trainingSeconds). */
  trainingSeconds: number;
}

/** The splits a run trains and tests on (an epoch's steps: batch-schedule.ts). */
interface RunSplits {
  dataset: InMemoryDataset;
  train: LabelledImages;
  test: LabelledImages;
  /** Training rows per epoch: the training images, or this rank's share of them. */
  rows: number;
  /** The learning rate of every step of the run (every epoch's steps). */
  schedule: Schedule;
  /** The spec the run trains (its input's channels and size from the data where the spec left them out). */
  spec: Required<CnnSpec>;
}

/** What training steps: the model, its optimizer and the training split on the device. */
interface Trainee {
  model: CnnModel;
  optimizer: NativeOptimizer;
  data: DeviceData;
  stepGraph?: NativeStepGraph;
  average?: WeightAverage;
}

const noTotals = (): EpochTotals => ({ lossSum: 0, correct: 0, seen: 0 });

/** Checks the options, the device, the run folder and the checkpoint to resume, before anything is trained. */
function openRun(input: TrainOptions): Run {
  const options = resolveTrainOptions(input);
  // A distributed run's environment is checked here, before anything is written; its rank 0 alone writes.
  const rank = options.distributed ? rankEnvironment(process.env, options.distributed.initMethod) : undefined;
  const device = rank ? rankDevice(resolveDevice(options.device), rank.localRank) : resolveDevice(options.device);
  if (rank && device !== 'cpu' && !native().distributed.backends.includes('nccl')) {
    // CUDA tensors are averaged by NCCL; Gloo would take them through the host.
    throw new RangeError(expected("device 'cpu' for a distributed run with this build of convscope (its NCCL backend is not built: no nccl.h when it was compiled)", 'device', options.device));
  }
  const stepGraph = wantsStepGraph(options, device);
  // Before anything native: a run folder that cannot be written fails now, not after an epoch.
  const recorder = options.runDir && (rank?.rank ?? 0) === 0 ? new RunRecorder(options.runDir, { pictures: options.pictures }) : undefined;
  let resume: ReturnType<typeof openResume> | undefined;
  try {
    resume = options.resumeFrom ? openResume(options, input.spec, device) : undefined;
  } catch (err) {
    recorder?.close(false);
    throw err;
  }
  const firstEpoch = resume?.firstEpoch ?? 1;
  return {
    options, device, recorder, resume, settings: optimizerSettings(options), history: resume?.history ?? [],
    firstEpoch, epoch: firstEpoch, epochOrigin: { samples: 0, step: 0 }, totals: noTotals(), model: resume?.model, wantsStepGraph: stepGraph, trainingSeconds: 0,
  };
}

async function prepareSplits(run: Run): Promise<RunSplits> {
  const { options } = run;
  const dataset = await loadData(options);
  const train = takeImages(dataset.train, options.limit);
  const test = takeImages(dataset.test, options.testLimit);
  const splits: [string, LabelledImages | undefined][] = [['dataset.train', train], ['dataset.test', test], ['dataset.validation', dataset.validation]];
  const spec = runSpec(options, run.resume, train, dataset.classNames);
  const rows = run.parallel?.rows(train.count) ?? train.count;
  checkTrainingData(train, rows, splits, spec, options, dataset.classNames);
  // Before any model exists (and before the training split is uploaded): one that cannot fit is refused with its size.
  if (!run.resume && !options.initialModel) checkModelFits(planModel(spec), run.device, trainingFootprint(options.optimizer, options.momentum));
  const schedule: Schedule = { kind: options.schedule, learningRate: options.learningRate, totalSteps: runSteps(options, rows, options.epochs), warmupSteps: options.warmupSteps };
  return { dataset, train, test, rows, schedule, spec };
}

/** The model (new, given or resumed), its optimizer and the uploaded training split; each is owned by the run as soon as it exists. */
function makeTrainee(run: Run, splits: RunSplits): Trainee {
  const model = run.model ??= startingModel(run.options, run.device, splits.train, splits.spec);
  // The settings stay free of tensors (checkpoints record them); the parameters kept from decay join here.
  const optimizer = run.optimizer = new (native().Optimizer)(model.parameterTensors(), { ...run.settings, ...undecayedParameters(model, run.options.weightDecayOn) });
  if (run.resume?.optimizerState) optimizer.loadState(run.resume.optimizerState);
  const data = run.deviceData = uploadTrainingData(splits.train, model.inputChannels, model.inputSize, run.device);
  const stepGraph = run.stepGraph = run.wantsStepGraph ? new (native().cuda!.StepGraph)(run.device) : undefined;
  const average = run.average = run.options.ema ? new WeightAverage(model, run.options.ema) : undefined;
  return { model, optimizer, data, stepGraph, average };
}

/** Where an epoch starts: its first step, this rank's order and rows, the totals so far, the global samples done. */
interface EpochStart { firstStep: number; order: NativeTensor; rows: number; totals: EpochTotals; samples: number }

/**
 * This rank's start of an epoch: at step 0 of its share of the permutation, or where an abort's
 * checkpoint stopped. A checkpoint's position is in global samples, so a run of another number of
 * ranks (or another batch size) continues with the images not yet seen, split between its ranks
 * (sampler.ts's resumedOrder), and ends the epoch at its own epoch's last step; with the same ranks
 * and batch it continues at the same step of the same shares. The totals so far are the group's:
 * each rank takes an equal part of them, which the epoch's sum over the ranks adds up again.
 */
function startOfEpoch(run: Run, partial: PartialEpoch | undefined, permutation: NativeTensor, batchSize: number, steps: number): EpochStart {
  const { parallel } = run;
  const world = parallel?.size ?? 1;
  const share = (n: number) => (partial?.worldSize === undefined ? n : n / world);
  const totals = partial ? { lossSum: share(partial.lossSum), correct: share(partial.correct), seen: share(partial.seen) } : noTotals();
  const samplesAt = (step: number) => step * batchSize * world;
  if (partial?.samples !== undefined && partial.samples !== samplesAt(partial.step)) {
    const resumed = resumedOrder(valuesOf(permutation, 'int64'), partial.samples, parallel?.rank ?? 0, world, batchSize, steps, run.options.dropLast);
    // The resumed share, copied into a libtorch tensor (a few hundred KB per epoch at most).
    const host = new (native().Tensor)(resumed.order, [resumed.order.length]);
    const order = permutation.device === 'cpu' ? host : native().ops.to(host, permutation.device);
    if (order !== host) host.dispose();
    return { firstStep: resumed.firstStep, order, rows: resumed.order.length, totals, samples: partial.samples };
  }
  const order = parallel ? parallel.shardOrder(permutation) : permutation;
  const firstStep = partial?.step ?? 0;
  return { firstStep, order, rows: parallel?.rows(permutation.shape[0]) ?? permutation.shape[0], totals, samples: samplesAt(firstStep) };
}

/**
 * An abort's position for its checkpoint: the step, the global samples done, the ranks, and the
 * group's totals (rank 0's, which every rank's resembles, times the ranks; rounded to whole images).
 */
function partialEpoch(run: Run, step: number): PartialEpoch {
  const world = run.parallel?.size ?? 1;
  const samples = run.epochOrigin.samples + (step - run.epochOrigin.step) * epochBatchSize(run.options, run.epoch) * world;
  const { lossSum, correct, seen } = run.totals;
  return { step, samples, worldSize: world, lossSum: lossSum * world, correct: Math.round(correct * world), seen: Math.round(seen * world) };
}

/** One epoch: its steps on the model's path, the evaluation, the record and the run folder's checkpoint. */
async function trainOneEpoch(run: Run, splits: RunSplits, trainee: Trainee, epoch: number): Promise<EvaluationResult> {
  const { options, recorder, history } = run;
  const { model, optimizer, data, stepGraph, average } = trainee;
  const { train } = splits;
  const steps = epochSteps(options, splits.rows, epoch);
  const snapshotEvery = options.snapshotEvery ?? steps;
  const batchSize = epochBatchSize(options, epoch);
  const partial = epoch === run.firstEpoch ? run.resume?.partial : undefined;
  const seed = epochSeed(options.seed, epoch);
  // Each rank its own dropout masks and augmentation; the same permutation, split between the ranks.
  native().manualSeed(run.parallel ? seed + run.parallel.rank : seed);
  const permutation = native().ops.randperm(train.count, seed);
  const start = startOfEpoch(run, partial, permutation, batchSize, steps);
  run.totals = start.totals;
  run.epochOrigin = { samples: start.samples, step: start.firstStep };
  const { totals, order, rows } = start;
  if (order !== permutation) permutation.dispose();
  const epochStart = process.hrtime.bigint();
  const globalStepBase = epochStepBase(options, splits.rows, epoch);
  const ctx: EpochContext = {
    model, optimizer, data, order, rows, parallel: run.parallel, options, epoch, steps, batchSize, firstStep: start.firstStep, totals, syncEvery: syncEveryFor(run.device), stepGraph, average,
    schedule: splits.schedule, stepBase: globalStepBase,
    onStepBoundary: async (done) => {
      if (recorder && done % snapshotEvery === 0 && done < steps) await recorder.snapshot(model, globalStepBase + done);
    },
    report: (done, running) => {
      const seconds = Number(process.hrtime.bigint() - epochStart) / 1e9;
      options.onProgress?.({
        type: 'step', epoch, step: done, steps,
        loss: running.lossSum / Math.max(running.seen, 1), accuracy: running.correct / Math.max(running.seen, 1),
        imagesPerSecond: running.seen / Math.max(seconds, 1e-9),
      });
    },
  };
  try {
    await (model.mode === 'script' ? runScriptEpoch(ctx, Math.min(snapshotEvery, steps)) : runEagerEpoch(ctx));
  } finally {
    order.dispose();
  }
  const seconds = Number(process.hrtime.bigint() - epochStart) / 1e9;
  // With a weight average, the epoch is evaluated and saved with it (src/train/ema.ts); the steps go on from the training weights.
  average?.swapIn();
  try {
    return await evaluateAndRecord(run, splits, trainee, epoch, seconds);
  } finally {
    average?.swapIn();
  }
}

/** The end of an epoch whose steps took `seconds`: the evaluations, the record and the run folder's checkpoint, of the model as it is. */
async function evaluateAndRecord(run: Run, splits: RunSplits, trainee: Trainee, epoch: number, seconds: number): Promise<EvaluationResult> {
  const { options, recorder, history, totals } = run;
  const { model, optimizer } = trainee;
  const { dataset, test, rows } = splits;
  const steps = epochSteps(options, rows, epoch);
  const globalStepBase = epochStepBase(options, rows, epoch);
  const epochTotals = run.parallel ? await run.parallel.sumTotals(totals) : totals;
  const { testEval, validationEval, evaluationSeconds } = await evaluateEpoch((split) => evaluateSplit(run, model, split), test, dataset.validation);
  run.trainingSeconds += seconds + evaluationSeconds;
  const record: EpochRecord = {
    epoch,
    trainLoss: epochTotals.lossSum / epochTotals.seen,
    trainAccuracy: epochTotals.correct / epochTotals.seen,
    testLoss: testEval.loss,
    testAccuracy: testEval.accuracy,
    ...(validationEval ? { validationLoss: validationEval.loss, validationAccuracy: validationEval.accuracy } : {}),
    seconds,
    imagesPerSecond: epochTotals.seen / seconds,
    // The rate of the epoch's last step.
    learningRate: learningRateAt(splits.schedule, globalStepBase + steps - 1),
    ...evaluationRecord(options, evaluationSeconds),
  };
  history.push(record);
  await options.onProgress?.({ type: 'epoch', epoch, epochs: options.epochs, record });
  if (recorder) {
    if (isScheduled(splits.schedule)) recorder.stepLearningRates(globalStepBase, learningRates(splits.schedule, globalStepBase, globalStepBase + steps));
    await recorder.snapshot(model, globalStepBase + steps);
    recorder.epochEnd(model, history, testEval, {
      optimizer: { native: optimizer, settings: run.settings },
      training: { epoch, seed: options.seed, history, options: recordableOptions(options) },
    });
    if (options.keepEpochCheckpoints) recorder.epochCheckpoint(model, epoch);
  }
  return testEval;
}

/** Parameters and buffers (batch normalisation's statistics): what a distributed run broadcasts from rank 0. */
function modelState(model: CnnModel): NativeTensor[] {
  return [...model.parameterTensors(), ...model.buffers().map((b) => model.tensor(b.name))];
}

/**
 * A split's evaluation: in a distributed run each rank evaluates its part and the counts are summed
 * over the ranks, so every rank reports the whole split's figures.
 */
async function evaluateSplit(run: Run, model: CnnModel, split: LabelledImages): Promise<EvaluationResult> {
  const chunkSize = run.options.evalChunkSize;
  const settings = { chunkSize, tta: run.options.tta };
  if (!run.parallel) return evaluate(model, split, settings);
  const [from, to] = run.parallel.evaluationShard(split.count);
  const part = to > from ? await evaluate(model, sliceImages(split, from, to), settings) : undefined;
  const sum = await run.parallel.sumEvaluation(part && { lossSum: part.loss * part.count, count: part.count, confusion: part.confusion }, model.classes);
  const correct = sum.confusion.reduce((n, row, t) => n + row[t], 0);
  return { accuracy: correct / sum.count, loss: sum.lossSum / sum.count, count: sum.count, chunkSize: part?.chunkSize ?? chunkSize ?? 0, confusion: sum.confusion };
}

/** The run folder's picture of augmented training images: the first 32, augmented as a batch would be. */
function recordAugmentedSamples(recorder: RunRecorder, trainee: Trainee, options: ResolvedTrainOptions): void {
  const { data, model } = trainee;
  const count = Math.min(32, data.count);
  const [h, w] = model.inputSize;
  const { mean, std } = model.inputNorm;
  const values = tidy(() => {
    const rows = ops().to(new (native().Tensor)(BigInt64Array.from({ length: count }, (_, i) => BigInt(i)), [count]), model.device);
    const [x] = ops().gatherBatch(data.images, data.labels, rows, 0, count, mean, std);
    return valuesOf(ops().to(augmentedBatch(x, options, model.inputNorm), 'cpu'), 'float32');
  });
  recorder.augmentedSamples(values, [count, model.inputChannels, h, w]);
}

/** The epochs still to train; the last one's test evaluation (undefined when none was left). */
async function runEpochs(run: Run, splits: RunSplits, trainee: Trainee): Promise<EvaluationResult | undefined> {
  const { recorder, options } = run;
  recorder?.start({
    options: recordableOptions(options), spec: trainee.model.spec, classNames: splits.dataset.classNames, device: run.device,
    trainCount: splits.train.count, testCount: splits.test.count,
  });
  if (recorder && run.firstEpoch === 1 && !run.resume?.partial) await recorder.snapshot(trainee.model, 0);
  if (recorder && augments(options)) recordAugmentedSamples(recorder, trainee, options);
  let lastEval: EvaluationResult | undefined;
  for (run.epoch = run.firstEpoch; run.epoch <= options.epochs; ++run.epoch) lastEval = await trainOneEpoch(run, splits, trainee, run.epoch);
  return lastEval;
}

/** The final evaluation, the run folder's last pictures, and the optimizer state kept beside the model. */
async function finishRun(run: Run, splits: RunSplits, trainee: Trainee, lastEval: EvaluationResult | undefined, started: number): Promise<TrainResult> {
  const { model, optimizer } = trainee;
  // The model handed back holds the average, as every evaluation saw it.
  trainee.average?.swapIn();
  const finalEval = lastEval ?? await evaluateSplit(run, model, splits.test);
  if (run.recorder) await run.recorder.finish(model, run.history, finalEval, splits.dataset.classNames);
  recordOptimizerState(model, { settings: run.settings, state: optimizer.saveState() });
  return {
    model,
    history: run.history,
    testAccuracy: finalEval.accuracy,
    testLoss: finalEval.loss,
    confusion: finalEval.confusion,
    classNames: splits.dataset.classNames,
    runDir: run.options.runDir,
    seconds: (Date.now() - started) / 1000,
    cudaGraphReplays: trainee.stepGraph?.replays ?? 0,
    trainingSeconds: run.trainingSeconds,
    ...(run.parallel ? { distributed: { rank: run.parallel.rank, worldSize: run.parallel.size, ...run.parallel.reducerReport } } : {}),
  };
}

/**
 * When an abort or divergence stops training: the abort's checkpoint, and the model handed to the
 * caller through the error. Returns whether the model is kept.
 */
function stopRun(run: Run, err: unknown): boolean {
  const { model, optimizer, recorder, options } = run;
  if (err instanceof TrainingAbortedError && recorder && options.checkpointOnAbort && model && optimizer && err.step > 0) {
    writeAbortCheckpoint(recorder, model, { native: optimizer, settings: run.settings }, {
      epoch: run.epoch - 1, seed: options.seed, history: run.history, options: recordableOptions(options), partial: partialEpoch(run, err.step),
    });
  }
  if (model && (err instanceof TrainingAbortedError || err instanceof TrainingDivergedError)) {
    (err as Error & { model?: CnnModel }).model = model;
    return true;
  }
  return false;
}

/**
 * Trains a CNN and returns the model, its per-epoch history and its final test results.
 * @example
 * const { model, testAccuracy } = await trainCnn({ dataset: 'fashion-mnist', epochs: 5, mode: 'script' });
 * model.save('fashion.pt');
 */
export async function trainCnn(input: TrainOptions = {}): Promise<TrainResult> {
  const run = openRun(input);
  const started = Date.now();
  // Everything native the run makes is freed here on every path out (the model is handed to the
  // caller on success, and through the error when an abort or divergence stops training).
  let keepModel = false;
  try {
    if (run.options.distributed) run.parallel = await DataParallel.join(run.options.distributed, run.device);
    const splits = await prepareSplits(run);
    const trainee = makeTrainee(run, splits);
    // Every rank starts from rank 0's weights and batch-norm statistics (a resumed run too).
    if (run.parallel) {
      await run.parallel.broadcast(modelState(trainee.model));
      run.parallel.attachReducer(trainee.model.parameterTensors());
      if (run.options.distributed!.syncBatchNorm) run.parallel.syncBatchNorm();
    }
    const lastEval = await runEpochs(run, splits, trainee);
    const result = await finishRun(run, splits, trainee, lastEval, started);
    keepModel = true;
    return result;
  } catch (err) {
    keepModel = stopRun(run, err);
    throw err;
  } finally {
    run.stepGraph?.dispose();
    run.average?.dispose();
    run.optimizer?.dispose();
    run.deviceData?.dispose();
    if (!keepModel) run.model?.dispose();
    // The blocks the CPU block cache kept for the steps (an evaluation releases them too, but a run
    // that stopped early has not evaluated). Without a model the addon may not even be loaded, and an
    // error loading it must not replace the run's own.
    if (run.model) native().releaseFreeMemory();
    // Unlocks the run folder; a failed run's folder is removed when nothing was written into it.
    run.recorder?.close(keepModel);
    run.parallel?.dispose();
  }
}
