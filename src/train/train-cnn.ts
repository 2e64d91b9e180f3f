// trainCnn: the main job. Loads the data, builds (or resumes) the model, trains it epoch by epoch on
// the eager or the scripted path, evaluates in chunks, and records the run.
import { loadDatasetAsync } from '../data/datasets';
import { native, NativeOptimizer, NativeTensor, OptimizerSettings } from '../native';
import { CnnModel, createModel, InputNorm, NO_NORM } from '../nn/model';
import { ops } from '../ops';
import { tidy } from '../tidy';
import { loadCheckpoint, TrainingState } from './checkpoint';
import { evaluate, EvaluationResult, LabelledImages, takeImages } from './evaluate';
import { EpochRecord, InMemoryDataset, recordableOptions, ResolvedTrainOptions, resolveTrainOptions, TrainOptions } from './options';
import { RunRecorder } from './run-recorder';

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
}

/** Rejection of an aborted training: `name` is 'AbortError', as for fetch(). */
export class TrainingAbortedError extends Error {
  constructor(readonly epoch: number, readonly step: number) {
    super(`training was aborted at epoch ${epoch}, step ${step}`);
    this.name = 'AbortError';
  }
}

/** A NaN or infinite loss: training stops before the weights are updated with it. */
export class TrainingDivergedError extends Error {
  constructor(readonly epoch: number, readonly step: number, readonly learningRate: number) {
    super(`training diverged: the loss became NaN or infinite at epoch ${epoch}, step ${step} ` +
      `(learning rate ${learningRate}); the weights were not updated with it. Lower learningRate or add regularisation.`);
    this.name = 'TrainingDivergedError';
  }
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

async function loadData(options: ResolvedTrainOptions): Promise<InMemoryDataset> {
  if (typeof options.dataset !== 'string') return options.dataset;
  // The async loader may download into the cache when no local copy exists (never in CI or tests).
  return loadDatasetAsync(options.dataset, { dataDir: options.dataDir, validation: options.validation });
}

function datasetNorm(split: LabelledImages): InputNorm {
  let sum = 0;
  let squares = 0;
  for (let i = 0; i < split.images.length; ++i) {
    const v = split.images[i] / 255;
    sum += v;
    squares += v * v;
  }
  const mean = sum / split.images.length;
  return { mean, std: Math.sqrt(Math.max(squares / split.images.length - mean * mean, 1e-12)) };
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

/** The training split as device tensors, uploaded once for the whole run. */
interface DeviceData {
  images: NativeTensor;
  labels: NativeTensor;
  count: number;
  dispose(): void;
}

function uploadTrainingData(split: LabelledImages, height: number, width: number, device: string): DeviceData {
  // One deliberate copy of the training images into libtorch memory (then to the device); batches
  // are gathered from it natively.
  const hostImages = new (native().Tensor)(split.images, [split.count, height, width]);
  const hostLabels = new (native().Tensor)(split.labels, [split.count]);
  const images = device === 'cpu' ? hostImages : native().ops.to(hostImages, device);
  const labels = device === 'cpu' ? hostLabels : native().ops.to(hostLabels, device);
  if (images !== hostImages) hostImages.dispose();
  if (labels !== hostLabels) hostLabels.dispose();
  return { images, labels, count: split.count, dispose: () => { images.dispose(); labels.dispose(); } };
}

interface EpochTotals { lossSum: number; correct: number; seen: number }

interface EpochContext {
  model: CnnModel;
  optimizer: NativeOptimizer;
  data: DeviceData;
  order: NativeTensor;
  options: ResolvedTrainOptions;
  epoch: number;
  steps: number;
  /** Called at step boundaries where a snapshot is due. */
  onStepBoundary: (stepsDone: number) => Promise<void> | void;
  report: (stepsDone: number, totals: EpochTotals) => void;
}

function stepCount(count: number, batchSize: number, dropLast: boolean): number {
  return dropLast ? Math.floor(count / batchSize) : Math.ceil(count / batchSize);
}

/** Runs fn under bfloat16 autocast when asked (this thread only), as `with torch.autocast(...)` does. */
function withPrecision<T>(precision: 'fp32' | 'bf16', device: string, fn: () => T): T {
  if (precision === 'fp32') return fn();
  native().setAutocast(true, device);
  try {
    return fn();
  } finally {
    native().setAutocast(false, device);
  }
}

/**
 * Steps between reading training statistics back from the device: every step on the CPU, where it
 * costs nothing and lets a non-finite loss stop training before the weights take it; every 50 on a
 * GPU, which a read-back would synchronise. Tests change `cpu` to run the GPU logic on the CPU.
 */
export const SYNC_EVERY = { cpu: 1, device: 50 };

/** Eager steps between returning freed host memory to the OS (see runEagerEpoch). */
const TRIM_EVERY_STEPS = 16;

/** The eager path: every op of every step is issued from here. */
async function runEagerEpoch(ctx: EpochContext): Promise<EpochTotals> {
  const { model, optimizer, data, order, options, epoch, steps } = ctx;
  const totals: EpochTotals = { lossSum: 0, correct: 0, seen: 0 };
  const weights = options.l1 > 0 ? model.weightTensors() : [];
  const { mean, std } = model.inputNorm;
  const syncEvery = model.device === 'cpu' ? SYNC_EVERY.cpu : SYNC_EVERY.device;
  // On a GPU, [loss sum, correct] accumulate on the device between read-backs.
  let pending: NativeTensor | undefined;
  let pendingFrom = 0;
  try {
    for (let step = 0; step < steps; ++step) {
      if (options.signal?.aborted) throw new TrainingAbortedError(epoch, step);
      const start = step * options.batchSize;
      const end = Math.min(data.count, start + options.batchSize);
      const outcome = tidy(() => {
        const [x, y] = ops().gatherBatch(data.images, data.labels, order, start, end, mean, std);
        const { logits, loss } = withPrecision(options.precision, model.device, () => {
          const out = model.forward(x, { training: true });
          return { logits: out, loss: ops().crossEntropy(out, y) };
        });
        const objective = options.l1 > 0 ? ops().add(loss, ops().mulScalar(ops().sumAbs(weights), options.l1)) : loss;
        optimizer.zeroGrad();
        objective.backward();
        if (syncEvery === 1) {
          // Stop before a non-finite loss corrupts the weights.
          if (!Number.isFinite(objective.item())) return null;
          optimizer.step();
          return { loss: loss.item(), correct: ops().countCorrect(logits, y) };
        }
        optimizer.step();
        const stats = native().ops.stepStats(logits, y, loss);
        const sum = pending ? native().ops.add(pending, stats) : stats;
        if (pending) { pending.dispose(); stats.dispose(); }
        pending = sum;
        return { loss: 0, correct: 0 };
      });
      if (!outcome) throw new TrainingDivergedError(epoch, step, options.learningRate);
      if (syncEvery === 1) {
        totals.lossSum += outcome.loss * (end - start);
        totals.correct += outcome.correct;
        totals.seen += end - start;
      } else if ((step + 1) % syncEvery === 0 || step + 1 === steps) {
        const [lossSum, correct] = pending!.toTypedArray() as Float64Array;
        pending!.dispose();
        pending = undefined;
        if (!Number.isFinite(lossSum)) throw new TrainingDivergedError(epoch, pendingFrom, options.learningRate);
        totals.lossSum += lossSum;
        totals.correct += correct;
        totals.seen = Math.min(data.count, (step + 1) * options.batchSize);
        pendingFrom = step + 1;
      }
      if (syncEvery === 1 || pendingFrom === step + 1) ctx.report(step + 1, totals);
      // Freeing a step's tensors in JS order leaves glibc's heap fragmented (blocks of 64-byte aligned
      // activations do not fit back into the holes they left), so the process would keep growing by
      // about one activation per step; handing free memory back every few steps bounds it.
      if ((step + 1) % TRIM_EVERY_STEPS === 0) native().releaseFreeMemory();
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
  const { model, optimizer, data, order, options, epoch, steps } = ctx;
  const totals: EpochTotals = { lossSum: 0, correct: 0, seen: 0 };
  const script = model.scriptModule!;
  const { mean, std } = model.inputNorm;
  const progressEvery = model.device === 'cpu' ? 1 : 50;
  for (let first = 0; first < steps; first += segmentSteps) {
    if (options.signal?.aborted) throw new TrainingAbortedError(epoch, first);
    const last = Math.min(steps, first + segmentSteps);
    const rowsEnd = Math.min(data.count, last * options.batchSize);
    const segment = native().ops.slice(order, 0, first * options.batchSize, rowsEnd);
    const base = { ...totals };
    const job = native().trainEpoch({
      model: script, optimizer, images: data.images, labels: data.labels, order: segment,
      batchSize: options.batchSize, mean, std, l1: options.l1, l1Params: options.l1 > 0 ? model.weightTensors() : [],
      progressEvery, dropLast: options.dropLast, precision: options.precision,
    }, (p) => ctx.report(first + p.step, { lossSum: base.lossSum + p.loss, correct: base.correct + p.correct, seen: base.seen + p.seen }));
    const abort = (): void => job.cancel();
    options.signal?.addEventListener('abort', abort);
    let outcome;
    try {
      outcome = await job.promise;
    } finally {
      options.signal?.removeEventListener('abort', abort);
      segment.dispose();
    }
    if (outcome.nonFiniteStep >= 0) throw new TrainingDivergedError(epoch, first + outcome.nonFiniteStep, options.learningRate);
    totals.lossSum += outcome.lossSum;
    totals.correct += outcome.correct;
    totals.seen += outcome.seen;
    if (outcome.cancelled) throw new TrainingAbortedError(epoch, first + outcome.steps);
    await ctx.onStepBoundary(last);
  }
  return totals;
}

/**
 * Trains a CNN and returns the model, its per-epoch history and its final test results.
 * @example
 * const { model, testAccuracy } = await trainCnn({ dataset: 'fashion-mnist', epochs: 5, mode: 'script' });
 * model.save('fashion.pt');
 */
export async function trainCnn(input: TrainOptions = {}): Promise<TrainResult> {
  const options = resolveTrainOptions(input);
  const started = Date.now();
  const device = resolveDevice(options.device);
  const dataset = await loadData(options);
  const train = takeImages(dataset.train, options.limit);
  const test = takeImages(dataset.test, options.testLimit);

  let model: CnnModel;
  let optimizerState: Buffer | undefined;
  let history: EpochRecord[] = [];
  let firstEpoch = 1;
  if (options.resumeFrom) {
    const loaded = loadCheckpoint(options.resumeFrom, { mode: options.mode, device });
    model = loaded.model;
    optimizerState = loaded.optimizerState;
    const state = loaded.meta.training as TrainingState | undefined;
    if (state) {
      firstEpoch = state.epoch + 1;
      history = state.history as EpochRecord[];
    }
  } else if (options.initialModel) {
    model = options.initialModel.convert(options.mode).toDeviceOwned(device);
  } else {
    const inputNorm = options.standardize ? datasetNorm(train) : NO_NORM;
    model = createModel(options.spec, { mode: options.mode, device, seed: options.seed, inputNorm });
  }
  const [height, width] = model.inputSize;
  if (train.images.length !== train.count * height * width) {
    model.dispose();
    throw new RangeError(`Expected training images of ${height}x${width} for spec.inputSize but the dataset has ${train.images.length / train.count} pixels per image`);
  }

  const settings = optimizerSettings(options);
  let optimizer: NativeOptimizer;
  let data: DeviceData;
  try {
    optimizer = new (native().Optimizer)(model.parameterTensors(), settings);
    data = uploadTrainingData(train, height, width, device);
  } catch (err) {
    model.dispose();
    throw err;
  }
  const recorder = options.runDir ? new RunRecorder(options.runDir, { pictures: options.pictures }) : undefined;
  const steps = stepCount(train.count, options.batchSize, options.dropLast);
  const snapshotEvery = options.snapshotEvery ?? steps;
  let finalEval: EvaluationResult | undefined;
  try {
    if (optimizerState) optimizer.loadState(optimizerState);
    recorder?.start({ options: recordableOptions(options), spec: model.spec, classNames: dataset.classNames, device, trainCount: train.count, testCount: test.count });
    if (recorder && firstEpoch === 1) await recorder.snapshot(model, 0);
    for (let epoch = firstEpoch; epoch <= options.epochs; ++epoch) {
      const seed = epochSeed(options.seed, epoch);
      native().manualSeed(seed);
      const order = native().ops.randperm(train.count, seed);
      const epochStart = process.hrtime.bigint();
      const globalStepBase = (epoch - 1) * steps;
      const ctx: EpochContext = {
        model, optimizer, data, order, options, epoch, steps,
        onStepBoundary: async (done) => {
          if (recorder && done % snapshotEvery === 0 && done < steps) await recorder.snapshot(model, globalStepBase + done);
        },
        report: (done, totals) => {
          const seconds = Number(process.hrtime.bigint() - epochStart) / 1e9;
          options.onProgress?.({
            type: 'step', epoch, step: done, steps,
            loss: totals.lossSum / Math.max(totals.seen, 1), accuracy: totals.correct / Math.max(totals.seen, 1),
            imagesPerSecond: totals.seen / Math.max(seconds, 1e-9),
          });
        },
      };
      let totals: EpochTotals;
      try {
        totals = model.mode === 'script' ? await runScriptEpoch(ctx, Math.min(snapshotEvery, steps)) : await runEagerEpoch(ctx);
      } finally {
        order.dispose();
      }
      const seconds = Number(process.hrtime.bigint() - epochStart) / 1e9;
      finalEval = await evaluate(model, test, { chunkSize: options.evalChunkSize });
      const validationEval = dataset.validation ? await evaluate(model, dataset.validation, { chunkSize: options.evalChunkSize }) : undefined;
      const record: EpochRecord = {
        epoch,
        trainLoss: totals.lossSum / totals.seen,
        trainAccuracy: totals.correct / totals.seen,
        testLoss: finalEval.loss,
        testAccuracy: finalEval.accuracy,
        ...(validationEval ? { validationLoss: validationEval.loss, validationAccuracy: validationEval.accuracy } : {}),
        seconds,
        imagesPerSecond: totals.seen / seconds,
        learningRate: options.learningRate,
      };
      history.push(record);
      options.onProgress?.({ type: 'epoch', epoch, epochs: options.epochs, record });
      if (recorder) {
        await recorder.snapshot(model, globalStepBase + steps);
        recorder.epochEnd(model, history, finalEval, {
          optimizer: { native: optimizer, settings },
          training: { epoch, seed: options.seed, history, options: recordableOptions(options) },
        });
      }
    }
    if (!finalEval) finalEval = await evaluate(model, test, { chunkSize: options.evalChunkSize });
    if (recorder) await recorder.finish(model, history, finalEval, dataset.classNames);
  } catch (err) {
    optimizer.dispose();
    data.dispose();
    // An aborted or diverged run keeps its model usable for the caller through the error.
    if (err instanceof TrainingAbortedError || err instanceof TrainingDivergedError) {
      (err as Error & { model?: CnnModel }).model = model;
    } else {
      model.dispose();
    }
    throw err;
  }
  model.optimizerSnapshot = { settings, state: optimizer.saveState() };
  optimizer.dispose();
  data.dispose();
  return {
    model,
    history,
    testAccuracy: finalEval.accuracy,
    testLoss: finalEval.loss,
    confusion: finalEval.confusion,
    classNames: dataset.classNames,
    runDir: options.runDir,
    seconds: (Date.now() - started) / 1000,
  };
}
