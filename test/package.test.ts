// The npm package as a user gets it: `npm pack`, installed into a fresh project outside this one,
// where the README's snippets compile with `tsc --strict` (no @types beyond Node's) and run, as an ES
// module and from CommonJS, and the `convscope` command answers.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { spawnSync, SpawnSyncOptions } from 'child_process';
import { packageRoot } from '../src/util/package-root';

const root = packageRoot();
const addon = path.join(root, 'build', 'Release', 'convscope.node');

/** The README's snippets: a code block right after `<!-- snippet: NAME ... -->`. */
export function readmeSnippets(): Map<string, string> {
  const readme = fs.readFileSync(path.join(root, 'README.md'), 'utf8');
  const snippets = new Map<string, string>();
  for (const match of readme.matchAll(/<!-- snippet: (\S+)[^>]*-->\n```\w*\n([\s\S]*?)```/g)) snippets.set(match[1], match[2]);
  return snippets;
}

function run(command: string, args: string[], options: SpawnSyncOptions = {}): string {
  const result = spawnSync(command, args, { encoding: 'utf8', timeout: 300000, ...options });
  if (result.status !== 0) throw new Error(`${command} ${args.join(' ')} failed (${result.status}):\n${result.stdout}\n${result.stderr}`);
  return String(result.stdout);
}

describe('the npm package in a fresh project', () => {
  let consumer: string;
  // The consumer runs against this checkout's addon build (its install script, a node-gyp build, is
  // skipped to save minutes), and finds the optional drawing packages (node-canvas) here.
  let runtimeEnv: NodeJS.ProcessEnv;

  beforeAll(() => {
    consumer = fs.mkdtempSync(path.join(os.tmpdir(), 'convscope-consumer-'));
    const packed = run('npm', ['pack', '--ignore-scripts', '--pack-destination', consumer], { cwd: root }).trim().split('\n').pop()!;
    fs.writeFileSync(path.join(consumer, 'package.json'), JSON.stringify({ name: 'consumer', private: true, type: 'module' }));
    run('npm', ['install', '--ignore-scripts', '--omit=optional', '--prefer-offline', '--no-audit', '--no-fund', path.join(consumer, packed)], { cwd: consumer });
    runtimeEnv = { ...process.env, CONVSCOPE_ADDON: addon, NODE_PATH: path.join(root, 'node_modules') };
    for (const [name, code] of readmeSnippets()) fs.writeFileSync(path.join(consumer, name), code);
  }, 300000);
  afterAll(() => fs.rmSync(consumer, { recursive: true, force: true }));

  test('the README has both snippets', () => {
    expect([...readmeSnippets().keys()].sort()).toEqual(['commonjs.cjs', 'library.mts']);
  });

  test('the ES module snippet compiles with tsc --strict, needing no @types but Node\'s, and runs', () => {
    const tsc = path.join(root, 'node_modules', 'typescript', 'bin', 'tsc');
    run(process.execPath, [tsc, '--strict', '--module', 'nodenext', '--moduleResolution', 'nodenext', '--target', 'es2022',
      '--typeRoots', path.join(root, 'node_modules', '@types'), '--types', 'node', '--outDir', 'out', 'library.mts'], { cwd: consumer });
    const output = run(process.execPath, ['out/library.mjs'], { cwd: consumer, env: runtimeEnv });
    expect(output).toMatch(/test accuracy 0\.\d+ after 1 epoch\(s\)/);
    expect(output).toMatch(/class of the first image: \d/);
    for (const file of ['fashion.pt', 'fashion.ts.pt', 'fashion.onnx', 'conv1.png']) expect(fs.statSync(path.join(consumer, file)).size).toBeGreaterThan(0);
  }, 300000);

  test('the CommonJS snippet runs with require()', () => {
    expect(run(process.execPath, ['commonjs.cjs'], { cwd: consumer, env: runtimeEnv })).toMatch(/^libtorch \d+\.\d+\.\d+, 8 parameter tensors\n$/);
  });

  test('npx convscope --help lists the subcommands, export and export-filters among them', () => {
    const help = run(path.join(consumer, 'node_modules', '.bin', 'convscope'), ['--help'], { cwd: consumer });
    for (const command of ['train', 'export', 'export-filters', 'sweep-kernel']) expect(help).toMatch(new RegExp(`^\\s+${command}\\b`, 'm'));
  });
});
