// A small seeded generator for the probing methods' noise (SmoothGrad's copies, the uniform
// baseline): host-side, so that a seed gives the same maps on every device and on both paths.
// mulberry32: 32 bits of state, good enough for noise images, and the same numbers everywhere.
import { mulberry32 } from '../util/random';

/** Uniform numbers in [0, 1) from a 32-bit seed. */
export function uniformSource(seed: number): () => number {
  return mulberry32(seed);
}

/** Standard normal numbers (Box-Muller over uniformSource) from a 32-bit seed. */
export function normalSource(seed: number): () => number {
  const uniform = uniformSource(seed);
  let spare: number | undefined;
  return () => {
    if (spare !== undefined) {
      const value = spare;
      spare = undefined;
      return value;
    }
    // 1 - u lies in (0, 1], so the logarithm is finite.
    const radius = Math.sqrt(-2 * Math.log(1 - uniform()));
    const angle = 2 * Math.PI * uniform();
    spare = radius * Math.sin(angle);
    return radius * Math.cos(angle);
  };
}
