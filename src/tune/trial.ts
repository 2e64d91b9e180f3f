// One trial of a search: trainCnn with the trial's hyperparameters on the search's training part,
// scored after every epoch on the validation part, and stopped early when the median rule says so.
import type { CnnModel } from '../nn/model';
import type { EpochRecord } from '../train/options';
import { trainCnn, TrainingDivergedError } from '../train/train-cnn';
import { EarlyStopping, stopVerdict, StopVerdict } from './early-stopping';
import type { TrialParams } from './space';
import { SearchData, withoutTestImages } from './splits';
import { trialTrainOptions, TuneBaseOptions } from './trial-options';

/** 'completed': all epochs; 'stopped-early': below the median rule; 'diverged': its loss became NaN or infinite. */
export type TrialStatus = 'completed' | 'stopped-early' | 'diverged';

/** A finished trial, as trials.json keeps it. It holds validation figures only, never test figures. */
export interface TrialResult {
  /** 1-based; trial i always has the same parameters for a search's seed. */
  trial: number;
  params: TrialParams;
  status: TrialStatus;
  /** Epochs trained. */
  epochs: number;
  /** Validation accuracy after its last epoch (null when it diverged in its first). */
  validationAccuracy: number | null;
  validationLoss: number | null;
  trainAccuracy: number | null;
  /** Validation accuracy after each epoch: the median rule compares these epoch by epoch. */
  curve: number[];
  /** stopped-early: the completed trials' median it fell below. */
  stoppedBelowMedian?: number;
  seconds: number;
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
  | { type: 'trial-start'; trial: number; trials: number; params: TrialParams }
  | { type: 'epoch'; trial: number; epoch: number; epochs: number; validationAccuracy: number; validationLoss: number; trainAccuracy: number }
  | { type: 'trial-end'; trials: number; result: TrialResult }
  /** A trial finished by an earlier run of the search, read from trials.json instead of trained. */
  | { type: 'trial-skipped'; trials: number; result: TrialResult }
  | { type: 'retrain-start'; trial: number; params: TrialParams; trainImages: number }
  | { type: 'retrain-end'; retrain: RetrainResult; reused: boolean };

export interface TrialContext {
  base: TuneBaseOptions;
  epochs: number;
  trials: number;
  data: SearchData;
  earlyStopping: EarlyStopping;
  /** The validation curves of the completed trials so far (the median rule's reference). */
  completedCurves: number[][];
  signal?: AbortSignal;
  onTrial?: (event: TuneEvent) => void;
}

/**
 * Trains trial `trial` (1-based) and returns its result. An abort of the search's signal rejects
 * with trainCnn's AbortError and records nothing: the trial reruns when the search is resumed.
 */
export async function runTrial(ctx: TrialContext, trial: number, params: TrialParams): Promise<TrialResult> {
  const { data } = ctx;
  // The trial's own controller: the median rule stops this trial alone, the search's signal all of it.
  const controller = new AbortController();
  const forward = (): void => controller.abort();
  ctx.signal?.addEventListener('abort', forward);
  const curve: number[] = [];
  let last: EpochRecord | undefined;
  let verdict: StopVerdict | undefined;
  const started = Date.now();
  const result = (status: TrialStatus): TrialResult => ({
    trial, params, status, epochs: curve.length,
    validationAccuracy: last?.validationAccuracy ?? null, validationLoss: last?.validationLoss ?? null, trainAccuracy: last?.trainAccuracy ?? null,
    curve, ...(status === 'stopped-early' ? { stoppedBelowMedian: verdict!.median } : {}), seconds: (Date.now() - started) / 1000,
  });
  ctx.onTrial?.({ type: 'trial-start', trial, trials: ctx.trials, params });
  try {
    const trained = await trainCnn({
      ...trialTrainOptions(ctx.base, params, ctx.epochs),
      dataset: withoutTestImages(data.name, data.classNames, data.train, data.validation),
      signal: controller.signal,
      checkpointOnAbort: false,
      onProgress: (e) => {
        if (e.type !== 'epoch') return;
        // Only the validation figures are read; the record's test figures are the stand-in image's.
        const accuracy = e.record.validationAccuracy!;
        curve.push(accuracy);
        last = e.record;
        ctx.onTrial?.({
          type: 'epoch', trial, epoch: e.epoch, epochs: e.epochs, validationAccuracy: accuracy,
          validationLoss: e.record.validationLoss!, trainAccuracy: e.record.trainAccuracy,
        });
        const v = stopVerdict(ctx.earlyStopping, ctx.completedCurves, e.epoch, e.epochs, accuracy);
        if (v.stop) {
          verdict = v;
          // trainCnn checks the signal before the next epoch's first step and rejects with an AbortError.
          controller.abort();
        }
      },
    });
    trained.model.dispose();
    return result('completed');
  } catch (err) {
    // An abort or divergence hands the model over through the error; the search does not keep it.
    (err as { model?: CnnModel }).model?.dispose();
    if (ctx.signal?.aborted) throw err;
    if (verdict && (err as Error).name === 'AbortError') return result('stopped-early');
    if (err instanceof TrainingDivergedError) return result('diverged');
    throw err;
  } finally {
    ctx.signal?.removeEventListener('abort', forward);
  }
}
