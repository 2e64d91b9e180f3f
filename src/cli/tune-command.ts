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

/** One line per event, for stderr. */
export function describeTuneEvent(e: TuneEvent): string {
  const { describeParams } = require('../tune/space') as typeof import('../tune/space');
  switch (e.type) {
    case 'trial-start': return `trial ${e.trial}/${e.trials}: ${describeParams(e.params)}`;
    case 'epoch': return `  epoch ${e.epoch}/${e.epochs}: validation accuracy ${percent(e.validationAccuracy)}, loss ${e.validationLoss.toFixed(4)}`;
    case 'trial-skipped': return `trial ${e.result.trial}/${e.trials}: finished by an earlier run (${e.result.status}, validation accuracy ${percent(e.result.validationAccuracy)}), skipped`;
    case 'trial-end': {
      const r = e.result;
      if (r.status === 'stopped-early') {
        return `  stopped early after epoch ${r.epochs}: ${percent(r.validationAccuracy)} is below the completed trials' median ${percent(r.stoppedBelowMedian ?? null)} (${r.seconds.toFixed(1)} s)`;
      }
      if (r.status === 'diverged') return `  diverged (loss NaN or infinite) after ${r.epochs} epoch(s) (${r.seconds.toFixed(1)} s)`;
      return `  completed: validation accuracy ${percent(r.validationAccuracy)} (${r.seconds.toFixed(1)} s)`;
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
  const options: TuneOptions = {
    dir: flags.dir as string,
    space: flags.space === undefined ? DEFAULT_SPACE : readSpaceFile(flags.space as string),
    search: flags.search as TuneOptions['search'],
    trials: flags.trials as number | undefined,
    epochs: flags.epochs as number,
    limit: flags.limit as number,
    validation: flags.validation as number | undefined,
    testLimit: flags.testLimit as number | undefined,
    earlyStopping: flags.earlyStopping === false ? false : { minTrials: flags.minTrials as number, graceEpochs: flags.graceEpochs as number },
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

/** Registers `convscope tune` on `program`. */
export function addTuneCommand(program: Command): void {
  addDataOptions(program
    .command('tune')
    .description('hyperparameter search, one trial at a time (each uses all cores): trials scored on a validation split of the training images, the best retrained and tested once'), 'all', 'fashion-mnist')
    .option('--space <file>', 'the search space as JSON (default: learning rate, batch size, dropout and filters, 24 combinations)')
    .option('--search <kind>', 'random or grid', 'random')
    .option('--trials <n>', 'random search: trials (default 10)', parseInteger)
    .option('--epochs <n>', 'epochs of each trial and of the retraining', parseInteger, 1)
    .option('--limit <n>', 'training images used, validation included', parseInteger, 10000)
    .option('--validation <n>', 'of those, the last n are held out to score trials (default 10%)', parseInteger)
    .option('--test-limit <n>', 'test images of the final test (default all)', parseInteger)
    .option('--dir <dir>', 'search folder: trials.json (to resume), tune.json, tune.png, best.pt', 'runs/tune')
    .option('--min-trials <n>', 'early stopping: completed trials needed before stopping any', parseInteger, 3)
    .option('--grace-epochs <n>', 'early stopping: epochs every trial trains first', parseInteger, 1)
    .option('--no-early-stopping', 'run every trial for all its epochs')
    .option('--no-retrain', 'skip retraining and testing the best')
    .option('--mode <name>', 'script (faster on a CPU) or eager', 'script')
    .option('--device <name>', 'cpu, cuda or auto', 'cpu')
    .option('--seed <n>', 'seed of the sampling and of every training', parseInteger, 42)
    .option('--preset <name>', 'start every trial from a recipe (tutorial or fast, as train --preset); the space and flags given win')
    .option('--optimizer <name>', 'adam, adamw or sgd (default adam, or the preset\'s)')
    .option('--lr <x>', 'learning rate, when the space does not search it', parseNumber)
    .option('--batch-size <n>', 'batch size, when the space does not search it', parseInteger)
    .option('--precision <p>', 'fp32 or bf16 (autocast, default fp32)')
    .option('--label-smoothing <x>', 'label smoothing of the training loss', parseNumber)
    .option('--shift <n>', 'augmentation: shift training images by up to n pixels', parseInteger)
    .option('--flip', 'augmentation: mirror training images left-right at random')
    .action(async (flags: Flags) => {
      const { tune } = require('../tune/tune') as typeof import('../tune/tune');
      const { tuneTable, bestSummary } = require('../tune/tune-report') as typeof import('../tune/tune-report');
      const { resolveTuneOptions } = require('../tune/options') as typeof import('../tune/options');
      const { torchInfo } = require('../index') as typeof import('../index');
      const controller = new AbortController();
      const options = tuneOptions(flags, controller.signal);
      // Checked here too (tune() checks again) so that a bad option fails before the line below.
      const resolved = resolveTuneOptions(options);
      process.stderr.write(`tune: ${resolved.trials.length} trials (${resolved.search} search), run one at a time on ${options.device}, ` +
        `each training with all ${torchInfo().threads} of libtorch's threads (side by side they would only share the cores); ` +
        'Ctrl-C stops the trial under way and keeps the finished ones\n');
      const onSignal = (): void => {
        process.stderr.write(`\nstopping the trial under way (Ctrl-C again to force); rerun the same command to resume from ${options.dir}\n`);
        controller.abort();
        process.once('SIGINT', () => process.exit(130));
      };
      process.once('SIGINT', onSignal);
      const result = await tune(options).finally(() => process.removeListener('SIGINT', onSignal));
      const files = [result.files.trials, result.files.json, result.files.chart, result.files.model].filter((f) => f !== undefined);
      process.stdout.write([
        tuneTable(result, { color: Boolean(process.stdout.isTTY) }),
        ...bestSummary(result),
        ...(result.resumed > 0 ? [`resumed: ${result.resumed} trial(s) were finished by an earlier run`] : []),
        `wrote ${files.join(', ')}${result.chartSkipped ? ` (tune.png skipped: ${result.chartSkipped})` : ''}`,
      ].join('\n') + '\n');
    });
}
