// `convscope tune`: hyperparameter search (tune()) with a line per trial and epoch on stderr, the
// results table on stdout, and Ctrl-C that stops the trial under way and keeps the finished ones.
import { Command } from 'commander';
import type { TuneOptions } from '../tune/options';
import type { SearchSpace } from '../tune/space';
import type { TuneEvent } from '../tune/trial';
import { readRegularTextFile } from '../util/fs-read';
import { parseInteger, parseNumber } from './train-command';
import { addDataOptions, dataOptionsOf, datasetForRun, type DataFlags } from './data-options';

/** A space file is a few lines of JSON; anything larger is not one. */
const MAX_SPACE_BYTES = 1024 * 1024;

/** The search space in a JSON file (see SearchSpace); tune() checks its contents. */
export function readSpaceFile(file: string): SearchSpace {
  const text = readRegularTextFile(file, MAX_SPACE_BYTES);
  try {
    return JSON.parse(text) as SearchSpace;
  } catch (err) {
    throw new Error(`--space ${file} is not valid JSON (${(err as Error).message}); expected an object such as ` +
      '{ "learningRate": { "min": 1e-4, "max": 1e-2, "log": true }, "batchSize": [64, 128] }');
  }
}

const percent = (x: number | null): string => (x === null ? '-' : `${(100 * x).toFixed(2)}%`);
const secs = (x: number | null): string => (x === null ? '' : ` (${x.toFixed(1)} s)`);

/** One line per event, for stderr. */
export function describeTuneEvent(e: TuneEvent): string {
  const { describeParams } = require('../tune/space') as typeof import('../tune/space');
  switch (e.type) {
    case 'trial-start': return `trial ${e.trial}: ${describeParams(e.params)}${e.retryOf !== null ? ` (a retry of failed trial ${e.retryOf})` : ''} [${e.worker}]`;
    case 'epoch': return `  trial ${e.trial}, epoch ${e.epoch}/${e.epochs}: validation accuracy ${percent(e.validationAccuracy)}, loss ${e.validationLoss.toFixed(4)}`;
    case 'trial-skipped': return `trial ${e.result.trial}: finished by an earlier run (${e.result.status}, validation accuracy ${percent(e.result.validationAccuracy)}), skipped`;
    case 'trials-failed-on-resume': return `trial(s) ${e.trials.join(', ')} were left running by a search that was killed: marked failed, and run again`;
    case 'worker-lost': return `worker ${e.worker} ${e.reason}: its trial is marked failed and run again by another worker`;
    case 'trial-end': {
      const r = e.result;
      if (r.status === 'pruned') return `  trial ${r.trial} pruned after epoch ${r.epochs}: ${r.reason ?? ''}${secs(r.seconds)}`;
      if (r.status === 'diverged') return `  trial ${r.trial} diverged (loss NaN or infinite) after ${r.epochs} epoch(s)${secs(r.seconds)}`;
      return `  trial ${r.trial} completed: validation accuracy ${percent(r.validationAccuracy)}${secs(r.seconds)}`;
    }
    case 'retrain-start': return `retraining the best, trial ${e.trial} (${describeParams(e.params)}), on all ${e.trainImages} training images, then testing it once`;
    case 'retrain-end': return e.reused
      ? `the best was retrained by an earlier run: test accuracy ${percent(e.retrain.testAccuracy)}`
      : `  retrained in ${e.retrain.seconds.toFixed(1)} s: test accuracy ${percent(e.retrain.testAccuracy)} on ${e.retrain.testImages} test images`;
  }
}

type Flags = Record<string, unknown>;

function tuneOptions(flags: Flags, signal: AbortSignal): TuneOptions {
  const { DEFAULT_SPACE } = require('../tune/options') as typeof import('../tune/options');
  const pruning = { minTrials: flags.minTrials as number | undefined, graceEpochs: flags.graceEpochs as number | undefined, reductionFactor: flags.reductionFactor as number | undefined };
  for (const key of Object.keys(pruning) as (keyof typeof pruning)[]) if (pruning[key] === undefined) delete pruning[key];
  const options: TuneOptions = {
    dir: flags.dir as string,
    space: flags.space === undefined ? DEFAULT_SPACE : readSpaceFile(flags.space as string),
    sampler: flags.sampler as TuneOptions['sampler'],
    trials: flags.trials as number | undefined,
    startupTrials: flags.startupTrials as number | undefined,
    epochs: flags.epochs as number,
    limit: flags.limit as number,
    validation: flags.validation as number | undefined,
    testLimit: flags.testLimit as number | undefined,
    pruner: flags.pruner as TuneOptions['pruner'],
    pruning: Object.keys(pruning).length > 0 ? pruning : undefined,
    storage: flags.storage as string | undefined,
    study: flags.study as string | undefined,
    workers: flags.workers as number | undefined,
    threads: flags.threads as number | undefined,
    heartbeat: flags.heartbeat as number | undefined,
    retrain: flags.retrain as boolean,
    dataset: flags.dataset === undefined ? undefined : datasetForRun(flags.dataset as string).source,
    dataDir: flags.dataDir as string | undefined,
    data: Object.keys(dataOptionsOf(flags as DataFlags)).length > 0 ? dataOptionsOf(flags as DataFlags) : undefined,
    mode: flags.mode as TuneOptions['mode'],
    device: flags.device as TuneOptions['device'],
    seed: flags.seed as number,
    optimizer: flags.optimizer as TuneOptions['optimizer'],
    preset: flags.preset as TuneOptions['preset'],
    learningRate: flags.lr as number | undefined,
    batchSize: flags.batchSize as number | undefined,
    precision: flags.precision as TuneOptions['precision'],
    labelSmoothing: flags.labelSmoothing as number | undefined,
    augment: flags.shift !== undefined || flags.flip ? { shift: (flags.shift as number | undefined) ?? 0, flip: flags.flip === true } : undefined,
    onTrial: (e) => process.stderr.write(describeTuneEvent(e) + '\n'),
    signal,
  };
  // Flags not given stay out: tune() applies its defaults, and rejects a base value for a searched key.
  for (const key of Object.keys(options) as (keyof TuneOptions)[]) if (options[key] === undefined) delete options[key];
  return options;
}

/** Ctrl-C: stops the trials under way (failed in the study and run again on resume); a second one exits at once. */
function stopOnSigint(controller: AbortController, resumeHint: string): () => void {
  const onSignal = (): void => {
    process.stderr.write(`\nstopping the trials under way (Ctrl-C again to force); ${resumeHint}\n`);
    controller.abort();
    process.once('SIGINT', () => process.exit(130));
  };
  process.once('SIGINT', onSignal);
  return () => process.removeListener('SIGINT', onSignal);
}

/** `convscope tune --worker`: joins a study another machine runs. */
async function runJoinedWorker(flags: Flags): Promise<void> {
  const { joinStudy } = require('../tune/join') as typeof import('../tune/join');
  if (flags.storage === undefined || flags.study === undefined) {
    throw new Error('tune --worker joins an existing study: give its --storage URL and --study name (the search\'s other options are read from the study)');
  }
  const controller = new AbortController();
  const release = stopOnSigint(controller, 'the search goes on in its other workers, and this worker can join again');
  try {
    const ran = await joinStudy({
      storage: flags.storage as string, study: flags.study as string, dataDir: flags.dataDir as string | undefined,
      threads: flags.threads as number | undefined, heartbeat: flags.heartbeat as number | undefined, signal: controller.signal,
      onTrial: (e) => process.stderr.write(describeTuneEvent(e) + '\n'),
      onJoined: (info) => process.stderr.write(`tune --worker: joined ${info.study} (${info.trials} trials in its budget)\n`),
    });
    process.stdout.write(`this worker finished ${ran} trial(s); the study has no trial left to run\n`);
  } finally {
    release();
  }
}

/** Registers `convscope tune` on `program`. */
export function addTuneCommand(program: Command): void {
  addDataOptions(program
    .command('tune')
    .description('hyperparameter search on Optuna (TPE, random, grid or CMA-ES sampler; median, successive-halving or Hyperband pruner), ' +
      'one study shared by any number of workers: trials scored on a validation split of the training images, the best retrained and tested once'), 'all', 'fashion-mnist')
    .option('--space <file>', 'the search space as JSON (default: learning rate, batch size, dropout and filters, 24 combinations)')
    .option('--sampler <kind>', 'tpe, random, grid or cmaes (cmaes needs the cmaes Python package)', 'tpe')
    .option('--trials <n>', 'the trial budget (default 10; grid: every combination)', parseInteger)
    .option('--startup-trials <n>', 'tpe and cmaes: random trials before the model (default a quarter of the budget, 2 to 10)', parseInteger)
    .option('--epochs <n>', 'epochs of each trial and of the retraining', parseInteger, 1)
    .option('--limit <n>', 'training images used, validation included', parseInteger, 10000)
    .option('--validation <n>', 'of those, the last n are held out to score trials (default 10%)', parseInteger)
    .option('--test-limit <n>', 'test images of the final test (default all)', parseInteger)
    .option('--dir <dir>', 'search folder: study.db (the Optuna study, unless --storage), tune.json, tune.png, best.pt', 'runs/tune')
    .option('--pruner <kind>', 'median, successive-halving, hyperband or none', 'median')
    .option('--min-trials <n>', 'median pruner: completed trials needed before pruning any (default 3)', parseInteger)
    .option('--grace-epochs <n>', 'epochs every trial trains before it can be pruned (default 1)', parseInteger)
    .option('--reduction-factor <n>', 'successive-halving and hyperband: keep 1/n of the trials at each rung (default 3)', parseInteger)
    .option('--storage <url>', 'the study\'s storage, an SQLAlchemy URL (default sqlite:///<dir>/study.db; postgresql://user@host/db to share it between machines)')
    .option('--study <name>', 'the study\'s name in the storage (default the dir\'s name)')
    .option('--workers <n>', 'worker processes on this machine, on the one study (default 1)', parseInteger)
    .option('--threads <n>', 'libtorch threads per worker (default the cores / workers)', parseInteger)
    .option('--heartbeat <s>', 'seconds between a running trial\'s heartbeats; silent for 3 of them, it is failed and run again (default 10)', parseInteger)
    .option('--worker', 'join the study given by --storage and --study as one more worker (another machine); the rest is read from the study')
    .option('--no-retrain', 'skip retraining and testing the best')
    .option('--mode <name>', 'script (faster on a CPU) or eager', 'script')
    .option('--device <name>', 'cpu, cuda or auto', 'cpu')
    .option('--seed <n>', 'seed of the sampler and of every training', parseInteger, 42)
    .option('--preset <name>', 'start every trial from a recipe (tutorial or fast, as train --preset); the space and flags given win')
    .option('--optimizer <name>', 'adam, adamw or sgd (default adam, or the preset\'s)')
    .option('--lr <x>', 'learning rate, when the space does not search it', parseNumber)
    .option('--batch-size <n>', 'batch size, when the space does not search it', parseInteger)
    .option('--precision <p>', 'fp32 or bf16 (autocast, default fp32)')
    .option('--label-smoothing <x>', 'label smoothing of the training loss', parseNumber)
    .option('--shift <n>', 'augmentation: shift training images by up to n pixels', parseInteger)
    .option('--flip', 'augmentation: mirror training images left-right at random')
    .action(async (flags: Flags) => {
      if (flags.worker) {
        await runJoinedWorker(flags);
        return;
      }
      const { tune } = require('../tune/tune') as typeof import('../tune/tune');
      const { tuneTable, bestSummary } = require('../tune/tune-report') as typeof import('../tune/tune-report');
      const { resolveTuneOptions, threadsPerWorker } = require('../tune/options') as typeof import('../tune/options');
      const { studyLabel, defaultStorage } = require('../tune/study') as typeof import('../tune/study');
      const controller = new AbortController();
      const options = tuneOptions(flags, controller.signal);
      // Checked here too (tune() checks again) so that a bad option fails before the line below.
      const resolved = resolveTuneOptions(options);
      const { sampler, pruner } = resolved.definition;
      const threads = threadsPerWorker(resolved.workers, resolved.threads);
      const prunerText = pruner.kind === 'none' ? 'no pruner' : `${pruner.kind} pruner`;
      process.stderr.write(`tune: ${resolved.trials} trials (${sampler.kind} sampler, ${prunerText}) in ` +
        `${studyLabel(resolved.storage ?? defaultStorage(resolved.dir), resolved.study)}, on ${options.device}: ` +
        `${resolved.workers} worker(s) with ${threads} libtorch thread(s) each; Ctrl-C stops the trials under way and keeps the finished ones\n`);
      const release = stopOnSigint(controller, 'rerun the same command to resume the study');
      const result = await tune(options).finally(release);
      const files = [result.files.study, result.files.json, result.files.chart, result.files.model].filter((f) => f !== undefined);
      process.stdout.write([
        tuneTable(result, { color: Boolean(process.stdout.isTTY) }),
        ...bestSummary(result),
        ...(result.resumed > 0 ? [`resumed: ${result.resumed} trial(s) were finished by an earlier run`] : []),
        `wrote ${files.join(', ')}${result.chartSkipped ? ` (tune.png skipped: ${result.chartSkipped})` : ''}`,
      ].join('\n') + '\n');
    });
}
