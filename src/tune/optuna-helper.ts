// The Optuna side of a search: python/tune_helper.py in the project's Python (.venv, where
// scripts/setup.sh installs the pinned Optuna), one process per worker, spoken to in JSON lines. Its
// requests, typed. Errors it reports become errors naming the operation; a helper that dies rejects
// whatever was waiting on it (see JsonLinesProcess).
import * as fs from 'fs';
import * as path from 'path';
import { packageRoot } from '../util/package-root';
import { projectPython } from '../util/project-python';
import { HelperExitedError, HelperRequestError, JsonLinesProcess } from '../util/json-lines-process';

/** The Optuna release scripts/setup.sh installs and the helper is written for. */
export const OPTUNA_VERSION = '5.0.0';

/** One of the search's Optuna distributions, by parameter name. */
export type WireDistribution =
  | { name: string; type: 'float' | 'int'; low: number; high: number; log: boolean }
  | { name: string; type: 'categorical'; choices: (number | string)[] };

export interface SamplerConfig {
  kind: 'tpe' | 'random' | 'grid' | 'cmaes';
  seed: number;
  /** tpe and cmaes: trials drawn at random before the model takes over. */
  startupTrials?: number;
  /** grid: every parameter's values. */
  grid?: Record<string, (number | string)[]>;
}

export interface PrunerConfig {
  kind: 'median' | 'successive-halving' | 'hyperband' | 'none';
  minTrials: number;
  graceEpochs: number;
  reductionFactor: number;
  epochs: number;
}

export interface StudyDescription {
  exists: boolean;
  userAttrs?: Record<string, unknown>;
  directions?: string[];
  trialCount?: number;
  paramNames?: string[];
  /** create: whether this call created it (false: another process did, meanwhile). */
  created?: boolean;
}

export interface AskedTrial {
  /** Optuna's trial id (storage-wide) and number (the study's 0-based count). */
  id: number;
  number: number;
  params: Record<string, number | string>;
  /** A retry of a failed trial: that trial's number. */
  retryOf: number | null;
}

export type TrialState = 'running' | 'waiting' | 'complete' | 'pruned' | 'fail';

/** A trial as the study holds it. */
export interface StoredTrial {
  number: number;
  state: TrialState;
  params: Record<string, number | string>;
  value: number | null;
  /** [epoch, validation accuracy] pairs. */
  intermediate: [number, number | null][];
  userAttrs: Record<string, unknown>;
  retryOf: number | null;
  start: string | null;
  complete: string | null;
}

/** The helper's script, shipped in the npm package's python/ folder. */
export function helperScript(): string {
  return path.join(packageRoot(), 'python', 'tune_helper.py');
}

/** An Optuna helper process, ready (Optuna imported). */
export class OptunaHelper {
  private constructor(private readonly process: JsonLinesProcess, readonly optunaVersion: string) {}

  /**
   * Starts the helper in the project's Python. Rejects with what to do when Python or Optuna is
   * missing (scripts/setup.sh installs both).
   */
  static async start(): Promise<OptunaHelper> {
    const python = projectPython();
    const script = helperScript();
    if (!fs.existsSync(script)) throw new Error(`convscope tune: its Optuna helper ${script} is missing from this installation`);
    const child = new JsonLinesProcess(python, ['-u', script], { name: 'the Optuna helper', env: { ...process.env, PYTHONUNBUFFERED: '1' } });
    let ready: Record<string, unknown>;
    try {
      ready = await child.ready;
    } catch (err) {
      throw new Error(`convscope tune needs Optuna ${OPTUNA_VERSION} in the project's Python (${python}), which scripts/setup.sh installs: ` +
        `${(err as Error).message}`);
    }
    if (ready.ready !== true) {
      await child.close();
      throw new Error(`convscope tune needs Optuna ${OPTUNA_VERSION} in the project's Python (${python}): run scripts/setup.sh ` +
        `(or ${python} -m pip install optuna==${OPTUNA_VERSION} sqlalchemy psycopg2-binary); importing it failed: ${String(ready.error)}`);
    }
    return new OptunaHelper(child, String(ready.optuna));
  }

  get pid(): number | undefined {
    return this.process.pid;
  }

  private async call<T>(op: string, payload: Record<string, unknown> = {}): Promise<T> {
    try {
      return await this.process.request<T>(op, payload);
    } catch (err) {
      if (err instanceof HelperRequestError) throw new OptunaError(op, err.type, err.message);
      throw err;
    }
  }

  /** Connects to the storage (heartbeat: seconds between a running trial's heartbeats) and describes study `study`. */
  open(storage: string, study: string, heartbeat: number): Promise<StudyDescription> {
    return this.call('open', { storage, study, heartbeat, grace: heartbeat * 3 });
  }

  /** Creates the study with these attributes and `budget` waiting trials (or describes the one another process just created). */
  create(study: string, userAttrs: Record<string, unknown>, budget: number): Promise<StudyDescription> {
    return this.call('create', { study, userAttrs, budget });
  }

  configure(sampler: SamplerConfig, pruner: PrunerConfig, distributions: WireDistribution[]): Promise<void> {
    return this.call('configure', { sampler, pruner, distributions });
  }

  ask(worker: string): Promise<{ trial: AskedTrial | null; running?: number }> {
    return this.call('ask', { worker });
  }

  report(trialId: number, step: number, value: number, prune: boolean): Promise<{ prune: boolean; median?: number; peers?: number }> {
    return this.call('report', { trialId, step, value, prune });
  }

  tell(trialId: number, state: 'complete' | 'pruned' | 'fail', o: { value?: number; userAttrs?: Record<string, unknown>; retry?: boolean } = {}): Promise<void> {
    return this.call('tell', { trialId, state, ...o });
  }

  /** Fails every trial left RUNNING (by a killed search) and enqueues a copy of each; their numbers. */
  async failRunning(reason: string): Promise<number[]> {
    return (await this.call<{ failed: number[] }>('failRunning', { reason })).failed;
  }

  trials(): Promise<{ trials: StoredTrial[]; userAttrs: Record<string, unknown> }> {
    return this.call('trials');
  }

  setStudyAttr(key: string, value: unknown): Promise<void> {
    return this.call('setStudyAttr', { key, value });
  }

  close(): Promise<void> {
    return this.process.close();
  }

  kill(): void {
    this.process.kill();
  }
}

/** An error Optuna (or the helper around it) raised for one request. */
export class OptunaError extends Error {
  constructor(readonly op: string, readonly type: string, message: string) {
    super(`Optuna (${op}): ${type === 'RuntimeError' ? '' : `${type}: `}${message}`);
    this.name = 'OptunaError';
  }
}

export { HelperExitedError };
