// Filter similarity, grouping, distinct-filter selection and pruning on hand-made weights, and the
// `convscope redundancy` command on a checkpoint with planted duplicates.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { createModel, findRedundantFilters } from '../src/index';
import { buildProgram } from '../src/cli/main';
import { modelFromParameters } from '../src/nn/model';
import type { CnnSpec } from '../src/nn/spec';
import { pruneFirstLayer, selectDistinctFilters } from '../src/experiments/fewer-filters';
import { channelMeanFilters } from '../src/experiments/redundancy';
import { filterTotalVariation } from '../src/experiments/regularization';
import { thrown } from './helpers';
import { fromHost, noGrad, ops } from '../src/core/ops';
import { tidy } from '../src/core/tidy';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'convscope-redundancy-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

// Two zero-mean 3x3 patterns with equal norms and cosine 0: a vertical and a horizontal edge.
const VERTICAL = [1, 0, -1, 1, 0, -1, 1, 0, -1];
const HORIZONTAL = [1, 1, 1, 0, 0, 0, -1, -1, -1];
const scaled = (v: number[], k: number, offset = 0) => v.map((x) => k * x + offset);

function weights(filters: number[][], inChannels = 1, k = 3): { data: Float32Array; shape: number[] } {
  return { data: Float32Array.from(filters.flat()), shape: [filters.length, inChannels, k, k] };
}

describe('findRedundantFilters', () => {
  // 0 and 1 identical, 2 the negation of 0, 3 unrelated, 4 constant.
  const w = weights([VERTICAL, [...VERTICAL], scaled(VERTICAL, -1), HORIZONTAL, new Array(9).fill(0.3)]);

  test('groups identical filters; a negated one and an unrelated one stay alone', () => {
    const r = findRedundantFilters(w);
    expect(r.groups).toEqual([[0, 1]]);
    expect(r.pairs).toEqual([{ a: 0, b: 1, similarity: 1 }]);
    expect(r.similarity[0][2]).toBeCloseTo(-1, 6);
    expect(r.similarity[0][3]).toBeCloseTo(0, 6);
    for (let i = 0; i < 5; i++) expect(r.similarity[i][i]).toBe(1);
  });

  test('signInvariant groups a filter with its negation', () => {
    const r = findRedundantFilters(w, { signInvariant: true });
    expect(r.groups).toEqual([[0, 1, 2]]);
    expect(r.similarity[0][2]).toBeCloseTo(1, 6);
    expect(r.groups.flat()).not.toContain(3);
  });

  test('a constant filter gives similarity 0 to the others, never NaN, and joins no group', () => {
    const r = findRedundantFilters(w, { signInvariant: true, threshold: 1e-9 });
    expect(r.constant).toEqual([4]);
    expect(r.similarity.flat().every(Number.isFinite)).toBe(true);
    expect(r.similarity[4].slice(0, 4)).toEqual([0, 0, 0, 0]);
    expect(r.groups.flat()).not.toContain(4);
    const allConstant = findRedundantFilters(weights([new Array(9).fill(1), new Array(9).fill(-2), new Array(9).fill(0)]));
    expect(allConstant.constant).toEqual([0, 1, 2]);
    expect(allConstant.groups).toEqual([]);
    expect(allConstant.similarity).toEqual([[1, 0, 0], [0, 1, 0], [0, 0, 1]]);
  });

  test('the mean is removed first: a brightness offset and a scale do not change the pattern', () => {
    const r = findRedundantFilters(weights([VERTICAL, scaled(VERTICAL, 3, 0.7)]));
    expect(r.similarity[0][1]).toBeCloseTo(1, 6);
    expect(r.groups).toEqual([[0, 1]]);
  });

  test('higher-layer filters are compared across all their input channels', () => {
    // 0: (V, H); 1: 2 * (V, H); 2: (V, -H), the same first channel but opposite second one.
    const r = findRedundantFilters(weights([[...VERTICAL, ...HORIZONTAL], scaled([...VERTICAL, ...HORIZONTAL], 2), [...VERTICAL, ...scaled(HORIZONTAL, -1)]], 2));
    expect(r.groups).toEqual([[0, 1]]);
    expect(r.similarity[0][2]).toBeCloseTo(0, 6);
  });

  test('groups are connected components: a chain links filters that are not similar directly', () => {
    const at = (degrees: number) => VERTICAL.map((v, i) => Math.cos((degrees * Math.PI) / 180) * v + Math.sin((degrees * Math.PI) / 180) * HORIZONTAL[i]);
    const r = findRedundantFilters(weights([at(0), at(90), at(20), at(40)]), { threshold: 0.9 });
    expect(r.similarity[0][3]).toBeCloseTo(Math.cos((40 * Math.PI) / 180), 5);
    expect(r.pairs.map((p) => [p.a, p.b])).toEqual(expect.arrayContaining([[0, 2], [2, 3]]));
    expect(r.pairs).toHaveLength(2);
    expect(r.groups).toEqual([[0, 2, 3]]);
  });

  test('bad input is rejected with an error naming the option', () => {
    expect(thrown(() => findRedundantFilters(w, { threshold: 0 })).message).toMatch(/threshold/);
    expect(thrown(() => findRedundantFilters(w, { threshold: 1.5 })).name).toBe('RangeError');
    expect(thrown(() => findRedundantFilters(w, { signInvariant: 'yes' as unknown as boolean })).name).toBe('TypeError');
    expect(thrown(() => findRedundantFilters(w, { treshold: 0.5 } as never)).message).toMatch(/treshold/);
    expect(thrown(() => findRedundantFilters({ data: new Float32Array(9), shape: [1, 9] })).name).toBe('RangeError');
    expect(thrown(() => findRedundantFilters(weights([[NaN, 0, 0, 0, 0, 0, 0, 0, 0]]))).message).toMatch(/weights/);
  });
});

describe('selectDistinctFilters', () => {
  test('drops duplicates before distinct filters, and keeps a negation (it detects the opposite edge)', () => {
    const noisy = VERTICAL.map((v, i) => v + 0.01 * Math.sin(i));
    const w = weights([VERTICAL, [...VERTICAL], scaled(VERTICAL, -1), HORIZONTAL, noisy]);
    const kept = selectDistinctFilters(w, 3);
    expect(kept).toHaveLength(3);
    expect(kept.filter((i) => [0, 1, 4].includes(i))).toHaveLength(1);
    expect(kept).toEqual(expect.arrayContaining([2, 3]));
    expect(selectDistinctFilters(w, 5)).toEqual([0, 1, 2, 3, 4]);
    expect(thrown(() => selectDistinctFilters(w, 6)).name).toBe('RangeError');
  });
});

describe('pruneFirstLayer', () => {
  const specs: Record<string, CnnSpec> = {
    'two conv layers (conv2 input channels)': { conv: [{ filters: 6, kernelSize: 5, pool: true }, { filters: 4, kernelSize: 3, pool: true }], dense: [16], dropout: 0 },
    'one conv layer (fc1 columns)': { conv: [{ filters: 6, kernelSize: 3, pool: true }], dense: [], dropout: 0 },
    'batch norm (its scale, shift and statistics per filter)': { conv: [{ filters: 6, kernelSize: 5, pool: true }, { filters: 4, kernelSize: 3, pool: true }], dense: [16], dropout: 0, batchNorm: true },
  };
  for (const [name, spec] of Object.entries(specs)) {
    test(`gives the predictions of the full network with the other filters switched off: ${name}`, () => {
      const model = createModel(spec, { seed: 3 });
      // One batch in training mode moves batch norm's running statistics away from 0 and 1.
      tidy(() => noGrad(() => model.forward(ops().to(fromHost(new Uint8Array(8 * 784).map((_, i) => (i * 53) % 256), [8, 1, 28, 28]), null, 'float32'), { training: true })));
      const kept = [1, 3, 4];
      const pruned = pruneFirstLayer(model, kept);
      // Zero weights and bias (and batch norm's scale, shift and mean) make a dropped filter's ReLU
      // output 0, so it adds nothing downstream.
      const perFilter = ['conv1.weight', 'conv1.bias', 'conv1_bn.weight', 'conv1_bn.bias', 'conv1_bn.running_mean'];
      const switchedOff = modelFromParameters(spec, [...model.parameters(), ...model.buffers()].map((p) => {
        if (!perFilter.includes(p.name)) return p;
        const per = p.values.length / p.shape[0];
        const values = p.values.map((v, i) => (kept.includes(Math.floor(i / per)) ? v : 0));
        return { ...p, values };
      }));
      expect(pruned.spec.conv[0].filters).toBe(3);
      const per = spec.conv[0].kernelSize ** 2;
      const original = model.parameters()[0].values;
      const conv1 = pruned.parameters().find((p) => p.name === 'conv1.weight')!;
      kept.forEach((f, i) => expect(Array.from(conv1.values.subarray(i * per, (i + 1) * per))).toEqual(Array.from(original.subarray(f * per, (f + 1) * per))));
      const images = new Uint8Array(4 * 784).map((_, i) => (i * 37) % 256);
      const a = pruned.predict(images);
      const b = switchedOff.predict(images);
      a.forEach((v, i) => expect(v).toBeCloseTo(b[i], 5));
      const same = pruneFirstLayer(model, [0, 1, 2, 3, 4, 5]);
      expect(Array.from(same.predict(images))).toEqual(Array.from(model.predict(images)));
      for (const m of [model, pruned, switchedOff, same]) m.dispose();
    });
  }
});

describe('filterTotalVariation', () => {
  test('is 2 for a 2x2 checkerboard, 0 for a constant filter, and ignores scale', () => {
    expect(filterTotalVariation({ data: new Float32Array([1, -1, -1, 1]), shape: [1, 1, 2, 2] })).toBeCloseTo(2, 6);
    expect(filterTotalVariation({ data: new Float32Array([5, -5, -5, 5]), shape: [1, 1, 2, 2] })).toBeCloseTo(2, 6);
    expect(filterTotalVariation({ data: new Float32Array([0.4, 0.4, 0.4, 0.4]), shape: [1, 1, 2, 2] })).toBe(0);
    // A zero filter is left out of the mean rather than dividing by zero.
    expect(filterTotalVariation({ data: new Float32Array([1, -1, -1, 1, 0, 0, 0, 0]), shape: [2, 1, 2, 2] })).toBeCloseTo(2, 6);
  });
});

describe('channelMeanFilters', () => {
  test('averages a deeper filter over its input channels and leaves first-layer filters alone', () => {
    const deep = channelMeanFilters({ data: Float32Array.from([1, 2, 3, 4, 3, 2, 1, 0]), shape: [1, 2, 2, 2] });
    expect(deep.shape).toEqual([1, 1, 2, 2]);
    expect(Array.from(deep.data)).toEqual([2, 2, 2, 2]);
    const first = { data: new Float32Array(4), shape: [1, 1, 2, 2] };
    expect(channelMeanFilters(first)).toBe(first);
  });
});

async function runCli(args: string[]): Promise<string> {
  let out = '';
  const write = jest.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
    out += String(chunk);
    return true;
  });
  try {
    await buildProgram().exitOverride().parseAsync(['node', 'convscope', ...args]);
  } finally {
    write.mockRestore();
  }
  return out;
}

describe('convscope redundancy', () => {
  const spec: CnnSpec = { conv: [{ filters: 12, kernelSize: 5, pool: true }, { filters: 8, kernelSize: 3, pool: true }], dense: [], dropout: 0 };
  const checkpoint = path.join(tmp, 'planted.pt');

  beforeAll(() => {
    // Filter 5 copies filter 2 and filter 7 is its negation; random 25-value filters are far apart.
    const model = createModel(spec, { seed: 11 });
    const params = model.parameters().map((p) => {
      if (p.name !== 'conv1.weight') return p;
      const values = Float32Array.from(p.values);
      for (let i = 0; i < 25; i++) {
        values[5 * 25 + i] = values[2 * 25 + i];
        values[7 * 25 + i] = -values[2 * 25 + i];
      }
      return { ...p, values };
    });
    const planted = modelFromParameters(spec, params);
    planted.save(checkpoint);
    planted.dispose();
    model.dispose();
  });

  test('finds the planted duplicate and writes the heatmap, the framed mosaic and groups.json', async () => {
    const out = path.join(tmp, 'conv1');
    const printed = await runCli(['redundancy', checkpoint, '--threshold', '0.95', '--out', out]);
    const groups = JSON.parse(fs.readFileSync(path.join(out, 'groups.json'), 'utf8'));
    expect(groups.groups.map((g: { filters: number[] }) => g.filters)).toEqual([[2, 5]]);
    expect(groups.pairs[0]).toMatchObject({ a: 2, b: 5 });
    expect(groups.threshold).toBe(0.95);
    expect(printed).toMatch(/1 group\(s\)/);
    expect(printed).toMatch(/2, 5/);
    for (const png of ['similarity.png', 'redundant-filters.png']) {
      expect(fs.readFileSync(path.join(out, png)).subarray(1, 4).toString()).toBe('PNG');
    }
  });

  test('--sign-invariant adds the negated filter to the group; --layer conv2 works on multi-channel filters', async () => {
    const out = path.join(tmp, 'signed');
    await runCli(['redundancy', checkpoint, '--threshold', '0.95', '--sign-invariant', '--out', out]);
    expect(JSON.parse(fs.readFileSync(path.join(out, 'groups.json'), 'utf8')).groups[0].filters).toEqual([2, 5, 7]);
    const out2 = path.join(tmp, 'conv2');
    const printed = await runCli(['redundancy', checkpoint, '--layer', 'conv2', '--out', out2]);
    const record = JSON.parse(fs.readFileSync(path.join(out2, 'groups.json'), 'utf8'));
    expect(record.shape).toEqual([8, 12, 3, 3]);
    expect(printed).toMatch(/conv2: 0 group/);
    expect(fs.existsSync(path.join(out2, 'redundant-filters.png'))).toBe(true);
  });

  test('an unknown layer is a clear error', async () => {
    await expect(runCli(['redundancy', checkpoint, '--layer', 'conv9', '--out', path.join(tmp, 'x')])).rejects.toThrow(/conv1, conv2/);
  });
});
