// One trial of a search: trainCnn with the trial's hyperparameters on the search's training part,
// scored after every epoch on the validation part. Each epoch's validation accuracy is reported to
// the trial in the Optuna study, and the pruner's answer decides, before the next epoch starts,
// whether the trial goes on. The trial ends in the study as complete, pruned, or failed (diverged,
// stopped, or an error), with its reason.
import type { CnnModel } from '../nn/model';
import type { EpochRecord } from '../train/options';
import { trainCnn, TrainingDivergedError } from '../train/train-cnn';
import { AskedTrial, OptunaError, OptunaHelper } from './optuna-helper';
import { decodeParams, describeParams, Dimension, TrialParams } from './space';
import { withoutTestImages } from './splits';
import type { LabelledImages } from '../train/evaluate';
import { trialTrainOptions, TuneBaseOptions } from './trial-options';

/**
 * completed: all epochs; pruned: stopped by the pruner; diverged: its loss became NaN or infinite;
 * failed: stopped, killed or an error (a copy is run again); running: under way in a worker.
 */
export type TrialStatus = 'completed' | 'pruned' | 'diverged' | 'failed' | 'running';

/** A trial as the study holds it. It holds validation figures only, never test figures. */
export interface TrialResult {
  /** Optuna's trial number (0-based), as `optuna trials` shows it. */
  trial: number;
  params: TrialParams;
  status: TrialStatus;
  /** Epochs trained (reported to the study). */
  epochs: number;
  /** Validation accuracy after its last epoch (null when it has none). */
  validationAccuracy: number | null;
  validationLoss: number | null;
  trainAccuracy: number | null;
  /** Validation accuracy after each epoch: the study's intermediate values, which the pruner compares. */
  curve: number[];
  /** pruned, diverged, failed: why. */
  reason?: string;
  /** pruned by the median pruner: the completed trials' median it fell below. */
  prunedBelowMedian?: number;
  /** A retry of this failed trial (same parameters). */
  retryOf?: number;
  /** The worker (host:pid) that ran it. */
  worker?: string;
  seconds: number | null;
}

/** The retraining of the best trial on training + validation images, and its one test. */
export interface RetrainResult {
  trial: number;
  params: TrialParams;
  epochs: number;
  trainImages: number;
  testAccuracy: number;
  testLoss: number;
  testImages: number;
  /** The retrained model, in the search folder. */
  model: string;
  seconds: number;
}

/** What tune() reports as it goes (see TuneOptions.onTrial). */
export type TuneEvent =
  | { type: 'trial-start'; trial: number; trials: number; params: TrialParams; worker: string; retryOf: number | null }
  | { type: 'epoch'; trial: number; epoch: number; epochs: number; validationAccuracy: number; validationLoss: number; trainAccuracy: number; worker: string }
  | { type: 'trial-end'; trials: number; result: TrialResult }
  /** A trial finished before this run (read from the study, not trained). */
  | { type: 'trial-skipped'; trials: number; result: TrialResult }
  /** Trials left running by a stopped search, failed on resume and enqueued again. */
  | { type: 'trials-failed-on-resume'; trials: number[] }
  /** A worker process that ended without finishing (killed): its trial is failed and run again by another worker. */
  | { type: 'worker-lost'; worker: string; reason: string }
  | { type: 'retrain-start'; trial: number; params: TrialParams; trainImages: number }
  | { type: 'retrain-end'; retrain: RetrainResult; reused: boolean };

/** What a worker trains on: the search's training and validation parts (never a test image). */
export interface WorkerData {
  name: string;
  classNames: string[];
  train: LabelledImages;
  validation: LabelledImages;
}

export interface TrialContext {
  helper: OptunaHelper;
  base: TuneBaseOptions;
  dimensions: Dimension[];
  epochs: number;
  /** The budget, for progress lines. */
  trials: number;
  /** Whether the pruner is asked after each epoch (not 'none'). */
  pruning: boolean;
  data: WorkerData;
  /** host:pid, recorded with each trial. */
  worker: string;
  signal?: AbortSignal;
  onTrial?: (event: TuneEvent) => void;
}

const finite = (x: number | null | undefined): number | null => (x === null || x === undefined || !Number.isFinite(x) ? null : x);

/** The trial was failed by another worker meanwhile (its heartbeat was taken for a dead one's): it is run again elsewhere. */
function lostToAnotherWorker(err: unknown): boolean {
  return err instanceof OptunaError && err.type === 'UpdateFinishedTrialError';
}

/**
 * Trains an asked trial and finishes it in the study. Returns its result, or undefined when the trial
 * was taken from this worker (failed by another worker meanwhile). An abort of the search's signal
 * fails the trial, enqueues a copy (a resumed search runs it again) and rejects with trainCnn's
 * AbortError; an error fails it the same way and rejects naming the trial.
 */
export async function runTrial(ctx: TrialContext, asked: AskedTrial): Promise<TrialResult | undefined> {
  const params = decodeParams(ctx.dimensions, asked.params);
  // The trial's own controller: the pruner stops this trial alone, the search's signal all of it.
  const controller = new AbortController();
  const forward = (): void => controller.abort();
  ctx.signal?.addEventListener('abort', forward);
  const curve: number[] = [];
  const losses: (number | null)[] = [];
  const trainAccuracies: (number | null)[] = [];
  let last: EpochRecord | undefined;
  let pruned: { median?: number; peers?: number } | undefined;
  const started = Date.now();
  const seconds = (): number => (Date.now() - started) / 1000;
  const attrs = (extra: Record<string, unknown>): Record<string, unknown> => ({
    validation_loss: losses, train_accuracy: trainAccuracies, seconds: seconds(), ...extra,
  });
  const result = (status: TrialResult['status'], reason?: string): TrialResult => ({
    trial: asked.number, params, status, epochs: curve.length,
    validationAccuracy: curve.length > 0 ? curve[curve.length - 1] : null, validationLoss: finite(last?.validationLoss), trainAccuracy: finite(last?.trainAccuracy),
    curve, ...(reason ? { reason } : {}), ...(pruned?.median !== undefined ? { prunedBelowMedian: pruned.median } : {}),
    ...(asked.retryOf !== null ? { retryOf: asked.retryOf } : {}), worker: ctx.worker, seconds: seconds(),
  });
  ctx.onTrial?.({ type: 'trial-start', trial: asked.number, trials: ctx.trials, params, worker: ctx.worker, retryOf: asked.retryOf });
  let outcome: TrialResult;
  try {
    const trained = await trainCnn({
      ...trialTrainOptions(ctx.base, params, ctx.epochs),
      dataset: withoutTestImages(ctx.data.name, ctx.data.classNames, ctx.data.train, ctx.data.validation),
      signal: controller.signal,
      checkpointOnAbort: false,
      // trainCnn awaits what this returns for an epoch before the next one starts: the pruner's
      // answer arrives first, and a pruned trial trains no step more.
      onProgress: (e) => {
        if (e.type !== 'epoch') return undefined;
        // Only the validation figures are read; the record's test figures are the stand-in image's.
        const accuracy = e.record.validationAccuracy!;
        curve.push(accuracy);
        losses.push(finite(e.record.validationLoss));
        trainAccuracies.push(finite(e.record.trainAccuracy));
        last = e.record;
        ctx.onTrial?.({
          type: 'epoch', trial: asked.number, epoch: e.epoch, epochs: e.epochs, validationAccuracy: accuracy,
          validationLoss: e.record.validationLoss!, trainAccuracy: e.record.trainAccuracy, worker: ctx.worker,
        });
        // The last epoch is never pruned: nothing would be saved by it.
        return ctx.helper.report(asked.id, e.epoch, accuracy, ctx.pruning && e.epoch < e.epochs).then((verdict) => {
          if (verdict.prune) {
            pruned = verdict;
            controller.abort();
          }
        });
      },
    });
    trained.model.dispose();
    await ctx.helper.tell(asked.id, 'complete', { value: curve[curve.length - 1], userAttrs: attrs({ status: 'completed' }) });
    outcome = result('completed');
  } catch (err) {
    // An abort or divergence hands the model over through the error; the search does not keep it.
    (err as { model?: CnnModel }).model?.dispose();
    if (lostToAnotherWorker(err)) return undefined;
    try {
      if (ctx.signal?.aborted) {
        await ctx.helper.tell(asked.id, 'fail', { userAttrs: attrs({ status: 'failed', reason: 'stopped (the search was stopped); run again on resume' }), retry: true });
        throw err;
      }
      if (pruned && (err as Error).name === 'AbortError') {
        const reason = pruned.median !== undefined
          ? `validation accuracy ${curve[curve.length - 1].toFixed(4)} below the median ${pruned.median.toFixed(4)} of ${pruned.peers} completed trial(s) at epoch ${curve.length}`
          : `pruned after epoch ${curve.length}`;
        await ctx.helper.tell(asked.id, 'pruned', { userAttrs: attrs({ status: 'pruned', reason, ...(pruned.median !== undefined ? { pruned_below_median: pruned.median } : {}) }) });
        outcome = result('pruned', reason);
      } else if (err instanceof TrainingDivergedError) {
        const reason = (err as Error).message;
        await ctx.helper.tell(asked.id, 'fail', { userAttrs: attrs({ status: 'diverged', reason }) });
        outcome = result('diverged', reason);
      } else {
        (err as Error).message = `trial ${asked.number} (${describeParams(params)}): ${(err as Error).message}`;
        await ctx.helper.tell(asked.id, 'fail', { userAttrs: attrs({ status: 'failed', reason: (err as Error).message.slice(0, 2000) }), retry: true }).catch(() => undefined);
        throw err;
      }
    } catch (finishError) {
      if (lostToAnotherWorker(finishError)) return undefined;
      throw finishError;
    }
  } finally {
    ctx.signal?.removeEventListener('abort', forward);
  }
  ctx.onTrial?.({ type: 'trial-end', trials: ctx.trials, result: outcome });
  return outcome;
}

