// One study shared by worker processes through PostgreSQL, for real: a throwaway cluster (Debian's
// postgresql, installed by scripts/setup-tests.sh) in a temporary folder on 127.0.0.1, created by
// initdb as the postgres user (initdb refuses root), stopped and removed at the end. Two worker
// processes run a grid: every grid point exactly once, both workers contribute. A `convscope tune
// --worker` started separately (as on another machine) joins a running search and takes trials.
import * as fs from 'fs';
import * as net from 'net';
import * as os from 'os';
import * as path from 'path';
import { spawn, spawnSync, SpawnSyncOptions } from 'child_process';
import { tune } from '../src/tune/tune';
import type { TuneOptions } from '../src/tune/options';
import { testIfInstalled } from './helpers';
import { searchOptions, studyTrials } from './tune-helpers';

const cli = path.join(__dirname, '..', 'dist', 'src', 'cli', 'main.js');

/** The newest PostgreSQL server binaries Debian installed, if any. */
function postgresBin(): string | undefined {
  const root = '/usr/lib/postgresql';
  if (!fs.existsSync(root)) return undefined;
  const versions = fs.readdirSync(root).filter((v) => fs.existsSync(path.join(root, v, 'bin', 'initdb'))).sort((a, b) => Number(b) - Number(a));
  return versions.length > 0 ? path.join(root, versions[0], 'bin') : undefined;
}

const bin = postgresBin();
const asRoot = process.getuid?.() === 0;
const testPg = testIfInstalled(bin !== undefined, 'PostgreSQL (Debian\'s postgresql package) for the shared-study tests');

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

/** Runs a PostgreSQL program as the postgres user (as root), or as ourselves. */
function pg(program: string, args: string[], options: SpawnSyncOptions = {}): string {
  const command = asRoot ? 'runuser' : path.join(bin!, program);
  const full = asRoot ? ['-u', 'postgres', '--', path.join(bin!, program), ...args] : args;
  const run = spawnSync(command, full, { encoding: 'utf8', timeout: 60000, ...options });
  if (run.status !== 0) throw new Error(`${program} ${args.join(' ')} failed (${run.status}): ${run.stdout}${run.stderr}`);
  return String(run.stdout);
}

describe('a study shared through PostgreSQL', () => {
  let cluster: string;
  let url: string;
  let tmp: string;

  beforeAll(async () => {
    if (!bin) return;
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'convscope-tune-pg-'));
    cluster = fs.mkdtempSync(path.join(os.tmpdir(), 'convscope-pg-'));
    if (asRoot) spawnSync('chown', ['postgres:postgres', cluster]);
    const port = await freePort();
    pg('initdb', ['-D', path.join(cluster, 'data'), '-A', 'trust', '-U', 'postgres', '--no-sync', '-E', 'UTF8']);
    pg('pg_ctl', ['-D', path.join(cluster, 'data'), '-l', path.join(cluster, 'log'), '-w', '-o', `-p ${port} -k ${cluster} -h 127.0.0.1 -F`, 'start']);
    pg('createdb', ['-h', '127.0.0.1', '-p', String(port), '-U', 'postgres', 'convscope']);
    url = `postgresql://postgres@127.0.0.1:${port}/convscope`;
  }, 120000);

  afterAll(() => {
    if (!bin) return;
    try {
      if (fs.existsSync(path.join(cluster, 'data', 'postmaster.pid'))) pg('pg_ctl', ['-D', path.join(cluster, 'data'), '-m', 'immediate', '-w', 'stop']);
    } finally {
      fs.rmSync(cluster, { recursive: true, force: true });
      fs.rmSync(tmp, { recursive: true, force: true });
    }
  }, 60000);

  const grid = { learningRate: [1e-3, 2e-3, 3e-3, 4e-3], filters: [0.5, 1] };

  testPg('two worker processes on one grid: every grid point runs exactly once, and both workers contribute', async () => {
    const options: TuneOptions = searchOptions(tmp, 'pg-grid', {
      storage: url, study: 'two-workers', sampler: 'grid', space: grid, epochs: 2, pruner: 'none', retrain: false, workers: 2,
    });
    const r = await tune(options);
    const stored = await studyTrials(url, 'two-workers');
    // Eight trials, all complete: none was run twice, none failed.
    expect(stored.map((t) => t.state)).toEqual(Array(8).fill('complete'));
    const points = stored.map((t) => `${t.params.learningRate}/${t.params.filters}`);
    expect(new Set(points).size).toBe(8);
    const workers = new Set(stored.map((t) => t.userAttrs.worker));
    expect(workers.size).toBe(2);
    expect(r.trials.map((t) => t.status)).toEqual(Array(8).fill('completed'));
    expect(r.files.study).toBe(`study "two-workers" in ${url}`);
  }, 180000);

  testPg('`convscope tune --worker` joins a running search from elsewhere and takes trials; the search ends with its whole budget', async () => {
    const options: TuneOptions = searchOptions(tmp, 'pg-join', {
      storage: url, study: 'joined', sampler: 'random', space: { learningRate: { min: 1e-3, max: 5e-3, log: true }, filters: [0.5, 1] },
      trials: 8, epochs: 2, pruner: 'none', retrain: false, dataset: 'fashion-mnist', limit: 1200, validation: 400, testLimit: 200,
    });
    let joiner: ReturnType<typeof spawn> | undefined;
    // The joiner writes straight into files, not through pipes that this (blocked) event loop reads.
    const outFile = path.join(tmp, 'joiner.out');
    const errFile = path.join(tmp, 'joiner.err');
    const read = (file: string): string => (fs.existsSync(file) ? fs.readFileSync(file, 'utf8') : '');
    const joined = new Promise<number | null>((resolve) => {
      const onTrial: TuneOptions['onTrial'] = (e) => {
        // The study exists once the first trial starts: the other worker joins then. This worker
        // then waits, inside its first trial, until the joiner has started one of its own: a joiner
        // slow to start (a loaded CI machine) would otherwise find all 8 trials taken. The trial's
        // heartbeat runs in the Optuna helper's thread, so the wait does not make it look dead.
        if (e.type !== 'trial-start' || joiner) return;
        const out = fs.openSync(outFile, 'w');
        const err = fs.openSync(errFile, 'w');
        joiner = spawn(process.execPath, [cli, 'tune', '--worker', '--storage', url, '--study', 'joined', '--threads', '1', '--heartbeat', '1'],
          { stdio: ['ignore', out, err] });
        fs.closeSync(out);
        fs.closeSync(err);
        joiner.on('exit', (code) => resolve(code));
        const pause = new Int32Array(new SharedArrayBuffer(4));
        const deadline = Date.now() + 120000;
        while (Date.now() < deadline && !/^trial \d+:/m.test(read(errFile))) Atomics.wait(pause, 0, 0, 200);
      };
      options.onTrial = onTrial;
    });
    const r = await tune(options);
    expect(await joined).toBe(0);
    const joinerOut = read(outFile) + read(errFile);
    expect(joinerOut).toMatch(/tune --worker: joined study "joined" in postgresql:\/\/postgres@127\.0\.0\.1:\d+\/convscope \(8 trials in its budget\)/);
    const ran = Number(/this worker finished (\d+) trial\(s\)/.exec(joinerOut)![1]);
    expect(ran).toBeGreaterThanOrEqual(1);
    const stored = await studyTrials(url, 'joined');
    expect(stored.map((t) => t.state)).toEqual(Array(8).fill('complete'));
    const byWorker = new Map<string, number>();
    for (const t of stored) byWorker.set(String(t.userAttrs.worker), (byWorker.get(String(t.userAttrs.worker)) ?? 0) + 1);
    expect(byWorker.size).toBe(2);
    expect([...byWorker.values()]).toContain(ran);
    expect(r.trials).toHaveLength(8);
  }, 180000);
});
