// The evaluation that closes each epoch of trainCnn: the test split (and the validation split, if
// any), with the run's test-time augmentation, timed; and what the epoch's record says about it.
import type { EvaluationResult, LabelledImages } from './evaluate';
import type { EpochRecord, ResolvedTrainOptions } from './options';
import { usesTta } from './tta';

export interface EpochEvaluation {
  testEval: EvaluationResult;
  validationEval?: EvaluationResult;
  /** Seconds both evaluations took. */
  evaluationSeconds: number;
}

/**
 * Evaluates the model as it is (the caller swaps a weight average in first) with `evaluateOne`: the
 * run's evaluate() with its chunk size and test-time augmentation, sharded over the ranks of a
 * distributed run.
 */
export async function evaluateEpoch(evaluateOne: (split: LabelledImages) => Promise<EvaluationResult>, test: LabelledImages,
  validation: LabelledImages | undefined): Promise<EpochEvaluation> {
  const started = process.hrtime.bigint();
  const testEval = await evaluateOne(test);
  const validationEval = validation ? await evaluateOne(validation) : undefined;
  return { testEval, validationEval, evaluationSeconds: Number(process.hrtime.bigint() - started) / 1e9 };
}

/** The record's evaluation fields: its time, and the TTA and weight average it used (only when used, so plain records stay as they were). */
export function evaluationRecord(options: ResolvedTrainOptions, evaluationSeconds: number): Pick<EpochRecord, 'evaluationSeconds' | 'evaluatedWith'> {
  const tta = usesTta(options.tta);
  const evaluatedWith = tta || options.ema ? { ...(tta ? { tta: options.tta } : {}), ...(options.ema ? { ema: options.ema } : {}) } : undefined;
  return { evaluationSeconds, ...(evaluatedWith ? { evaluatedWith } : {}) };
}
