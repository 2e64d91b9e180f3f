// weightDecayOn: 'weights' keeps biases and batch normalisation's scales and shifts from weight decay
// (a second parameter group in the native optimizer), on both paths, with AdamW and SGD; resuming
// checks the scope, and bad values are refused.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { native } from '../src/core/native';
import { CnnModel, createModel, trainCnn } from '../src/index';
import { resolveTrainOptions } from '../src/train/options';
import { fashion } from './fixtures';
import { expectError, rejected } from './helpers';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'convscope-decay-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

const SPEC = { conv: [{ filters: 6, kernelSize: 3, padding: 'same' as const, pool: true }], dense: [16], dropout: 0, batchNorm: true };
const byName = (m: CnnModel) => new Map(m.parameters().map((p) => [p.name, Array.from(p.values)]));
const differs = (a: number[], b: number[]) => a.some((v, i) => Math.abs(v - b[i]) > 1e-6);
/** Weights: conv and dense weights (what decay reaches with 'weights'); the others: biases, batch-norm scales and shifts. */
const isWeight = (m: CnnModel, name: string) => m.plan.parameters.find((p) => p.name === name)!.penalised;

describe('weightDecayOn', () => {
  test.each([['adamw', 'eager'], ['adamw', 'script'], ['sgd', 'eager'], ['sgd', 'script']] as const)('%s (%s): after one step, decay changed the weights only', async (optimizer, mode) => {
    const start = createModel(SPEC, { seed: 2 });
    const s = byName(start);
    const common = { dataset: fashion(), spec: SPEC, initialModel: start, mode, optimizer, learningRate: 0.05, limit: 64, batchSize: 64, testLimit: 20, seed: 1 };
    const decayed = await trainCnn({ ...common, weightDecay: 0.5, weightDecayOn: 'weights' });
    const plain = await trainCnn({ ...common, weightDecay: 0 });
    const everywhere = await trainCnn({ ...common, weightDecay: 0.5 });
    const [d, p, e] = [byName(decayed.model), byName(plain.model), byName(everywhere.model)];
    const others = [...d.keys()].filter((n) => !isWeight(start, n));
    // Batch-norm scales (1 at the start) are among the parameters decay no longer reaches.
    expect(others.some((n) => s.get(n)!.every((v) => v === 1))).toBe(true);
    for (const name of d.keys()) {
      // The first step's gradients are the same in all three runs: only decay tells them apart.
      expect([name, differs(d.get(name)!, p.get(name)!)]).toEqual([name, isWeight(start, name)]);
      // Decay everywhere also moves the others, where they are not 0 (a zero shift or bias stays put).
      expect([name, differs(e.get(name)!, p.get(name)!)]).toEqual([name, isWeight(start, name) || s.get(name)!.some((v) => v !== 0)]);
    }
    const other = await trainCnn({ ...common, mode: mode === 'eager' ? 'script' : 'eager', weightDecay: 0.5, weightDecayOn: 'weights' });
    for (const [name, values] of byName(other.model)) expect(differs(values, d.get(name)!)).toBe(false);
    for (const m of [start, decayed.model, plain.model, everywhere.model, other.model]) m.dispose();
  });

  test('resuming checks the scope the optimizer state was saved with', async () => {
    const runDir = path.join(tmp, 'run');
    const first = await trainCnn({ dataset: fashion(), spec: SPEC, optimizer: 'adamw', weightDecayOn: 'weights', limit: 64, batchSize: 32, testLimit: 20, runDir, pictures: false });
    first.model.dispose();
    const err = await rejected(trainCnn({ dataset: fashion(), optimizer: 'adamw', epochs: 2, limit: 64, batchSize: 32, testLimit: 20, resumeFrom: path.join(runDir, 'model.pt') }));
    expect(err.message).toMatch(/Expected "weights" \(the weight decay scope of the optimizer state .* holds\) for weightDecayOn but received "all"/);
    const resumed = await trainCnn({ dataset: fashion(), optimizer: 'adamw', weightDecayOn: 'weights', epochs: 2, limit: 64, batchSize: 32, testLimit: 20, resumeFrom: path.join(runDir, 'model.pt') });
    expect(resumed.history).toHaveLength(2);
    resumed.model.dispose();
  });

  test('bad values are refused, in TypeScript and natively', () => {
    expectError(() => resolveTrainOptions({ weightDecayOn: 'biases' as never }), 'RangeError', /Expected one of all, weights for weightDecayOn but received "biases"/);
    const model = createModel(SPEC);
    const stranger = new (native().Tensor)(new Float32Array(2), [2]);
    expectError(() => new (native().Optimizer)(model.parameterTensors(), { kind: 'adam', learningRate: 1e-3, undecayed: [stranger] }), 'RangeError', /Expected one of params for undecayed\[0\]/);
    expectError(() => new (native().Optimizer)(model.parameterTensors(), { kind: 'adam', learningRate: 1e-3, undecayed: model.parameterTensors() }), 'RangeError', /Expected some parameters with weight decay/);
    stranger.dispose();
    model.dispose();
  });
});
