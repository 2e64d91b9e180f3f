// The CPU block cache (native/cpu_block_cache.h): large blocks freed by tensors are reused by the next
// tensor of that size, within a limit, and handed back on releaseFreeMemory; results do not depend on it.
import * as path from 'path';
import { spawnSync } from 'child_process';
import { native } from '../src/core/native';
import { trainCnn } from '../src/index';
import { presetOptions } from '../src/train/presets';
import { fashion } from './fixtures';

const MIB = 1024 * 1024;
// 512 x 512 float32: exactly 1 MiB, above the cache's 128 KiB floor.
const LARGE = [512, 512];

function withLimit<T>(bytes: number, fn: () => T): T {
  const before = native().cpuBlockCache().limitBytes;
  native().setCpuBlockCacheLimit(bytes);
  try {
    return fn();
  } finally {
    native().setCpuBlockCacheLimit(before);
  }
}

const allocate = (shape: number[]) => native().ops.uniform(shape, 0, 1);

describe('CPU block cache', () => {
  beforeEach(() => native().releaseFreeMemory());

  test('a large block freed by one tensor is handed to the next tensor of that size', () => {
    const first = native().cpuBlockCache();
    allocate(LARGE).dispose();
    const kept = native().cpuBlockCache();
    expect(kept.misses).toBe(first.misses + 1);
    expect(kept.cachedBytes).toBe(first.cachedBytes + MIB);
    expect(kept.cachedBlocks).toBe(first.cachedBlocks + 1);
    const again = allocate(LARGE);
    const reused = native().cpuBlockCache();
    expect(reused.hits).toBe(kept.hits + 1);
    expect(reused.misses).toBe(kept.misses);
    expect(reused.cachedBytes).toBe(first.cachedBytes);
    again.dispose();
  });

  test('small tensors are left to malloc', () => {
    const before = native().cpuBlockCache();
    allocate([10, 10]).dispose();
    expect(native().cpuBlockCache()).toEqual(before);
  });

  test('releaseFreeMemory empties the cache; blocks in use are not touched', () => {
    const live = allocate(LARGE);
    allocate(LARGE).dispose();
    expect(native().cpuBlockCache().cachedBytes).toBeGreaterThanOrEqual(MIB);
    native().releaseFreeMemory();
    expect(native().cpuBlockCache()).toMatchObject({ cachedBytes: 0, cachedBlocks: 0 });
    // Uniform in [0, 1): a freed block would read back as zeros or as someone else's values.
    const values = live.toTypedArray() as Float32Array;
    expect(values.every((v) => v >= 0 && v < 1)).toBe(true);
    expect(values.some((v) => v > 0)).toBe(true);
    live.dispose();
  });

  test('the cache never holds more than its limit; 0 turns it off', () => {
    withLimit(1.5 * MIB, () => {
      const a = allocate(LARGE);
      const b = allocate(LARGE);
      a.dispose();
      b.dispose();
      // The second block would take the cache over 1.5 MiB: it went back to malloc.
      expect(native().cpuBlockCache()).toMatchObject({ cachedBytes: MIB, cachedBlocks: 1, limitBytes: 1.5 * MIB });
    });
    withLimit(0, () => {
      const before = native().cpuBlockCache();
      allocate(LARGE).dispose();
      expect(native().cpuBlockCache()).toEqual(before);
    });
  });

  test('a bad setCpuBlockCacheLimit is refused naming the argument', () => {
    expect(() => native().setCpuBlockCacheLimit(-1)).toThrow(/bytes/);
  });

  test('$CONVSCOPE_CPU_CACHE_MB sets the limit; a malformed value is refused when the addon loads, naming the variable', () => {
    const load = (value: string) => spawnSync(process.execPath, ['-e', `
      const { native } = require(${JSON.stringify(path.join(__dirname, '..', 'dist', 'src', 'core', 'native.js'))});
      process.stdout.write(String(native().cpuBlockCache().limitBytes));`], { encoding: 'utf8', env: { ...process.env, CONVSCOPE_CPU_CACHE_MB: value } });
    const set = load('64');
    expect(set.stdout).toBe(String(64 * MIB));
    const bad = load('lots');
    expect(bad.status).toBe(1);
    expect(bad.stderr).toMatch(/CONVSCOPE_CPU_CACHE_MB.*"lots"/);
  });

  // Reused blocks hold the last tensor's values where fresh pages held zeros: any kernel that read
  // memory it had not written would train differently with the cache.
  test.each(['eager', 'script'] as const)('training gives bit-identical weights with and without the cache (%s, batch-norm net)', async (mode) => {
    const run = async () => {
      const r = await trainCnn({ dataset: fashion(), mode, spec: presetOptions('fast', 'fashion-mnist').spec, limit: 512, testLimit: 64, batchSize: 64, seed: 5 });
      const values = r.model.parameters().map((p) => Array.from(p.values));
      r.model.dispose();
      return values;
    };
    const hitsBefore = native().cpuBlockCache().hits;
    const cached = await run();
    expect(native().cpuBlockCache().hits).toBeGreaterThan(hitsBefore);
    const before = native().cpuBlockCache().limitBytes;
    native().setCpuBlockCacheLimit(0);
    try {
      expect(await run()).toEqual(cached);
    } finally {
      native().setCpuBlockCacheLimit(before);
    }
  }, 120_000);
});
