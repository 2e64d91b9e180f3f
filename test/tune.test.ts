// tune(): the best trial is chosen on validation data only, a resumed study trains only its missing
// trials, a different search in the same study is refused before any work, bad options fail before
// any work with messages naming the value, the grid, the median pruner, and the `convscope tune`
// command (Ctrl-C, resume). Every search runs on Optuna and its SQLite study, for real.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { spawn, spawnSync } from 'child_process';
import type { InMemoryDataset } from '../src/train/options';
import { tune } from '../src/tune/tune';
import type { TuneOptions } from '../src/tune/options';
import type { TuneEvent } from '../src/tune/trial';
import { checkSpace, gridTrials } from '../src/tune/space';
import { rejected } from './helpers';
import { searchOptions, spyTraining, sqliteUrl, studyTrials, tinyData } from './tune-helpers';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'convscope-tune-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));
afterEach(() => jest.restoreAllMocks());
const cli = path.join(__dirname, '..', 'dist', 'src', 'cli', 'main.js');

const base = (dir: string, extra: Partial<TuneOptions> = {}): TuneOptions => searchOptions(tmp, dir, extra);
const readJson = (file: string) => JSON.parse(fs.readFileSync(file, 'utf8'));

describe('selection', () => {
  test('the best trial is chosen on validation accuracy; no trial sees a test image and the test set is used once, by the retrained best', async () => {
    const data = tinyData({ scrambledTest: true });
    const calls = spyTraining();
    const r = await tune(base('select', { dataset: data, sampler: 'grid', space: { learningRate: [1e-6, 3e-3] }, pruner: 'none' }));
    const slow = r.trials.find((t) => t.params.learningRate === 1e-6)!;
    const good = r.trials.find((t) => t.params.learningRate === 3e-3)!;
    // lr 1e-6 barely moves from its initial weights; 3e-3 learns the task.
    expect(good.validationAccuracy!).toBeGreaterThan(slow.validationAccuracy! + 0.2);
    expect(r.best!.trial).toBe(good.trial);
    // The retrained best learned the true labels, so the scrambled test labels give it a poor score:
    // the figure comes from the test images, and had it driven the choice, the slow trial would have won.
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
    // The study holds validation figures only; the retraining's test figures are the study's own attribute.
    const stored = await studyTrials(sqliteUrl(r.dir), 'select');
    expect(stored.map((t) => t.state)).toEqual(['complete', 'complete']);
    for (const t of stored) expect(Object.keys(t.userAttrs).filter((k) => /test/i.test(k))).toEqual([]);
    expect(stored.find((t) => t.number === good.trial)!.value).toBe(good.validationAccuracy);
    const json = readJson(r.files.json);
    expect(json.best.trial).toBe(good.trial);
    expect(json.best.testAccuracy).toBe(r.best!.testAccuracy);
    expect(json.study).toEqual({ name: 'select', storage: path.join(r.dir, 'study.db') });
    expect(fs.existsSync(r.files.model!)).toBe(true);
    expect(fs.readFileSync(r.files.chart!).subarray(1, 4).toString()).toBe('PNG');
    expect(r.files.study).toBe(path.join(r.dir, 'study.db'));
  });
});

describe('resume', () => {
  const options = () => base('resume', { sampler: 'grid', space: { learningRate: [3e-3, 1e-3, 2e-3] }, epochs: 2, pruner: 'none', retrain: false });

  test('an abort mid-trial keeps the finished trials; the trial under way is failed and run again; a rerun trains only the missing trials', async () => {
    const controller = new AbortController();
    const first = spyTraining();
    let starts = 0;
    // Stop the second trial after its first epoch: mid-trial, with the first one finished.
    const err = await rejected(tune({
      ...options(), signal: controller.signal,
      onTrial: (e) => {
        if (e.type === 'trial-start') ++starts;
        if (e.type === 'epoch' && starts === 2) controller.abort();
      },
    }));
    expect(err.name).toBe('AbortError');
    expect(err.message).toMatch(/stopped with 1 of 3 trials finished; they are kept in study "resume" in .*study\.db, .*resumes it/);
    expect(first).toHaveLength(2);
    const dir = options().dir;
    const stored = await studyTrials(sqliteUrl(dir), 'resume');
    // Trial 1 failed (stopped), with a copy waiting; trial 2 was never started.
    expect(stored.map((t) => [t.number, t.state])).toEqual([[0, 'complete'], [1, 'fail'], [2, 'waiting'], [3, 'waiting']]);
    expect(stored[1].userAttrs.reason).toMatch(/stopped/);
    expect(stored[3].retryOf).toBe(1);
    expect(stored[3].params).toEqual(stored[1].params);
    expect(fs.existsSync(path.join(dir, 'tune.json'))).toBe(false);

    jest.restoreAllMocks();
    const second = spyTraining();
    const events: TuneEvent[] = [];
    const r = await tune({ ...options(), onTrial: (e) => events.push(e) });
    expect(r.resumed).toBe(1);
    // Only the missing trials: the one never started, and the stopped one again with its values.
    expect(second).toHaveLength(2);
    expect(second[1].learningRate).toBe(stored[1].params.learningRate);
    expect(events.filter((e) => e.type === 'trial-start').map((e) => (e as { trial: number }).trial)).toEqual([2, 3]);
    expect(events.filter((e) => e.type === 'trial-skipped').map((e) => (e as { result: { trial: number } }).result.trial)).toEqual([0]);
    expect(r.trials.map((t) => [t.trial, t.status])).toEqual([[0, 'completed'], [1, 'failed'], [2, 'completed'], [3, 'completed']]);
    expect(r.trials[3].retryOf).toBe(1);
    // Every grid point has exactly one outcome.
    const outcomes = r.trials.filter((t) => t.status === 'completed').map((t) => t.params.learningRate).sort();
    expect(outcomes).toEqual([1e-3, 2e-3, 3e-3]);
    // Trial 0 is the stored one, not a retraining (its timing would differ).
    expect(r.trials[0].seconds).toBe(stored[0].userAttrs.seconds);

    // Run again: nothing left to train.
    jest.restoreAllMocks();
    const third = spyTraining();
    expect((await tune(options())).resumed).toBe(3);
    expect(third).toHaveLength(0);
  });

  test('a different search in the same study is an error naming what differs, before any training', async () => {
    const options2 = options();
    if (!fs.existsSync(path.join(options2.dir, 'study.db'))) await tune(options2);
    const calls = spyTraining();
    const err = await rejected(tune({ ...options2, epochs: 3 }));
    expect(err.message).toMatch(/study "resume" in .*study\.db holds a different search \(options that differ: epochs: 2 there, 3 now\)/);
    const space = await rejected(tune({ ...options2, space: { learningRate: [3e-3] } }));
    expect(space.message).toMatch(/options that differ: .*space/);
    const sampler = await rejected(tune({ ...options2, sampler: 'random', trials: 3 }));
    expect(sampler.message).toMatch(/options that differ: .*sampler\.kind: "grid" there, "random" now/);
    const other = { ...tinyData(), train: { ...tinyData().train, labels: tinyData().train.labels.slice().reverse() } };
    const data = await rejected(tune({ ...options2, dataset: other }));
    expect(data.message).toMatch(/different images: data\.sha256: "[0-9a-f]+\.\.\. there, "[0-9a-f]+\.\.\. now\)/);
    expect(calls).toHaveLength(0);
  });
});

describe('options', () => {
  const bad: [string, Partial<TuneOptions> & Record<string, unknown>, RegExp][] = [
    ['an unknown option', { learningrate: 1e-3 }, /Unknown option "learningrate" in tune options; expected one of dir, space, sampler, /],
    ['the search option of before Optuna', { search: 'random' }, /no search option \(tune runs on Optuna now: use sampler \('tpe', 'random', 'grid' or 'cmaes'\)\) for search/],
    ['the earlyStopping option of before Optuna', { earlyStopping: false }, /no earlyStopping option \(tune runs on Optuna now: use pruner/],
    ['an unknown sampler', { sampler: 'bayes' as never }, /Expected one of tpe, random, grid, cmaes for sampler but received "bayes"/],
    ['an unknown pruner', { pruner: 'patient' as never }, /Expected one of median, successive-halving, hyperband, none for pruner but received "patient"/],
    ['an unknown hyperparameter', { space: { lr: [1e-3] } as never }, /Unknown option "lr" in space; expected one of learningRate, batchSize, /],
    ['an empty space', { space: {} }, /Expected at least one hyperparameter in space .* but received an empty space/],
    ['an empty list', { space: { batchSize: [] } }, /Expected a non-empty list of values for space\.batchSize but received an array of length 0/],
    ['a single value', { space: { batchSize: 64 as never } }, /Expected a list of values or a range \{ min, max, log\? \} for space\.batchSize but received 64 of type number \(wrap/],
    ['a value out of range', { space: { dropout: [0.2, 1.5] } }, /Expected a number in \[0, 1\) for space\.dropout\[1\] but received 1\.5/],
    ['a repeated value', { space: { batchSize: [64, 64] } }, /Expected distinct values for space\.batchSize but space\.batchSize\[1\] \(64\) repeats/],
    ['a range with min above max', { space: { learningRate: { min: 1e-2, max: 1e-4 } } }, /Expected a number above space\.learningRate\.min \(0\.01\) for space\.learningRate\.max but received 0\.0001/],
    ['a log range from 0', { space: { weightDecay: { min: 0, max: 1e-3, log: true } } }, /a log range cannot include 0.* for space\.weightDecay\.min but received 0 of type number/],
    ['an unknown range key', { space: { learningRate: { min: 1e-4, max: 1e-2, step: 2 } as never } }, /Unknown option "step" in space\.learningRate; expected one of min, max, log/],
    ['a range of schedules', { space: { schedule: { min: 0, max: 1 } as never } }, /Expected a list of values \(this hyperparameter has no range\) for space\.schedule/],
    ['an unknown schedule', { space: { schedule: ['cosine', 'linear'] as never } }, /Expected one of constant, cosine, one-cycle for space\.schedule\[1\] but received "linear"/],
    ['a range in a grid', { sampler: 'grid', space: { learningRate: { min: 1e-4, max: 1e-2 } } }, /ranges are for the other samplers\) for space\.learningRate/],
    ['trials in a grid', { sampler: 'grid', trials: 5, space: { batchSize: [32, 64] } }, /no trials option for sampler 'grid' \(it runs all 2 combinations of space\) for trials but received 5/],
    ['more trials than a list-only space holds', { trials: 3, space: { batchSize: [32, 64] } }, /Expected at most 2 trials .* for trials but received 3/],
    ['cmaes on fewer than two ranges', { sampler: 'cmaes', space: { learningRate: { min: 1e-4, max: 1e-2 }, batchSize: [32, 64] } }, /Expected at least two ranges for sampler 'cmaes'/],
    ['startupTrials for the random sampler', { sampler: 'random', startupTrials: 3 }, /no startupTrials option for sampler 'random'/],
    ['a searched key also given as base', { learningRate: 1e-3, space: { learningRate: [1e-3, 3e-3] } }, /no learningRate option \(space\.learningRate searches it\) for learningRate .*drop one of the two/],
    ['filter counts not matching the conv layers', { space: { filters: [[4, 8]] } }, /a trial with filters 4-8: Expected one filter count per conv layer of spec \(1\) for space\.filters value/],
    ['a kernel too large for the image at a range\'s end', { space: { kernelSize: { min: 3, max: 60 } } }, /a trial with kernel 60: Expected .*kernelSize/],
    ['a bad pruning setting', { pruning: { minTrials: 0 } }, /integer >= 1 for pruning\.minTrials but received 0/],
    ['validation not below limit', { limit: 400, validation: 400 }, /Expected fewer than limit \(400\) images, so that some are left to train on for validation but received 400/],
    ['a bad base option', { optimizer: 'adagrad' as never }, /a trial with .*: Expected one of adam, adamw, sgd for optimizer but received "adagrad"/],
    ['a storage that is not a URL', { storage: 'runs/x.db' }, /Expected an SQLAlchemy URL Optuna accepts, such as sqlite:\/\/\/runs\/tune\/study\.db or postgresql:\/\/user@host\/db for storage but received "runs\/x\.db"/],
    ['no workers', { workers: 0 }, /Expected positive integer for workers but received 0|integer in \[1, 256\] for workers/],
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

describe('the grid', () => {
  test('is the cartesian product of the lists', () => {
    const trials = gridTrials(checkSpace({ schedule: ['constant', 'cosine'], learningRate: [1e-3, 3e-3], batchSize: [32, 64, 128] }, 'grid'));
    expect(trials).toHaveLength(12);
    expect(new Set(trials.map((t) => JSON.stringify(t))).size).toBe(12);
    for (const lr of [1e-3, 3e-3]) for (const bs of [32, 64, 128]) for (const s of ['constant', 'cosine']) {
      expect(trials).toContainEqual({ learningRate: lr, batchSize: bs, schedule: s });
    }
  });
});

describe('the median pruner', () => {
  test('a poor trial is pruned after its first epoch, recorded as pruned with the median it fell below; good ones run all their epochs; it is not chosen', async () => {
    const calls = spyTraining();
    // Seed 3 puts Optuna's grid in the order 2e-3, 3e-3, 1e-6 (checked below): the poor trial comes
    // after two completed ones, whose median it is compared with.
    const r = await tune(base('median', { sampler: 'grid', space: { learningRate: [3e-3, 2e-3, 1e-6] }, epochs: 2, pruning: { minTrials: 2 }, retrain: false }));
    expect(r.trials.map((t) => t.params.learningRate)).toEqual([2e-3, 3e-3, 1e-6]);
    const [a, b, poor] = r.trials;
    expect([a.status, b.status]).toEqual(['completed', 'completed']);
    expect([a.epochs, b.epochs]).toEqual([2, 2]);
    expect(poor.status).toBe('pruned');
    expect(poor.epochs).toBe(1);
    expect(poor.curve).toHaveLength(1);
    expect(poor.validationAccuracy!).toBeLessThan(poor.prunedBelowMedian!);
    expect(poor.prunedBelowMedian).toBeCloseTo((a.curve[0] + b.curve[0]) / 2, 10);
    expect(poor.reason).toMatch(/below the median .* of 2 completed trial\(s\) at epoch 1/);
    expect(r.best!.trial).not.toBe(poor.trial);
    expect(calls).toHaveLength(3);
    const stored = await studyTrials(sqliteUrl(r.dir), 'median');
    expect(stored.map((t) => t.state)).toEqual(['complete', 'complete', 'pruned']);
    // Optuna holds each epoch's validation accuracy as the trial's intermediate values.
    expect(stored[0].intermediate.map(([epoch]) => epoch)).toEqual([1, 2]);
    expect(stored[2].intermediate).toEqual([[1, poor.curve[0]]]);
  });
});

describe('convscope tune', () => {
  test('prints the table and files; Ctrl-C exits 130 keeping finished trials, and a rerun resumes the study', async () => {
    const dir = path.join(tmp, 'cli');
    const spaceFile = path.join(tmp, 'space.json');
    fs.writeFileSync(spaceFile, JSON.stringify({ learningRate: [1e-3, 3e-3, 5e-4] }));
    const args = [cli, 'tune', '--space', spaceFile, '--sampler', 'grid', '--limit', '3000', '--test-limit', '200', '--dir', dir, '--no-retrain'];
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d) => { stderr += String(d); });
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    while (!/trial 1: /.test(stderr)) {
      if (child.exitCode !== null) throw new Error(`tune exited early: ${stderr}`);
      await new Promise((r) => setTimeout(r, 50));
    }
    child.kill('SIGINT');
    expect(await exited).toBe(130);
    expect(stderr).toMatch(/tune: 3 trials \(grid sampler, median pruner\) in study "cli" in .*cli\/study\.db, on cpu: 1 worker\(s\)/);
    expect(stderr).toMatch(/rerun the same command to resume/);
    expect(stderr).toMatch(/convscope: the search was stopped with [12] of 3 trials finished/);
    const finished = (await studyTrials(sqliteUrl(dir), 'cli')).filter((t) => t.state === 'complete').length;
    expect(finished).toBeGreaterThanOrEqual(1);

    const rerun = spawnSync(process.execPath, args, { encoding: 'utf8' });
    expect(rerun.status).toBe(0);
    expect(rerun.stderr).toMatch(/trial 0: finished by an earlier run \(completed/);
    expect(rerun.stdout).toMatch(new RegExp(`resumed: ${finished} trial\\(s\\) were finished by an earlier run`));
    expect(rerun.stdout).toMatch(/best: trial \d, chosen on validation accuracy \d+\.\d\d% \(300 held-out training images/);
    expect(rerun.stdout).toContain(`wrote ${path.join(dir, 'study.db')}, ${path.join(dir, 'tune.json')}`);
    expect((await studyTrials(sqliteUrl(dir), 'cli')).filter((t) => t.state === 'complete')).toHaveLength(3);

    const bad = spawnSync(process.execPath, [cli, 'tune', '--space', path.join(tmp, 'missing.json'), '--dir', dir], { encoding: 'utf8' });
    expect(bad.status).toBe(1);
    expect(bad.stderr).toMatch(/convscope: .*missing\.json: ENOENT/);
  });
});
