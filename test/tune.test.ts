// tune(): the best trial is chosen on validation data only, a resumed search skips finished trials,
// bad options fail before any work with messages naming the value, grid and random sampling, the
// median stopping rule, and the `convscope tune` command (Ctrl-C, resume).
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { spawn, spawnSync } from 'child_process';
import * as trainModule from '../src/train/train-cnn';
import type { InMemoryDataset, TrainOptions } from '../src/train/options';
import type { CnnSpec } from '../src/nn/spec';
import { tune } from '../src/tune/tune';
import type { TuneOptions } from '../src/tune/options';
import type { TuneEvent } from '../src/tune/trial';
import { checkSpace, gridTrials, randomTrials } from '../src/tune/space';
import { stopVerdict } from '../src/tune/early-stopping';
import { fashion } from './fixtures';
import { rejected } from './helpers';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'convscope-tune-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));
afterEach(() => jest.restoreAllMocks());
const cli = path.join(__dirname, '..', 'dist', 'src', 'cli', 'main.js');

const PIXELS = 28 * 28;
/** One conv layer and a small dense layer: a trial on a thousand images takes a fraction of a second. */
const TINY: CnnSpec = { conv: [{ filters: 4, kernelSize: 5, padding: 'same', pool: true }], dense: [16], dropout: 0 };

/**
 * 1,200 Fashion-MNIST training images and 500 test images. With `scrambledTest` every test label is
 * moved to the next class: a network that learned the task scores far below chance on it, so the
 * test figures of the search's trials would rank them in the opposite order to their validation.
 */
function tinyData(options: { scrambledTest?: boolean } = {}): InMemoryDataset {
  const f = fashion();
  const labels = f.test.labels.slice(0, 500);
  if (options.scrambledTest) labels.forEach((l, i) => { labels[i] = (l + 1) % 10; });
  return {
    name: 'fashion-subset', classNames: f.classNames,
    train: { images: f.train.images.subarray(0, 1200 * PIXELS), labels: f.train.labels.subarray(0, 1200), count: 1200 },
    test: { images: f.test.images.slice(0, 500 * PIXELS), labels, count: 500 },
  };
}

function base(dir: string, extra: Partial<TuneOptions> = {}): TuneOptions {
  return { dir: path.join(tmp, dir), dataset: tinyData(), spec: TINY, mode: 'script', validation: 400, epochs: 1, batchSize: 32, seed: 3, ...extra };
}

/** Every trainCnn call the search makes, with the options it was given. */
function spyTraining(): TrainOptions[] {
  const calls: TrainOptions[] = [];
  const real = trainModule.trainCnn;
  jest.spyOn(trainModule, 'trainCnn').mockImplementation((options?: TrainOptions) => {
    calls.push(options!);
    return real(options);
  });
  return calls;
}

const readTrials = (dir: string) => JSON.parse(fs.readFileSync(path.join(dir, 'trials.json'), 'utf8'));

describe('selection', () => {
  test('the best trial is chosen on validation accuracy; no trial sees a test image and the test set is used once, by the retrained best', async () => {
    const data = tinyData({ scrambledTest: true });
    const calls = spyTraining();
    const r = await tune(base('select', { dataset: data, search: 'grid', space: { learningRate: [1e-6, 3e-3] }, earlyStopping: false }));
    const [slow, good] = r.trials;
    // lr 1e-6 barely moves from its initial weights; 3e-3 learns the task.
    expect(good.validationAccuracy!).toBeGreaterThan(slow.validationAccuracy! + 0.2);
    expect(r.best!.trial).toBe(2);
    // The retrained best learned the true labels, so the scrambled test labels give it a poor score:
    // the figure comes from the test images, and had it driven the choice, trial 1 would have won.
    expect(r.best!.testAccuracy!).toBeLessThan(0.2);
    expect(r.best!.retrain!.testImages).toBe(500);
    expect(r.best!.retrain!.trainImages).toBe(1200);
    // Trials and the retraining get a dataset without test images (one training image stands in).
    expect(calls).toHaveLength(3);
    for (const call of calls) {
      const ds = call.dataset as InMemoryDataset;
      expect(ds.test.count).toBe(1);
      expect(ds.test.images.buffer).not.toBe(data.test.images.buffer);
      expect(ds.test.labels.buffer).not.toBe(data.test.labels.buffer);
    }
    expect((calls[0].dataset as InMemoryDataset).validation!.count).toBe(400);
    expect((calls[0].dataset as InMemoryDataset).train.count).toBe(800);
    // Stored trials hold validation figures only.
    for (const t of readTrials(r.dir).trials) expect(Object.keys(t).filter((k) => /test/i.test(k))).toEqual([]);
    const json = JSON.parse(fs.readFileSync(r.files.json, 'utf8'));
    expect(json.best.trial).toBe(2);
    expect(json.best.testAccuracy).toBe(r.best!.testAccuracy);
    expect(fs.existsSync(r.files.model!)).toBe(true);
    expect(fs.readFileSync(r.files.chart!).subarray(1, 4).toString()).toBe('PNG');
  });
});

describe('resume', () => {
  test('an abort mid-trial keeps the finished trials; a rerun skips them and trains only the rest', async () => {
    const options = base('resume', { search: 'grid', space: { learningRate: [3e-3, 1e-3, 2e-3] }, epochs: 2, earlyStopping: false, retrain: false });
    const controller = new AbortController();
    const first = spyTraining();
    const events: TuneEvent[] = [];
    // Stop trial 2 after its first epoch: mid-trial, with trial 1 finished.
    const err = await rejected(tune({
      ...options, signal: controller.signal,
      onTrial: (e) => { events.push(e); if (e.type === 'epoch' && e.trial === 2) controller.abort(); },
    }));
    expect(err.name).toBe('AbortError');
    expect(err.message).toMatch(/stopped with 1 of 3 trials finished; .*trials\.json.*resumes it/);
    expect(first).toHaveLength(2);
    const stored = readTrials(options.dir);
    expect(stored.trials.map((t: { trial: number }) => t.trial)).toEqual([1]);
    expect(fs.existsSync(path.join(options.dir, 'tune.json'))).toBe(false);

    jest.restoreAllMocks();
    const second = spyTraining();
    const resumedEvents: TuneEvent[] = [];
    const r = await tune({ ...options, onTrial: (e) => resumedEvents.push(e) });
    expect(r.resumed).toBe(1);
    expect(second).toHaveLength(2);
    expect(second.map((o) => o.learningRate)).toEqual([1e-3, 2e-3]);
    expect(resumedEvents.filter((e) => e.type === 'trial-start').map((e) => (e as { trial: number }).trial)).toEqual([2, 3]);
    expect(resumedEvents.filter((e) => e.type === 'trial-skipped').map((e) => (e as { result: { trial: number } }).result.trial)).toEqual([1]);
    // Trial 1 is the stored one, not a retraining (its timing would differ).
    expect(r.trials[0]).toEqual(stored.trials[0]);
    expect(r.trials.map((t) => t.status)).toEqual(['completed', 'completed', 'completed']);

    // Run again: nothing left to train.
    jest.restoreAllMocks();
    const third = spyTraining();
    expect((await tune(options)).resumed).toBe(3);
    expect(third).toHaveLength(0);
  });

  test('a different search in the same dir is an error naming what differs, before any training', async () => {
    const options = base('resume', { search: 'grid', space: { learningRate: [3e-3, 1e-3, 2e-3] }, epochs: 2, earlyStopping: false, retrain: false });
    if (!fs.existsSync(path.join(options.dir, 'trials.json'))) await tune(options);
    const calls = spyTraining();
    const err = await rejected(tune({ ...options, epochs: 3 }));
    expect(err.message).toMatch(/trials\.json holds a different search \(options that differ: epochs: 2 there, 3 now\)/);
    const space = await rejected(tune({ ...options, space: { learningRate: [3e-3] } }));
    expect(space.message).toMatch(/options that differ: .*space/);
    const other = { ...tinyData(), train: { ...tinyData().train, labels: tinyData().train.labels.slice().reverse() } };
    const data = await rejected(tune({ ...options, dataset: other }));
    expect(data.message).toMatch(/different images: data\.sha256: "[0-9a-f]+\.\.\. there, "[0-9a-f]+\.\.\. now\)/);
    expect(calls).toHaveLength(0);
  });
});

describe('options', () => {
  const bad: [string, Partial<TuneOptions> & Record<string, unknown>, RegExp][] = [
    ['an unknown option', { learningrate: 1e-3 }, /Unknown option "learningrate" in tune options; expected one of dir, space, /],
    ['an unknown hyperparameter', { space: { lr: [1e-3] } as never }, /Unknown option "lr" in space; expected one of learningRate, batchSize, /],
    ['an empty space', { space: {} }, /Expected at least one hyperparameter in space .* but received an empty space/],
    ['an empty list', { space: { batchSize: [] } }, /Expected a non-empty list of values for space\.batchSize but received an array of length 0/],
    ['a single value', { space: { batchSize: 64 as never } }, /Expected a list of values or a range \{ min, max, log\? \} for space\.batchSize but received 64 of type number \(wrap/],
    ['a value out of range', { space: { dropout: [0.2, 1.5] } }, /Expected a number in \[0, 1\) for space\.dropout\[1\] but received 1\.5/],
    ['a repeated value', { space: { batchSize: [64, 64] } }, /Expected distinct values for space\.batchSize but space\.batchSize\[1\] \(64\) repeats/],
    ['a range with max below min', { space: { learningRate: { min: 1e-2, max: 1e-4 } } }, /Expected a number above space\.learningRate\.min \(0\.01\) for space\.learningRate\.max but received 0\.0001/],
    ['a log range from 0', { space: { weightDecay: { min: 0, max: 1e-3, log: true } } }, /a log range cannot include 0.* for space\.weightDecay\.min but received 0 of type number/],
    ['an unknown range key', { space: { learningRate: { min: 1e-4, max: 1e-2, step: 2 } as never } }, /Unknown option "step" in space\.learningRate; expected one of min, max, log/],
    ['a range of schedules', { space: { schedule: { min: 0, max: 1 } as never } }, /Expected a list of values \(this hyperparameter has no range\) for space\.schedule/],
    ['an unknown schedule', { space: { schedule: ['cosine', 'linear'] as never } }, /Expected one of constant, cosine, one-cycle for space\.schedule\[1\] but received "linear"/],
    ['a range in a grid', { search: 'grid', space: { learningRate: { min: 1e-4, max: 1e-2 } } }, /ranges are for random search\) for space\.learningRate/],
    ['trials in a grid', { search: 'grid', trials: 5, space: { batchSize: [32, 64] } }, /no trials option for search 'grid' \(it runs all 2 combinations of space\) for trials but received 5/],
    ['more trials than a list-only space holds', { trials: 3, space: { batchSize: [32, 64] } }, /Expected at most 2 trials .* for trials but received 3/],
    ['a searched key also given as base', { learningRate: 1e-3, space: { learningRate: [1e-3, 3e-3] } }, /no learningRate option \(space\.learningRate searches it\) for learningRate .*drop one of the two/],
    ['filter counts not matching the conv layers', { space: { filters: [[4, 8]] } }, /trial 1 \(filters 4-8\): Expected one filter count per conv layer of spec \(1\) for space\.filters value/],
    ['a search kind', { search: 'bayes' as never }, /Expected one of random, grid for search but received "bayes"/],
    ['a bad early-stopping setting', { earlyStopping: { minTrials: 0 } }, /Expected positive integer for earlyStopping\.minTrials but received 0|integer >= 1 for earlyStopping\.minTrials/],
    ['validation not below limit', { limit: 400, validation: 400 }, /Expected fewer than limit \(400\) images, so that some are left to train on for validation but received 400/],
    ['a bad base option', { optimizer: 'adagrad' as never }, /trial 1 \(.*\): Expected one of adam, adamw, sgd for optimizer but received "adagrad"/],
  ];
  test.each(bad)('%s fails before any work, naming the value', async (_name, extra, message) => {
    const calls = spyTraining();
    const options = { ...base(`bad-${Math.random().toString(36).slice(2)}`), space: { learningRate: [1e-3, 3e-3] }, ...extra } as TuneOptions;
    const err = await rejected(tune(options));
    expect(err.message).toMatch(message);
    expect(calls).toHaveLength(0);
    expect(fs.existsSync(options.dir)).toBe(false);
  });

  test('dir is required', async () => {
    const err = await rejected(tune({ space: { learningRate: [1e-3] } } as TuneOptions));
    expect(err.message).toMatch(/Expected a non-empty string for dir but received undefined/);
  });
});

describe('sampling', () => {
  test('grid enumerates the cartesian product, the last key varying fastest', () => {
    const trials = gridTrials(checkSpace({ schedule: ['constant', 'cosine'], learningRate: [1e-3, 3e-3], batchSize: [32, 64, 128] }, 'grid'));
    expect(trials).toHaveLength(12);
    expect(new Set(trials.map((t) => JSON.stringify(t))).size).toBe(12);
    for (const lr of [1e-3, 3e-3]) for (const bs of [32, 64, 128]) for (const s of ['constant', 'cosine']) {
      expect(trials).toContainEqual({ learningRate: lr, batchSize: bs, schedule: s });
    }
    // SPACE_KEYS order (learningRate, batchSize, ..., schedule), whatever the order given.
    expect(trials.slice(0, 3)).toEqual([
      { learningRate: 1e-3, batchSize: 32, schedule: 'constant' },
      { learningRate: 1e-3, batchSize: 32, schedule: 'cosine' },
      { learningRate: 1e-3, batchSize: 64, schedule: 'constant' },
    ]);
  });

  test('random search is seeded: the same seed gives the same trials, trial i does not depend on the count, draws stay in range', () => {
    const space = checkSpace({
      learningRate: { min: 1e-4, max: 1e-2, log: true }, batchSize: { min: 16, max: 256, log: true }, dropout: { min: 0, max: 0.5 },
      kernelSize: { min: 3, max: 7 }, filters: [0.5, 1, [8, 16]], schedule: ['constant', 'one-cycle'],
    }, 'random');
    const a = randomTrials(space, 40, 7);
    expect(randomTrials(space, 40, 7)).toEqual(a);
    expect(randomTrials(space, 5, 7)).toEqual(a.slice(0, 5));
    expect(randomTrials(space, 40, 8)).not.toEqual(a);
    for (const t of a) {
      expect(t.learningRate!).toBeGreaterThanOrEqual(1e-4);
      expect(t.learningRate!).toBeLessThanOrEqual(1e-2);
      expect(Number.isInteger(t.batchSize)).toBe(true);
      expect(t.batchSize!).toBeGreaterThanOrEqual(16);
      expect(t.batchSize!).toBeLessThanOrEqual(256);
      expect(t.dropout!).toBeLessThanOrEqual(0.5);
      expect([3, 4, 5, 6, 7]).toContain(t.kernelSize);
    }
    // Log-uniform: about as many learning rates below 1e-3 (the geometric middle) as above.
    const low = a.filter((t) => t.learningRate! < 1e-3).length;
    expect(low).toBeGreaterThan(8);
    expect(low).toBeLessThan(32);
    // Every listed value turns up.
    expect(new Set(a.map((t) => JSON.stringify(t.filters))).size).toBe(3);
  });

  test('random search over lists draws distinct trials', () => {
    const trials = randomTrials(checkSpace({ learningRate: [1e-3, 3e-3], batchSize: [32, 64] }, 'random'), 4, 1);
    expect(new Set(trials.map((t) => JSON.stringify(t))).size).toBe(4);
  });
});

describe('early stopping', () => {
  test('the median rule: below the completed trials\' median at the same epoch stops; never before the grace epochs, with too few trials or at the last epoch', () => {
    const rule = { minTrials: 3, graceEpochs: 1 };
    const curves = [[0.5, 0.6, 0.7], [0.6, 0.7, 0.8], [0.7, 0.8, 0.9]];
    expect(stopVerdict(rule, curves, 1, 3, 0.55)).toEqual({ stop: true, median: 0.6 });
    expect(stopVerdict(rule, curves, 1, 3, 0.6)).toEqual({ stop: false, median: 0.6 });
    expect(stopVerdict(rule, curves, 2, 3, 0.65)).toEqual({ stop: true, median: 0.7 });
    expect(stopVerdict(rule, curves, 3, 3, 0.1)).toEqual({ stop: false });
    expect(stopVerdict(rule, curves.slice(0, 2), 1, 3, 0.1)).toEqual({ stop: false });
    expect(stopVerdict({ minTrials: 1, graceEpochs: 2 }, curves, 1, 3, 0.1)).toEqual({ stop: false });
    expect(stopVerdict(false, curves, 1, 3, 0.1)).toEqual({ stop: false });
    expect(stopVerdict({ minTrials: 2, graceEpochs: 1 }, [[0.5, 0.6], [0.7, 0.8]], 1, 2, 0.55)).toEqual({ stop: true, median: 0.6 });
  });

  test('a poor trial is stopped after its first epoch and recorded as stopped early; it is not chosen', async () => {
    const calls = spyTraining();
    const r = await tune(base('early', { search: 'grid', space: { learningRate: [3e-3, 2e-3, 1e-6] }, epochs: 2, earlyStopping: { minTrials: 2 }, retrain: false }));
    const [a, b, poor] = r.trials;
    expect([a.status, b.status]).toEqual(['completed', 'completed']);
    expect(a.epochs).toBe(2);
    expect(poor.status).toBe('stopped-early');
    expect(poor.epochs).toBe(1);
    expect(poor.curve).toHaveLength(1);
    expect(poor.validationAccuracy!).toBeLessThan(poor.stoppedBelowMedian!);
    expect(poor.stoppedBelowMedian).toBeCloseTo((a.curve[0] + b.curve[0]) / 2, 10);
    expect(r.best!.trial).not.toBe(3);
    expect(calls).toHaveLength(3);
    expect(readTrials(r.dir).trials[2].status).toBe('stopped-early');
  });
});

describe('convscope tune', () => {
  test('prints the table and files, says trials run one at a time; Ctrl-C exits 130 keeping finished trials, and a rerun resumes', async () => {
    const dir = path.join(tmp, 'cli');
    const spaceFile = path.join(tmp, 'space.json');
    fs.writeFileSync(spaceFile, JSON.stringify({ learningRate: [1e-3, 3e-3, 5e-4] }));
    const args = [cli, 'tune', '--space', spaceFile, '--search', 'grid', '--limit', '3000', '--test-limit', '200', '--dir', dir, '--no-retrain'];
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d) => { stderr += String(d); });
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    while (!/trial 2\/3:/.test(stderr)) {
      if (child.exitCode !== null) throw new Error(`tune exited early: ${stderr}`);
      await new Promise((r) => setTimeout(r, 50));
    }
    child.kill('SIGINT');
    expect(await exited).toBe(130);
    expect(stderr).toMatch(/tune: 3 trials \(grid search\), run one at a time on cpu/);
    expect(stderr).toMatch(/rerun the same command to resume/);
    expect(stderr).toMatch(/convscope: the search was stopped with [12] of 3 trials finished/);
    const finished = readTrials(dir).trials.length;
    expect(finished).toBeGreaterThanOrEqual(1);

    const rerun = spawnSync(process.execPath, args, { encoding: 'utf8' });
    expect(rerun.status).toBe(0);
    expect(rerun.stderr).toMatch(/trial 1\/3: finished by an earlier run \(completed/);
    expect(rerun.stdout).toMatch(new RegExp(`resumed: ${finished} trial\\(s\\) were finished by an earlier run`));
    expect(rerun.stdout).toMatch(/best: trial \d, chosen on validation accuracy \d+\.\d\d% \(300 held-out training images/);
    expect(rerun.stdout).toContain(`wrote ${path.join(dir, 'trials.json')}, ${path.join(dir, 'tune.json')}`);
    expect(readTrials(dir).trials).toHaveLength(3);

    const bad = spawnSync(process.execPath, [cli, 'tune', '--space', path.join(tmp, 'missing.json'), '--dir', dir], { encoding: 'utf8' });
    expect(bad.status).toBe(1);
    expect(bad.stderr).toMatch(/convscope: .*missing\.json: ENOENT/);
  });
});
