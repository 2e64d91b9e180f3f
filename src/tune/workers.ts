// `tune --workers N`: N worker processes on this machine (worker-process.ts), each with its own
// Optuna helper and cores / N libtorch threads, all taking trials from the one study. A worker that
// is killed costs its trial (failed, then run again by another worker); one that fails with an error
// stops the others; an abort stops them all.
import { ChildProcess, fork } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { packageRoot } from '../util/package-root';
import type { LabelledImages } from '../train/evaluate';
import type { TuneEvent } from './trial';
import type { FromWorker, WorkerStart } from './worker-process';

/** The compiled worker script: next to this file under dist/, or in dist/ when this runs from the sources (tests). */
export function workerScript(): string {
  const sibling = path.join(__dirname, 'worker-process.js');
  if (fs.existsSync(sibling)) return sibling;
  const built = path.join(packageRoot(), 'dist', 'src', 'tune', 'worker-process.js');
  if (!fs.existsSync(built)) throw new Error(`tune --workers needs the compiled worker ${built}: build the TypeScript (npm run build)`);
  return built;
}

/** A compact copy of a split: a view would send its whole underlying buffer over IPC. */
function compact(split: LabelledImages): LabelledImages {
  // The channel count and size travel with the pixels: a colour split read as grey would fail the spec check.
  return { ...split, images: split.images.slice(), labels: split.labels.slice() };
}

export interface WorkerProcessesResult {
  /** Workers that ended without finishing (killed), as host:pid with the reason. */
  lost: string[];
}

/**
 * Starts `count` worker processes with `start` and waits for all of them. Rejects with the first
 * worker's error, or with an AbortError when `signal` aborted; resolves when every worker ended,
 * listing those that were killed.
 */
export function runWorkerProcesses(count: number, start: Omit<WorkerStart, 'type'>, o: { signal?: AbortSignal; onTrial?: (e: TuneEvent) => void }): Promise<WorkerProcessesResult> {
  const script = workerScript();
  const message: WorkerStart = {
    ...start, type: 'start',
    data: { ...start.data, train: compact(start.data.train), validation: compact(start.data.validation) },
  };
  return new Promise((resolve, reject) => {
    const children: ChildProcess[] = [];
    const lost: string[] = [];
    let firstError: Error | undefined;
    let running = count;
    const abortAll = (): void => {
      for (const child of children) if (child.connected) child.send({ type: 'abort' });
    };
    o.signal?.addEventListener('abort', abortAll);
    for (let i = 0; i < count; ++i) {
      const child = fork(script, [], { serialization: 'advanced', stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
      children.push(child);
      let done = false;
      let failed = false;
      child.on('message', (m: FromWorker) => {
        if (m.type === 'event') o.onTrial?.(m.event);
        else if (m.type === 'done') done = true;
        else if (m.type === 'error') {
          failed = true;
          if (!firstError && !(m.name === 'AbortError' && o.signal?.aborted)) {
            firstError = Object.assign(new Error(m.message), { name: m.name, stack: m.stack });
            abortAll();
          }
        }
      });
      let ended = false;
      const end = (): void => {
        if (ended) return;
        ended = true;
        if (--running > 0) return;
        o.signal?.removeEventListener('abort', abortAll);
        if (firstError) reject(firstError);
        else if (o.signal?.aborted) reject(Object.assign(new Error('the search was stopped'), { name: 'AbortError' }));
        else resolve({ lost });
      };
      child.on('error', (err) => {
        failed = true;
        if (!firstError) { firstError = err; abortAll(); }
        // A process that never started sends no 'exit'.
        if (child.pid === undefined) end();
      });
      child.on('exit', (code, signal) => {
        if (!done && !failed) {
          const worker = `${os.hostname()}:${child.pid}`;
          const reason = signal ? `killed by ${signal}` : `exited with code ${code} before it finished`;
          lost.push(`${worker} (${reason})`);
          o.onTrial?.({ type: 'worker-lost', worker, reason });
        }
        end();
      });
      child.send(message);
    }
  });
}
