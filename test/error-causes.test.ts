// Issue 34 #15: errors that hid their cause. Each case is a clear error naming the argument (or the
// file), or the right behaviour: shared memory, labels the model has no class for, class names that
// do not match the classes, a checkpoint entry named __proto__, and a standard output that cannot be
// written.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { spawnSync } from 'child_process';
import { createModel, evaluate, loadModel, trainCnn } from '../src/index';
import type { TrainOptions } from '../src/index';
import type { CnnSpec } from '../src/nn/spec';
import { native } from '../src/core/native';
import { fashion } from './fixtures';
import { rejected, thrown, settledLiveTensors } from './helpers';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'convscope-error-causes-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));
const tiny = (): CnnSpec => ({ conv: [{ filters: 4, kernelSize: 3, padding: 'same', pool: true }], dense: [16], dropout: 0 });
const PIXELS = 28 * 28;
const cli = path.join(__dirname, '..', 'dist', 'src', 'cli', 'main.js');

/** A copy of `array` in shared memory. */
function shared(array: Uint8Array): Uint8Array {
  const copy = new Uint8Array(new SharedArrayBuffer(array.length));
  copy.set(array);
  return copy;
}

const split = (count: number) => ({ images: fashion().test.images.slice(0, count * PIXELS), labels: fashion().test.labels.slice(0, count), count });

describe('images and labels in shared memory are refused naming the argument', () => {
  test('evaluate', async () => {
    const model = createModel(tiny(), { seed: 1 });
    try {
      const s = split(8);
      for (const [key, name] of [['images', 'split.images'], ['labels', 'split.labels']] as const) {
        const err = await rejected(evaluate(model, { ...s, [key]: shared(s[key]) }));
        expect([err.name, err.message]).toEqual(['TypeError', `Expected a typed array over an ArrayBuffer for ${name} but received a Uint8Array over a SharedArrayBuffer; pass a copy (new Uint8Array(array))`]);
      }
    } finally {
      model.dispose();
    }
  });

  test('trainCnn', async () => {
    const s = split(64);
    const dataset = { name: 'shared', classNames: fashion().classNames, train: { ...s, images: shared(s.images) }, test: s };
    const err = await rejected(trainCnn({ dataset, spec: tiny(), batchSize: 32 }));
    expect(err.message).toMatch(/^Expected a typed array over an ArrayBuffer for dataset\.train\.images but received a Uint8Array over a SharedArrayBuffer/);
  });

  test('predict', () => {
    const model = createModel(tiny(), { seed: 1 });
    try {
      const err = thrown(() => model.predict(shared(split(2).images)));
      expect(err.name).toBe('TypeError');
      expect(err.message).toMatch(/^Expected a typed array over an ArrayBuffer for .* but received a Uint8Array over a SharedArrayBuffer/);
    } finally {
      model.dispose();
    }
  });
});

test('evaluate with a label the model has no class for: a RangeError naming the label, not libtorch\'s "Target 200 is out of bounds"', async () => {
  const model = createModel(tiny(), { seed: 1 });
  const before = await settledLiveTensors();
  try {
    const s = split(8);
    s.labels[5] = 200;
    const err = await rejected(evaluate(model, s));
    expect([err.name, err.message]).toEqual(['RangeError', 'Expected labels below 10 (the model\'s classes) for split.labels but split.labels[5] is 200']);
    expect(native().liveTensors()).toBe(before);
  } finally {
    model.dispose();
  }
});

test('class names that do not match spec.classes are refused before training', async () => {
  const s = split(64);
  // A spec that names its classes (one that leaves them out takes the dataset's class count).
  const base: TrainOptions = { spec: { ...tiny(), classes: 10 }, batchSize: 32, pictures: true, runDir: path.join(tmp, 'names') };
  for (const classNames of [fashion().classNames.slice(0, 9), [...fashion().classNames, 'extra']]) {
    const err = await rejected(trainCnn({ ...base, dataset: { name: 'names', classNames, train: s, test: s } }));
    expect([err.name, err.message]).toEqual(['RangeError', `Expected 10 class names (spec.classes) for dataset.classNames but received an array of length ${classNames.length}`]);
  }
});

test('a checkpoint entry named __proto__ is refused, and no tensor is left behind', async () => {
  const weights = createModel(tiny(), { seed: 1 });
  const entries = native().decodeStateDict(weights.checkpointBytes({}));
  weights.dispose();
  const file = path.join(tmp, 'proto.pt');
  // A computed key makes an own property named __proto__, as a pickle's dict key would be.
  const extra = new (native().Tensor)(new Float32Array([1, 2]), [2]);
  fs.writeFileSync(file, native().encodeStateDict({ ...entries, ['__proto__']: extra }));
  extra.dispose();
  for (const v of Object.values(entries)) if (typeof v !== 'string') v.dispose();
  const before = await settledLiveTensors();
  const err = thrown(() => loadModel(file));
  expect(err.message).toBe(`${file}: is not a readable PyTorch checkpoint (it has an entry named __proto__, which no model has)`);
  expect(native().liveTensors()).toBe(before);
});

describe('a standard output that cannot be written (/dev/full) ends the command with one line and exit code 1', () => {
  const run = fs.existsSync(cli) && fs.existsSync('/dev/full') ? test : test.skip;
  run.each(['info', '--help', 'train --help'])('convscope %s > /dev/full', (command) => {
    const full = fs.openSync('/dev/full', 'w');
    try {
      const r = spawnSync(process.execPath, [cli, ...command.split(' ')], { stdio: ['ignore', full, 'pipe'], encoding: 'utf8' });
      expect({ status: r.status, stderr: r.stderr }).toEqual({ status: 1, stderr: 'convscope: cannot write to standard output (ENOSPC: no space left on device, write)\n' });
    } finally {
      fs.closeSync(full);
    }
  });
});

(fs.existsSync(cli) ? test : test.skip)('usage errors still end with their message and exit code 1 (commander printing its own, an action its own)', () => {
  const bad = spawnSync(process.execPath, [cli, 'train', '--epochs', 'x'], { encoding: 'utf8' });
  expect([bad.status, bad.stderr.split('\n')[0]]).toEqual([1, 'error: option \'--epochs <n>\' argument \'x\' is invalid. expected an integer but received "x"']);
  const preset = spawnSync(process.execPath, [cli, 'train', '--preset', 'bogus'], { encoding: 'utf8' });
  expect([preset.status, preset.stderr]).toEqual([1, 'convscope: --preset: expected one of tutorial, fast, cifar, speedrun, speedrun-wide but received "bogus"\n']);
  const help = spawnSync(process.execPath, [cli, '--help'], { encoding: 'utf8' });
  expect([help.status, help.stdout.split('\n')[0]]).toEqual([0, 'Usage: convscope [options] [command]']);
});
