// A search worker: takes the study's waiting trials one at a time and runs them, until none waits and
// none runs anywhere. The same loop runs in tune()'s own process (one worker), in each of its worker
// processes (--workers N), and in `convscope tune --worker` on another machine.
import * as os from 'os';
import type { OptunaHelper } from './optuna-helper';
import type { Dimension } from './space';
import { runTrial, TrialContext, TuneEvent, WorkerData } from './trial';
import type { TuneBaseOptions } from './trial-options';

/** A worker's trial context but for its name (workerName()), and how often it polls. */
export interface WorkerOptions extends Omit<TrialContext, 'worker'> {
  /** How often a worker with nothing to take looks again while other workers' trials run (ms; default 1000). */
  pollMs?: number;
}

/** How a worker names itself in the study: host:pid. */
export function workerName(): string {
  return `${os.hostname()}:${process.pid}`;
}

/** Resolves after `ms`, or at once when `signal` aborts. */
function pause(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => { clearTimeout(timer); signal?.removeEventListener('abort', done); resolve(); };
    const timer = setTimeout(done, ms);
    signal?.addEventListener('abort', done);
  });
}

/** An abort of the worker's signal: what trainCnn rejects with, so callers see one kind of stop. */
function abortError(): Error {
  return Object.assign(new Error('the search was stopped'), { name: 'AbortError' });
}

/**
 * Runs trials until the study has none waiting and none running. While other workers still run
 * trials it waits and looks again: a trial whose worker died is failed (no heartbeat) and enqueued
 * again, and this worker takes it, so the budget is met as long as one worker lives. Returns the
 * number of trials this worker finished.
 */
export async function runWorker(o: WorkerOptions): Promise<number> {
  const { pollMs: _pollMs, ...shared } = o;
  const ctx: TrialContext = { ...shared, worker: workerName() };
  let ran = 0;
  for (;;) {
    if (o.signal?.aborted) throw abortError();
    const next = await o.helper.ask(ctx.worker);
    if (next.trial) {
      if (o.signal?.aborted) {
        // Taken just as the search stopped: handed back (failed, enqueued again) untrained.
        await o.helper.tell(next.trial.id, 'fail', { userAttrs: { status: 'failed', reason: 'stopped before it started; run again on resume' }, retry: true });
        throw abortError();
      }
      if (await runTrial(ctx, next.trial)) ++ran;
      continue;
    }
    if (!next.running) return ran;
    await pause(o.pollMs ?? 1000, o.signal);
  }
}
