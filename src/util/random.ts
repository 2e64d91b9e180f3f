// mulberry32: a 32-bit-state pseudo-random generator, the same numbers on every machine. Shared by
// tune's trial sampling and the probing methods' noise; each seeds it its own way.

/** Uniform numbers in [0, 1) from the 32-bit state `seed` (mulberry32). */
export function mulberry32(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
