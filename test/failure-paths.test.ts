// Issue 16's failure paths: crafted or mismatched checkpoints (#3, #12), native memory on every error
// path (#4), a resumable checkpoint after an abort in the first epoch (#5), in-memory datasets (#7),
// zero training steps (#8), a throwing onProgress (#9) and a full disk (#11). Each test checks that
// nothing native is left behind (liveTensors back at its baseline).
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { spawnSync } from 'child_process';
import { createModel, defaultSpec, loadCheckpoint, loadModel, trainCnn } from '../src/index';
import type { TrainOptions, TrainProgress } from '../src/index';
import { FAULT_ENV } from '../src/util/fs-atomic';
import { native } from '../src/core/native';
import type { CnnSpec } from '../src/nn/spec';
import { fashion } from './fixtures';
import { rejected, skipBecause, thrown, settledLiveTensors } from './helpers';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'convscope-failure-paths-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));
const tiny = (): CnnSpec => ({ conv: [{ filters: 4, kernelSize: 3, padding: 'same', pool: true }], dense: [16], dropout: 0 });
const base = (): TrainOptions => ({ dataset: fashion(), spec: tiny(), limit: 256, testLimit: 64, batchSize: 64, seed: 3, pictures: false });

/** Rejects or throws, and leaves no native tensor behind; the error is returned for more checks. */
async function failsCleanly(run: () => Promise<unknown>): Promise<Error> {
  const before = await settledLiveTensors();
  const err = await rejected(run);
  expect(native().liveTensors()).toBe(before);
  return err;
}

/** A run's checkpoint: 1 epoch of Adam. */
let trained: string;
beforeAll(async () => {
  const runDir = path.join(tmp, 'trained');
  const r = await trainCnn({ ...base(), runDir });
  r.model.dispose();
  trained = path.join(runDir, 'model.pt');
});

/** A copy of the trained checkpoint whose metadata `edit` changed; CRC-valid, so only the metadata checks can refuse it. */
function crafted(name: string, edit: (meta: Record<string, any>) => void): string {
  const entries = native().decodeStateDict(fs.readFileSync(trained));
  try {
    const meta = JSON.parse(entries['convscope.meta'] as string);
    edit(meta);
    entries['convscope.meta'] = JSON.stringify(meta);
    const file = path.join(tmp, `${name}.pt`);
    fs.writeFileSync(file, native().encodeStateDict(entries));
    return file;
  } finally {
    for (const v of Object.values(entries)) if (typeof v !== 'string') v.dispose();
  }
}

describe('crafted checkpoint metadata is refused, naming the field, before any training (#3)', () => {
  const cases: [string, (m: Record<string, any>) => void, RegExp][] = [
    ['history not an array', (m) => { m.training.history = 'abc'; }, /Expected an array of epoch records for training\.history but received "abc"/],
    ['epoch a string', (m) => { m.training.epoch = '1'; }, /Expected integer for training\.epoch but received "1" of type string/],
    ['epoch negative', (m) => { m.training.epoch = -5; }, /Expected integer in \[0, 100000\] for training\.epoch but received -5/],
    ['epoch beyond history', (m) => { m.training.epoch = 2; }, /Expected 2 epoch records \(training\.epoch\) for training\.history/],
    ['a record of another epoch', (m) => { m.training.history[0].epoch = 7; }, /Expected epoch 1 for training\.history\[0\]\.epoch but received 7/],
    ['a record without a loss', (m) => { delete m.training.history[0].trainLoss; }, /Expected a number for training\.history\[0\]\.trainLoss but received undefined/],
    ['seed a string', (m) => { m.training.seed = 'x'; }, /for training\.seed/],
    ['optimizer kind unknown', (m) => { m.optimizer.kind = 'rmsprop'; }, /Expected one of adam, adamw, sgd for optimizer\.kind but received "rmsprop"/],
    ['learning rate negative', (m) => { m.optimizer.learningRate = -1; }, /for optimizer\.learningRate but received -1/],
    ['no optimizer settings for the state', (m) => { delete m.optimizer; }, /has an optimizer state \(convscope\.optimizer\) but no optimizer settings/],
    ['mode unknown', (m) => { m.mode = 'fast'; }, /Expected one of eager, script for mode but received "fast"/],
    ['partial step zero', (m) => { m.training.partial = { step: 0, lossSum: 1, correct: 1, seen: 64 }; }, /for training\.partial\.step but received 0/],
    ['partial world size zero', (m) => { m.training.partial = { step: 1, lossSum: 1, correct: 1, seen: 64, worldSize: 0 }; }, /for training\.partial\.worldSize but received 0/],
    ['partial samples a string', (m) => { m.training.partial = { step: 1, lossSum: 1, correct: 1, seen: 64, samples: '64' }; }, /for training\.partial\.samples but received "64"/],
  ];

  test.each(cases)('%s: loadCheckpoint refuses it', async (name, edit, message) => {
    const file = crafted(name.replace(/\W+/g, '-'), edit);
    const before = await settledLiveTensors();
    const err = thrown(() => loadCheckpoint(file));
    expect(err.name).toBe('CheckpointError');
    expect(err.message).toContain(file);
    expect(err.message).toMatch(message);
    expect(native().liveTensors()).toBe(before);
  });

  test.each(cases)('%s: resumeFrom rejects before the first step', async (name, edit, message) => {
    const file = crafted(`resume-${name.replace(/\W+/g, '-')}`, edit);
    const events: TrainProgress[] = [];
    const err = await failsCleanly(() => trainCnn({ ...base(), epochs: 3, resumeFrom: file, onProgress: (e) => events.push(e) }));
    expect(err.message).toMatch(message);
    expect(events).toEqual([]);
  });

  test('200 random metadata mutations: each loads or is a CheckpointError naming the file, never anything else', async () => {
    let state = 99;
    const random = () => { state = (Math.imul(state, 1664525) + 1013904223) >>> 0; return state / 4294967296; };
    const values = ['1', -5, 0, 1.5, null, true, {}, [], 'abc', 1e9, 2 ** 53, -0.0];
    const fields = ['training.epoch', 'training.seed', 'training.history', 'training.history.0', 'training.history.0.epoch', 'training.history.0.testLoss',
      'training.options', 'training.partial', 'optimizer', 'optimizer.kind', 'optimizer.learningRate', 'optimizer.momentum', 'optimizer.nesterov',
      'optimizer.beta1', 'mode', 'inputNorm', 'inputNorm.std', 'training'];
    const before = await settledLiveTensors();
    let refused = 0;
    for (let i = 0; i < 200; ++i) {
      const where = fields[Math.floor(random() * fields.length)].split('.');
      const value = values[Math.floor(random() * values.length)];
      const file = crafted('mutant', (m) => {
        let target = m;
        for (const key of where.slice(0, -1)) target = target[key] ?? (target[key] = {});
        target[where[where.length - 1]] = value;
      });
      try {
        loadCheckpoint(file).model.dispose();
      } catch (err) {
        refused += 1;
        expect({ where: where.join('.'), value, name: (err as Error).name }).toEqual({ where: where.join('.'), value, name: 'CheckpointError' });
        expect((err as Error).message).toContain('mutant.pt');
      }
    }
    expect(refused).toBeGreaterThan(150);
    expect(native().liveTensors()).toBe(before);
  });
});

describe('a resume that does not match the run is refused before any work (#3, #12)', () => {
  test('an Adam checkpoint resumed with optimizer sgd', async () => {
    const events: TrainProgress[] = [];
    const err = await failsCleanly(() => trainCnn({ ...base(), epochs: 2, optimizer: 'sgd', resumeFrom: trained, onProgress: (e) => events.push(e) }));
    expect(err.name).toBe('RangeError');
    expect(err.message).toBe(`Expected "adam" (the optimizer whose state ${trained} holds) for optimizer but received "sgd" of type string`);
    expect(events).toEqual([]);
  });

  test('a different spec with resumeFrom', async () => {
    const err = await failsCleanly(() => trainCnn({ ...base(), epochs: 2, spec: { ...tiny(), dense: [32] }, resumeFrom: trained }));
    expect(err.name).toBe('RangeError');
    expect(err.message).toMatch(/^Expected the spec .*model\.pt was trained with \(.*\), or none for spec but received a value of type object: .*"dense":\[32\]/);
  });

  test('the same spec, or none, resumes', async () => {
    for (const spec of [tiny(), undefined]) {
      const r = await trainCnn({ ...base(), epochs: 2, spec, resumeFrom: trained });
      expect(r.history.map((h) => h.epoch)).toEqual([1, 2]);
      r.model.dispose();
    }
  });

  test('initialModel together with resumeFrom', async () => {
    const model = createModel(tiny(), { seed: 1 });
    const err = await failsCleanly(() => trainCnn({ ...base(), epochs: 2, initialModel: model, resumeFrom: trained }));
    model.dispose();
    expect(err.name).toBe('TypeError');
    expect(err.message).toMatch(/^Expected either resumeFrom or initialModel for initialModel/);
  });

  test('no more epochs than the checkpoint has done (it would train none, silently)', async () => {
    const err = await failsCleanly(() => trainCnn({ ...base(), epochs: 1, resumeFrom: trained }));
    expect(err.message).toMatch(/^Expected more than 1 epochs \(.*model\.pt has done 1\) for epochs but received 1/);
  });

  test('loadModel with a spec other than the checkpoint\'s is an error; the same spec is accepted', async () => {
    const before = await settledLiveTensors();
    const err = thrown(() => loadModel(trained, { spec: defaultSpec() }));
    expect(err.name).toBe('RangeError');
    expect(err.message).toMatch(/^Expected the spec .*model\.pt holds .* for spec but received a value of type object: .*"filters":32/);
    expect(native().liveTensors()).toBe(before);
    loadModel(trained, { spec: tiny() }).dispose();
  });
});

/**
 * A folder this process cannot write, or why there is none: chmod 555 for a user; for root, whom no
 * permission stops, a read-only tmpfs mounted for the test (unmounted in afterAll). Decided when the
 * tests are defined, so that a run without one reports the test as skipped, never as passed.
 */
function unwritableFolder(): { dir: string; error: RegExp } | { reason: string } {
  const dir = path.join(tmp, 'read-only');
  fs.mkdirSync(dir);
  if (process.getuid?.() !== 0) {
    fs.chmodSync(dir, 0o555);
    afterAll(() => fs.chmodSync(dir, 0o755));
    return { dir, error: /EACCES/ };
  }
  const mount = spawnSync('mount', ['-t', 'tmpfs', '-o', 'ro,size=64k', 'tmpfs', dir], { encoding: 'utf8' });
  if (mount.status !== 0) return { reason: `running as root and a read-only tmpfs cannot be mounted here (${(mount.stderr || String(mount.error)).trim()})` };
  afterAll(() => spawnSync('umount', [dir]));
  return { dir, error: /EROFS/ };
}

describe('native memory on failure paths (#4)', () => {
  test('runDir an existing file, or under a file: rejected naming runDir, before the model and data exist', async () => {
    const file = path.join(tmp, 'a-file');
    fs.writeFileSync(file, 'x');
    for (const runDir of [file, path.join(file, 'run')]) {
      const events: TrainProgress[] = [];
      const err = await failsCleanly(() => trainCnn({ ...base(), runDir, onProgress: (e) => events.push(e) }));
      expect(err.message).toMatch(/^Expected a folder that can be created and written for runDir but received ".*a-file.*" of type string \((EEXIST|ENOTDIR)/);
      expect(events).toEqual([]);
    }
  });

  const readOnly = unwritableFolder();
  if ('reason' in readOnly) skipBecause(`a read-only runDir: ${readOnly.reason}`);
  ('dir' in readOnly ? test : test.skip)('a read-only runDir (chmod 555 for a user, a read-only mount for root)', async () => {
    if (!('dir' in readOnly)) return;
    for (const runDir of [readOnly.dir, path.join(readOnly.dir, 'run')]) {
      const err = await failsCleanly(() => trainCnn({ ...base(), runDir }));
      expect(err.message).toMatch(/^Expected a folder that can be created and written for runDir but received/);
      expect(err.message).toMatch(readOnly.error);
    }
  });

  test('a spec too large for memory: createModel frees the parameters it made before the failure', async () => {
    const before = await settledLiveTensors();
    // fc1 would hold 1024 x (1024 * 1024 * 64) floats (275 GB): conv1 and conv2 are made first.
    const err = thrown(() => createModel({ ...defaultSpec(), inputSize: [4096, 4096] }));
    expect(err.message).toMatch(/memory|alloc/i);
    expect(native().liveTensors()).toBe(before);
  });

  test('inputSize [4096, 4096] with 28x28 images: refused before a model is made', async () => {
    const err = await failsCleanly(() => trainCnn({ ...base(), spec: { ...defaultSpec(), inputSize: [4096, 4096] } }));
    expect(err.message).toBe('Expected 4096x4096 images for spec.inputSize but dataset.train has 784 pixels per image');
  });

  test('createModel on an unknown device', async () => {
    const before = await settledLiveTensors();
    expect(thrown(() => createModel(tiny(), { device: 'tpu' })).name).toBe('RangeError');
    expect(native().liveTensors()).toBe(before);
  });
});

describe('in-memory datasets are validated (#7)', () => {
  const train = () => ({ images: fashion().train.images.subarray(0, 100 * 784), labels: fashion().train.labels.subarray(0, 100), count: 100 });
  const dataset = (changes: Record<string, unknown>) => ({ name: 'mine', train: train(), test: train(), classNames: fashion().classNames, ...changes });
  test.each([
    ['an empty object', {}, 'TypeError', 'Expected a non-empty string for dataset.name but received undefined'],
    ['a train split of 0 images', dataset({ train: { images: new Uint8Array(0), labels: new Uint8Array(0), count: 0 } }), 'RangeError', 'Expected integer >= 1 for dataset.train.count but received 0 of type number'],
    ['int16 images', dataset({ train: { ...train(), images: new Int16Array(100 * 784) } }), 'TypeError', 'Expected a Uint8Array (0..255) or Float32Array ([0, 1]) for dataset.train.images but received a Int16Array'],
    ['short labels', dataset({ train: { ...train(), labels: new Uint8Array(50) } }), 'RangeError', 'Expected 100 labels for dataset.train.labels but received a Uint8Array of length 50'],
    ['part of an image', dataset({ test: { ...train(), images: new Uint8Array(100 * 784 - 1) } }), 'RangeError', 'Expected whole images: a multiple of 100 pixels (dataset.test.count) for dataset.test.images but received a Uint8Array of 78399 pixels'],
    ['a label beyond the classes', dataset({ train: { ...train(), labels: new Uint8Array(100).fill(10, 40, 41) } }), 'RangeError', 'Expected labels below 10 (spec.classes) for dataset.train.labels but dataset.train.labels[40] is 10'],
    ['no class names', dataset({ classNames: undefined }), 'TypeError', 'Expected an array of class names for dataset.classNames but received undefined'],
  ] as const)('%s', async (_what, given, name, message) => {
    const err = await failsCleanly(() => trainCnn({ ...base(), limit: undefined, dataset: given as never }));
    expect(err.name).toBe(name);
    expect(err.message).toBe(message);
  });
});

describe('zero training steps (#8)', () => {
  test('limit 50, batchSize 64, dropLast: a RangeError before any work', async () => {
    const events: TrainProgress[] = [];
    const err = await failsCleanly(() => trainCnn({ ...base(), limit: 50, batchSize: 64, dropLast: true, onProgress: (e) => events.push(e) }));
    expect(err.name).toBe('RangeError');
    expect(err.message).toBe('Expected at most 50 (the training images) with dropLast, so that an epoch has a step, for batchSize but received 64 of type number');
    expect(events).toEqual([]);
  });
});

describe('a throwing onProgress (#9)', () => {
  test.each(['eager', 'script'] as const)('%s: training rejects with that error and the model is freed', async (mode) => {
    const boom = new Error('progress callback failed');
    let calls = 0;
    const err = await failsCleanly(() => trainCnn({ ...base(), mode, epochs: 2, onProgress: () => { if (++calls === 2) throw boom; } }));
    expect(err).toBe(boom);
    expect(calls).toBe(2);
  });
});

describe('an abort in the first epoch leaves a resumable checkpoint (#5)', () => {
  test.each(['eager', 'script'] as const)('%s: the checkpoint holds where it stopped, and resuming finishes the epoch', async (mode) => {
    const runDir = path.join(tmp, `abort-first-${mode}`);
    const controller = new AbortController();
    const err = await rejected(trainCnn({
      ...base(), mode, limit: 512, runDir, signal: controller.signal,
      onProgress: (e) => { if (e.type === 'step' && e.step === 3) controller.abort(); },
    })) as Error & { model?: import('../src/index').CnnModel };
    expect(err.name).toBe('AbortError');
    err.model!.dispose();
    const saved = loadCheckpoint(path.join(runDir, 'model.pt'));
    saved.model.dispose();
    const partial = saved.meta.training!.partial!;
    expect(saved.meta.training!.epoch).toBe(0);
    expect(partial.step).toBeGreaterThanOrEqual(3);
    expect(partial.step).toBeLessThanOrEqual(4);
    expect(partial.seen).toBe(partial.step * 64);
    const steps: number[] = [];
    const resumed = await trainCnn({ ...base(), mode, limit: 512, resumeFrom: path.join(runDir, 'model.pt'), onProgress: (e) => { if (e.type === 'step') steps.push(e.step); } });
    expect(steps[0]).toBe(partial.step + 1);
    expect(steps[steps.length - 1]).toBe(8);
    expect(resumed.history.map((h) => h.epoch)).toEqual([1]);
    expect(Number.isFinite(resumed.history[0].trainLoss)).toBe(true);
    resumed.model.dispose();
  });

  test('checkpointOnAbort: false writes none', async () => {
    const runDir = path.join(tmp, 'abort-no-checkpoint');
    const controller = new AbortController();
    const err = await rejected(trainCnn({
      ...base(), runDir, signal: controller.signal, checkpointOnAbort: false,
      onProgress: (e) => { if (e.type === 'step' && e.step === 2) controller.abort(); },
    })) as Error & { model?: import('../src/index').CnnModel };
    err.model!.dispose();
    expect(fs.existsSync(path.join(runDir, 'model.pt'))).toBe(false);
  });
});

describe('a full disk (#11)', () => {
  afterEach(() => { delete process.env[FAULT_ENV]; });

  test('ENOSPC writing the second checkpoint: the error names model.pt, and history.json never lists an epoch the checkpoint lacks', async () => {
    const runDir = path.join(tmp, 'full-disk');
    process.env[FAULT_ENV] = 'enospc:model.pt:2';
    const err = await failsCleanly(() => trainCnn({ ...base(), epochs: 2, runDir }));
    expect(err.message).toBe(`cannot write ${path.join(runDir, 'model.pt')}: ENOSPC: no space left on device, write`);
    expect((err as NodeJS.ErrnoException).code).toBe('ENOSPC');
    const history = JSON.parse(fs.readFileSync(path.join(runDir, 'history.json'), 'utf8'));
    const saved = loadCheckpoint(path.join(runDir, 'model.pt'));
    saved.model.dispose();
    expect(history.map((h: { epoch: number }) => h.epoch)).toEqual([1]);
    expect(saved.meta.training!.epoch).toBe(1);
    // No temporary file is left behind.
    expect(fs.readdirSync(runDir).filter((f) => f.endsWith('.tmp'))).toEqual([]);
  });

  test('ENOSPC writing history.json names history.json', async () => {
    const runDir = path.join(tmp, 'full-disk-history');
    process.env[FAULT_ENV] = 'enospc:history.json:1';
    const err = await failsCleanly(() => trainCnn({ ...base(), runDir }));
    expect(err.message).toBe(`cannot write ${path.join(runDir, 'history.json')}: ENOSPC: no space left on device, write`);
  });
});
