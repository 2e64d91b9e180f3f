// Issue 34 #8-#13: what a hostile or unlucky folder cannot make convscope do. Reports read only
// inside the folders they are given; writes go only to regular files or new paths; a run folder or a
// search folder has one user at a time; stored searches are checked field by field; a run's files
// stay in its folder; a failed run leaves no empty folder; temporary files of killed writers go.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { spawn, spawnSync } from 'child_process';
import { buildReport, createModel, defaultSpec, trainCnn } from '../src/index';
import type { TrainOptions } from '../src/index';
import type { CnnSpec } from '../src/nn/spec';
import { tune } from '../src/tune/tune';
import type { TuneOptions } from '../src/tune/options';
import { writeFileAtomic } from '../src/util/fs-atomic';
import { LOCK_FILE, lockFolder } from '../src/util/folder-lock';
import { claimRunFolder } from '../src/train/run-recorder';
import { fashion } from './fixtures';
import { rejected, skipBecause, thrown } from './helpers';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'convscope-hostile-files-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));
const tiny = (): CnnSpec => ({ conv: [{ filters: 4, kernelSize: 3, padding: 'same', pool: true }], dense: [16], dropout: 0 });
const base = (): TrainOptions => ({ dataset: fashion(), spec: tiny(), limit: 256, testLimit: 64, batchSize: 64, seed: 3, pictures: false });
const cli = path.join(__dirname, '..', 'dist', 'src', 'cli', 'main.js');

/** A process id that belonged to a process that has ended (a child run to completion). */
function deadPid(): number {
  const child = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' });
  return Number(child.stdout);
}

describe('report reads only inside the folders it is given (#8)', () => {
  const outside = path.join(tmp, 'outside');
  const secret = path.join(outside, 'secret.png');
  const SECRET = 'TOP-SECRET-CONTENTS';
  beforeAll(() => {
    fs.mkdirSync(outside);
    fs.writeFileSync(secret, SECRET);
  });
  const embedsSecret = (file: string) => fs.readFileSync(file, 'utf8').includes(Buffer.from(SECRET).toString('base64'));

  test('figure paths in results.json that lead outside (.., absolute, a symbolic link) are neither copied nor embedded, and are listed', () => {
    const dir = path.join(tmp, 'experiment');
    fs.mkdirSync(dir);
    fs.writeFileSync(path.join(dir, 'ok.png'), 'fine');
    fs.symlinkSync(secret, path.join(dir, 'link.png'));
    fs.symlinkSync(outside, path.join(dir, 'sub'));
    const figures = [
      { file: '../outside/secret.png', caption: 'up' }, { file: secret, caption: 'absolute' },
      { file: 'link.png', caption: 'link' }, { file: 'sub/secret.png', caption: 'linked folder' }, { file: 'ok.png', caption: 'ok' },
    ];
    fs.writeFileSync(path.join(dir, 'results.json'), JSON.stringify({ experiment: 'x', title: 'X', settings: {}, table: { headers: ['a'], rows: [['1']] }, figures, notes: [], data: null }));
    const out = path.join(tmp, 'report-experiment');
    const r = buildReport([], { out, experiments: [dir] });
    expect(r.assets.map((a) => path.basename(a))).toEqual(['ok.png']);
    expect(embedsSecret(r.html)).toBe(false);
    expect(r.missing.filter((m) => /lies outside .*experiment.*: not read/.test(m))).toHaveLength(3);
    expect(r.missing.some((m) => m.includes('secret.png: not found'))).toBe(true); // the absolute path, taken inside the folder
  });

  test('a run folder whose pictures, history or checkpoint are links out of it: not read', () => {
    const dir = path.join(tmp, 'run-with-links');
    fs.mkdirSync(dir);
    for (const f of ['curves.png', 'conv1-filters.png', 'history.json', 'model.pt']) fs.symlinkSync(secret, path.join(dir, f));
    const r = buildReport([dir], { out: path.join(tmp, 'report-run') });
    expect(r.assets).toEqual([]);
    expect(embedsSecret(r.html)).toBe(false);
    expect(r.missing.filter((m) => m.includes('lies outside'))).toHaveLength(4);
  });

  test('markup in an experiment\'s text (title, table, captions, notes) reaches report.html as text, never as elements', () => {
    const dir = path.join(tmp, 'experiment-markup');
    fs.mkdirSync(dir);
    fs.writeFileSync(path.join(dir, 'ok.png'), 'fine');
    const markup = (where: string) => `<script>alert("${where}")</script><img src=x onerror="alert('${where}')">`;
    fs.writeFileSync(path.join(dir, 'results.json'), JSON.stringify({
      experiment: markup('experiment'), title: markup('title'), settings: { [markup('key')]: markup('setting') },
      table: { headers: [markup('header')], rows: [[markup('cell')]] }, figures: [{ file: 'ok.png', caption: markup('caption') }], notes: [markup('note')], data: null,
    }));
    const r = buildReport([], { out: path.join(tmp, 'report-markup'), experiments: [dir] });
    const html = fs.readFileSync(r.html, 'utf8');
    expect(html).not.toMatch(/<script|<img src=x|onerror="/i);
    expect(html).toContain('&lt;script&gt;alert(&quot;title&quot;)&lt;/script&gt;');
    expect(html).toContain('&lt;script&gt;alert(&quot;cell&quot;)&lt;/script&gt;');
  });
});

describe('writes go only to regular files or new paths (#9)', () => {
  const model = () => createModel(tiny(), { seed: 1 });

  test('a symbolic link, a folder, a FIFO and a character device are refused by name and left as they were', () => {
    const target = path.join(tmp, 'target.txt');
    fs.writeFileSync(target, 'keep');
    const link = path.join(tmp, 'link-to-target');
    fs.symlinkSync(target, link);
    const nullLink = path.join(tmp, 'link-to-dev-null');
    fs.symlinkSync('/dev/null', nullLink);
    const folder = path.join(tmp, 'a-folder');
    fs.mkdirSync(folder);
    const fifo = path.join(tmp, 'a-fifo');
    spawnSync('mkfifo', [fifo]);
    const cases: [string, RegExp][] = [[link, /a symbolic link/], [nullLink, /a symbolic link/], [folder, /a folder/]];
    if (fs.existsSync(fifo)) cases.push([fifo, /a FIFO/]);
    // A character device of our own (as root: /dev/null's numbers), so a regression replaces that, not /dev/null.
    const device = path.join(tmp, 'a-device');
    if (spawnSync('mknod', [device, 'c', '1', '3']).status === 0) cases.push([device, /a character device/]);
    else skipBecause('mknod is not allowed here; the character device case did not run');
    const m = model();
    try {
      for (const [file, kind] of cases) {
        for (const write of [() => writeFileAtomic(file, 'x'), () => m.save(file), () => m.exportOnnx(file)]) {
          const err = thrown(write);
          expect([file, err.name, err.message]).toEqual([file, 'NotRegularFileError', expect.stringMatching(kind)]);
          expect(err.message).toContain(file);
        }
      }
    } finally {
      m.dispose();
    }
    expect(fs.readFileSync(target, 'utf8')).toBe('keep');
    expect(fs.lstatSync(link).isSymbolicLink()).toBe(true);
    expect(fs.lstatSync(nullLink).isSymbolicLink()).toBe(true);
    if (fs.existsSync(fifo)) expect(fs.lstatSync(fifo).isFIFO()).toBe(true);
    if (fs.existsSync(device)) expect(fs.lstatSync(device).isCharacterDevice()).toBe(true);
    expect(fs.statSync('/dev/null').isCharacterDevice()).toBe(true);
    expect(fs.readdirSync(tmp).filter((f) => f.endsWith('.tmp'))).toEqual([]);
  });

  test('a regular file is replaced and a new path created, as before', () => {
    const file = path.join(tmp, 'plain.txt');
    writeFileAtomic(file, 'one');
    writeFileAtomic(file, 'two');
    expect(fs.readFileSync(file, 'utf8')).toBe('two');
  });
});

describe('one user per run folder (#10)', () => {
  test('claimRunFolder: a taken name gets a suffix, never the same folder', () => {
    const parent = path.join(tmp, 'claims');
    const dirs = [claimRunFolder(parent, 'run'), claimRunFolder(parent, 'run'), claimRunFolder(parent, 'run')];
    expect(dirs.map((d) => path.basename(d))).toEqual(['run', 'run-2', 'run-3']);
  });

  test('two trainings given the same runDir in one process: the second is refused naming the folder, the first finishes', async () => {
    const runDir = path.join(tmp, 'shared-run');
    const first = trainCnn({ ...base(), runDir, epochs: 2 });
    const err = await rejected(trainCnn({ ...base(), runDir }));
    expect(err.name).toBe('FolderInUseError');
    expect(err.message).toContain(`${runDir} is in use by another training in this process`);
    const r = await first;
    r.model.dispose();
    expect(fs.existsSync(path.join(runDir, LOCK_FILE))).toBe(false);
    // Free again once the first has finished.
    (await trainCnn({ ...base(), runDir })).model.dispose();
  });

  test('a runDir locked by another live process is refused; a lock left by a dead one is taken over', async () => {
    const runDir = path.join(tmp, 'locked-run');
    fs.mkdirSync(runDir);
    const holder = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 60000)']);
    try {
      fs.writeFileSync(path.join(runDir, LOCK_FILE), JSON.stringify({ pid: holder.pid, owner: 'training' }));
      const err = await rejected(trainCnn({ ...base(), runDir }));
      expect(err.message).toContain(`in use by a training in process ${holder.pid}`);
    } finally {
      holder.kill('SIGKILL');
    }
    fs.writeFileSync(path.join(runDir, LOCK_FILE), JSON.stringify({ pid: deadPid(), owner: 'training' }));
    (await trainCnn({ ...base(), runDir })).model.dispose();
    expect(fs.existsSync(path.join(runDir, 'model.pt'))).toBe(true);
  });

  (fs.existsSync(cli) ? test : test.skip)('two `convscope train --name same` started together: two folders, two complete runs', async () => {
    const runs = path.join(tmp, 'cli-runs');
    const args = [cli, 'train', '--limit', '128', '--test-limit', '64', '--batch-size', '64', '--no-pictures', '--runs', runs, '--name', 'same'];
    const codes = await Promise.all([0, 1].map(() => new Promise<number | null>((resolve) => spawn(process.execPath, args, { stdio: 'ignore' }).on('exit', resolve))));
    expect(codes).toEqual([0, 0]);
    const folders = fs.readdirSync(runs);
    expect(folders).toHaveLength(2);
    for (const f of folders) expect(fs.existsSync(path.join(runs, f, 'model.pt'))).toBe(true);
  }, 120000);
});

describe('stored searches (#11, #12)', () => {
  const PIXELS = 28 * 28;
  const data = () => {
    const f = fashion();
    return { name: 'fashion-subset', classNames: f.classNames, train: { images: f.train.images.subarray(0, 600 * PIXELS), labels: f.train.labels.subarray(0, 600), count: 600 }, test: { images: f.test.images.subarray(0, 100 * PIXELS), labels: f.test.labels.subarray(0, 100), count: 100 } };
  };
  const search = (dir: string): TuneOptions => ({
    dir, dataset: data(), spec: tiny(), mode: 'script', validation: 200, epochs: 1, batchSize: 64, seed: 3, threads: 1,
    sampler: 'grid', space: { learningRate: [1e-3, 3e-3] }, pruner: 'none', retrain: false,
  } as TuneOptions);

  test('a search folder has one search at a time: a second one is refused naming the folder; the first finishes', async () => {
    const dir = path.join(tmp, 'tune-shared');
    const first = tune(search(dir));
    const err = await rejected(tune({ ...search(dir), space: { learningRate: [1e-2, 3e-2] } } as TuneOptions));
    expect(err.name).toBe('FolderInUseError');
    expect(err.message).toContain(`${dir} is in use by another search in this process`);
    expect((await first).trials).toHaveLength(2);
    expect(fs.existsSync(path.join(dir, LOCK_FILE))).toBe(false);
  }, 120000);

  test('a search folder locked by another live process is refused', async () => {
    const dir = path.join(tmp, 'tune-locked');
    fs.mkdirSync(dir);
    const holder = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 60000)']);
    try {
      fs.writeFileSync(path.join(dir, LOCK_FILE), JSON.stringify({ pid: holder.pid, owner: 'search' }));
      expect((await rejected(tune(search(dir)))).message).toContain(`in use by a search in process ${holder.pid}`);
    } finally {
      holder.kill('SIGKILL');
    }
  });

  test('a search that fails before writing anything (no data) leaves no empty folder', async () => {
    const dir = path.join(tmp, 'tune-no-data');
    await rejected(tune({ ...search(dir), dataset: 'fashion-mnist', dataDir: '/etc' } as TuneOptions));
    expect(fs.existsSync(dir)).toBe(false);
  });

  // A hand-edited study (its convscope attribute) is refused naming the field: test/tune-optuna.test.ts.
  test('a folder of a search from before Optuna (trials.json) is refused, naming the file', async () => {
    const dir = path.join(tmp, 'tune-old');
    fs.mkdirSync(dir);
    fs.writeFileSync(path.join(dir, 'trials.json'), '{"format":"convscope-tune-trials","version":1,"trials":[]}');
    const err = await rejected(tune(search(dir)));
    expect(err.message).toMatch(new RegExp(`^${path.join(dir, 'trials.json')} is a search of convscope before tune ran on Optuna`));
    expect(fs.readdirSync(dir).filter((f) => f !== '.convscope.lock')).toEqual(['trials.json']);
  });
});

describe('a run folder keeps its files inside it and is left clean (#13)', () => {
  test('a filters/ that is a symbolic link is refused before training, and nothing is written where it points', async () => {
    const runDir = path.join(tmp, 'linked-filters');
    const elsewhere = path.join(tmp, 'elsewhere');
    fs.mkdirSync(runDir);
    fs.mkdirSync(elsewhere);
    fs.symlinkSync(elsewhere, path.join(runDir, 'filters'));
    const err = await rejected(trainCnn({ ...base(), runDir, pictures: true }));
    expect(err.message).toMatch(/^Expected a run folder whose files lie inside it for runDir .*filters: it is a symbolic link/);
    expect(fs.readdirSync(elsewhere)).toEqual([]);
  });

  test('a failed run (no data there, a resume that does not fit) leaves no empty run folder; an existing folder is kept', async () => {
    const noData = path.join(tmp, 'failed-no-data');
    await rejected(trainCnn({ ...base(), dataset: 'fashion-mnist', dataDir: '/etc', runDir: noData }));
    expect(fs.existsSync(noData)).toBe(false);

    const trained = path.join(tmp, 'to-resume');
    (await trainCnn({ ...base(), runDir: trained })).model.dispose();
    const mismatch = path.join(tmp, 'failed-resume');
    await rejected(trainCnn({ ...base(), spec: { ...tiny(), dense: [32] }, resumeFrom: path.join(trained, 'model.pt'), runDir: mismatch }));
    expect(fs.existsSync(mismatch)).toBe(false);

    const existing = path.join(tmp, 'existing-empty');
    fs.mkdirSync(existing);
    await rejected(trainCnn({ ...base(), dataset: 'fashion-mnist', dataDir: '/etc', runDir: existing }));
    expect(fs.existsSync(existing)).toBe(true);
  });

  (fs.existsSync(cli) ? test : test.skip)('`convscope train --data-dir /etc` leaves no run folder', () => {
    const runs = path.join(tmp, 'cli-failed');
    const run = spawnSync(process.execPath, [cli, 'train', '--data-dir', '/etc', '--runs', runs, '--no-pictures'], { encoding: 'utf8' });
    expect(run.status).toBe(1);
    expect(fs.readdirSync(runs)).toEqual([]);
  });

  test('temporary files of a killed writer are removed when the folder is next used; a live writer\'s are kept', async () => {
    const runDir = path.join(tmp, 'stale');
    fs.mkdirSync(path.join(runDir, 'filters'), { recursive: true });
    const dead = deadPid();
    const stale = [`.model.pt.${dead}.0123456789ab.tmp`, `.history.json.${dead}.abcdef012345.tmp`];
    for (const f of stale) fs.writeFileSync(path.join(runDir, f), 'half');
    fs.writeFileSync(path.join(runDir, 'filters', `.step-0000001.png.${dead}.00000000beef.tmp`), 'half');
    const live = `.model.pt.${process.pid}.fedcba987654.tmp`;
    fs.writeFileSync(path.join(runDir, live), 'mine');
    (await trainCnn({ ...base(), runDir })).model.dispose();
    const left = fs.readdirSync(runDir).filter((f) => f.endsWith('.tmp'));
    expect(left).toEqual([live]);
    expect(fs.readdirSync(path.join(runDir, 'filters'))).toEqual([]);
  });
});
