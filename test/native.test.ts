// The addon itself: tensors across the boundary, disposal and counting, errors, info, both builds.
import * as fs from 'fs';
import * as path from 'path';
import { spawnSync } from 'child_process';
import { addonCandidates, loadAddonFrom, native } from '../src/core/native';
import { packageRoot } from '../src/util/package-root';
import { expectError, thrown } from './helpers';

const addon = native();

// The libtorch fallback check (test/libtorch.test.ts) runs this file against another build.
if (process.env.CONVSCOPE_EXPECT_TORCH) {
  test(`runs on libtorch ${process.env.CONVSCOPE_EXPECT_TORCH}x`, () => {
    expect(addon.torchInfo().version.startsWith(process.env.CONVSCOPE_EXPECT_TORCH!)).toBe(true);
  });
}

describe('Tensor round trip', () => {
  test('float32 values and shape survive the copy in and out', () => {
    const data = new Float32Array([1.5, -2, 3.25, 0, 1e-8, -1e30]);
    const t = new addon.Tensor(data, [2, 3]);
    expect(t.shape).toEqual([2, 3]);
    expect(t.dtype).toBe('float32');
    expect(t.device).toBe('cpu');
    expect(Array.from(t.toTypedArray() as Float32Array)).toEqual(Array.from(data));
    t.dispose();
  });

  test('uint8 and int64 round-trip into the matching typed arrays', () => {
    const bytes = new Uint8Array([0, 1, 128, 255]);
    const u = new addon.Tensor(bytes, [4]);
    expect(u.dtype).toBe('uint8');
    const back = u.toTypedArray();
    expect(back).toBeInstanceOf(Uint8Array);
    expect(Array.from(back as Uint8Array)).toEqual([0, 1, 128, 255]);
    const longs = new BigInt64Array([0n, -1n, 9007199254740993n]);
    const l = new addon.Tensor(longs, [3, 1]);
    expect(l.dtype).toBe('int64');
    expect(l.shape).toEqual([3, 1]);
    expect(Array.from(l.toTypedArray() as BigInt64Array)).toEqual([0n, -1n, 9007199254740993n]);
    u.dispose();
    l.dispose();
  });

  test('the tensor owns a copy: changing the source array later does not change it', () => {
    const data = new Float32Array([1, 2, 3]);
    const t = new addon.Tensor(data, [3]);
    data[0] = 99;
    expect((t.toTypedArray() as Float32Array)[0]).toBe(1);
    t.dispose();
  });

  test('a view into a larger buffer copies only the view', () => {
    const big = new Float32Array([9, 9, 1, 2, 3, 9]);
    const t = new addon.Tensor(big.subarray(2, 5), [3]);
    expect(Array.from(t.toTypedArray() as Float32Array)).toEqual([1, 2, 3]);
    t.dispose();
  });

  test('empty and scalar shapes', () => {
    const empty = new addon.Tensor(new Float32Array(0), [0, 5]);
    expect(empty.shape).toEqual([0, 5]);
    expect((empty.toTypedArray() as Float32Array).length).toBe(0);
    const scalar = new addon.Tensor(new Float32Array([4]), []);
    expect(scalar.shape).toEqual([]);
    expect(scalar.item()).toBe(4);
    empty.dispose();
    scalar.dispose();
  });
});

describe('dispose and live counts', () => {
  test('liveTensors() goes back to its baseline after dispose', () => {
    const baseline = addon.liveTensors();
    const made = Array.from({ length: 25 }, (_, i) => new addon.Tensor(new Float32Array([i]), [1]));
    const sum = addon.ops.add(made[0], made[1]);
    expect(addon.liveTensors()).toBe(baseline + 26);
    for (const t of made) t.dispose();
    sum.dispose();
    expect(addon.liveTensors()).toBe(baseline);
  });

  test('use after dispose is a clear error, and a second dispose is harmless', () => {
    const t = new addon.Tensor(new Float32Array([1]), [1]);
    t.dispose();
    expect(t.isDisposed).toBe(true);
    expect(() => t.toTypedArray()).toThrow(/used after dispose/);
    expect(() => t.shape).toThrow(/used after dispose/);
    expect(() => addon.ops.add(t, t)).toThrow(/used after dispose/);
    expect(() => t.dispose()).not.toThrow();
  });
});

describe('errors', () => {
  test('wrong argument types are TypeErrors that name the argument', () => {
    expect(thrown(() => new addon.Tensor('nope' as never, [1])).name).toBe('TypeError');
    expect(() => new addon.Tensor(new Float32Array(1), 'x' as never)).toThrow(/Expected an array of integers for shape/);
    expect(thrown(() => addon.ops.add({} as never, {} as never)).name).toBe('TypeError');
    expect(() => addon.ops.add({} as never, {} as never)).toThrow(/Expected a Tensor for a/);
    expect(thrown(() => addon.setNumThreads('two' as never)).name).toBe('TypeError');
  });

  test('out-of-range values are RangeErrors', () => {
    expect(thrown(() => new addon.Tensor(new Float32Array(5), [2, 3])).name).toBe('RangeError');
    expect(() => new addon.Tensor(new Float32Array(5), [2, 3])).toThrow(/6 elements to match shape but received 5/);
    expect(thrown(() => addon.setNumThreads(0)).name).toBe('RangeError');
    expect(thrown(() => new addon.Tensor(new Float32Array(1), [-1])).name).toBe('RangeError');
  });

  test('a libtorch failure is a JS Error without the C++ backtrace, and the process lives on', () => {
    const a = new addon.Tensor(new Float32Array(6), [2, 3]);
    const b = new addon.Tensor(new Float32Array(4), [4, 1]);
    let message = '';
    try {
      addon.ops.linear(a, b, null);
    } catch (err) {
      message = (err as Error).message;
    }
    expect(message).toMatch(/^libtorch: /);
    expect(message).not.toMatch(/frame #|Exception raised from/);
    a.dispose();
    b.dispose();
  });

  // The checkpoint format (a dict pickled without type tags, for PyTorch 2.x's weights_only loader)
  // must still read back in every libtorch convscope builds on, Debian's 1.13 included.
  test('encodeStateDict and decodeStateDict round-trip tensors and strings', () => {
    const w = new addon.Tensor(new Float32Array([1.5, -2, 3]), [3]);
    const bytes = addon.encodeStateDict({ 'fc.weight': w, 'convscope.meta': '{"a":1}' });
    const back = addon.decodeStateDict(bytes);
    expect(back['convscope.meta']).toBe('{"a":1}');
    const t = back['fc.weight'] as typeof w;
    expect(Array.from(t.toTypedArray() as Float32Array)).toEqual([1.5, -2, 3]);
    for (const x of [w, t]) x.dispose();
  });

  // The entry points that parse bytes, compile source or run on a worker thread: libtorch's failures
  // there must come back as JS errors too, and the process must go on.
  test('decodeStateDict, ScriptModel, Optimizer.loadState and trainEpoch turn libtorch failures into JS errors', async () => {
    expect(() => addon.decodeStateDict(Buffer.from('PK\u0003\u0004 not really a zip'))).toThrow(/^libtorch: /);
    // A TorchScript compile error is not a c10::Error; it still arrives as a JS error naming the cause.
    expect(() => new addon.ScriptModel({ source: 'def forward(self, x):\n    return undefined_name\n', parameters: [] })).toThrow(/undefined value undefined_name/);
    const w = new addon.Tensor(new Float32Array(4), [2, 2]);
    w.requiresGrad = true;
    const optimizer = new addon.Optimizer([w], { kind: 'adam', learningRate: 0.1 });
    expect(() => optimizer.loadState(Buffer.from('junk'))).toThrow(/^libtorch: /);
    const module = new addon.ScriptModel({ source: 'def forward(self, x):\n    return torch.linear(x, self.fc.weight, None)\n', parameters: [['fc.weight', w]] });
    // Images of 3 pixels for a 2-input layer: the shape error happens inside the native epoch.
    const images = new addon.Tensor(new Uint8Array(12), [4, 1, 3]);
    const labels = new addon.Tensor(new BigInt64Array(4), [4]);
    const order = new addon.Tensor(new BigInt64Array([0n, 1n, 2n, 3n]), [4]);
    await expect(addon.trainEpoch({ model: module, optimizer, images, labels, order, batchSize: 2, mean: 0, std: 1 }).promise).rejects.toThrow(/failed in the TorchScript interpreter/);
    expect(addon.ops.add(w, w).shape).toEqual([2, 2]); // still alive
    for (const t of [images, labels, order, w]) t.dispose();
    module.dispose();
    optimizer.dispose();
  });

  test('unsupported typed arrays and dtypes are refused', () => {
    expect(() => new addon.Tensor(new Uint16Array(2) as never, [2])).toThrow(/unsupported typed array/);
    expect(thrown(() => addon.ops.zeros([2], 'complex' as never)).name).toBe('RangeError');
  });
});

describe('optimizer', () => {
  // PyTorch's Adam, written out: the native one must take exactly these steps.
  // Adam's update as PyTorch writes it; AdamW (decoupled) scales the parameter instead of adding the decay to the gradient.
  function adamReference(p0: number, grads: number[], lr: number, b1 = 0.9, b2 = 0.999, eps = 1e-8, decay = 0, decoupled = false): number {
    let p = p0, m = 0, v = 0;
    grads.forEach((g0, i) => {
      if (decoupled) p *= 1 - lr * decay;
      const g = decoupled ? g0 : g0 + decay * p;
      m = b1 * m + (1 - b1) * g;
      v = b2 * v + (1 - b2) * g * g;
      const step = i + 1;
      p -= (lr / (1 - b1 ** step)) * (m / (Math.sqrt(v / (1 - b2 ** step)) + eps));
    });
    return p;
  }

  test.each([[0, 'adam'], [0.1, 'adam'], [0.1, 'adamw']] as const)('Adam steps match the PyTorch formula (weight decay %p, %s)', (decay, kind) => {
    const p = new addon.Tensor(new Float32Array([1.5, -0.25]), [2]);
    p.requiresGrad = true;
    // loss = c * (p[0] + p[1]): the gradient is c for both elements.
    const stepWith = (opt: ReturnType<typeof makeAdam>, c: number) => {
      const scaled = addon.ops.mulScalar(p, c);
      const first = addon.ops.slice(scaled, 0, 0, 1);
      const second = addon.ops.slice(scaled, 0, 1, 2);
      const total = addon.ops.add(first, second);
      opt.zeroGrad();
      total.backward();
      opt.step();
      for (const t of [scaled, first, second, total]) t.dispose();
    };
    const makeAdam = () => new addon.Optimizer([p], { kind, learningRate: 0.01, weightDecay: decay });
    const opt = makeAdam();
    const factors = [0.5, -2, 3];
    for (const c of factors) stepWith(opt, c);
    const values = () => Array.from(p.toTypedArray() as Float32Array);
    const decoupled = kind === 'adamw';
    expect(values()[0]).toBeCloseTo(adamReference(1.5, factors, 0.01, 0.9, 0.999, 1e-8, decay, decoupled), 5);
    expect(values()[1]).toBeCloseTo(adamReference(-0.25, factors, 0.01, 0.9, 0.999, 1e-8, decay, decoupled), 5);
    // A fresh optimizer given the saved state continues the same sequence (moments and step count kept).
    const again = makeAdam();
    again.loadState(opt.saveState());
    stepWith(again, 1);
    expect(values()[0]).toBeCloseTo(adamReference(1.5, [...factors, 1], 0.01, 0.9, 0.999, 1e-8, decay, decoupled), 5);
    opt.dispose();
    again.dispose();
    p.dispose();
  });

  // float32 CPU parameters take the fused one-pass update; float64 ones take the foreach route
  // (op by op on libtorch 1.13). 40,003 elements span several parallel tasks and end in a partial vector.
  test.each([[0, 'adam'], [0.05, 'adam'], [0.05, 'adamw']] as const)('the fused Adam update agrees with the list-wise update on a large parameter (weight decay %p, %s)', (decay, kind) => {
    const n = 40_003;
    const start = Float64Array.from({ length: n }, (_, i) => Math.sin(i * 0.37) * 2);
    const run = (values: Float32Array | Float64Array): number[] => {
      const p = new addon.Tensor(values, [1, n]);
      p.requiresGrad = true;
      const opt = new addon.Optimizer([p], { kind, learningRate: 0.01, weightDecay: decay });
      for (let step = 0; step < 3; step++) {
        // loss = sum(p * c): the gradient is c, different for every element and every step.
        const c = values instanceof Float32Array
          ? Float32Array.from({ length: n }, (_, i) => Math.cos(i * 0.11 + step) * (1 + (i % 7)))
          : Float64Array.from({ length: n }, (_, i) => Math.cos(i * 0.11 + step) * (1 + (i % 7)));
        const coefficients = new addon.Tensor(c, [1, n]);
        const loss = addon.ops.linear(p, coefficients, null);
        opt.zeroGrad();
        loss.backward();
        opt.step();
        loss.dispose();
        coefficients.dispose();
      }
      const out = Array.from(p.toTypedArray() as Float32Array | Float64Array);
      opt.dispose();
      p.dispose();
      return out;
    };
    const fused = run(Float32Array.from(start));
    const reference = run(Float64Array.from(start));
    let worst = 0;
    for (let i = 0; i < n; i++) worst = Math.max(worst, Math.abs(fused[i] - reference[i]) / Math.max(1e-3, Math.abs(reference[i])));
    expect(worst).toBeLessThan(1e-5);
    // The parameters moved by about 3 steps of 0.01: the comparison is not between untouched copies.
    expect(Math.abs(fused[1] - start[1])).toBeGreaterThan(0.01);
  });
});

describe('torchInfo and threads', () => {
  test('reports the loaded libtorch', () => {
    const info = addon.torchInfo();
    expect(info.version).toMatch(/^\d+\.\d+/);
    expect(typeof info.cuda).toBe('boolean');
    expect(info.deviceCount).toBeGreaterThanOrEqual(0);
    expect(fs.existsSync(info.libtorchPath)).toBe(true);
    expect(info.threads).toBeGreaterThanOrEqual(1);
  });

  test('the loader sets one thread per usable core', () => {
    expect(addon.torchInfo().threads).toBe(require('os').availableParallelism());
    addon.setNumThreads(1);
    expect(addon.torchInfo().threads).toBe(1);
    addon.setNumThreads(require('os').availableParallelism());
  });

  test('manualSeed makes draws repeatable', () => {
    addon.manualSeed(7);
    const a = addon.ops.uniform([5], -1, 1);
    addon.manualSeed(7);
    const b = addon.ops.uniform([5], -1, 1);
    expect(Array.from(a.toTypedArray() as Float32Array)).toEqual(Array.from(b.toTypedArray() as Float32Array));
    a.dispose();
    b.dispose();
  });
});

describe('both builds', () => {
  const builds = [
    ['node-gyp', path.join(packageRoot(), 'build', 'Release', 'convscope.node')],
    ['cmake (libtorch 1.13)', path.join(packageRoot(), 'build-libtorch1', 'Release', 'convscope.node')],
  ].filter(([, file]) => fs.existsSync(file));
  test('the loader lists node-gyp\'s build and CMake\'s', () => {
    expect(addonCandidates()).toEqual(expect.arrayContaining([builds[0][1], path.join(packageRoot(), 'build-cmake', 'Release', 'convscope.node')]));
  });
  test.each(builds)('the %s build loads in a fresh process and computes', (_name, file) => {
    // A fresh process: one process cannot load two copies of the same addon.
    const script = `const a = require(${JSON.stringify(file)}); const t = new a.Tensor(new Float32Array([1,2]), [2]);` +
      'const s = a.ops.add(t, t); process.stdout.write(JSON.stringify([a.torchInfo().version, Array.from(s.toTypedArray())]));';
    const run = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8' });
    expect(run.stderr).toBe('');
    const [version, values] = JSON.parse(run.stdout);
    if (file.includes('libtorch1')) expect(version).toMatch(/^1\./);
    // The default build is the addon this process loaded, unless CONVSCOPE_ADDON chose another.
    else if (!process.env.CONVSCOPE_ADDON) expect(version).toBe(addon.torchInfo().version);
    expect(values).toEqual([2, 4]);
  });
  test('a missing addon file gives an error that says how to fix it', () => {
    expect(() => loadAddonFrom('/nonexistent/convscope.node')).toThrow(/scripts\/setup.sh/);
  });
});

describe('libtorch finder', () => {
  test('describes the libtorch it found and the link flags it uses', () => {
    const { findLibtorch, linkFlags } = require('../scripts/find-libtorch.js');
    const found = findLibtorch();
    expect(found.includeDirs.some((d: string) => d.endsWith(path.join('torch', 'csrc', 'api', 'include')))).toBe(true);
    const flags = linkFlags(found).join(' ');
    expect(flags).toContain(`-Wl,-rpath,${found.libDir}`);
    expect(flags).toContain('-ltorch');
    if (found.cuda) expect(flags).toMatch(/--no-as-needed -ltorch_cuda -lc10_cuda -Wl,--as-needed/);
  });
  test('with nothing to find, one message lists what was tried and how to fix it', () => {
    const run = spawnSync(process.execPath, [path.join(packageRoot(), 'scripts', 'find-libtorch.js'), 'include'], {
      encoding: 'utf8',
      env: { ...process.env, LIBTORCH: '/nonexistent', TORCH_PYTHON: '/nonexistent/python', PATH: '/nonexistent' },
    });
    // The system install may still be found; then LIBTORCH's failure must not be silent about the order.
    if (run.status === 0) {
      expect(run.stderr).toMatch(/using libtorch from system/);
    } else {
      expect(run.stderr).toMatch(/LIBTORCH=\/nonexistent/);
      expect(run.stderr).toMatch(/apt-get install libtorch-dev/);
    }
  });
});
