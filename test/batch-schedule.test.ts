// Progressive batch sizes (trainCnn's batchSizes): each epoch trains with its own batch size, the
// steps and the learning-rate schedule follow, both paths agree, and bad lists are refused.
import { createModel, trainCnn } from '../src/index';
import { epochBatchSize, epochStepBase, epochSteps, runSteps } from '../src/train/batch-schedule';
import { resolveTrainOptions, TrainProgress } from '../src/train/options';
import { learningRateAt } from '../src/train/schedule';
import { fashion, smallSpec } from './fixtures';
import { expectError, rejected } from './helpers';

const plan = { batchSize: 10, batchSizes: [64, 128], dropLast: false };

describe('progressive batch sizes', () => {
  test('each epoch takes its batch size, the last one for later epochs; steps and step bases follow', () => {
    expect([1, 2, 3].map((e) => epochBatchSize(plan, e))).toEqual([64, 128, 128]);
    expect([1, 2, 3].map((e) => epochSteps(plan, 300, e))).toEqual([5, 3, 3]);
    expect([1, 2, 3].map((e) => epochStepBase(plan, 300, e))).toEqual([0, 5, 8]);
    expect(runSteps(plan, 300, 3)).toBe(11);
    expect(epochSteps({ ...plan, dropLast: true }, 300, 2)).toBe(2);
    expect(epochBatchSize({ batchSize: 10, dropLast: false }, 7)).toBe(10);
  });

  test.each(['eager', 'script'] as const)('(%s) a run with batchSizes [32, 64] steps 8 then 4 times, one-cycle over the 12 steps, as the other path does', async (mode) => {
    const start = createModel({ ...smallSpec(), dropout: 0 }, { seed: 3 });
    const steps: number[] = [];
    const options = { dataset: fashion(), initialModel: start, limit: 256, testLimit: 50, epochs: 2, batchSizes: [32, 64], schedule: 'one-cycle' as const, learningRate: 0.01, seed: 5 };
    const onProgress = (e: TrainProgress) => { if (e.type === 'step' && e.step === e.steps) steps.push(e.steps); };
    const a = await trainCnn({ ...options, mode, onProgress });
    const b = await trainCnn({ ...options, mode: mode === 'eager' ? 'script' : 'eager' });
    expect(steps).toEqual([8, 4]);
    const schedule = { kind: 'one-cycle' as const, learningRate: 0.01, totalSteps: 12, warmupSteps: 0 };
    expect(a.history.map((r) => r.learningRate)).toEqual([learningRateAt(schedule, 7), learningRateAt(schedule, 11)]);
    const weights = (m: typeof start) => m.parameters().flatMap((p) => Array.from(p.values));
    const [wa, wb] = [weights(a.model), weights(b.model)];
    expect(Math.max(...wa.map((v, i) => Math.abs(v - wb[i])))).toBeLessThan(1e-5);
    // One batch size throughout is the plain run.
    const plain = await trainCnn({ ...options, mode, batchSizes: undefined, batchSize: 32 });
    const listed = await trainCnn({ ...options, mode, batchSizes: [32] });
    expect(weights(listed.model)).toEqual(weights(plain.model));
    expect(wa).not.toEqual(weights(plain.model));
    for (const m of [a.model, b.model, plain.model, listed.model, start]) m.dispose();
  });

  test('bad batch-size lists are refused before any work, naming the option', async () => {
    expectError(() => resolveTrainOptions({ batchSizes: [] }), 'TypeError', /Expected a non-empty array of batch sizes, one per epoch for batchSizes but received/);
    expectError(() => resolveTrainOptions({ batchSizes: 64 as never }), 'TypeError', /for batchSizes but received 64/);
    expectError(() => resolveTrainOptions({ batchSizes: [64, 0] }), 'RangeError', /for batchSizes\[1\] but received 0/);
    expectError(() => resolveTrainOptions({ batchSizes: [64, 1.5] }), 'TypeError', /for batchSizes\[1\] but received 1.5/);
    // With dropLast, a later epoch's batch larger than the split would have no step.
    const err = await rejected(trainCnn({ dataset: fashion(), spec: smallSpec(), limit: 100, testLimit: 10, epochs: 2, batchSizes: [50, 200], dropLast: true }));
    expect(err.message).toMatch(/with dropLast, so that an epoch has a step, for batchSizes but received an array of length 2/);
  });
});
