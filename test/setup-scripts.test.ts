// The set-up scripts (issue 32): the main job's set-up builds nothing that only the tests need, CI's
// check of that can fail, and a second run of scripts/setup.sh finds everything in place and says so,
// step by step with each step's time.
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { packageRoot } from '../src/util/package-root';
import { skipBecause } from './helpers';

const root = packageRoot();
const CHECK = path.join(root, 'scripts', 'check-main-setup.sh');

describe('scripts/check-main-setup.sh (run by .ci/run right after scripts/setup.sh)', () => {
  let dir: string;
  beforeEach(() => {
    // A project folder as the main job's set-up leaves it: the addon and the TypeScript build, no more.
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'convscope-setup-check-'));
    fs.mkdirSync(path.join(dir, 'scripts'));
    fs.copyFileSync(CHECK, path.join(dir, 'scripts', 'check-main-setup.sh'));
    for (const file of ['build/Release/convscope.node', 'dist/src/cli/main.js']) {
      fs.mkdirSync(path.join(dir, path.dirname(file)), { recursive: true });
      fs.writeFileSync(path.join(dir, file), '');
    }
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  const check = () => spawnSync('bash', [path.join(dir, 'scripts', 'check-main-setup.sh')], { encoding: 'utf8' });

  test('passes a folder with only the main job\'s builds', () => {
    const run = check();
    expect(run.stderr).toBe('');
    expect(run.status).toBe(0);
  });

  test.each([
    ['build-libtorch1/Release/convscope.node', /libtorch 1\.13 fallback/],
    ['build-cuda/build/Release/convscope.node', /CUDA compile check/],
    ['.venv-cuda/bin/python3', /CUDA wheel/],
  ])('fails, naming it, when the main set-up made %s', (made, message) => {
    fs.mkdirSync(path.join(dir, path.dirname(made)), { recursive: true });
    fs.writeFileSync(path.join(dir, made), '');
    const run = check();
    expect(run.status).toBe(1);
    expect(run.stderr).toMatch(message);
    expect(run.stderr).toMatch(/setup-tests\.sh's job/);
  });

  test('fails when .venv can import a package only the tests use', () => {
    // A stand-in interpreter that imports anything: what a .venv with onnx and tensorboard answers.
    const python = path.join(dir, '.venv', 'bin', 'python3');
    fs.mkdirSync(path.dirname(python), { recursive: true });
    fs.writeFileSync(python, '#!/bin/sh\nexit 0\n', { mode: 0o755 });
    const run = check();
    expect(run.status).toBe(1);
    expect(run.stderr).toMatch(/Python package onnx, which only tests use/);
  });

  test('fails when the addon was not built', () => {
    fs.rmSync(path.join(dir, 'build'), { recursive: true });
    const run = check();
    expect(run.status).toBe(1);
    expect(run.stderr).toMatch(/did not make the addon/);
  });
});

describe('scripts/setup.sh run again', () => {
  // Under CI the test command's set-up has just run it, so everything is in place and this run must
  // build nothing. Elsewhere it would rebuild what a developer changed since, in the middle of the
  // tests: it runs there only when asked (CONVSCOPE_TEST_SETUP=1).
  const wanted = process.env.CI === 'true' || process.env.CONVSCOPE_TEST_SETUP === '1';
  if (!wanted) skipBecause('the second run of scripts/setup.sh runs under CI, or with CONVSCOPE_TEST_SETUP=1');
  (wanted ? test : test.skip)('finds every step in place and prints each step with its time', () => {
    const run = spawnSync('bash', [path.join(root, 'scripts', 'setup.sh')], { cwd: root, encoding: 'utf8', timeout: 120000 });
    expect(run.status).toBe(0);
    const lines = run.stdout.split('\n');
    const steps = lines.filter((l) => / \.\.\.$/.test(l)).map((l) => l.replace(/^setup: | \.\.\.$/g, ''));
    expect(steps.length).toBeGreaterThanOrEqual(5);
    for (const step of steps) expect(lines.some((l) => l.startsWith(`setup: ${step}: done in `) && / s$/.test(l))).toBe(true);
    // Each step's detail says it found its part in place: nothing rebuilt or installed.
    const details = lines.filter((l) => l.startsWith('setup:   '));
    expect(details.length).toBe(steps.length);
    for (const detail of details) expect(detail).toMatch(/^setup: {3}(up to date|present: |\.venv up to date)/);
    expect(run.stdout).not.toMatch(/fallback|CUDA compile check|Chromium/);
    expect(run.stdout).toMatch(/main job's set-up done in [\d.]+ s/);
  });
});
