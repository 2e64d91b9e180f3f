// How libtorch's OpenMP threads wait (src/core/native.ts): convscope's defaults fill only what the user
// left unset, and a loaded addon's process has them before libgomp reads them.
import * as path from 'path';
import { spawnSync } from 'child_process';
import { DEFAULT_GOMP_SPINCOUNT, DEFAULT_OMP_WAIT_POLICY, openMpDefaults } from '../src/core/native';

describe('OpenMP defaults', () => {
  test('neither variable set: a passive policy with a bounded spin', () => {
    expect(openMpDefaults({})).toEqual({ OMP_WAIT_POLICY: DEFAULT_OMP_WAIT_POLICY, GOMP_SPINCOUNT: DEFAULT_GOMP_SPINCOUNT });
  });

  test('a user\'s policy keeps its meaning (no spin count), a user\'s spin count is kept', () => {
    expect(openMpDefaults({ OMP_WAIT_POLICY: 'ACTIVE' })).toEqual({});
    expect(openMpDefaults({ GOMP_SPINCOUNT: '0' })).toEqual({ OMP_WAIT_POLICY: DEFAULT_OMP_WAIT_POLICY });
  });

  // libgomp prints the settings it read when it starts (OMP_DISPLAY_ENV): set too late, they would not show.
  test('libgomp reads them when the addon loads', () => {
    const env = { ...process.env, OMP_DISPLAY_ENV: 'VERBOSE' };
    delete env.OMP_WAIT_POLICY;
    delete env.GOMP_SPINCOUNT;
    const run = spawnSync(process.execPath, ['-e', `
      const { native } = require(${JSON.stringify(path.join(__dirname, '..', 'dist', 'src', 'core', 'native.js'))});
      native();`], { encoding: 'utf8', env });
    expect(run.status).toBe(0);
    expect(run.stderr).toContain(`OMP_WAIT_POLICY = '${DEFAULT_OMP_WAIT_POLICY}'`);
    expect(run.stderr).toContain(`GOMP_SPINCOUNT = '${DEFAULT_GOMP_SPINCOUNT}'`);
  });
});
