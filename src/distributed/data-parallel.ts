// One rank of a data-parallel run: its process group, its share of each epoch and of each
// evaluation, and the collectives a training step and an epoch need. trainCnn calls it at a few
// places (src/train/train-cnn.ts); everything about ranks lives here.
import { native, NativeGradientReducer, NativeProcessGroup, NativeTensor, valuesOf } from '../core/native';
import { rankDevice, rankEnvironment, RankEnvironment, ResolvedDistributedOptions, storeFileOf, threadsPerRank } from './environment';
import { evaluationShard, shardLength, shardOrder } from './sampler';

/** A collective or the rendezvous failed: a peer stopped, never came, or the timeout passed. */
export class DistributedError extends Error {
  constructor(message: string, cause?: unknown) {
    super(message, { cause });
    this.name = 'DistributedError';
  }
}

/** An evaluation's counts, as a rank adds them up: summed over the ranks, they give the split's. */
export interface EvaluationCounts {
  lossSum: number;
  count: number;
  /** confusion[true][predicted] */
  confusion: number[][];
}

/** The running totals of an epoch (loss sum, correct answers, images seen). */
export interface Totals { lossSum: number; correct: number; seen: number }

/** NCCL for CUDA tensors, Gloo for the CPU's. */
export function backendFor(device: string): 'gloo' | 'nccl' {
  return device.startsWith('cuda') ? 'nccl' : 'gloo';
}

function deviceIndex(device: string): number {
  const index = /^cuda:(\d+)$/.exec(device);
  return index ? Number(index[1]) : 0;
}

/** What DDP's Reducer did in a run (TrainResult.distributed). */
export interface ReducerReport {
  /** The Reducer's buckets at the end (one until the first backward, then rebuilt in the order gradients came). */
  buckets: number;
  /** Steps whose gradients the Reducer averaged during backward. */
  reducedSteps: number;
  /** Whether the batch norms used the whole group's statistics (distributed.syncBatchNorm). */
  syncBatchNorm: boolean;
}

export class DataParallel {
  private group?: NativeProcessGroup;
  private syncingBatchNorm = false;
  private reducer?: NativeGradientReducer;

  private constructor(group: NativeProcessGroup, readonly env: RankEnvironment, readonly timeoutSeconds: number) {
    this.group = group;
  }

  /**
   * Joins the group the environment describes (torchrun's variables), waiting up to the timeout for
   * every peer; sets this rank's threads to the cores divided by the local ranks.
   */
  static async join(options: ResolvedDistributedOptions, device = 'cpu', env: NodeJS.ProcessEnv = process.env): Promise<DataParallel> {
    const rankEnv = rankEnvironment(env, options.initMethod);
    const storeFile = storeFileOf(options.initMethod);
    const addon = native();
    if (!addon.distributed?.available) {
      throw new DistributedError(`distributed training needs the libtorch 2.x build of convscope; this addon is built against libtorch ${addon.torchInfo().version}`);
    }
    const backend = backendFor(device);
    if (!addon.distributed.backends.includes(backend)) {
      throw new DistributedError(`a distributed run on ${device} needs the ${backend} backend, which this build of convscope lacks (it has: ${addon.distributed.backends.join(', ')}); ` +
        'NCCL is compiled into CUDA builds that find nccl.h (the nvidia-nccl wheel beside the CUDA PyTorch)');
    }
    addon.setNumThreads(threadsPerRank(rankEnv.localWorldSize));
    const store = storeFile ? `file store ${storeFile}` : `store ${rankEnv.host}:${rankEnv.port}${rankEnv.agentStore ? ", torchrun's agent store" : ''}`;
    const where = `rank ${rankEnv.rank} of ${rankEnv.worldSize} (${store})`;
    let group: NativeProcessGroup;
    try {
      group = await addon.distributed.joinGroup({
        ...(storeFile ? { storeFile } : { host: rankEnv.host, port: rankEnv.port }),
        rank: rankEnv.rank, size: rankEnv.worldSize, timeoutMs: Math.round(options.timeout * 1000),
        agentStore: rankEnv.agentStore, agentPrefix: rankEnv.agentPrefix, backend, device: deviceIndex(device),
      });
    } catch (err) {
      throw new DistributedError(`${where} could not join its group within ${options.timeout} s ` +
        `(a peer that never came, a wrong WORLD_SIZE, or a port in use): ${(err as Error).message}`, err);
    }
    return new DataParallel(group, rankEnv, options.timeout);
  }

  get rank(): number { return this.env.rank; }
  get size(): number { return this.env.worldSize; }
  /** Only rank 0 writes the run folder, checkpoints, TensorBoard and pictures. */
  get writes(): boolean { return this.env.rank === 0; }

  /** The device this rank trains on (`cuda` picks LOCAL_RANK's GPU). */
  device(device: string): string { return rankDevice(device, this.env.localRank); }

  /** Rows of one epoch for this rank (the padded share of `count`). */
  rows(count: number): number { return shardLength(count, this.size); }

  /** This rank's part of the epoch's permutation, on the permutation's device. */
  shardOrder(order: NativeTensor): NativeTensor {
    const shard = shardOrder(valuesOf(order, 'int64'), this.rank, this.size);
    // The shard's indices, copied into a libtorch tensor (a few hundred KB per epoch at most).
    const host = new (native().Tensor)(shard, [shard.length]);
    if (order.device === 'cpu') return host;
    const moved = native().ops.to(host, order.device);
    host.dispose();
    return moved;
  }

  /** Rank 0's values of `tensors` (parameters, buffers) on every rank, in place. */
  async broadcast(tensors: NativeTensor[]): Promise<void> {
    await this.collective('broadcast', (g) => g.broadcast(tensors));
  }

  /**
   * Makes the run's DDP Reducer over `params` (the model's parameters, after the broadcast): from
   * then on each step's backward averages their gradients over the ranks, bucket by bucket.
   */
  attachReducer(params: NativeTensor[]): void {
    this.reducer?.dispose();
    this.reducer = new (native().distributed.GradientReducer)(this.nativeGroup, params);
  }

  /**
   * From now on the batch norms of every training forward in this process normalise with the whole
   * group's statistics (PyTorch's SyncBatchNorm, native/sync_batch_norm.h), on both paths, until
   * the group is left. Every rank must ask for it, before the first step.
   */
  syncBatchNorm(): void {
    this.nativeGroup.syncBatchNorm(true);
    this.syncingBatchNorm = true;
  }

  /** Whether training batch norms use the whole group's statistics (syncBatchNorm()). */
  get syncsBatchNorm(): boolean { return this.syncingBatchNorm; }

  /**
   * The eager step's backward of `objective`, with the Reducer averaging the gradients during it;
   * resolves to the mean objective (the same on every rank). It runs off the main thread because it
   * waits for the last bucket's allreduce inside the Reducer's end-of-backward callback.
   */
  reducedBackward(objective: NativeTensor): Promise<number> {
    return this.collective('gradient average', () => this.nativeReducer.backward(objective));
  }

  /** The Reducer, for the native epoch loop (whose backward it averages, off the main thread). */
  get nativeReducer(): NativeGradientReducer {
    if (!this.reducer) throw new DistributedError(`rank ${this.rank}: no Reducer is attached (attachReducer) or the group was left`);
    return this.reducer;
  }

  /** What the Reducer did so far (zeros before attachReducer). */
  get reducerReport(): ReducerReport {
    return { buckets: this.reducer?.buckets ?? 0, reducedSteps: this.reducer?.steps ?? 0, syncBatchNorm: this.syncingBatchNorm };
  }

  /** An epoch's totals summed over the ranks. */
  async sumTotals(totals: Totals): Promise<Totals> {
    const [lossSum, correct, seen] = await this.collective('epoch totals', (g) => g.sumOverRanks(new Float64Array([totals.lossSum, totals.correct, totals.seen])));
    return { lossSum, correct, seen };
  }

  /** This rank's part [from, to) of an evaluation split of `count` images. */
  evaluationShard(count: number): [number, number] {
    return evaluationShard(count, this.rank, this.size);
  }

  /** A sharded evaluation's counts summed over the ranks (a rank with no images gives undefined). */
  async sumEvaluation(part: EvaluationCounts | undefined, classes: number): Promise<EvaluationCounts> {
    const values = new Float64Array(2 + classes * classes);
    if (part) {
      values[0] = part.lossSum;
      values[1] = part.count;
      part.confusion.forEach((row, t) => row.forEach((n, p) => { values[2 + t * classes + p] = n; }));
    }
    const sum = await this.collective('evaluation', (g) => g.sumOverRanks(values));
    const confusion = Array.from({ length: classes }, (_, t) => Array.from(sum.subarray(2 + t * classes, 2 + (t + 1) * classes)));
    return { lossSum: sum[0], count: sum[1], confusion };
  }

  /** The native group. */
  get nativeGroup(): NativeProcessGroup {
    if (!this.group) throw new DistributedError(`rank ${this.rank}: the group was used after it was left`);
    return this.group;
  }

  /** A failure inside native work that ran collectives, said as a DistributedError. */
  explain(err: unknown, what: string): Error {
    if (err instanceof DistributedError || !(err instanceof Error)) return err as Error;
    return new DistributedError(`rank ${this.rank} of ${this.size}: the ${what} failed (a peer stopped, or did not answer within ` +
      `${this.timeoutSeconds} s): ${err.message}`, err);
  }

  /** Leaves the group (idempotent). */
  dispose(): void {
    this.reducer?.dispose();
    this.reducer = undefined;
    this.group?.dispose();
    this.group = undefined;
  }

  private async collective<T>(what: string, run: (group: NativeProcessGroup) => Promise<T>): Promise<T> {
    if (!this.group) throw new DistributedError(`rank ${this.rank}: the ${what} was asked for after the group was left`);
    try {
      return await run(this.group);
    } catch (err) {
      throw this.explain(err, what);
    }
  }
}
