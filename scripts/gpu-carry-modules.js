// Copies a minimal node_modules for the GPU machine (which has no npm and no network) into
// .gpu-carry/node_modules: only the packages that loading and training convscope, node-gyp's
// rebuild and jest on compiled tests actually open, without type declarations, source maps, docs
// and tests. The lists below were taken with `strace -f -e trace=openat` on those three runs
// (jest: passing, failing, skipped and timed-out tests; node-gyp: configure with --nodedir plus
// loading its clean/build/rebuild code); the runtime list is widened to the whole dependency
// closure of package.json's runtime dependencies (minus canvas and the other optional ones).
// Used by scripts/gpu-pack.sh. usage: node scripts/gpu-carry-modules.js [DEST]
'use strict';
const fs = require('fs');
const path = require('path');

const root = path.join(__dirname, '..');
const source = path.join(root, 'node_modules');
const dest = path.resolve(root, process.argv[2] || '.gpu-carry/node_modules');

/** Runtime dependencies whose whole closure goes (importing dist/src/index.js opens most of them). */
const RUNTIME_ROOTS = ['@node-rs/crc32', 'cli-progress', 'cli-table3', 'commander', 'gifenc', 'ndarray', 'onnx-proto', 'protobufjs', 'node-addon-api'];

/** node-gyp rebuild --nodedir ... (clean, configure, build): what it opens; no download code. */
const NODE_GYP = ['node-gyp', 'node-gyp/node_modules/isexe', 'node-gyp/node_modules/which', 'abbrev', 'env-paths', 'fdir',
  'graceful-fs', 'nopt', 'picomatch', 'proc-log', 'semver', 'tinyglobby'];

/** jest 30 running plain JavaScript tests (transform: {}), in band (-i): what it opens, its sandbox too. */
const JEST = `@babel/code-frame @babel/helper-validator-identifier @jest/console @jest/core @jest/diff-sequences @jest/expect
@jest/expect-utils @jest/fake-timers @jest/get-type @jest/pattern @jest/react-is-18 @jest/react-is-19
@jest/reporters @jest/snapshot-utils @jest/source-map @jest/test-result @jest/test-sequencer @jest/transform
@jridgewell/resolve-uri @jridgewell/sourcemap-codec @jridgewell/trace-mapping @sinonjs/commons @sinonjs/fake-timers
@unrs/resolver-binding-linux-x64-gnu ansi-styles anymatch anymatch/node_modules/picomatch bser chalk char-regex
ci-info cliui co convert-source-map dedent detect-newline emittery escalade escape-string-regexp expect
fast-json-stable-stringify fb-watchman fdir find-up get-caller-file graceful-fs has-flag import-local
is-generator-fn jest jest-circus jest-cli jest-config jest-diff jest-docblock jest-each jest-environment-node
jest-haste-map jest-matcher-utils jest-message-util jest-mock jest-regex-util jest-resolve jest-runner jest-runtime
jest-snapshot jest-util jest-validate jest-validate/node_modules/camelcase jest-watcher js-tokens locate-path
natural-compare node-int64 normalize-path p-limit p-locate p-locate/node_modules/p-limit p-try path-exists
picocolors picomatch pirates pkg-dir pretty-format pretty-format/node_modules/ansi-styles pure-rand
require-directory resolve-cwd resolve-from slash stack-utils string-length strip-bom supports-color type-detect
unrs-resolver wrap-ansi y18n yargs yargs-parser yocto-queue`.split(/\s+/);

const SKIP_DIRS = new Set(['node_modules', 'test', 'tests', '__tests__', 'docs', 'doc', 'example', 'examples', '.github', 'benchmark', 'coverage']);
const SKIP_FILE = /(\.map|\.d\.[cm]?ts|\.md|\.markdown|\.ts|\.tsbuildinfo|_test\.py|\.flow)$|^(CHANGELOG|HISTORY|CHANGES)/i;
/** Folders of packages that nothing here loads: browser bundles and the protobufjs command line. */
const PRUNE = { protobufjs: ['dist', 'cli'], 'onnx-proto/node_modules/protobufjs': ['dist', 'cli'], '@sinclair/typebox': ['esm'] };

/** Where `name` resolves from the package folder `from` (relative to node_modules), as Node does. */
function resolvePackage(name, from) {
  let dir = from;
  for (;;) {
    const candidate = dir ? `${dir}/node_modules/${name}` : name;
    if (fs.existsSync(path.join(source, candidate, 'package.json'))) return candidate;
    if (!dir) return null;
    const at = dir.lastIndexOf('/node_modules/');
    dir = at < 0 ? '' : dir.slice(0, at);
  }
}

function closure(roots) {
  const seen = new Set();
  const visit = (pkg) => {
    if (seen.has(pkg)) return;
    seen.add(pkg);
    const manifest = JSON.parse(fs.readFileSync(path.join(source, pkg, 'package.json'), 'utf8'));
    for (const dep of Object.keys({ ...manifest.dependencies, ...manifest.optionalDependencies })) {
      const found = resolvePackage(dep, pkg);
      if (found) visit(found);
      else if (!(manifest.optionalDependencies || {})[dep]) throw new Error(`${pkg} needs ${dep}, which is not installed`);
    }
  };
  for (const r of roots) visit(resolvePackage(r, '') ?? (() => { throw new Error(`${r} is not installed`); })());
  return seen;
}

function copyPackage(pkg) {
  const prune = new Set(PRUNE[pkg] || []);
  let bytes = 0;
  const walk = (rel) => {
    for (const entry of fs.readdirSync(path.join(source, pkg, rel), { withFileTypes: true })) {
      const file = rel ? `${rel}/${entry.name}` : entry.name;
      if (entry.isDirectory()) {
        if (!SKIP_DIRS.has(entry.name) && !(rel === '' && prune.has(entry.name))) walk(file);
      } else if ((entry.isFile() || entry.isSymbolicLink()) && (file === 'package.json' || !SKIP_FILE.test(entry.name))) {
        const target = path.join(dest, pkg, file);
        fs.mkdirSync(path.dirname(target), { recursive: true });
        fs.copyFileSync(path.join(source, pkg, file), target);
        bytes += fs.statSync(target).size;
      }
    }
  };
  walk('');
  return bytes;
}

const packages = new Set([...closure(RUNTIME_ROOTS), ...NODE_GYP, ...JEST]);
for (const pkg of packages) {
  if (!fs.existsSync(path.join(source, pkg, 'package.json'))) throw new Error(`${pkg} is not installed in node_modules (run npm ci)`);
}
fs.rmSync(dest, { recursive: true, force: true });
let total = 0;
for (const pkg of [...packages].sort()) total += copyPackage(pkg);
// node-gyp runs gyp from its own folder: keep its executable bits.
for (const bin of ['node-gyp/gyp/gyp_main.py', 'node-gyp/gyp/gyp']) {
  const file = path.join(dest, bin);
  if (fs.existsSync(file)) fs.chmodSync(file, 0o755);
}
console.log(`gpu-carry-modules: ${packages.size} packages, ${(total / 1048576).toFixed(1)} MiB into ${path.relative(root, dest)}`);
