// torchrun's environment contract (torch/distributed/run.py): what a rank reads to find its group.
// The CLI joins a group whenever RANK and WORLD_SIZE are set; trainCnn({ distributed: true }) reads it.
import * as os from 'os';
import { fileURLToPath } from 'url';
import { checkKnownKeys, checkNumber, checkObject, expected } from '../util/validate';

/** Default seconds a rank waits for its peers (rendezvous and every collective) before failing. */
export const DEFAULT_DIST_TIMEOUT_SECONDS = 300;

/** torch.distributed's default init_method: the rendezvous is torchrun's MASTER_ADDR and MASTER_PORT. */
export const ENV_INIT_METHOD = 'env://';

/** trainCnn's `distributed` option: `true`, or the group's timeout and rendezvous. */
export interface DistributedOptions {
  /** Seconds to wait for the peers at the rendezvous and in every collective (default 300). */
  timeout?: number;
  /**
   * How the ranks meet, as torch.distributed's `init_method`: `'env://'` (the default: a TCPStore at
   * MASTER_ADDR:MASTER_PORT, as torchrun sets them) or `'file:///shared/path'` (a FileStore: one file
   * on a file system every rank sees, MASTER_ADDR and MASTER_PORT unused). The file must not exist, or
   * be empty, when the ranks start: one left behind by a killed run holds that run's addresses.
   * @example trainCnn({ distributed: { initMethod: 'file:///nfs/jobs/42/rendezvous' } })
   */
  initMethod?: string;
  /**
   * Batch norms normalise with the whole global batch's statistics, every rank's images together, as
   * PyTorch's SyncBatchNorm does (default false: each rank its own, as DistributedDataParallel alone).
   * Costs one small collective per batch-norm layer in forward and one in backward; not with a CUDA graph.
   * @example trainCnn({ distributed: { syncBatchNorm: true } })
   */
  syncBatchNorm?: boolean;
}

export type ResolvedDistributedOptions = Required<DistributedOptions>;

/**
 * The FileStore's path of a `file://` init method; undefined for `env://`; a RangeError for anything else.
 * @example storeFileOf('file:///tmp/rdzv') // '/tmp/rdzv'
 */
export function storeFileOf(initMethod: string, name = 'distributed.initMethod'): string | undefined {
  if (initMethod === ENV_INIT_METHOD) return undefined;
  if (initMethod.startsWith('file://')) {
    let file: string | undefined;
    try {
      file = fileURLToPath(initMethod);
    } catch {
      file = undefined;
    }
    if (file && !file.endsWith('/')) return file;
  }
  throw new RangeError(expected(`"${ENV_INIT_METHOD}" or a file URL (file:///shared/path, an absolute path to a file)`, name, initMethod));
}

/** Checks trainCnn's `distributed` option: undefined or false for a single process. */
export function checkDistributed(value: unknown): ResolvedDistributedOptions | undefined {
  if (value === undefined || value === false) return undefined;
  if (value === true) return { timeout: DEFAULT_DIST_TIMEOUT_SECONDS, initMethod: ENV_INIT_METHOD, syncBatchNorm: false };
  const o = checkObject(value, 'distributed');
  checkKnownKeys(o, 'distributed', ['timeout', 'initMethod', 'syncBatchNorm']);
  const initMethod = o.initMethod ?? ENV_INIT_METHOD;
  if (typeof initMethod !== 'string') throw new TypeError(expected('a string', 'distributed.initMethod', initMethod));
  storeFileOf(initMethod);
  const syncBatchNorm = o.syncBatchNorm ?? false;
  if (typeof syncBatchNorm !== 'boolean') throw new TypeError(expected('a boolean', 'distributed.syncBatchNorm', syncBatchNorm));
  return { timeout: checkNumber(o.timeout ?? DEFAULT_DIST_TIMEOUT_SECONDS, 'distributed.timeout', 0, 7 * 24 * 3600, { exclusiveMin: true }), initMethod, syncBatchNorm };
}

/** Where this process stands in its group, from torchrun's variables. */
export interface RankEnvironment {
  rank: number;
  worldSize: number;
  localRank: number;
  localWorldSize: number;
  /** MASTER_ADDR and MASTER_PORT: the rendezvous store ('' and 0 with a FileStore, which needs neither). */
  host: string;
  port: number;
  /** torchrun's agent serves the store (TORCHELASTIC_USE_AGENT_STORE): connect to it, do not serve it. */
  agentStore: boolean;
  /** The agent's key prefix for this attempt (as torch.distributed's env:// rendezvous uses it). */
  agentPrefix: string;
}

/** Whether torchrun's (or the launcher's) variables describe a group: RANK and WORLD_SIZE are set. */
export function inGroupEnvironment(env: NodeJS.ProcessEnv = process.env): boolean {
  return env.RANK !== undefined && env.WORLD_SIZE !== undefined;
}

function integerVariable(env: NodeJS.ProcessEnv, name: string, min: number, max: number, fallback?: number): number {
  const text = env[name];
  if (text === undefined || text === '') {
    if (fallback !== undefined) return fallback;
    throw new RangeError(`${expected(`an integer in [${min}, ${max}]`, `the environment variable ${name}`, text)}: ` +
      'a distributed run is started by torchrun or `convscope train --nproc-per-node N`, which set RANK, WORLD_SIZE, MASTER_ADDR and MASTER_PORT');
  }
  const value = Number(text);
  if (!/^\d+$/.test(text.trim()) || value < min || value > max) {
    throw new RangeError(expected(`an integer in [${min}, ${max}]`, `the environment variable ${name}`, text));
  }
  return value;
}

/**
 * The group described by the environment, checked (each variable named in the error). With a
 * `file://` init method MASTER_ADDR and MASTER_PORT are not read.
 * @example rankEnvironment({ RANK: '1', WORLD_SIZE: '2', MASTER_ADDR: '127.0.0.1', MASTER_PORT: '29500' }).rank // 1
 */
export function rankEnvironment(env: NodeJS.ProcessEnv = process.env, initMethod = ENV_INIT_METHOD): RankEnvironment {
  const worldSize = integerVariable(env, 'WORLD_SIZE', 1, 1 << 20);
  const rank = integerVariable(env, 'RANK', 0, worldSize - 1);
  const localWorldSize = integerVariable(env, 'LOCAL_WORLD_SIZE', 1, worldSize, worldSize);
  const localRank = integerVariable(env, 'LOCAL_RANK', 0, localWorldSize - 1, rank % localWorldSize);
  const fileStore = storeFileOf(initMethod) !== undefined;
  const host = fileStore ? '' : env.MASTER_ADDR ?? '';
  if (!fileStore && host === '') throw new RangeError(expected('a host name or address', 'the environment variable MASTER_ADDR', env.MASTER_ADDR));
  const port = fileStore ? 0 : integerVariable(env, 'MASTER_PORT', 1, 65535);
  const agentStore = /^(1|true)$/i.test(env.TORCHELASTIC_USE_AGENT_STORE ?? '');
  const agentPrefix = `/worker/attempt_${env.TORCHELASTIC_RESTART_COUNT ?? '0'}`;
  return { rank, worldSize, localRank, localWorldSize, host, port, agentStore, agentPrefix };
}

/** Threads per rank: the cores divided between the ranks of this machine, at least one. */
export function threadsPerRank(localWorldSize: number, cores = os.availableParallelism()): number {
  return Math.max(1, Math.floor(cores / localWorldSize));
}

/** The device a rank trains on: `cuda` becomes `cuda:LOCAL_RANK`; an explicit index or the CPU is kept. */
export function rankDevice(device: string, localRank: number): string {
  return device === 'cuda' ? `cuda:${localRank}` : device;
}
