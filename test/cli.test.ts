// The train command end to end: the run folder holds everything it promises, pictures included.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { spawn, spawnSync } from 'child_process';
import { GifReader } from 'omggif';
import { readEvents } from '../src/summary/tfevents-reader';
import { loadCheckpoint } from '../src/train/checkpoint';
import { torchInfo } from '../src/index';
import { skipBecause } from './helpers';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'convscope-cli-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));
const cli = path.join(__dirname, '..', 'dist', 'src', 'cli', 'main.js');

test('train writes config, history, checkpoint, mosaic, frames, GIF, curves, confusion and TensorBoard events', () => {
  const run = spawnSync(process.execPath, [cli, 'train', '--limit', '640', '--test-limit', '200', '--epochs', '2',
    '--snapshot-every', '2', '--runs', tmp, '--name', 'cli-test', '--mode', 'script'], { encoding: 'utf8' });
  expect(run.status).toBe(0);
  expect(run.stdout).toMatch(/final test accuracy: \d+\.\d+%/);
  const [folder] = fs.readdirSync(tmp);
  expect(folder).toMatch(/^\d{4}-\d\d-\d\dT\d\d-\d\d-\d\d-cli-test$/);
  const dir = path.join(tmp, folder);
  const history = JSON.parse(fs.readFileSync(path.join(dir, 'history.json'), 'utf8'));
  expect(history).toHaveLength(2);
  // The printed accuracy is the one recorded.
  expect(run.stdout).toContain(`${(100 * history[1].testAccuracy).toFixed(2)}%`);
  const ckpt = loadCheckpoint(path.join(dir, 'model.pt'));
  expect(ckpt.meta.training!.epoch).toBe(2);
  ckpt.model.dispose();

  // 5 steps per epoch, a frame every 2 steps plus the epoch ends and the start.
  const frames = fs.readdirSync(path.join(dir, 'filters'));
  expect(frames).toEqual(['step-0000000.png', 'step-0000002.png', 'step-0000004.png', 'step-0000005.png', 'step-0000007.png', 'step-0000009.png', 'step-0000010.png']);
  const gif = new GifReader(fs.readFileSync(path.join(dir, 'filters.gif')));
  expect(gif.numFrames()).toBe(frames.length);
  for (const f of ['conv1-filters.png', 'curves.png', 'confusion.png']) {
    expect(fs.readFileSync(path.join(dir, f)).subarray(1, 4).toString()).toBe('PNG');
  }

  const eventsFile = fs.readdirSync(dir).find((f) => f.startsWith('events.out.tfevents.'))!;
  const events = readEvents(path.join(dir, eventsFile));
  expect(events[0].fileVersion).toBe('brain.Event:2');
  const scalars = events.flatMap((e) => e.scalars.map((s) => ({ ...s, step: e.step })));
  const testAcc = scalars.filter((s) => s.tag === 'accuracy/test');
  expect(testAcc.map((s) => s.step)).toEqual([1, 2]);
  expect(testAcc[1].value).toBeCloseTo(history[1].testAccuracy, 5);
  const images = events.flatMap((e) => e.images.map((i) => ({ ...i, step: e.step })));
  expect(images.filter((i) => i.tag === 'conv1/filters').map((i) => i.step)).toEqual([0, 2, 4, 5, 7, 9, 10]);
  // The summary names what the folder holds.
  expect(run.stdout).toContain(`run folder: ${dir} (`);
  expect(run.stdout).toMatch(/conv1-filters\.png.*curves\.png.*filters\.gif.*model\.pt.*events\.out\.tfevents\.\*\)/);
}, 120000);

test('the summary lists the files a run without pictures wrote, and no picture', () => {
  const runs = path.join(tmp, 'no-pictures');
  const run = spawnSync(process.execPath, [cli, 'train', '--limit', '256', '--test-limit', '100', '--no-pictures', '--runs', runs, '--mode', 'script'], { encoding: 'utf8' });
  expect(run.status).toBe(0);
  const line = run.stdout.split('\n').find((l) => l.startsWith('run folder: '))!;
  expect(line).toMatch(/\(config\.json, confusion\.json, history\.json, model\.pt, events\.out\.tfevents\.\*\)$/);
  expect(line).not.toMatch(/\.png|\.gif/);
});

test('bad flags end with one clear line and a non-zero exit', () => {
  const run = spawnSync(process.execPath, [cli, 'train', '--epochs', 'many'], { encoding: 'utf8' });
  expect(run.status).not.toBe(0);
  expect(run.stderr).toMatch(/expected an integer but received "many"/);
  const bad = spawnSync(process.execPath, [cli, 'train', '--mode', 'graph', '--limit', '10'], { encoding: 'utf8' });
  expect(bad.status).toBe(1);
  expect(bad.stderr).toMatch(/convscope: Expected one of eager, script for mode but received "graph"/);
});

// Decided when the tests are defined, so that with CUDA jest reports this test as skipped, not passed.
const cuda = torchInfo().cuda;
if (cuda) skipBecause('train --device cuda without CUDA: this libtorch has CUDA and a GPU');
(cuda ? test.skip : test)('train --device cuda without CUDA says which libtorch was loaded and how to build a CUDA one', () => {
  const run = spawnSync(process.execPath, [cli, 'train', '--device', 'cuda', '--limit', '10'], { encoding: 'utf8' });
  expect(run.status).toBe(1);
  expect(run.stderr).toMatch(/CUDA was asked for but is not available: .*libtorch at \/.*build:addon/);
});

test('Ctrl-C stops train with exit code 130 and a checkpoint that --resume continues, spec included', async () => {
  const runs = path.join(tmp, 'sigint');
  const common = ['--limit', '12800', '--test-limit', '200', '--batch-size', '64', '--mode', 'script', '--no-pictures', '--runs', runs];
  // A non-default network: --resume must take it from the checkpoint, not from the defaults.
  const child = spawn(process.execPath, [cli, 'train', ...common, '--filters', '8', '--epochs', '2', '--name', 'stopped'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d) => { stderr += String(d); });
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  // Interrupt once the run folder exists and training has had a moment to take some steps.
  while (!fs.existsSync(runs) || fs.readdirSync(runs).length === 0) await new Promise((r) => setTimeout(r, 50));
  await new Promise((r) => setTimeout(r, 1500));
  child.kill('SIGINT');
  expect(await exited).toBe(130);
  expect(stderr).toMatch(/stopping after the current step/);
  const [folder] = fs.readdirSync(runs);
  const checkpoint = path.join(runs, folder, 'model.pt');
  const stopped = loadCheckpoint(checkpoint);
  expect(stopped.model.spec.conv[0].filters).toBe(8);
  stopped.model.dispose();
  const resumed = spawnSync(process.execPath, [cli, 'train', ...common, '--epochs', '2', '--name', 'resumed', '--resume', checkpoint], { encoding: 'utf8' });
  expect(resumed.stderr).not.toMatch(/convscope:/);
  expect(resumed.status).toBe(0);
  const resumedFolder = fs.readdirSync(runs).find((f) => f.endsWith('-resumed'))!;
  expect(JSON.parse(fs.readFileSync(path.join(runs, resumedFolder, 'history.json'), 'utf8'))).toHaveLength(2);
}, 180000);
