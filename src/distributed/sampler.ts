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
