// The Python that tests, benchmarks and compare-modes run PyTorch in: the project's own (.venv, made by
// scripts/setup.sh with a pinned PyTorch 2.x), so that convscope is compared with the PyTorch users
// have today. $CONVSCOPE_PYTHON overrides; without .venv, Debian's python3 (PyTorch 1.13) is the fallback.
import * as fs from 'fs';
import * as path from 'path';
import { spawnSync } from 'child_process';
import { packageRoot } from './package-root';

export function projectPython(): string {
  if (process.env.CONVSCOPE_PYTHON) return process.env.CONVSCOPE_PYTHON;
  const venv = path.join(packageRoot(), '.venv', 'bin', 'python3');
  return fs.existsSync(venv) ? venv : '/usr/bin/python3';
}

/** Why `python` cannot import every one of `modules` (the last line of its error), or null if it can. */
export function pythonLacks(python: string, modules: string[]): string | null {
  const run = spawnSync(python, ['-c', `import ${modules.join(', ')}`], { encoding: 'utf8' });
  if (run.status === 0) return null;
  return `${python} cannot import ${modules.join(', ')} (${(run.stderr || String(run.error)).trim().split('\n').pop()})`;
}
