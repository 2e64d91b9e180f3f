// Each epoch's order split between the ranks as PyTorch's DistributedSampler splits it: the
// permutation is padded to a multiple of the world size by repeating its first indices, and rank r
// takes every world-th index from r. Every rank then has as many rows, hence as many steps, and
// 2 ranks at batch 64 step through the same images as 1 process at batch 128.

/** Rows per rank for `count` rows (the padded share). @example shardLength(10, 3) // 4 */
export function shardLength(count: number, world: number): number {
  return Math.ceil(count / world);
}

/**
 * Rank `rank`'s rows of the epoch's permutation `order`.
 * @example Array.from(shardOrder(BigInt64Array.from([5n, 3n, 0n, 1n, 4n]), 1, 2)) // [3n, 1n, 5n]
 */
export function shardOrder(order: BigInt64Array, rank: number, world: number): BigInt64Array {
  const length = shardLength(order.length, world);
  const shard = new BigInt64Array(length);
  for (let i = 0; i < length; ++i) shard[i] = order[(rank + i * world) % order.length];
  return shard;
}

/** Rank `rank`'s contiguous part [from, to) of an evaluation split of `count` images (no padding: nothing is counted twice). */
export function evaluationShard(count: number, rank: number, world: number): [number, number] {
  return [Math.floor((count * rank) / world), Math.floor((count * (rank + 1)) / world)];
}

/** Where a resumed epoch starts on this rank: its first step, and its order (rows before that step unused). */
export interface ResumedOrder { firstStep: number; order: BigInt64Array }

/**
 * A mid-epoch resume on any number of ranks: the epoch's first `consumed` images of `permutation`
 * (in global samples, as the run that stopped counted them) are done; the rest is split as
 * DistributedSampler splits a whole epoch, and its steps end where this world size's epoch of
 * `steps` steps ends. The rows before `firstStep`'s batch are never read (zeros).
 * @example resumedOrder(BigInt64Array.from([5n, 3n, 0n, 1n, 4n, 2n]), 2, 1, 2, 1, 3, false) // { firstStep: 1, order: [0n (unread), 1n, 2n] }
 */
export function resumedOrder(permutation: BigInt64Array, consumed: number, rank: number, world: number, batchSize: number, steps: number, dropLast: boolean): ResumedOrder {
  const remaining = permutation.subarray(Math.min(consumed, permutation.length));
  const shard = remaining.length > 0 ? shardOrder(remaining, rank, world) : new BigInt64Array(0);
  const left = dropLast ? Math.floor(shard.length / batchSize) : Math.ceil(shard.length / batchSize);
  const firstStep = Math.max(0, steps - left);
  const order = new BigInt64Array(firstStep * batchSize + shard.length);
  order.set(shard, firstStep * batchSize);
  return { firstStep, order };
}
