// A small seeded pseudo-random generator for sampling hyperparameters. Trial i of a search draws
// from its own stream, derived from (seed, i) alone, so its parameters never depend on how many
// trials were asked for or on which ones already ran: a resumed search samples the same trials.
import { mulberry32 } from '../util/random';

/** splitmix32's finaliser: scrambles an integer so that nearby seeds give unrelated streams. */
function mix32(x: number): number {
  let z = x >>> 0;
  z = Math.imul(z ^ (z >>> 16), 0x21f0aaad) >>> 0;
  z = Math.imul(z ^ (z >>> 15), 0x735a2d97) >>> 0;
  return (z ^ (z >>> 15)) >>> 0;
}

/**
 * A generator of numbers in [0, 1) for trial `trial` of a search seeded with `seed` (mulberry32).
 * @example const next = trialRandom(42, 3); next(); // the same number on every machine and every run
 */
export function trialRandom(seed: number, trial: number): () => number {
  // Seeds up to 2^53: both 32-bit halves take part, so seeds that differ above bit 32 differ here too.
  const high = Math.floor(seed / 0x100000000);
  return mulberry32(mix32(mix32(seed >>> 0) ^ mix32(high + 0x9e3779b9) ^ mix32(trial + 0x7f4a7c15)));
}
