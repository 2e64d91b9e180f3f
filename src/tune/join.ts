// `convscope tune --worker`: a worker that joins a study another machine created (`convscope tune
// --storage URL --study NAME`). Everything it trains with comes from the study: the search's
// definition, its base options and the dataset's name; it loads the images itself and checks they
// are the study's before it takes a trial.
import { native } from '../core/native';
import { OptunaHelper } from './optuna-helper';
import { checkStorageUrl, checkStudyName, DEFAULT_HEARTBEAT } from './options';
import type { Dimension } from './space';
import { loadSearchData } from './splits';
import { checkSameData, optunaConfig, storedAttrs, studyLabel } from './study';
import type { TuneEvent } from './trial';
import { checkInteger, checkString } from '../util/validate';
import type { TuneBaseOptions } from './trial-options';
import { runWorker } from './worker';

export interface JoinOptions {
  storage: string;
  study: string;
  /** Where this machine keeps the dataset's IDX files (the study names the dataset, not the folder). */
  dataDir?: string;
  /** libtorch threads (default all cores). */
  threads?: number;
  heartbeat?: number;
  signal?: AbortSignal;
  onTrial?: (event: TuneEvent) => void;
  /** Called once the study is checked, before the first trial: its label and budget. */
  onJoined?: (info: { study: string; trials: number }) => void;
}

/** Runs trials of an existing study until it has none left; resolves with the number this worker finished. */
export async function joinStudy(o: JoinOptions): Promise<number> {
  const storage = checkStorageUrl(o.storage);
  const study = checkStudyName(o.study);
  const heartbeat = checkInteger(o.heartbeat ?? DEFAULT_HEARTBEAT, 'heartbeat', 1, 3600);
  const threads = o.threads === undefined ? undefined : checkInteger(o.threads, 'threads', 1, 4096);
  const dataDir = o.dataDir === undefined ? undefined : checkString(o.dataDir, 'dataDir');
  const label = studyLabel(storage, study);
  const helper = await OptunaHelper.start();
  try {
    const described = await helper.open(storage, study, heartbeat);
    if (!described.exists) throw new Error(`there is no ${label} to join: start the search first (convscope tune --storage ... --study ${study})`);
    const attrs = storedAttrs(described, label, described.paramNames ?? []);
    const { definition, worker } = attrs;
    if (worker.dataset === null) {
      throw new Error(`${label} searches images given to tune() in memory; a worker elsewhere cannot load them (use --workers on the machine that holds them)`);
    }
    const base = { ...worker.base, dataset: worker.dataset, ...(dataDir !== undefined ? { dataDir } : {}) } as TuneBaseOptions;
    const data = await loadSearchData(base, {
      limit: definition.limit ?? undefined, validation: definition.validation ?? undefined, testLimit: definition.testLimit ?? undefined,
    });
    checkSameData(attrs, data.fingerprint, label);
    const config = optunaConfig(definition);
    await helper.configure(config.sampler, config.pruner, config.distributions);
    o.onJoined?.({ study: label, trials: definition.trials });
    if (threads !== undefined) native().setNumThreads(threads);
    return await runWorker({
      helper, base, dimensions: definition.space as Dimension[], epochs: definition.epochs, trials: definition.trials,
      pruning: config.pruner.kind !== 'none',
      data: { name: data.name, classNames: data.classNames, train: data.train, validation: data.validation },
      signal: o.signal, onTrial: o.onTrial,
    });
  } finally {
    await helper.close();
  }
}
