// Early stopping of poor trials by the median stopping rule (Golovin et al., "Google Vizier", 2017):
// after epoch k of a trial, if its validation accuracy is below the median of the completed trials'
// validation accuracy at epoch k, the trial is stopped. The rule only ever compares epoch k with
// epoch k, so a trial is never judged against results it had no time to reach.
import { checkInteger, checkKnownKeys, checkObject } from '../util/validate';

export interface EarlyStoppingOptions {
  /** Completed trials needed before any trial is stopped: a median of one or two says little (default 3). */
  minTrials?: number;
  /** Epochs every trial trains before it can be stopped (default 1). */
  graceEpochs?: number;
}

export type EarlyStopping = Required<EarlyStoppingOptions> | false;

export const DEFAULT_EARLY_STOPPING: Required<EarlyStoppingOptions> = { minTrials: 3, graceEpochs: 1 };

/** `false` switches the rule off; an object overrides its defaults. */
export function checkEarlyStopping(value: unknown): EarlyStopping {
  if (value === undefined) return { ...DEFAULT_EARLY_STOPPING };
  if (value === false) return false;
  const o = checkObject(value, 'earlyStopping');
  checkKnownKeys(o, 'earlyStopping', ['minTrials', 'graceEpochs']);
  return {
    minTrials: checkInteger(o.minTrials ?? DEFAULT_EARLY_STOPPING.minTrials, 'earlyStopping.minTrials', 1),
    graceEpochs: checkInteger(o.graceEpochs ?? DEFAULT_EARLY_STOPPING.graceEpochs, 'earlyStopping.graceEpochs', 1),
  };
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

/** A verdict after one epoch: stop or not, and the median it was compared with (when there was one). */
export interface StopVerdict {
  stop: boolean;
  median?: number;
}

/**
 * The rule after `epoch` of `epochs`: `completedCurves` are the completed trials' validation
 * accuracies per epoch. The last epoch is never stopped (nothing would be saved by it).
 * @example stopVerdict({ minTrials: 2, graceEpochs: 1 }, [[0.8, 0.85], [0.7, 0.8]], 1, 2, 0.5) // { stop: true, median: 0.75 }
 */
export function stopVerdict(rule: EarlyStopping, completedCurves: number[][], epoch: number, epochs: number, accuracy: number): StopVerdict {
  if (!rule || epoch < rule.graceEpochs || epoch >= epochs) return { stop: false };
  const peers = completedCurves.filter((c) => c.length >= epoch).map((c) => c[epoch - 1]);
  if (peers.length < rule.minTrials) return { stop: false };
  const m = median(peers);
  return { stop: accuracy < m, median: m };
}
