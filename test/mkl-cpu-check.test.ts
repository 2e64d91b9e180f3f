// MKL's CPU check (native/mkl_cpu_check.h): the addon lifts MKL's "Intel CPUs only" test so that MKL
// takes the kernels the CPU's instruction set allows; $CONVSCOPE_MKL_ANY_CPU=0 keeps MKL's own answer.
// The products must be right either way. Each setting needs a process of its own: MKL asks once.
import * as fs from 'fs';
import * as path from 'path';
import { spawnSync } from 'child_process';
import { native } from '../src/core/native';
import { skipBecause } from './helpers';

const nativeJs = path.join(__dirname, '..', 'dist', 'src', 'core', 'native.js');
const hasMkl = native().torchInfo().mklCpuCheck.mkl;
if (!hasMkl) skipBecause(`this libtorch (${native().torchInfo().version}) does not link MKL: nothing asks the addon`);
const cpuFlags = fs.existsSync('/proc/cpuinfo') ? fs.readFileSync('/proc/cpuinfo', 'utf8') : '';

function inChild(env: Record<string, string>, body: string): { status: number | null; stdout: string; stderr: string } {
  const script = `
    const { native } = require(${JSON.stringify(nativeJs)});
    const { fromHost } = require(${JSON.stringify(path.join(__dirname, '..', 'dist', 'src', 'core', 'ops.js'))});
    ${body}`;
  const run = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', env: { ...process.env, ...env } });
  return { status: run.status, stdout: run.stdout, stderr: run.stderr };
}

const REPORT = 'process.stdout.write(JSON.stringify(native().torchInfo().mklCpuCheck));';

// A float32 product of odd sizes (MKL's edge kernels too) against the same product in doubles.
const PRODUCT = `
  const [m, k, n] = [67, 301, 129];
  const a = Float32Array.from({ length: m * k }, (_, i) => Math.sin(i * 0.37));
  const b = Float32Array.from({ length: n * k }, (_, i) => Math.cos(i * 0.11));
  const x = fromHost(a, [m, k]), w = fromHost(b, [n, k]);
  const y = native().ops.linear(x, w);
  const got = y.toTypedArray();
  let worst = 0;
  for (let i = 0; i < m; ++i) for (let j = 0; j < n; ++j) {
    let exact = 0, scale = 0;
    for (let t = 0; t < k; ++t) { exact += a[i * k + t] * b[j * k + t]; scale += Math.abs(a[i * k + t] * b[j * k + t]); }
    worst = Math.max(worst, Math.abs(got[i * n + j] - exact) / scale);
  }
  [x, w, y].forEach((t) => t.dispose());
  process.stdout.write(JSON.stringify({ worst, check: native().torchInfo().mklCpuCheck }));`;

describe('MKL on any x86 CPU', () => {
  (hasMkl ? test : test.skip)('the check is lifted by default and kept with CONVSCOPE_MKL_ANY_CPU=0; MKL then takes other kernels on a CPU that is not Intel\'s', () => {
    const lifted = JSON.parse(inChild({}, PRODUCT).stdout) as { check: { branch: number; anyCpu: boolean; intelCpu: boolean } };
    const kept = JSON.parse(inChild({ CONVSCOPE_MKL_ANY_CPU: '0' }, PRODUCT).stdout) as typeof lifted;
    expect(lifted.check.anyCpu).toBe(true);
    expect(kept.check.anyCpu).toBe(false);
    expect(lifted.check.intelCpu).toBe(kept.check.intelCpu);
    if (lifted.check.intelCpu || !/\bavx2\b/.test(cpuFlags)) {
      // MKL's own answer is yes on Intel's CPUs; without AVX2 there is no faster kernel to take.
      expect(lifted.check.branch).toBe(kept.check.branch);
    } else {
      expect(lifted.check.branch).toBeGreaterThan(kept.check.branch);
    }
  });

  (hasMkl ? test : test.skip)('float32 products agree with doubles to 1e-6 of their scale with the check lifted and kept', () => {
    for (const env of [{}, { CONVSCOPE_MKL_ANY_CPU: '0' }]) {
      const run = inChild(env, PRODUCT);
      expect(run.stderr).toBe('');
      expect(JSON.parse(run.stdout).worst).toBeLessThan(1e-6);
    }
  });

  test('a malformed CONVSCOPE_MKL_ANY_CPU is refused when the addon loads, naming the variable and the value', () => {
    const run = inChild({ CONVSCOPE_MKL_ANY_CPU: 'yes' }, REPORT);
    expect(run.status).toBe(1);
    expect(run.stderr).toMatch(/CONVSCOPE_MKL_ANY_CPU.*"yes"/);
    expect(JSON.parse(inChild({ CONVSCOPE_MKL_ANY_CPU: '1' }, REPORT).stdout).anyCpu).toBe(true);
  });
});
