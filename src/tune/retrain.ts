// The end of a search: the best trial's hyperparameters trained again on all the training images the
// search used (its training and validation parts), then tested once on the test images.
import * as path from 'path';
import type { CnnModel } from '../nn/model';
import { evaluate } from '../train/evaluate';
import { trainCnn } from '../train/train-cnn';
import { SearchData, withoutTestImages } from './splits';
import type { RetrainResult, TrialResult } from './trial';
import { trialTrainOptions, TuneBaseOptions } from './trial-options';

/** The retrained best model's file in the search folder. */
export const BEST_MODEL_FILE = 'best.pt';

/**
 * Retrains `best` and evaluates it on the test images: the only evaluation on them in a search.
 * The model is saved to `<dir>/best.pt` and freed. An abort rejects with trainCnn's AbortError.
 */
export async function retrainBest(
  best: TrialResult, data: SearchData, o: { base: TuneBaseOptions; epochs: number; dir: string; signal?: AbortSignal },
): Promise<RetrainResult> {
  const started = Date.now();
  let model: CnnModel | undefined;
  try {
    // Trained as its trial was, seed included, with the validation images added to its training images.
    ({ model } = await trainCnn({
      ...trialTrainOptions(o.base, best.params, o.epochs),
      dataset: withoutTestImages(data.name, data.classNames, data.pool),
      checkpointOnAbort: false,
      ...(o.signal ? { signal: o.signal } : {}),
    }));
    const test = await evaluate(model, data.test, { chunkSize: o.base.evalChunkSize });
    model.save(path.join(o.dir, BEST_MODEL_FILE));
    return {
      trial: best.trial, params: best.params, epochs: o.epochs, trainImages: data.pool.count,
      testAccuracy: test.accuracy, testLoss: test.loss, testImages: test.count, model: BEST_MODEL_FILE, seconds: (Date.now() - started) / 1000,
    };
  } catch (err) {
    (err as { model?: CnnModel }).model?.dispose();
    throw err;
  } finally {
    model?.dispose();
  }
}
