// Maps across training: trainCnn keeps each epoch's weights when asked (keepEpochCheckpoints), the
// files load and differ; mapsAcrossTraining() explains the same images for the same targets with
// every epoch's model (each map what explain() gives for that model), and the rank correlations are
// those of |map| (1 for a model against itself); the CLI writes the folder; bad input is refused.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { explain, loadModel, trainCnn } from '../src/index';
import type { CnnSpec } from '../src/index';
import { buildProgram } from '../src/cli/main';
import { native } from '../src/core/native';
import { decodeNpy } from '../src/formats/npy';
import type { CnnModel } from '../src/nn/model';
import { epochCheckpoints, mapsAcrossTraining } from '../src/probe/across-training';
import { spearman } from '../src/probe/randomisation';
import { fashion } from './fixtures';
import { settledLiveTensors } from './helpers';

const N = 784;
const spec: CnnSpec = { conv: [{ filters: 4, kernelSize: 5, padding: 'same', pool: true }, { filters: 6, kernelSize: 3, padding: 'same', pool: true }], dense: [16], dropout: 0 };
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'convscope-across-'));
const runDir = path.join(tmp, 'run');
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));
const images = () => fashion().test.images.subarray(0, 6 * N);

let models: CnnModel[] = [];
beforeAll(async () => {
  const result = await trainCnn({ spec, epochs: 3, limit: 512, testLimit: 64, batchSize: 64, learningRate: 3e-3, runDir, pictures: false, keepEpochCheckpoints: true, seed: 3 });
  result.model.dispose();
  models = epochCheckpoints(runDir).map(({ file }) => loadModel(file));
}, 60_000);
afterAll(() => { for (const m of models) m.dispose(); });

test('trainCnn({ keepEpochCheckpoints }) writes epoch-1..3.pt: loadable, different weights, the last = model.pt\'s', () => {
  expect(epochCheckpoints(runDir).map((c) => path.basename(c.file))).toEqual(['epoch-1.pt', 'epoch-2.pt', 'epoch-3.pt']);
  const probabilities = models.map((m) => m.predict(images()));
  expect(Array.from(probabilities[0])).not.toEqual(Array.from(probabilities[1]));
  const final = loadModel(path.join(runDir, 'model.pt'));
  expect(Array.from(final.predict(images()))).toEqual(Array.from(probabilities[2]));
  final.dispose();
});

test('mapsAcrossTraining: each epoch\'s maps are explain()\'s for the last model\'s predicted classes; correlations of |map|; no tensor leaked', async () => {
  const before = await settledLiveTensors();
  const t = await mapsAcrossTraining(models, images(), { method: 'saliency' });
  expect(native().liveTensors()).toBe(before);
  const lastTargets = (await explain(models[2], images())).targets;
  expect(Array.from(t.targets)).toEqual(Array.from(lastTargets));
  for (let k = 0; k < 3; ++k) {
    const direct = await explain(models[k], images(), { method: 'saliency', target: Array.from(lastTargets) });
    expect(Array.from(t.maps[k])).toEqual(Array.from(direct.maps));
  }
  const abs = (m: Float32Array, i: number) => Float32Array.from(m.subarray(i * N, (i + 1) * N), Math.abs);
  expect(t.consecutive).toHaveLength(2);
  expect(t.consecutive[0].perImage[4]).toBeCloseTo(spearman(abs(t.maps[0], 4), abs(t.maps[1], 4)), 12);
  expect(t.withLast[2]).toBeCloseTo(1, 12);
  const same = await mapsAcrossTraining([models[1], models[1]], images(), { method: 'gradient-x-input' });
  expect(same.consecutive[0].spearman).toBeCloseTo(1, 12);
});

test('convscope explain <run> --across-training writes the maps of every epoch and the correlations', async () => {
  const out = path.join(tmp, 'across');
  const printed: string[] = [];
  const write = jest.spyOn(process.stdout, 'write').mockImplementation((chunk) => { printed.push(String(chunk)); return true; });
  try {
    const program = buildProgram().exitOverride();
    for (const c of program.commands) c.exitOverride();
    await program.parseAsync(['node', 'convscope', 'explain', runDir, '--method', 'saliency', '--images', '0:6', '--across-training', '--out', out]);
  } finally {
    write.mockRestore();
  }
  expect(printed.join('')).toMatch(/rank correlation of \|map\| between consecutive epochs: 1->2 -?\d\.\d{3}, 2->3 -?\d\.\d{3}/);
  const npy = decodeNpy(fs.readFileSync(path.join(out, 'across-training.npy')));
  expect(npy.shape).toEqual([3, 6, 28, 28]);
  const json = JSON.parse(fs.readFileSync(path.join(out, 'across-training.json'), 'utf8'));
  expect(json).toMatchObject({ method: 'saliency', epochs: [1, 2, 3], images: '0:6' });
  expect(json.consecutive.map((c: { from: number; to: number }) => [c.from, c.to])).toEqual([[1, 2], [2, 3]]);
  expect(fs.existsSync(path.join(out, 'across-training.png'))).toBe(true);
});

describe('bad input', () => {
  test('keepEpochCheckpoints without a runDir, before any training', async () => {
    const err = await trainCnn({ spec, keepEpochCheckpoints: true, limit: 64 }).catch((e: Error) => e);
    expect((err as Error).name).toBe('TypeError');
    expect((err as Error).message).toBe('Expected a runDir to keep epoch checkpoints in (keepEpochCheckpoints: true) for runDir but received undefined');
  });

  test('a run folder without epoch checkpoints', () => {
    const empty = fs.mkdtempSync(path.join(tmp, 'empty-'));
    expect(() => epochCheckpoints(empty)).toThrow(/^Expected at least 2 epoch checkpoints \(epoch-<n>\.pt\) in .* but found 0; train with keepEpochCheckpoints: true/);
  });

  test('one model', async () => {
    const err = await mapsAcrossTraining([models[0]], images()).catch((e: Error) => e);
    expect((err as Error).message).toBe('Expected at least 2 models (one per epoch) for models but received an array of length 1');
  });

  test('explain\'s own checks hold, before any native work', async () => {
    const before = await settledLiveTensors();
    const err = await mapsAcrossTraining(models, images(), { method: 'integrated-gradients', steps: 0 }).catch((e: Error) => e);
    expect((err as Error).message).toMatch(/^Expected integer in \[1, 65536\] for steps but received 0/);
    expect(native().liveTensors()).toBe(before);
  });
});
