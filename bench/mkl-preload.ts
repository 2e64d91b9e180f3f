// What a PyTorch user does to get MKL's fast kernels on a CPU that is not Intel's: LD_PRELOAD a library
// that answers MKL's vendor question (bench/mkl_any_cpu.c), as convscope's addon does inside its own
// process. The bench compiles it once per run with the system's C compiler.
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { packageRoot } from '../src/util/package-root';

let built: { env: Record<string, string> } | { unavailable: string } | undefined;

/** The environment that preloads it, or why it cannot be built here (no C compiler). */
export function mklAnyCpuPreload(): { env: Record<string, string> } | { unavailable: string } {
  if (built) return built;
  const out = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'convscope-mkl-')), 'mkl_any_cpu.so');
  const cc = process.env.CC ?? 'cc';
  const run = spawnSync(cc, ['-shared', '-fPIC', '-O2', '-o', out, path.join(packageRoot(), 'bench', 'mkl_any_cpu.c')], { encoding: 'utf8' });
  built = run.status === 0 ? { env: { LD_PRELOAD: out } } : { unavailable: `cannot build the MKL preload with ${cc}: ${(run.stderr || String(run.error)).trim().split('\n').pop()}` };
  return built;
}
