// The experiment subcommands: sweep-kernel, redundancy, fewer-filters, regularization and report.
// Each is a thin wrapper: flags -> the exported function's options, then the results table on
// stdout (the same strings as results.md) and one line per training on stderr.
import { Command, InvalidArgumentError } from 'commander';
import type { ExperimentOptions } from '../experiments/options';
import type { ResultsTable } from '../experiments/results';
import type { InMemoryDataset } from '../train/options';
import * as path from 'path';
import { addDataOptions, DataFlags, dataOptionsOf, datasetForRun, runDataOptions, runDatasetFor } from './data-options';
import { parseInteger, parseNumber } from './train-command';

/** Parses a comma-separated list of integers (a commander argument parser). @example parseIntegerList("3,5,7") // [3, 5, 7] */
export function parseIntegerList(value: string): number[] {
  const items = value.split(',').map((s) => s.trim()).filter((s) => s !== '');
  if (items.length === 0) throw new InvalidArgumentError(`expected a comma-separated list of integers but received "${value}"`);
  return items.map((s) => {
    const n = Number(s);
    if (!Number.isInteger(n)) throw new InvalidArgumentError(`expected a comma-separated list of integers but received "${value}"`);
    return n;
  });
}

/** The data, budget and training flags every experiment takes (the data flags are train's: any dataset). */
function withExperimentFlags(command: Command, name: string): Command {
  return addDataOptions(command, 'all', 'fashion-mnist')
    .option('--epochs <n>', 'epochs per training', parseInteger, 1)
    .option('--limit <n>', 'training images per training (default 10000)', parseInteger)
    .option('--test-limit <n>', 'test images (default 2000)', parseInteger)
    .option('--full', 'all 60,000 training and 10,000 test images (overrides --limit/--test-limit)')
    .option('--seed <n>', 'random seed of every training', parseInteger, 42)
    .option('--batch-size <n>', 'batch size', parseInteger, 128)
    .option('--lr <x>', 'Adam learning rate', parseNumber, 1e-3)
    .option('--mode <name>', 'script (faster on a CPU) or eager', 'script')
    .option('--device <name>', 'cpu, cuda or auto', 'cpu')
    .option('--out <dir>', 'output folder', `experiments/${name}`);
}

type Flags = Record<string, unknown>;

/**
 * The experiment's dataset: MNIST or Fashion-MNIST by name when no data flag asks more (the experiment
 * loads only the images it uses), else any dataset train takes (a folder, CIFAR, arrays), loaded here
 * with the data flags and the experiment's limits.
 */
async function experimentDataset(flags: Flags): Promise<Pick<ExperimentOptions, 'dataset' | 'dataDir'>> {
  const name = flags.dataset as string;
  const data = dataOptionsOf(flags as DataFlags);
  const dataDir = flags.dataDir === undefined ? {} : { dataDir: flags.dataDir as string };
  if ((name === 'fashion-mnist' || name === 'mnist') && Object.keys(data).length === 0) return { dataset: name, ...dataDir };
  const { loadImageDataset } = require('../data/load-image-dataset') as typeof import('../data/load-image-dataset');
  const { DEFAULT_LIMIT, DEFAULT_TEST_LIMIT } = require('../experiments/options') as typeof import('../experiments/options');
  const limit = flags.full ? {} : { train: (flags.limit as number | undefined) ?? DEFAULT_LIMIT, test: (flags.testLimit as number | undefined) ?? DEFAULT_TEST_LIMIT };
  const dataset = await loadImageDataset(datasetForRun(name).source, { ...data, ...dataDir, limit });
  return { dataset: dataset as unknown as InMemoryDataset };
}

async function experimentOptions(flags: Flags): Promise<ExperimentOptions> {
  return {
    ...(await experimentDataset(flags)),
    epochs: flags.epochs as number,
    ...(flags.full ? { limit: 'all' as const, testLimit: 'all' as const } : {
      ...(flags.limit !== undefined ? { limit: flags.limit as number } : {}),
      ...(flags.testLimit !== undefined ? { testLimit: flags.testLimit as number } : {}),
    }),
    seed: flags.seed as number,
    batchSize: flags.batchSize as number,
    learningRate: flags.lr as number,
    mode: flags.mode as ExperimentOptions['mode'],
    device: flags.device as ExperimentOptions['device'],
    outDir: flags.out as string,
    log: (line) => process.stderr.write(line + '\n'),
  };
}

/** The results table as cli-table3 draws it. @example process.stdout.write(formatResultsTable(result.table)) */
export function formatResultsTable(table: ResultsTable): string {
  const Table = require('cli-table3') as typeof import('cli-table3');
  const t = new Table({ head: table.headers });
  for (const row of table.rows) t.push(row);
  return t.toString();
}

function print(lines: string[]): void {
  process.stdout.write(lines.join('\n') + '\n');
}

/**
 * The report's sample images when buildReport cannot load them by name itself: a --dataset or a single
 * run's dataset that is not MNIST or Fashion-MNIST (a folder, CIFAR, arrays), read here with the data
 * options the run recorded. MNIST and Fashion-MNIST stay names (buildReport loads only what it draws).
 */
async function reportDataset(runs: string[], flags: Flags): Promise<InMemoryDataset | 'fashion-mnist' | 'mnist' | undefined> {
  const named = (flags.dataset as string | undefined) ?? (runs.length === 1 ? runDataOptions(path.join(runs[0], 'model.pt')).dataset : undefined);
  if (named === undefined) return undefined;
  if (named === 'fashion-mnist' || named === 'mnist') return flags.dataset === undefined ? undefined : named;
  const checkpoint = runs.length === 1 ? path.join(runs[0], 'model.pt') : '';
  const { dataset } = await runDatasetFor(checkpoint, { dataset: flags.dataset as string | undefined, dataDir: flags.dataDir as string | undefined });
  return dataset as unknown as InMemoryDataset;
}

/** Registers the five experiment subcommands on `program`. @example addExperimentCommands(new Command()); */
export function addExperimentCommands(program: Command): void {
  withExperimentFlags(program.command('sweep-kernel'), 'sweep-kernel')
    .description('train the network with each first-layer kernel size; accuracy, parameters, time, mosaics')
    .option('--sizes <list>', 'comma-separated kernel sizes', parseIntegerList, [3, 5, 7, 9, 13, 19, 28])
    .action(async (flags: Flags) => {
      const { sweepKernelSizes } = require('../experiments/sweep-kernel') as typeof import('../experiments/sweep-kernel');
      const r = await sweepKernelSizes({ ...(await experimentOptions(flags)), sizes: flags.sizes as number[] });
      print([formatResultsTable(r.table), `results: ${r.files.markdown}, ${r.files.results}; chart: ${r.files.chart}`]);
    });

  program.command('redundancy <checkpoint>')
    .description('find near-duplicate filters of a layer of a trained model')
    .option('--layer <name>', 'conv layer', 'conv1')
    .option('--threshold <x>', 'cosine similarity that links two filters', parseNumber, 0.9)
    .option('--sign-invariant', 'a filter and its negation count as the same pattern')
    .option('--out <dir>', 'output folder', 'redundancy')
    .action((checkpoint: string, flags: Flags) => {
      const { redundancyReport } = require('../experiments/redundancy') as typeof import('../experiments/redundancy');
      const r = redundancyReport(checkpoint, {
        layer: flags.layer as string, threshold: flags.threshold as number, signInvariant: Boolean(flags.signInvariant), outDir: flags.out as string,
      });
      print([
        ...(r.groups.length === 0 ? [] : [formatResultsTable({
          headers: ['group', 'filters', 'highest pair similarity'],
          rows: r.groups.map((g, i) => [String(i + 1), g.join(', '),
            Math.max(...r.pairs.filter((p) => g.includes(p.a)).map((p) => p.similarity)).toFixed(4)]),
        })]),
        `${r.layer}: ${r.groups.length} group(s) of similar filters at >= ${r.threshold}${r.signInvariant ? ' (sign-invariant)' : ''}, ` +
          `${r.pairs.length} linked pair(s)${r.constant.length > 0 ? `, constant filters: ${r.constant.join(', ')}` : ''}`,
        `wrote ${r.files.similarity}, ${r.files.mosaic}, ${r.files.groups}`,
      ]);
    });

  withExperimentFlags(program.command('fewer-filters'), 'fewer-filters')
    .description('how few first-layer filters reach a similar accuracy: pruning vs training from scratch')
    .option('--counts <list>', 'filter counts trained from scratch', parseIntegerList, [2, 4, 8, 16, 32])
    .option('--keep <list>', 'filter counts kept by pruning (default: the counts below the full network\'s)', parseIntegerList)
    .option('--fine-tune-epochs <n>', 'epochs of fine-tuning after pruning (0: none)', parseInteger, 1)
    .option('--checkpoint <file>', 'prune this trained model instead of training one first')
    .option('--tolerance <x>', '"similar accuracy": within this fraction of the full network', parseNumber, 0.01)
    .action(async (flags: Flags) => {
      const { fewerFilters } = require('../experiments/fewer-filters') as typeof import('../experiments/fewer-filters');
      const r = await fewerFilters({
        ...(await experimentOptions(flags)), counts: flags.counts as number[], fineTuneEpochs: flags.fineTuneEpochs as number,
        tolerance: flags.tolerance as number,
        ...(flags.keep !== undefined ? { keep: flags.keep as number[] } : {}),
        ...(flags.checkpoint !== undefined ? { checkpoint: flags.checkpoint as string } : {}),
      });
      print([formatResultsTable(r.table), ...r.notes, `results: ${r.files.markdown}, ${r.files.results}; chart: ${r.files.chart}`]);
    });

  withExperimentFlags(program.command('regularization'), 'regularization')
    .description('no penalty vs L2 vs L1: accuracy, sparsity and smoothness of the first-layer filters')
    .option('--l1 <x>', 'L1 penalty', parseNumber, 1e-4)
    .option('--l2 <x>', 'L2 penalty (weight decay)', parseNumber, 1e-3)
    .option('--zero-threshold <x>', 'near zero: |w| < x * max|w| of the layer', parseNumber, 0.01)
    .action(async (flags: Flags) => {
      const { compareRegularization } = require('../experiments/regularization') as typeof import('../experiments/regularization');
      const r = await compareRegularization({
        ...(await experimentOptions(flags)), l1: flags.l1 as number, l2: flags.l2 as number, zeroThreshold: flags.zeroThreshold as number,
      });
      print([formatResultsTable(r.table), `results: ${r.files.markdown}, ${r.files.results}; mosaics: ${r.files.mosaics.join(', ')}`]);
    });

  program.command('report [run...]')
    .description('one HTML page (self-contained) and a Markdown copy of training runs and experiment folders')
    .option('--experiments <dir...>', 'experiment folders to include')
    .option('--explanations <dir...>', 'probing folders to include (written by explain, visualize, examples, embeddings)')
    .option('--out <dir>', 'output folder', 'report')
    .option('--layer <name>', 'layer whose activation maps are drawn', 'conv1.act')
    .option('--dataset <name|folder|file>', 'dataset of the sample images (default: each run\'s own; a run on a folder, CIFAR or arrays is read with the data options its config.json recorded)')
    .option('--data-dir <dir>', 'folder with a named dataset\'s files')
    .option('--title <text>', 'page title')
    .action(async (runs: string[], flags: Flags) => {
      const { buildReport } = require('../experiments/report') as typeof import('../experiments/report');
      const dataset = await reportDataset(runs ?? [], flags);
      const r = buildReport(runs ?? [], {
        out: flags.out as string, layer: flags.layer as string,
        ...(flags.experiments !== undefined ? { experiments: flags.experiments as string[] } : {}),
        ...(flags.explanations !== undefined ? { explanations: flags.explanations as string[] } : {}),
        ...(dataset !== undefined ? { dataset } : {}),
        ...(flags.dataDir !== undefined ? { dataDir: flags.dataDir as string } : {}),
        ...(flags.title !== undefined ? { title: flags.title as string } : {}),
      });
      print([`wrote ${r.html} (self-contained) and ${r.markdown} with ${r.assets.length} picture(s)`, ...r.missing.map((m) => `not shown: ${m}`)]);
    });
}
