// The search itself (issue 31), measured with `convscope tune` as a user runs it, one fresh process
// per search (its Optuna helper and worker processes included in its CPU time):
//   tune-compare: TPE with median pruning against the random search convscope had before Optuna
//     (random draws, median stopping), at the same trial budget on Fashion-MNIST, one search per
//     seed each: the best validation accuracy found and the CPU time spent.
//   tune-workers: the same search with 1 and with 2 worker processes: trials per hour (wall clock).
// Each search runs in its own folder under a temporary directory, removed afterwards.
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

export interface TuneBenchSettings {
  trials: number;
  epochs: number;
  /** Training images used (the last tenth scores the trials). */
  limit: number;
  /** Test images of the retrained best's one test. */
  testLimit: number;
  seeds: number[];
}

/** The measurement the lead runs: 20 trials of 3 epochs on 10,000 images, three seeds. */
export const DEFAULT_TUNE_BENCH: TuneBenchSettings = { trials: 20, epochs: 3, limit: 10000, testLimit: 10000, seeds: [42, 43, 44] };

/** The space both searches draw from: a log range, a linear range and two lists. */
export const COMPARE_SPACE = {
  learningRate: { min: 1e-4, max: 3e-2, log: true },
  dropout: { min: 0, max: 0.6 },
  batchSize: [32, 64, 128, 256],
  filters: [0.5, 1],
};

export interface SearchRun {
  arm: string;
  seed: number;
  workers: number;
  /** The best completed trial's validation accuracy, and the retrained best's test accuracy. */
  bestValidationAccuracy: number | null;
  testAccuracy: number | null;
  completed: number;
  pruned: number;
  /** User + system CPU seconds of the search process and every process it waited for. */
  cpuSeconds: number;
  wallSeconds: number;
  trialsPerHour: number;
}

const CLK_TCK = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout.trim()) || 100;

/** CPU seconds of this process's terminated, waited-for children (cutime + cstime of /proc/self/stat). */
function childrenCpuSeconds(): number {
  const stat = fs.readFileSync('/proc/self/stat', 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // After the command: state(0) ppid ... utime(11) stime(12) cutime(13) cstime(14).
  return (Number(fields[13]) + Number(fields[14])) / CLK_TCK;
}

const cli = path.join(__dirname, '..', 'src', 'cli', 'main.js');

/** One `convscope tune` search in a fresh process; its table goes to the log, its figures into the result. */
function runSearch(arm: string, args: string[], settings: TuneBenchSettings, seed: number, workers: number, tmp: string): SearchRun {
  const dir = path.join(tmp, `${arm}-${seed}-w${workers}`);
  const spaceFile = path.join(tmp, 'space.json');
  fs.writeFileSync(spaceFile, JSON.stringify(COMPARE_SPACE));
  const full = [cli, 'tune', '--dir', dir, '--space', spaceFile, '--trials', String(settings.trials), '--epochs', String(settings.epochs),
    '--limit', String(settings.limit), '--test-limit', String(settings.testLimit), '--seed', String(seed), '--workers', String(workers), ...args];
  const cpuBefore = childrenCpuSeconds();
  const started = process.hrtime.bigint();
  const run = spawnSync(process.execPath, full, { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  const wallSeconds = Number(process.hrtime.bigint() - started) / 1e9;
  const cpuSeconds = childrenCpuSeconds() - cpuBefore;
  if (run.status !== 0) throw new Error(`tune ${arm} (seed ${seed}) failed (${run.status}):\n${run.stderr.slice(-4000)}`);
  const json = JSON.parse(fs.readFileSync(path.join(dir, 'tune.json'), 'utf8')) as {
    best: { validationAccuracy: number; testAccuracy?: number } | null; trials: { status: string }[];
  };
  const completed = json.trials.filter((t) => t.status === 'completed').length;
  const pruned = json.trials.filter((t) => t.status === 'pruned').length;
  return {
    arm, seed, workers, bestValidationAccuracy: json.best?.validationAccuracy ?? null, testAccuracy: json.best?.testAccuracy ?? null,
    completed, pruned, cpuSeconds, wallSeconds, trialsPerHour: (completed + pruned) / (wallSeconds / 3600),
  };
}

/** The searches compared: what convscope had (random draws, median stopping) and TPE with the median pruner. */
export const ARMS: { name: string; args: string[] }[] = [
  { name: 'random + median stopping (before Optuna)', args: ['--sampler', 'random', '--pruner', 'median'] },
  { name: 'tpe + median pruner', args: ['--sampler', 'tpe', '--pruner', 'median'] },
];

/** tune-compare: every arm once per seed, interleaved (seed by seed), so that machine noise hits both alike. */
export function benchTuneCompare(settings: TuneBenchSettings, log: (line: string) => void): SearchRun[] {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'convscope-bench-tune-'));
  try {
    const runs: SearchRun[] = [];
    for (const seed of settings.seeds) {
      for (const arm of ARMS) {
        const r = runSearch(arm.name.split(' ')[0], arm.args, settings, seed, 1, tmp);
        runs.push({ ...r, arm: arm.name });
        log(`  ${arm.name.padEnd(42)} seed ${seed}: best validation ${pct(r.bestValidationAccuracy)}, test ${pct(r.testAccuracy)}, ` +
          `${r.completed} completed / ${r.pruned} pruned, CPU ${r.cpuSeconds.toFixed(0)} s, wall ${r.wallSeconds.toFixed(0)} s`);
      }
    }
    return runs;
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

/** tune-workers: the same search (random sampler, no pruning: every trial costs the same) with 1 and 2 workers. */
export function benchTuneWorkers(settings: TuneBenchSettings, log: (line: string) => void): SearchRun[] {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'convscope-bench-tune-'));
  try {
    const runs: SearchRun[] = [];
    for (const workers of [1, 2]) {
      const r = runSearch('workers', ['--sampler', 'random', '--pruner', 'none', '--no-retrain'], settings, settings.seeds[0], workers, tmp);
      runs.push(r);
      log(`  ${workers} worker(s): ${r.completed} trials in ${r.wallSeconds.toFixed(0)} s wall, ${r.trialsPerHour.toFixed(1)} trials/hour, CPU ${r.cpuSeconds.toFixed(0)} s`);
    }
    return runs;
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

const pct = (x: number | null): string => (x === null ? '-' : `${(100 * x).toFixed(2)}%`);

/** Per arm: the mean best validation accuracy and CPU time over the seeds. */
export function summarize(runs: SearchRun[]): { arm: string; meanBestValidation: number; meanTest: number; meanCpuSeconds: number; seeds: number }[] {
  const arms = [...new Set(runs.map((r) => r.arm))];
  const mean = (xs: number[]): number => xs.reduce((a, b) => a + b, 0) / Math.max(xs.length, 1);
  return arms.map((arm) => {
    const mine = runs.filter((r) => r.arm === arm);
    return {
      arm, seeds: mine.length,
      meanBestValidation: mean(mine.map((r) => r.bestValidationAccuracy ?? 0)),
      meanTest: mean(mine.map((r) => r.testAccuracy ?? 0)),
      meanCpuSeconds: mean(mine.map((r) => r.cpuSeconds)),
    };
  });
}
