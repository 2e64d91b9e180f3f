// The precision a forward pass computes in: 'fp32', or 'bf16' under libtorch's bfloat16 autocast
// (matrix products and convolutions in bfloat16, reductions and the loss in float32; the weights stay
// float32). Training, evaluation and prediction share it.
import { native } from './native';

export type Precision = 'fp32' | 'bf16';
export const PRECISIONS: readonly Precision[] = ['fp32', 'bf16'];

/**
 * Runs fn under bfloat16 autocast when asked, as `with torch.autocast(...)` does: on this thread only,
 * and switched back to what it was (clearing the cast weights) before returning or throwing, so that
 * nothing else running on the event loop between two calls computes in bfloat16.
 */
export function withPrecision<T>(precision: Precision, device: string, fn: () => T): T {
  if (precision === 'fp32') return fn();
  const previous = native().setAutocast(true, device);
  try {
    return fn();
  } finally {
    native().setAutocast(previous, device);
  }
}
