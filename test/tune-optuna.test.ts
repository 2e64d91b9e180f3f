// tune on Optuna, for real (its samplers, pruners and SQLite storage): seeded samplers reproduce,
// a killed worker's trial is failed and run again while the search completes its budget, a search
// killed outright resumes with only its missing trials, bad input (an unreachable storage, a study
// another program made) fails before any training, and the helper process: its errors reach the
// caller, and a helper that dies mid-trial never hangs the search.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { spawn, spawnSync } from 'child_process';
import { tune } from '../src/tune/tune';
import type { TuneOptions } from '../src/tune/options';
import type { TuneEvent } from '../src/tune/trial';
import { HelperExitedError, HelperRequestError, JsonLinesProcess } from '../src/util/json-lines-process';
import { projectPython } from '../src/util/project-python';
import { rejected } from './helpers';
import { childPids, helperPids, searchOptions, spyTraining, sqliteUrl, studyTrials } from './tune-helpers';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'convscope-tune-optuna-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));
afterEach(() => jest.restoreAllMocks());
const cli = path.join(__dirname, '..', 'dist', 'src', 'cli', 'main.js');
const base = (dir: string, extra: Partial<TuneOptions> = {}): TuneOptions => searchOptions(tmp, dir, extra);

/** A range space: the random sampler draws new values for every trial. */
const RANGES = { learningRate: { min: 1e-4, max: 1e-2, log: true }, dropout: { min: 0, max: 0.5 }, filters: [0.5, 1] };

describe('samplers reproduce for a seed', () => {
  test('random: the same seed draws the same values for every trial, another seed others, all in range', async () => {
    const run = (dir: string, seed: number) => tune(base(dir, { sampler: 'random', space: RANGES, trials: 3, seed, pruner: 'none', retrain: false }));
    const [a, b, c] = [await run('random-a', 7), await run('random-b', 7), await run('random-c', 8)];
    const params = (r: Awaited<ReturnType<typeof tune>>) => r.trials.map((t) => t.params);
    expect(params(a)).toHaveLength(3);
    expect(params(b)).toEqual(params(a));
    expect(params(c)).not.toEqual(params(a));
    for (const p of params(a)) {
      expect(p.learningRate!).toBeGreaterThanOrEqual(1e-4);
      expect(p.learningRate!).toBeLessThanOrEqual(1e-2);
      expect(p.dropout!).toBeLessThanOrEqual(0.5);
      expect([0.5, 1]).toContain(p.filters);
    }
    // Three draws, three different learning rates: the trials do not repeat one stream.
    expect(new Set(params(a).map((p) => p.learningRate)).size).toBe(3);
  });

  test('grid: every combination exactly once, in the same order for the same seed', async () => {
    const space = { learningRate: [1e-3, 3e-3], filters: [0.5, 1] };
    const run = (dir: string, seed: number) => tune(base(dir, { sampler: 'grid', space, seed, pruner: 'none', retrain: false }));
    const [a, b, c] = [await run('grid-a', 5), await run('grid-b', 5), await run('grid-c', 6)];
    const order = (r: Awaited<ReturnType<typeof tune>>) => r.trials.map((t) => `${t.params.learningRate}/${t.params.filters}`);
    expect([...order(a)].sort()).toEqual(['0.001/0.5', '0.001/1', '0.003/0.5', '0.003/1']);
    expect(order(b)).toEqual(order(a));
    expect([...order(c)].sort()).toEqual([...order(a)].sort());
  });
});

describe('pruners', () => {
  test.each(['successive-halving', 'hyperband'] as const)('%s runs on the study: every trial ends completed or pruned, with its epochs reported', async (pruner) => {
    const r = await tune(base(`pruner-${pruner}`, { sampler: 'tpe', space: RANGES, trials: 4, startupTrials: 2, epochs: 2, pruner, retrain: false }));
    expect(r.trials).toHaveLength(4);
    for (const t of r.trials) {
      expect(['completed', 'pruned']).toContain(t.status);
      expect(t.curve).toHaveLength(t.status === 'completed' ? 2 : t.epochs);
    }
    const stored = await studyTrials(sqliteUrl(r.dir), `pruner-${pruner}`);
    expect(stored.every((t) => t.intermediate.length >= 1)).toBe(true);
  });
});

describe('workers', () => {
  test('a killed worker\'s trial is marked failed and run again by the other worker; the budget is completed', async () => {
    const events: TuneEvent[] = [];
    let victim: string | undefined;
    const killed: number[] = [];
    const r = await tune(base('killed-worker', {
      sampler: 'grid', space: { learningRate: [1e-3, 2e-3, 3e-3, 4e-3], filters: [0.5, 1] }, epochs: 3, pruner: 'none', retrain: false, workers: 2,
      onTrial: (e) => {
        events.push(e);
        // Kill the first worker that starts a trial, in that trial (three epochs: the kill lands long
        // before it ends, however late this event arrives): its helper first (no heartbeat any more,
        // no goodbye), then the worker process itself.
        if (e.type === 'trial-start' && victim === undefined) {
          victim = e.worker;
          const pid = Number(e.worker.split(':').pop());
          for (const helper of childPids(pid)) { process.kill(helper, 'SIGKILL'); killed.push(helper); }
          process.kill(pid, 'SIGKILL');
          killed.push(pid);
        }
      },
    }));
    expect(killed.length).toBeGreaterThanOrEqual(2);
    expect(r.lostWorkers).toHaveLength(1);
    expect(r.lostWorkers[0]).toMatch(/killed by SIGKILL/);
    expect(events.some((e) => e.type === 'worker-lost')).toBe(true);
    const failed = r.trials.filter((t) => t.status === 'failed');
    expect(failed).toHaveLength(1);
    expect(failed[0].worker).toBe(victim);
    expect(failed[0].reason).toMatch(/no heartbeat for 3 s/);
    // Its heartbeat stopped; the other worker failed it and ran its copy.
    const retry = r.trials.find((t) => t.retryOf === failed[0].trial)!;
    expect(retry.status).toBe('completed');
    expect(retry.params).toEqual(failed[0].params);
    expect(retry.worker).not.toBe(victim);
    // The budget: every grid point completed exactly once.
    const completed = r.trials.filter((t) => t.status === 'completed').map((t) => `${t.params.learningRate}/${t.params.filters}`);
    expect(completed).toHaveLength(8);
    expect(new Set(completed).size).toBe(8);
    const stored = await studyTrials(sqliteUrl(r.dir), 'killed-worker');
    expect(stored.filter((t) => t.state === 'fail')).toHaveLength(1);
    expect(stored.filter((t) => t.state === 'running' || t.state === 'waiting')).toHaveLength(0);
  });

  test('an abort stops every worker process: their trials under way are failed and run again on resume, which trains only the missing trials', async () => {
    const options = base('abort-workers', { sampler: 'grid', space: { learningRate: [1e-3, 2e-3, 3e-3], filters: [0.5, 1] }, epochs: 2, pruner: 'none', retrain: false, workers: 2 });
    const controller = new AbortController();
    const err = await rejected(tune({ ...options, signal: controller.signal, onTrial: (e) => { if (e.type === 'epoch') controller.abort(); } }));
    expect(`${err.name}: ${err.message}`).toMatch(/^AbortError: /);
    expect(err.message).toMatch(/the search was stopped with \d of 6 trials finished; they are kept in study "abort-workers"/);
    const stopped = await studyTrials(sqliteUrl(options.dir), 'abort-workers');
    expect(stopped.filter((t) => t.state === 'running')).toHaveLength(0);
    const failed = stopped.filter((t) => t.state === 'fail');
    expect(failed.length).toBeGreaterThanOrEqual(1);
    for (const t of failed) expect(t.userAttrs.reason).toMatch(/stopped/);
    const done = stopped.filter((t) => t.state === 'complete').length;
    const events: TuneEvent[] = [];
    const r = await tune({ ...options, onTrial: (e) => events.push(e) });
    expect(r.resumed).toBe(done);
    expect(events.filter((e) => e.type === 'trial-start')).toHaveLength(6 - done);
    const completed = r.trials.filter((t) => t.status === 'completed').map((t) => `${t.params.learningRate}/${t.params.filters}`);
    expect(completed.sort()).toEqual(['0.001/0.5', '0.001/1', '0.002/0.5', '0.002/1', '0.003/0.5', '0.003/1']);
  });

  test('a search killed outright (SIGKILL to its process group) resumes: the trial it left running is failed and run again, and only the missing trials train', async () => {
    const dir = path.join(tmp, 'killed-search');
    const spaceFile = path.join(tmp, 'killed-space.json');
    fs.writeFileSync(spaceFile, JSON.stringify({ learningRate: [1e-3, 2e-3, 3e-3] }));
    const args = [cli, 'tune', '--space', spaceFile, '--sampler', 'grid', '--limit', '1200', '--test-limit', '100', '--epochs', '2',
      '--threads', '1', '--dir', dir, '--no-retrain', '--pruner', 'none'];
    // Its own process group, so that the kill reaches the search and its Optuna helper at once.
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    let stderr = '';
    child.stderr.on('data', (d) => { stderr += String(d); });
    const exited = new Promise<void>((resolve) => child.on('exit', () => resolve()));
    while (!/trial 1, epoch 1\/2/.test(stderr)) {
      if (child.exitCode !== null) throw new Error(`tune exited early: ${stderr}`);
      await new Promise((r) => setTimeout(r, 50));
    }
    process.kill(-child.pid!, 'SIGKILL');
    await exited;
    const before = await studyTrials(sqliteUrl(dir), 'killed-search');
    expect(before.map((t) => t.state)).toEqual(['complete', 'running', 'waiting']);

    const rerun = spawnSync(process.execPath, args, { encoding: 'utf8' });
    expect(rerun.status).toBe(0);
    expect(rerun.stderr).toMatch(/trial\(s\) 1 were left running by a search that was killed: marked failed, and run again/);
    // Trained now: trial 2 (never started) and trial 3 (trial 1 again); trial 0 is not trained again.
    expect([...rerun.stderr.matchAll(/^trial (\d+): lr/gm)].map((m) => Number(m[1]))).toEqual([2, 3]);
    expect(rerun.stdout).toMatch(/resumed: 1 trial\(s\) were finished by an earlier run/);
    const after = await studyTrials(sqliteUrl(dir), 'killed-search');
    expect(after.map((t) => t.state)).toEqual(['complete', 'fail', 'complete', 'complete']);
    expect(after[1].userAttrs.reason).toMatch(/left running by a search that was killed/);
    expect(after[3].retryOf).toBe(1);
    expect(after[3].params).toEqual(after[1].params);
  });
});

describe('bad input fails before any training', () => {
  test('an unreachable storage URL', async () => {
    const calls = spyTraining();
    const options = base('unreachable', { storage: 'postgresql://nobody@127.0.0.1:1/none', space: { learningRate: [1e-3] } });
    const err = await rejected(tune(options));
    expect(err.message).toMatch(/^Optuna \(open\): cannot open the Optuna storage postgresql:\/\/nobody@127\.0\.0\.1:1\/none: OperationalError: .*(refused|connect)/);
    expect(calls).toHaveLength(0);
    expect(fs.existsSync(options.dir)).toBe(false);
  });

  test('a password in the storage URL is not in the message', async () => {
    const err = await rejected(tune(base('password', { storage: 'postgresql://me:secret@127.0.0.1:1/none', space: { learningRate: [1e-3] } })));
    expect(err.message).toContain('postgresql://me:***@127.0.0.1:1/none');
    expect(err.message).not.toContain('secret');
  });

  test('a study another program created, with other parameters', async () => {
    const file = path.join(tmp, 'other-program.db');
    const made = spawnSync(projectPython(), ['-c', [
      'import optuna',
      `s = optuna.create_study(storage="sqlite:///${file}", study_name="theirs")`,
      's.optimize(lambda t: t.suggest_float("x", 0, 1) + t.suggest_int("y", 0, 3), n_trials=2)',
    ].join('\n')], { encoding: 'utf8' });
    expect(made.status).toBe(0);
    const calls = spyTraining();
    const err = await rejected(tune(base('theirs', { storage: `sqlite:///${file}`, study: 'theirs', space: { learningRate: [1e-3, 3e-3] } })));
    expect(err.message).toMatch(new RegExp(`^study "theirs" in ${file} was not created by convscope tune \\(it has no convscope search definition; ` +
      'its 2 trial\\(s\\) search x, y; this search: learningRate\\)\\. Give another study name'));
    expect(calls).toHaveLength(0);
  });

  test('a study whose convscope attribute was edited by hand is refused, naming the field', async () => {
    const options = base('edited', { sampler: 'grid', space: { learningRate: [1e-3] }, pruner: 'none', retrain: false });
    await tune(options);
    const file = path.join(options.dir, 'study.db');
    const edited = spawnSync(projectPython(), ['-c', [
      'import optuna',
      `s = optuna.load_study(storage="sqlite:///${file}", study_name="edited")`,
      'a = s.user_attrs["convscope"]; a["definition"]["trials"] = "many"; s.set_user_attr("convscope", a)',
    ].join('\n')], { encoding: 'utf8' });
    expect(edited.status).toBe(0);
    const err = await rejected(tune(options));
    expect(err.message).toMatch(/study "edited" in .*study\.db has a convscope attribute this version cannot use: Expected positive integer for convscope\.definition\.trials but received "many"/);
  });

  test('a folder of convscope before Optuna (trials.json) is refused, saying why', async () => {
    const dir = path.join(tmp, 'old-folder');
    fs.mkdirSync(dir);
    fs.writeFileSync(path.join(dir, 'trials.json'), JSON.stringify({ format: 'convscope-tune-trials', version: 1, trials: [] }));
    const err = await rejected(tune({ ...base('old-folder'), space: { learningRate: [1e-3] } }));
    expect(err.message).toMatch(/trials\.json is a search of convscope before tune ran on Optuna; this version cannot resume it .* Give another dir/);
  });

  test('a Python without Optuna: what to run', async () => {
    const saved = process.env.CONVSCOPE_PYTHON;
    // The project's Python without its site-packages (-S): Optuna and NumPy cannot be imported.
    const wrapper = path.join(tmp, 'python-without-optuna');
    fs.writeFileSync(wrapper, `#!/bin/sh\nexec ${projectPython()} -S -I "$@"\n`, { mode: 0o755 });
    process.env.CONVSCOPE_PYTHON = wrapper;
    try {
      const err = await rejected(tune({ ...base('no-optuna'), space: { learningRate: [1e-3] } }));
      expect(err.message).toMatch(/convscope tune needs Optuna 5\.0\.0 in the project's Python .*: run scripts\/setup\.sh .*ModuleNotFoundError: No module named '(optuna|numpy)'/);
    } finally {
      if (saved === undefined) delete process.env.CONVSCOPE_PYTHON; else process.env.CONVSCOPE_PYTHON = saved;
    }
  });
});

describe('the helper process', () => {
  const python = projectPython();

  test('a reply with ok: false rejects that request with its type and message; the next request is answered', async () => {
    const script = [
      'import json, sys',
      'print(json.dumps({"ready": True}), flush=True)',
      'for line in sys.stdin:',
      '    r = json.loads(line)',
      '    if r["op"] == "bad": print(json.dumps({"id": r["id"], "ok": False, "error": {"type": "ValueError", "message": "no such thing"}}), flush=True)',
      '    else: print(json.dumps({"id": r["id"], "ok": True, "result": r["op"]}), flush=True)',
    ].join('\n');
    const child = new JsonLinesProcess(python, ['-c', script], { name: 'the test helper' });
    await child.ready;
    const err = await rejected(child.request('bad'));
    expect(err).toBeInstanceOf(HelperRequestError);
    expect((err as HelperRequestError).type).toBe('ValueError');
    expect(err.message).toBe('no such thing');
    expect(await child.request('good')).toBe('good');
    await child.close();
  });

  test('a helper that dies rejects what waits on it, with the end of its stderr, and every later request', async () => {
    const script = 'import json, sys\nprint(json.dumps({"ready": True}), flush=True)\nsys.stdin.readline()\nsys.stderr.write("Traceback: it broke\\n")\nsys.exit(3)';
    const child = new JsonLinesProcess(python, ['-c', script], { name: 'the test helper' });
    await child.ready;
    const err = await rejected(child.request('anything'));
    expect(err).toBeInstanceOf(HelperExitedError);
    expect(err.message).toMatch(/the test helper \(.*pid \d+\) exited with code 3; the end of its stderr:\nTraceback: it broke/);
    expect((await rejected(child.request('more'))).message).toBe(err.message);
  });

  test('a helper that never answers is killed after the request timeout', async () => {
    const script = 'import json, sys, time\nprint(json.dumps({"ready": True}), flush=True)\ntime.sleep(60)';
    const child = new JsonLinesProcess(python, ['-c', script], { name: 'the test helper', requestTimeoutMs: 500 });
    await child.ready;
    const started = Date.now();
    expect((await rejected(child.request('slow'))).message).toMatch(/the test helper did not answer slow within 0\.5 s/);
    expect(Date.now() - started).toBeLessThan(5000);
    await child.close();
  });

  test('the Optuna helper killed mid-trial: the search rejects with a clear error at once, never hangs', async () => {
    let killed = false;
    const started = Date.now();
    const err = await rejected(tune(base('helper-killed', {
      sampler: 'grid', space: { learningRate: [1e-3, 2e-3] }, epochs: 3, pruner: 'none', retrain: false,
      onTrial: (e) => {
        if (e.type === 'trial-start' && !killed) {
          killed = true;
          for (const pid of helperPids(process.pid)) process.kill(pid, 'SIGKILL');
        }
      },
    })));
    expect(killed).toBe(true);
    expect(err.message).toMatch(/the Optuna helper \(.*python.*, pid \d+\) exited on signal SIGKILL/);
    expect(Date.now() - started).toBeLessThan(60000);
  });
});
