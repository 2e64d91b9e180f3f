// Presets: a named recipe fills in what is not given, options given win, and the CLI records the
// recipe it ran in the run folder.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { spawnSync } from 'child_process';
import { defaultSpec, presetOptions, trainCnn } from '../src/index';
import { resolveTrainOptions } from '../src/train/options';
import { fashion } from './fixtures';
import { expectError, rejected } from './helpers';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'convscope-presets-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));
const cli = path.join(__dirname, '..', 'dist', 'src', 'cli', 'main.js');

describe('presets', () => {
  test('fast: a batch-norm CNN, scripted, AdamW on a one-cycle schedule with label smoothing and augmentation', () => {
    const o = resolveTrainOptions({ preset: 'fast' });
    expect(o.spec.batchNorm).toBe(true);
    expect(o.mode).toBe('script');
    expect(o.optimizer).toBe('adamw');
    expect(o.schedule).toBe('one-cycle');
    expect(o.labelSmoothing).toBeGreaterThan(0);
    expect(o.augment.flip).toBe(true);
    expect(o.epochs).toBe(presetOptions('fast', 'fashion-mnist').epochs);
    expect(o.preset).toBe('fast');
  });

  test('fast on MNIST shifts but does not flip (a mirrored digit is no digit)', () => {
    expect(resolveTrainOptions({ preset: 'fast', dataset: 'mnist' }).augment).toEqual({ shift: presetOptions('fast', 'mnist').augment!.shift, flip: false, fill: 'zero' });
  });

  test('tutorial: the exercise\'s network and training, as without a preset', () => {
    const o = resolveTrainOptions({ preset: 'tutorial' });
    const plain = resolveTrainOptions({});
    // Without inputSize, inputChannels and classes: trainCnn takes them from the data (28x28x1 and 10 for Fashion-MNIST).
    expect(o.spec).toEqual(plain.spec);
    expect({ ...defaultSpec(), ...o.spec }).toEqual(defaultSpec());
    for (const key of ['mode', 'optimizer', 'learningRate', 'batchSize', 'schedule', 'epochs', 'labelSmoothing', 'augment'] as const) expect([key, o[key]]).toEqual([key, plain[key]]);
  });

  test('options given win over the preset\'s; undefined ones do not', () => {
    const o = resolveTrainOptions({ preset: 'fast', epochs: 2, optimizer: 'sgd', mode: 'eager', learningRate: undefined });
    expect([o.epochs, o.optimizer, o.mode, o.learningRate]).toEqual([2, 'sgd', 'eager', presetOptions('fast', 'fashion-mnist').learningRate]);
  });

  test('an unknown preset is refused before any work, naming the accepted ones', async () => {
    expectError(() => resolveTrainOptions({ preset: 'fastest' }), 'RangeError', /Expected one of tutorial, fast, cifar, speedrun, speedrun-wide for preset but received "fastest"/);
    const err = await rejected(trainCnn({ preset: 'fastest' as never, dataset: fashion() }));
    expect(err.message).toMatch(/preset/);
  });

  test('train --preset fast runs the recipe and records it in config.json; flags given win', () => {
    const run = spawnSync(process.execPath, [cli, 'train', '--preset', 'fast', '--epochs', '1', '--limit', '256', '--test-limit', '100',
      '--no-pictures', '--runs', tmp, '--name', 'preset'], { encoding: 'utf8' });
    expect(run.stderr).not.toMatch(/convscope:/);
    expect(run.status).toBe(0);
    const [folder] = fs.readdirSync(tmp);
    const config = JSON.parse(fs.readFileSync(path.join(tmp, folder, 'config.json'), 'utf8'));
    const fast = presetOptions('fast', 'fashion-mnist');
    expect(config.options.preset ?? config.preset).toBe('fast');
    const options = config.options ?? config;
    expect(options.spec.batchNorm).toBe(true);
    expect([options.optimizer, options.schedule, options.mode, options.epochs]).toEqual([fast.optimizer, fast.schedule, fast.mode, 1]);
    const bad = spawnSync(process.execPath, [cli, 'train', '--preset', 'fastest'], { encoding: 'utf8' });
    expect(bad.status).not.toBe(0);
    expect(bad.stderr).toMatch(/--preset: expected one of tutorial, fast, cifar, speedrun, speedrun-wide but received "fastest"/);
  });
});
