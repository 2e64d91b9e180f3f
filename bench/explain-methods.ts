// The methods the explanation benchmark times and the settings both sides use (issue 28: saliency,
// integrated gradients with 64 steps, Grad-CAM), shared by the bench and its convscope worker.
import type { ExplainOptions } from '../src/probe/options';

export const EXPLAIN_METHODS = ['saliency', 'integrated-gradients', 'grad-cam'] as const;
export type ExplainBenchMethod = (typeof EXPLAIN_METHODS)[number];

/** Integrated gradients' path points: explain()'s default, the figure. */
export const IG_STEPS = 64;

/** explain()'s options for a method, its defaults spelled out where PyTorch's script must match them. */
export function explainOptions(method: ExplainBenchMethod): ExplainOptions {
  if (method === 'integrated-gradients') return { method, steps: IG_STEPS, baseline: 'black' };
  return { method };
}
