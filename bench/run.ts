// npm run bench: every speed and memory goal of the project, measured side by side in one run on
// this machine, printed as one table with ratios (and written to bench/results/latest.json).
//   npm run bench [-- SECTION...] [--only REGEX] [--peers] [--rounds N] [--steps N] [--out FILE]
//                 [--explain-limit N] [--explain-model FILE]
// SECTION: data, train, train-bn (the batch-norm network against PyTorch), train-colour (the cifar
// preset's network on 32x32x3 images against PyTorch), infer (evaluation and
// prediction of the test split), explain (saliency, integrated gradients and Grad-CAM over the test
// split against the same in PyTorch), eval-memory (all when none is named); distributed (1 and 2
// local ranks against one process: data-parallel scaling; only when named, as it starts processes
// of its own; --rounds and --steps shorten it too; --device cuda gives each rank the GPU of its
// LOCAL_RANK, --ranks 2,4,8 the group sizes, --batch-size N the batch per rank and the global batch of
// the strong-scaling rows, --batch-norm a batch-norm network and rows with its batch norms synced). --only keeps the reference and
// the training, inference and explanation rows whose name matches; --peers adds Keras and tfjs-node
// (scripts/setup-peers.sh) to the training and inference rounds; --rounds and --steps shorten a run (a
// smoke run, not a measurement: --steps N also makes inference take N chunks, not the whole split);
// --out writes the JSON elsewhere than bench/results/latest.json.
// explain: --explain-limit N explains the first N test images (default all 10,000: about 30 minutes a
// round on 2 cores, integrated gradients' 64 path points per image dominating);
// --explain-model FILE times a checkpoint of the tutorial network (default: the network seeded with 1).
// It runs EXPLAIN_ROUNDS interleaved rounds unless --rounds is given.
// tune-compare, tune-workers (tune: both) run only when named (about an hour together on 2 cores):
// `convscope tune` as a user runs it, TPE with the median pruner against the random search of before
// Optuna at the same budget (best validation accuracy, CPU time), and trials per hour with 1 and 2
// workers. --tune-trials N, --tune-epochs N, --tune-limit N, --tune-test-limit N and --tune-seeds
// 42,43 shrink it (a smoke run); their JSON goes to bench/results/tune-DATE.json unless --out says.
// time-to-accuracy (issue 33; only when named: it takes about an hour): each goal of the CPU column,
// the speedrun preset against the same recipe in PyTorch, --seeds N (default 3), --goals ID,ID
// (bench/time-to-accuracy.ts's CPU_GOALS, each with its preset and epochs), --preset NAME (one for all), --epochs N (every goal's epochs, for tuning);
// for a smoke run --limit N and --test-limit N (figures of a smoke run are no measurement), --no-pytorch, --pytorch-seeds N (PyTorch on the first N seeds only), --tag NAME (the JSON's file name: time-to-accuracy-DATE-NAME.json), --options JSON (trainCnn options
// over the preset's on both sides: an ablation row, e.g. '{"ema":false}'). Also written to
// bench/results/time-to-accuracy-<date>.json.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { torchInfo } from '../src/index';
import { benchEvalMemory } from './eval-memory';
import { benchInferenceThroughput, INFERENCE_REFERENCE, TEST_IMAGES } from './inference-throughput';
import { benchLoadData } from './load-data';
import { benchExplainThroughput, DEFAULT_EXPLAIN, EXPLAIN_REFERENCE, ExplainRow, MAPS_REFERENCE } from './explain-throughput';
import { IG_STEPS } from './explain-methods';
import { median } from './stats';
import { benchColourThroughput, benchTrainingThroughput, COLOUR_REFERENCE, DEFAULT_THROUGHPUT, REFERENCE, ThroughputRow, ThroughputSettings } from './training-throughput';
import { BATCH_NORM_REFERENCE, benchBatchNormThroughput } from './batch-norm-throughput';
import { benchDistributed, DEFAULT_DISTRIBUTED, printDistributed } from './distributed';
import { benchTuneCompare, benchTuneWorkers, COMPARE_SPACE, DEFAULT_TUNE_BENCH, summarize, TuneBenchSettings } from './tune-search';
import { benchTimeToAccuracy, DEFAULT_TIME_TO_ACCURACY, formatTimeToAccuracy } from './time-to-accuracy';
import { PRESETS, PresetName } from '../src/train/presets';

// On a shared machine noise only ever slows a run, so the best of the interleaved rounds is the
// steadiest estimate of what each contender can do (as timeit advises); the median is shown too.
const best = (values: number[]): number => Math.max(...values);

const VALUED_FLAGS = ['--only', '--rounds', '--steps', '--out', '--explain-limit', '--explain-model', '--tune-trials', '--tune-epochs', '--tune-limit',
  '--tune-test-limit', '--tune-seeds', '--seeds', '--goals', '--preset', '--limit', '--test-limit', '--epochs', '--options', '--pytorch-seeds', '--tag',
  '--device', '--ranks', '--batch-size'];

/** Sections run only when named: they take the better part of an hour. */
const OPT_IN = ['tune', 'tune-compare', 'tune-workers', 'time-to-accuracy'];

// Each round is one timed pass of every contender over the split (about 30 minutes on 2 cores for the
// 10,000 images), so the explanation section takes fewer rounds than the others unless --rounds says.
const EXPLAIN_ROUNDS = 3;

/** The value after `flag` on the command line, or undefined. */
function flagValue(flag: string): string | undefined {
  const at = process.argv.indexOf(flag);
  return at > 1 ? process.argv[at + 1] : undefined;
}

function positiveInteger(flag: string, fallback: number): number {
  const value = flagValue(flag);
  if (value === undefined) return fallback;
  if (!/^[1-9][0-9]*$/.test(value)) throw new Error(`${flag} takes a positive integer, not ${value}`);
  return Number(value);
}

function printRows(rows: ThroughputRow[], errors: string[]): void {
  const width = Math.max(34, ...rows.map((r) => r.name.length));
  for (const r of rows) {
    if (r.note) {
      process.stdout.write(`  ${r.name.padEnd(width)}  ${r.precision.padEnd(9)}  ${r.note}\n`);
      continue;
    }
    const finite = r.imagesPerSecond.filter(Number.isFinite);
    process.stdout.write(`  ${r.name.padEnd(width)}  ${r.precision.padEnd(9)}  ${median(finite).toFixed(0).padStart(15)}   ${best(finite).toFixed(0).padStart(13)}   ${(r.pairedRatio ?? NaN).toFixed(2).padStart(10)}x\n`);
  }
  for (const error of errors) process.stdout.write(`  (${error})\n`);
}

function printExplainRows(rows: ExplainRow[], errors: string[]): void {
  const width = Math.max(34, ...rows.map((r) => r.name.length));
  for (const r of rows) {
    const finite = r.imagesPerSecond.filter(Number.isFinite);
    process.stdout.write(`  ${r.name.padEnd(width)}  ${median(finite).toFixed(1).padStart(15)}   ${best(finite).toFixed(1).padStart(13)}   ${(r.pairedRatio ?? NaN).toFixed(2).padStart(10)}x   ${r.agreement}\n`);
  }
  for (const error of errors) process.stdout.write(`  (${error})\n`);
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const only = args.filter((a, i) => !a.startsWith('--') && !VALUED_FLAGS.includes(args[i - 1]));
  const wants = (name: string) => (only.length === 0 && !OPT_IN.includes(name)) || only.includes(name);
  const settings: ThroughputSettings = { ...DEFAULT_THROUGHPUT, rounds: positiveInteger('--rounds', DEFAULT_THROUGHPUT.rounds), steps: positiveInteger('--steps', DEFAULT_THROUGHPUT.steps) };
  const withPeers = args.includes('--peers');
  // `--only 'script'` keeps the reference and the training and inference rows whose name matches.
  const onlyPattern = flagValue('--only');
  const onlyRows = onlyPattern !== undefined ? new RegExp(onlyPattern) : undefined;
  const machine = `${os.cpus()[0]?.model ?? 'cpu'}, ${os.availableParallelism()} cores, libtorch ${torchInfo().version}`;
  const report: Record<string, unknown> = { date: new Date().toISOString(), machine, settings, ...(withPeers ? { peers: true } : {}) };
  process.stdout.write(`convscope benchmark on ${machine}\n\n`);

  if (wants('data')) {
    const d = await benchLoadData();
    report.data = d;
    process.stdout.write(`load Fashion-MNIST (.gz, verified)  ${d.loadMs.toFixed(0)} ms vs plain gunzip ${d.gunzipMs.toFixed(0)} ms: ${d.ratio.toFixed(2)}x (goal <= 1.25x)\n\n`);
  }

  if (wants('train')) {
    const { rows, errors } = benchTrainingThroughput(settings, onlyRows, withPeers);
    report.training = rows;
    const reference = rows.find((r) => r.name === REFERENCE && r.precision === 'fp32')!.imagesPerSecond;
    process.stdout.write(`training throughput, batch ${settings.batchSize}, Adam, ${settings.threads} threads, ${settings.rounds} interleaved rounds, ${settings.steps} steps each\n`);
    process.stdout.write(`  ${'contender'.padEnd(34)}  precision   median images/s   best images/s   median of per-round ratios to ${REFERENCE} fp32\n`);
    printRows(rows, errors);
    process.stdout.write(`  (${REFERENCE} fp32 median: ${median(reference.filter(Number.isFinite)).toFixed(0)} images/s)\n\n`);
  }

  if (wants('train-bn')) {
    const { rows, errors } = benchBatchNormThroughput(settings);
    report.batchNormTraining = rows;
    process.stdout.write(`batch-norm network (the fast preset's) training throughput, batch ${settings.batchSize}, Adam, ${settings.threads} threads, ${settings.rounds} interleaved rounds (goal: convscope >= 1.0x PyTorch)\n`);
    process.stdout.write(`  ${'contender'.padEnd(34)}  precision   median images/s   best images/s   median of per-round ratios to ${BATCH_NORM_REFERENCE}\n`);
    printRows(rows, errors);
    process.stdout.write('\n');
  }

  if (wants('train-colour')) {
    const { rows, errors } = benchColourThroughput(settings);
    report.colourTraining = rows;
    process.stdout.write(`colour training throughput: the cifar preset's network on 32x32x3 images (seeded random bytes), batch ${settings.batchSize}, Adam, ${settings.threads} threads, ${settings.rounds} interleaved rounds\n`);
    process.stdout.write(`  ${'contender'.padEnd(34)}  precision   median images/s   best images/s   median of per-round ratios to ${COLOUR_REFERENCE}\n`);
    printRows(rows, errors);
    process.stdout.write('\n');
  }

  if (wants('infer')) {
    const images = flagValue('--steps') !== undefined ? Math.min(TEST_IMAGES, settings.steps * settings.batchSize) : TEST_IMAGES;
    const tasks = benchInferenceThroughput(settings, images, onlyRows, withPeers);
    report.inference = { images, ...tasks };
    for (const [task, { rows, errors }] of Object.entries(tasks)) {
      process.stdout.write(`${task === 'evaluate' ? 'evaluation (loss, accuracy, confusion)' : 'prediction (class probabilities to the host)'} of ${images} test images, chunks of ${settings.batchSize}, ${settings.threads} threads, ${settings.rounds} interleaved rounds\n`);
      process.stdout.write(`  ${'contender'.padEnd(34)}  precision   median images/s   best images/s   median of per-round ratios to ${INFERENCE_REFERENCE} fp32\n`);
      printRows(rows, errors);
      process.stdout.write('\n');
    }
  }

  if (wants('explain')) {
    const explainSettings = { ...DEFAULT_EXPLAIN, images: positiveInteger('--explain-limit', DEFAULT_EXPLAIN.images), checkpoint: flagValue('--explain-model') };
    const rounds = flagValue('--rounds') !== undefined ? settings.rounds : EXPLAIN_ROUNDS;
    const methods = benchExplainThroughput({ ...settings, rounds }, explainSettings, onlyRows);
    report.explain = { ...explainSettings, rounds, igSteps: IG_STEPS, methods };
    const model = explainSettings.checkpoint ?? 'the tutorial network seeded with 1';
    for (const [method, { rows, errors }] of Object.entries(methods)) {
      process.stdout.write(`explain ${method}${method === 'integrated-gradients' ? ` (${IG_STEPS} steps, black baseline, midpoint rule)` : ''} of ${explainSettings.images} test images, ${model}, chunks of ${explainSettings.chunkSize} network inputs, ${settings.threads} threads, ${rounds} interleaved round${rounds === 1 ? '' : 's'}\n`);
      process.stdout.write(`  ${'contender'.padEnd(34)}  median images/s   best images/s   ratio to ${EXPLAIN_REFERENCE}   first block's maps vs ${MAPS_REFERENCE}'s (max |diff| / max |map|)\n`);
      printExplainRows(rows, errors);
      process.stdout.write('\n');
    }
    if (Object.values(methods).some(({ rows }) => rows.some((r) => r.agreement.startsWith('NOT')))) {
      process.stdout.write(`(a row marked NOT THE SAME COMPUTATION did not compute ${MAPS_REFERENCE}'s maps: its figures do not compare)\n\n`);
    }
  }

  if (wants('eval-memory')) {
    const rows = benchEvalMemory();
    report.evalMemory = rows;
    process.stdout.write('chunked evaluation of the 10,000 test images (default network, fresh process each)\n');
    for (const r of rows) {
      process.stdout.write(`  chunk ${String(r.chunkSize).padStart(5)}: peak RSS ${r.peakRssMb.toFixed(0)} MB (${(r.peakRssMb - r.baselineRssMb).toFixed(0)} MB above the loaded process), accuracy ${r.accuracy}, ${r.seconds.toFixed(1)} s\n`);
    }
    process.stdout.write('\n');
  }

  if (only.includes('distributed')) {
    const device = flagValue('--device') ?? DEFAULT_DISTRIBUTED.device;
    if (device !== 'cpu' && device !== 'cuda') throw new Error(`--device takes cpu or cuda, not ${device}`);
    const ranks = flagValue('--ranks')?.split(',').map(Number) ?? DEFAULT_DISTRIBUTED.ranks;
    const r = await benchDistributed({
      ...DEFAULT_DISTRIBUTED, rounds: positiveInteger('--rounds', DEFAULT_DISTRIBUTED.rounds), steps: positiveInteger('--steps', DEFAULT_DISTRIBUTED.steps),
      batchSize: positiveInteger('--batch-size', DEFAULT_DISTRIBUTED.batchSize), device, ranks, batchNorm: args.includes('--batch-norm'),
    });
    report.distributed = r;
    printDistributed(r, (line) => process.stdout.write(line));
  }
  const tuneSettings: TuneBenchSettings = {
    trials: positiveInteger('--tune-trials', DEFAULT_TUNE_BENCH.trials), epochs: positiveInteger('--tune-epochs', DEFAULT_TUNE_BENCH.epochs),
    limit: positiveInteger('--tune-limit', DEFAULT_TUNE_BENCH.limit), testLimit: positiveInteger('--tune-test-limit', DEFAULT_TUNE_BENCH.testLimit),
    seeds: flagValue('--tune-seeds')?.split(',').map(Number) ?? DEFAULT_TUNE_BENCH.seeds,
  };
  if (tuneSettings.seeds.some((s) => !Number.isInteger(s) || s < 0)) throw new Error(`--tune-seeds takes integers separated by commas, not ${flagValue('--tune-seeds')}`);
  const log = (line: string): void => { process.stdout.write(line + '\n'); };
  if (wants('tune') || wants('tune-compare')) {
    process.stdout.write(`tune: TPE + median pruner against random search + median stopping, ${tuneSettings.trials} trials of ${tuneSettings.epochs} epoch(s) ` +
      `on ${tuneSettings.limit} Fashion-MNIST training images (the last tenth scores them), seeds ${tuneSettings.seeds.join(', ')}, 1 worker\n`);
    const runs = benchTuneCompare(tuneSettings, log);
    const summary = summarize(runs);
    for (const s of summary) {
      process.stdout.write(`  mean over ${s.seeds} seed(s): ${s.arm.padEnd(42)} best validation ${(100 * s.meanBestValidation).toFixed(2)}%, ` +
        `retrained best's test ${(100 * s.meanTest).toFixed(2)}%, CPU ${s.meanCpuSeconds.toFixed(0)} s\n`);
    }
    report.tuneCompare = { settings: tuneSettings, space: COMPARE_SPACE, runs, summary };
    process.stdout.write('\n');
  }
  if (wants('tune') || wants('tune-workers')) {
    process.stdout.write(`tune: trials per hour with 1 and 2 worker processes (random sampler, no pruning, ${tuneSettings.trials} trials of ` +
      `${tuneSettings.epochs} epoch(s) on ${tuneSettings.limit} images, threads per worker = cores / workers)\n`);
    report.tuneWorkers = { settings: tuneSettings, runs: benchTuneWorkers(tuneSettings, log) };
    process.stdout.write('\n');
  }

  if (only.includes('time-to-accuracy')) {
    report.timeToAccuracy = timeToAccuracySection(args);
    // Its own JSON is written: a run of it alone must not replace latest.json's recorded sections.
    if (only.length === 1 && flagValue('--out') === undefined) return;
  }

  const onlyTune = only.length > 0 && only.every((name) => OPT_IN.includes(name));
  const defaultOut = onlyTune ? `tune-${new Date().toISOString().slice(0, 10)}.json` : 'latest.json';
  const out = flagValue('--out') ?? path.join(__dirname, '..', '..', 'bench', 'results', defaultOut);
  fs.mkdirSync(path.dirname(out), { recursive: true });
  fs.writeFileSync(out, JSON.stringify(report, null, 2) + '\n');
  const shown = path.relative(process.cwd(), path.resolve(out));
  process.stdout.write(`written to ${shown.startsWith('..') ? path.resolve(out) : shown}\n`);
}

/** Issue 33's section: runs, prints and writes its own JSON (a long run's figures kept apart from latest.json's). */
function timeToAccuracySection(args: string[]): unknown {
  const preset = flagValue('--preset');
  if (preset !== undefined && !(PRESETS as readonly string[]).includes(preset)) throw new Error(`--preset takes one of ${PRESETS.join(', ')}, not ${preset}`);
  const optional = (flag: string) => (flagValue(flag) !== undefined ? positiveInteger(flag, 1) : undefined);
  const settings = {
    ...DEFAULT_TIME_TO_ACCURACY, preset: preset as PresetName | undefined, seeds: positiveInteger('--seeds', DEFAULT_TIME_TO_ACCURACY.seeds),
    goals: flagValue('--goals')?.split(','), limit: optional('--limit'), testLimit: optional('--test-limit'), epochs: optional('--epochs'),
    pytorch: !args.includes('--no-pytorch'), pytorchSeeds: optional('--pytorch-seeds'),
    options: flagValue('--options') !== undefined ? JSON.parse(flagValue('--options')!) as Record<string, unknown> : undefined,
  };
  // Fewer images is no measurement of a goal; other epochs are (each row says its epochs).
  const smoke = settings.limit !== undefined || settings.testLimit !== undefined;
  process.stdout.write(`time to accuracy: ${settings.preset ? `the ${settings.preset} preset for every goal` : 'each goal\'s preset'}${settings.options ? ` with ${JSON.stringify(settings.options)}` : ''}${settings.pytorch ? ` and the same recipe in PyTorch (${Math.min(settings.pytorchSeeds ?? settings.seeds, settings.seeds)} seed(s))` : ''}, ${settings.seeds} seed(s) each, ` +
    `final-epoch test accuracy, seconds of training + evaluation (no data loading or model building), ${settings.threads} threads${smoke ? ' (SMOKE RUN: limited data or epochs, not a measurement)' : ''}\n`);
  const results = benchTimeToAccuracy(settings, (line) => process.stdout.write(line + '\n'));
  process.stdout.write(formatTimeToAccuracy(results) + '\n\n');
  // --tag names the file of one of several runs on a day (a subset of goals, an ablation row).
  const tag = flagValue('--tag');
  if (tag !== undefined && !/^[\w.+-]+$/.test(tag)) throw new Error(`--tag takes letters, digits and . + - _, not ${tag}`);
  const report = { date: new Date().toISOString(), machine: `${os.cpus()[0]?.model ?? 'cpu'}, ${os.availableParallelism()} cores`, settings, smoke, results };
  const file = path.join(__dirname, '..', '..', 'bench', 'results', `time-to-accuracy-${report.date.slice(0, 10)}${tag ? `-${tag}` : ''}${smoke ? '-smoke' : ''}.json`);
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, JSON.stringify(report, null, 2) + '\n');
  process.stdout.write(`time to accuracy written to ${path.relative(process.cwd(), file)}\n\n`);
  return report;
}

main().catch((err) => {
  process.stderr.write(`bench: ${(err as Error).stack}\n`);
  process.exitCode = 1;
});
