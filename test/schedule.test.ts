// Learning-rate schedules and label smoothing: PyTorch's formulas, the same rates on both paths, the
// rate of every step in TensorBoard.
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { native, valuesOf } from '../src/core/native';
import { tidy } from '../src/core/tidy';
import { createModel, trainCnn } from '../src/index';
import { readEvents } from '../src/summary/tfevents-reader';
import { learningRateAt, learningRates, Schedule } from '../src/train/schedule';
import { fashion, smallSpec } from './fixtures';
import { PYTHON, testWithPython } from './helpers';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'convscope-schedule-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

const weightsOf = (m: { parameters(): { values: Float32Array }[] }) => m.parameters().map((p) => Array.from(p.values));

function largestDifference(a: number[][], b: number[][]): number {
  return Math.max(...a.map((w, i) => Math.max(...w.map((v, j) => Math.abs(v - b[i][j])))));
}

describe('schedules', () => {
  testWithPython(['torch'])('cosine after warm-up and one-cycle give torch.optim.lr_scheduler\'s rates at every step', () => {
    const total = 50;
    // PyTorch's own schedulers stepped once per optimizer step; their rate before each step.
    const script = `
import json, torch
def rates(make):
    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([p], lr=0.1)
    sched = make(opt)
    out = []
    for _ in range(${total}):
        out.append(opt.param_groups[0]['lr'])
        opt.step()
        sched.step()
    return out
one_cycle = rates(lambda o: torch.optim.lr_scheduler.OneCycleLR(o, max_lr=0.1, total_steps=${total}))
one_cycle_rise = rates(lambda o: torch.optim.lr_scheduler.OneCycleLR(o, max_lr=0.1, total_steps=${total}, pct_start=0.2))
warm = rates(lambda o: torch.optim.lr_scheduler.SequentialLR(o, [
    torch.optim.lr_scheduler.LinearLR(o, start_factor=1/8, end_factor=1.0, total_iters=7),
    torch.optim.lr_scheduler.CosineAnnealingLR(o, T_max=${total} - 8, eta_min=0.0)], milestones=[8]))
print(json.dumps({"one_cycle": one_cycle, "one_cycle_rise": one_cycle_rise, "warm_cosine": warm}))
`;
    const run = spawnSync(PYTHON!, ['-c', script], { encoding: 'utf8' });
    expect(run.stderr).not.toMatch(/Error/);
    const torchRates = JSON.parse(run.stdout);
    const ours = (s: Omit<Schedule, 'learningRate' | 'totalSteps'>) => Array.from(learningRates({ ...s, learningRate: 0.1, totalSteps: total }, 0, total));
    const close = (a: number[], b: number[]) => a.forEach((v, i) => expect(v).toBeCloseTo(b[i], 12));
    close(ours({ kind: 'one-cycle', warmupSteps: 0 }), torchRates.one_cycle);
    close(ours({ kind: 'one-cycle', warmupSteps: 10 }), torchRates.one_cycle_rise);
    close(ours({ kind: 'cosine', warmupSteps: 8 }), torchRates.warm_cosine);
  });

  test('constant with warm-up climbs linearly, then stays', () => {
    const s: Schedule = { kind: 'constant', learningRate: 0.01, totalSteps: 100, warmupSteps: 4 };
    expect([0, 1, 2, 3, 4, 99].map((i) => learningRateAt(s, i))).toEqual([0.0025, 0.005, 0.0075, 0.01, 0.01, 0.01]);
  });

  test.each(['eager', 'script'] as const)('a scheduled run (%s) takes the scheduled rate at each step: the same weights on both paths, other weights than a constant rate', async (mode) => {
    const start = createModel({ ...smallSpec(), dropout: 0 }, { seed: 4 });
    const common = { dataset: fashion(), initialModel: start, optimizer: 'sgd' as const, momentum: 0.9, learningRate: 0.05, limit: 64 * 10 + 17, batchSize: 64, testLimit: 200, epochs: 2, seed: 3 };
    const other = mode === 'eager' ? 'script' : 'eager';
    const a = await trainCnn({ ...common, mode, schedule: 'one-cycle' });
    const b = await trainCnn({ ...common, mode: other, schedule: 'one-cycle' });
    const constant = await trainCnn({ ...common, mode });
    expect(largestDifference(weightsOf(a.model), weightsOf(b.model))).toBeLessThan(1e-5);
    expect(largestDifference(weightsOf(a.model), weightsOf(constant.model))).toBeGreaterThan(1e-3);
    // The history records the rate of each epoch's last step.
    const schedule: Schedule = { kind: 'one-cycle', learningRate: 0.05, totalSteps: 22, warmupSteps: 0 };
    expect(a.history.map((h) => h.learningRate)).toEqual([learningRateAt(schedule, 10), learningRateAt(schedule, 21)]);
    for (const m of [a.model, b.model, constant.model, start]) m.dispose();
  });

  test('the rate of every step goes to TensorBoard', async () => {
    const runDir = path.join(tmp, 'cosine');
    const r = await trainCnn({ dataset: fashion(), spec: smallSpec(), mode: 'script', schedule: 'cosine', warmupSteps: 3, limit: 64 * 6, batchSize: 64, testLimit: 100, epochs: 2, runDir, pictures: false });
    r.model.dispose();
    const events = readEvents(path.join(runDir, fs.readdirSync(runDir).find((f) => f.startsWith('events.out.tfevents.'))!));
    const rates = events.flatMap((e) => e.scalars.filter((s) => s.tag === 'learning_rate/step').map((s) => [e.step, s.value]));
    const schedule: Schedule = { kind: 'cosine', learningRate: 1e-3, totalSteps: 12, warmupSteps: 3 };
    expect(rates.map(([step]) => step)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
    rates.forEach(([step, value]) => expect(value).toBeCloseTo(learningRateAt(schedule, step - 1), 6));
  });
});

describe('label smoothing', () => {
  test('the loss is (1 - e) * NLL + e * the mean of -log p over the classes, as PyTorch defines it', () => {
    const logits = new Float32Array([2, -1, 0.5, 0.1, 3, -2, 0, 0, 1]);
    const labels = new BigInt64Array([0n, 1n, 2n]);
    const loss = tidy(() => {
      const x = new (native().Tensor)(logits, [3, 3]);
      const y = new (native().Tensor)(labels, [3]);
      return valuesOf(native().ops.crossEntropy(x, y, 'mean', 0.2), 'float32')[0];
    });
    let expected = 0;
    for (let i = 0; i < 3; ++i) {
      const row = Array.from(logits.subarray(3 * i, 3 * i + 3));
      const logSum = Math.log(row.reduce((sum, v) => sum + Math.exp(v), 0));
      const logP = row.map((v) => v - logSum);
      expected += (0.8 * -logP[Number(labels[i])] + 0.2 * -logP.reduce((a, b) => a + b, 0) / 3) / 3;
    }
    expect(loss).toBeCloseTo(expected, 5);
  });

  test.each(['eager', 'script'] as const)('training with label smoothing (%s) changes the weights, and both paths agree', async (mode) => {
    const start = createModel({ ...smallSpec(), dropout: 0 }, { seed: 6 });
    const common = { dataset: fashion(), initialModel: start, optimizer: 'sgd' as const, learningRate: 0.05, limit: 64 * 6, batchSize: 64, testLimit: 100, seed: 2 };
    const smoothed = await trainCnn({ ...common, mode, labelSmoothing: 0.1 });
    const other = await trainCnn({ ...common, mode: mode === 'eager' ? 'script' : 'eager', labelSmoothing: 0.1 });
    const plain = await trainCnn({ ...common, mode });
    expect(largestDifference(weightsOf(smoothed.model), weightsOf(other.model))).toBeLessThan(1e-5);
    expect(largestDifference(weightsOf(smoothed.model), weightsOf(plain.model))).toBeGreaterThan(1e-4);
    for (const m of [smoothed.model, other.model, plain.model, start]) m.dispose();
  });
});
