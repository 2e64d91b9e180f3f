// A worker process of `tune --workers N` (forked by tune(), see workers.ts): it gets its settings and
// the search's training and validation images over IPC, runs the worker loop on the shared study
// with its own Optuna helper and its share of the cores, and sends its progress back. Ctrl-C reaches
// the whole process group: it is ignored here, and the parent's 'abort' message (or the parent
// going away) stops the trial under way, which is failed and enqueued again.
import { native } from '../core/native';
import { OptunaHelper, PrunerConfig, SamplerConfig, WireDistribution } from './optuna-helper';
import type { Dimension } from './space';
import type { WorkerData } from './trial';
import type { TuneBaseOptions } from './trial-options';
import { runWorker } from './worker';

/** The parent's first message. */
export interface WorkerStart {
  type: 'start';
  storage: string;
  study: string;
  heartbeat: number;
  threads: number;
  base: TuneBaseOptions;
  dimensions: Dimension[];
  epochs: number;
  trials: number;
  config: { sampler: SamplerConfig; pruner: PrunerConfig; distributions: WireDistribution[] };
  data: WorkerData;
}

export type ToWorker = WorkerStart | { type: 'abort' };
export type FromWorker =
  | { type: 'event'; event: import('./trial').TuneEvent }
  | { type: 'done'; ran: number }
  | { type: 'error'; name: string; message: string; stack?: string };

function send(message: FromWorker): void {
  if (process.connected) process.send!(message);
}

async function work(start: WorkerStart, signal: AbortSignal): Promise<number> {
  native().setNumThreads(start.threads);
  const helper = await OptunaHelper.start();
  try {
    await helper.open(start.storage, start.study, start.heartbeat);
    await helper.configure(start.config.sampler, start.config.pruner, start.config.distributions);
    return await runWorker({
      helper, base: start.base, dimensions: start.dimensions, epochs: start.epochs, trials: start.trials,
      pruning: start.config.pruner.kind !== 'none', data: start.data, signal,
      onTrial: (event) => send({ type: 'event', event }),
    });
  } finally {
    await helper.close();
  }
}

if (require.main === module) {
  const controller = new AbortController();
  process.on('SIGINT', () => { /* the parent decides: it sends 'abort' */ });
  process.on('disconnect', () => controller.abort());
  process.on('message', (message: ToWorker) => {
    if (message.type === 'abort') {
      controller.abort();
      return;
    }
    work(message, controller.signal).then(
      (ran) => { send({ type: 'done', ran }); process.disconnect?.(); },
      (err: Error) => {
        send({ type: 'error', name: err.name, message: err.message, stack: err.stack });
        process.exitCode = 1;
        if (process.connected) process.disconnect();
      },
    );
  });
}
