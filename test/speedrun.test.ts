// Issue 33's time-to-accuracy groundwork: the speedrun preset's recipe, the CLI flags of its tricks,
// and the benchmark's pieces (the convscope worker, the PyTorch recipe, the statistics) on tiny data.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { spawnSync } from 'child_process';
import { resolveTrainOptions } from '../src/train/options';
import { writeIdx } from '../src/formats/idx';
import { pytorchRecipe, summarise } from '../bench/time-to-accuracy';
import { fashion } from './fixtures';
import { PYTHON, testWithPython } from './helpers';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'convscope-speedrun-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));
const root = path.join(__dirname, '..');
const cli = path.join(root, 'dist', 'src', 'cli', 'main.js');
const withTorch = testWithPython(['torch']);

describe('speedrun preset', () => {
  test.each([['speedrun', 'eager'], ['speedrun-wide', 'script']] as const)('%s: a batch-norm CNN, %s, AdamW one-cycle, label smoothing, a weight average; flips in training and TTA on clothes only', (preset, mode) => {
    const clothes = resolveTrainOptions({ preset });
    const digits = resolveTrainOptions({ preset, dataset: 'mnist' });
    for (const o of [clothes, digits]) {
      expect([o.spec.batchNorm, o.mode, o.optimizer, o.schedule]).toEqual([true, mode, 'adamw', 'one-cycle']);
      expect(o.labelSmoothing).toBeGreaterThan(0);
      expect(o.ema?.decay).toBeGreaterThan(0.9);
    }
    expect([clothes.augment.flip, clothes.tta.flip]).toEqual([true, true]);
    expect([digits.augment.flip, digits.tta.flip]).toEqual([false, false]);
  });

  test('speedrun-wide is the wider network: more filters in every block than speedrun\'s', () => {
    const [narrow, wide] = [resolveTrainOptions({ preset: 'speedrun' }), resolveTrainOptions({ preset: 'speedrun-wide' })];
    expect(narrow.spec.conv.map((c) => c.filters)).toEqual([16, 32, 64]);
    expect(wide.spec.conv.map((c) => c.filters)).toEqual([32, 64, 64]);
  });

  test('options given beside a speedrun preset win over its values', () => {
    expect(resolveTrainOptions({ preset: 'speedrun', tta: { shift: 1 } }).tta).toEqual({ flip: false, shift: 1 });
    // false turns a preset's trick off (undefined would keep it): what an ablation needs.
    const without = resolveTrainOptions({ preset: 'speedrun', ema: false, tta: false });
    expect([without.ema, without.tta]).toEqual([undefined, { flip: false, shift: 0 }]);
  });

  test('train --preset speedrun with --tta-shift, --ema, --ema-every and --batch-sizes records them, and the history says how it evaluated', () => {
    const runs = path.join(tmp, 'runs');
    const run = spawnSync(process.execPath, [cli, 'train', '--preset', 'speedrun', '--epochs', '2', '--limit', '256', '--test-limit', '100',
      '--tta-flip', '--tta-shift', '1', '--ema', '0.9', '--ema-every', '2', '--batch-sizes', '64,128', '--no-pictures', '--runs', runs, '--name', 'speedrun'], { encoding: 'utf8' });
    expect(run.stderr).not.toMatch(/convscope:|Error/);
    expect(run.status).toBe(0);
    const [folder] = fs.readdirSync(runs);
    const config = JSON.parse(fs.readFileSync(path.join(runs, folder, 'config.json'), 'utf8'));
    const options = config.options ?? config;
    expect([options.preset, options.tta, options.ema, options.batchSizes]).toEqual(['speedrun', { flip: true, shift: 1 }, { decay: 0.9, every: 2, warmup: true }, [64, 128]]);
    const history = JSON.parse(fs.readFileSync(path.join(runs, folder, 'history.json'), 'utf8'));
    expect(history[1].evaluatedWith).toEqual({ tta: { flip: true, shift: 1 }, ema: { decay: 0.9, every: 2, warmup: true } });
    const bad = spawnSync(process.execPath, [cli, 'train', '--batch-sizes', '64,x'], { encoding: 'utf8' });
    expect(bad.status).not.toBe(0);
    expect(bad.stderr).toMatch(/expected an integer but received "x"/);
  });
});

describe('time-to-accuracy benchmark pieces', () => {
  test('summarise: mean, sample standard deviation, range', () => {
    expect(summarise([0.99, 0.98, 0.97])).toEqual({ mean: expect.closeTo(0.98, 12), sd: expect.closeTo(0.01, 12), min: 0.97, max: 0.99 });
    expect(summarise([5])).toEqual({ mean: 5, sd: 0, min: 5, max: 5 });
    expect(summarise([])).toBeUndefined();
  });

  test('the convscope worker trains the preset and reports the final accuracy and trainingSeconds', () => {
    const run = spawnSync(process.execPath, [path.join(root, 'dist', 'bench', 'time-to-accuracy-worker.js'), 'speedrun', 'fashion-mnist', '1', '3', '256', '100'], { encoding: 'utf8' });
    expect(run.status).toBe(0);
    const out = JSON.parse(run.stdout.trim().split('\n').pop()!);
    expect(out.accuracy).toBe(out.epochs[0].testAccuracy);
    expect(out.seconds).toBeCloseTo(out.epochs[0].seconds + out.epochs[0].evaluationSeconds, 6);
    expect(out.wallSeconds).toBeGreaterThan(out.seconds);
  });

  withTorch('the PyTorch recipe trains the same network on the same data and reports the same fields', () => {
    const n = 256;
    const files: Record<string, string> = {};
    for (const [split, data, count] of [['train', fashion().train, n], ['test', fashion().test, 100]] as const) {
      files[`${split}-images`] = path.join(tmp, `${split}-images.idx`);
      files[`${split}-labels`] = path.join(tmp, `${split}-labels.idx`);
      writeIdx(files[`${split}-images`], { dtype: 'uint8', dims: [count, 28, 28], data: data.images.subarray(0, count * 784) });
      writeIdx(files[`${split}-labels`], { dtype: 'uint8', dims: [count], data: data.labels.subarray(0, count) });
    }
    const recipe = path.join(tmp, 'recipe.json');
    // The bench's own recipe, with every trick the PyTorch side mirrors switched on.
    fs.writeFileSync(recipe, JSON.stringify(pytorchRecipe('fashion-mnist', 2, 'speedrun', {
      batchSizes: [64, 128], tta: { flip: true, shift: 1 }, weightDecayOn: 'weights', whiten: { images: 100 },
    })));
    const run = spawnSync(PYTHON, [path.join(root, 'bench', 'pytorch_time_to_accuracy.py'), '--recipe', recipe, '--train-images', files['train-images'],
      '--train-labels', files['train-labels'], '--test-images', files['test-images'], '--test-labels', files['test-labels'], '--seed', '1', '--threads', '1'], { encoding: 'utf8' });
    expect(run.stderr).toBe('');
    const out = JSON.parse(run.stdout.trim().split('\n').pop()!);
    expect(out.epochs).toHaveLength(2);
    expect(out.accuracy).toBe(out.epochs[1].testAccuracy);
    // Above chance (10%) after two epochs of 256 images: the recipe trains (the full-data comparison is the benchmark's).
    expect(out.accuracy).toBeGreaterThan(0.15);
  });
});
