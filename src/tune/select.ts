// Choosing the best trial. It reads validation figures only: a trial result holds no test figure,
// and the test set is used once, after this choice, by the retrained best.
import type { TrialResult } from './trial';

/**
 * The completed trial with the highest validation accuracy (ties: the lower validation loss, then
 * the earlier trial). Pruned trials trained fewer epochs and fell behind, and diverged or failed
 * ones have no usable score: none of them is chosen. Undefined when no trial completed.
 * @example selectBest(trials)?.trial // 4
 */
export function selectBest(trials: TrialResult[]): TrialResult | undefined {
  let best: TrialResult | undefined;
  for (const t of trials) {
    if (t.status !== 'completed' || t.validationAccuracy === null) continue;
    const better = !best
      || t.validationAccuracy > best.validationAccuracy!
      || (t.validationAccuracy === best.validationAccuracy && (t.validationLoss ?? Infinity) < (best.validationLoss ?? Infinity));
    if (better) best = t;
  }
  return best;
}
