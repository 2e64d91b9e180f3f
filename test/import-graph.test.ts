// The import graph of src/: every file lives in a layer folder, every import (static, type-only,
// require() or import() type) points to the same layer or a lower one, and no files import each
// other in a cycle. A new folder, or an arrow upwards, fails here until the order below says why.
import * as fs from 'fs';
import * as path from 'path';

const SRC = path.join(__dirname, '..', 'src');

/**
 * The layers, lowest first; a file may import its own layer and any layer before it. Folders in one
 * entry are peers and must not import each other. The public API (src/index.ts) re-exports every
 * layer; the command line and the demo server sit on top of it.
 */
const LAYERS: string[][] = [
  ['util'],            // validation, atomic writes, bounded reads, the package root, the project's Python
  ['core'],            // the addon loader and its types, ops, tidy scopes, host tensors
  ['formats'],         // bytes on disk: IDX, npy, PyTorch archives, checkpoint entries, ONNX
  ['data'],            // datasets: finding, verifying, downloading
  ['nn'],              // specs, layers, models, TorchScript
  ['viz', 'summary', 'distributed'], // pictures; TensorBoard event files; data-parallel groups (c10d)
  ['train'],           // trainCnn, evaluation, checkpoints, run folders
  ['probe'],           // attribution maps (explain) and their output folders
  ['experiments', 'tune'], // the exercise's experiments and the report; hyperparameter search
  ['demo'],            // the browser demo's model folder and server
  ['index'],           // the public API
  ['cli'],             // the convscope command
];

function layerOf(file: string): number {
  const rel = path.relative(SRC, file);
  const top = rel.includes(path.sep) ? rel.split(path.sep)[0] : path.basename(rel, '.ts');
  return LAYERS.findIndex((layer) => layer.includes(top));
}

function sourceFiles(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const full = path.join(dir, e.name);
    if (e.isDirectory()) return sourceFiles(full);
    return e.name.endsWith('.ts') ? [full] : [];
  });
}

/** The src/ files a file imports, by any of: import/export ... from, import '...', require(), import(). */
function importsOf(file: string): string[] {
  const text = fs.readFileSync(file, 'utf8').replace(/\/\*[\s\S]*?\*\//g, '').replace(/^\s*\/\/.*$/gm, '');
  const specifiers = [...text.matchAll(/(?:\bfrom\s*|\bimport\s*|\brequire\(\s*|\bimport\(\s*)['"](\.{1,2}\/[^'"]*)['"]/g)].map((m) => m[1]);
  return specifiers.map((spec) => {
    const base = path.resolve(path.dirname(file), spec);
    const target = [`${base}.ts`, path.join(base, 'index.ts')].find((candidate) => fs.existsSync(candidate));
    if (!target) throw new Error(`${path.relative(SRC, file)} imports ${spec}, which is not a file in src/`);
    return target;
  });
}

const files = sourceFiles(SRC);
const graph = new Map(files.map((f) => [f, importsOf(f)]));
const name = (f: string) => path.relative(SRC, f);

test('every file in src/ belongs to a layer (no loose files, no unlisted folders)', () => {
  expect(files.filter((f) => layerOf(f) < 0).map(name)).toEqual([]);
});

test('no import points from a lower layer to a higher one, nor between peer folders', () => {
  const upward = new Set<string>();
  for (const [from, targets] of graph) {
    for (const to of targets) {
      const [a, b] = [layerOf(from), layerOf(to)];
      const peers = a === b && name(from).split(path.sep)[0] !== name(to).split(path.sep)[0];
      if (b > a || peers) upward.add(`${name(from)} -> ${name(to)}`);
    }
  }
  expect([...upward]).toEqual([]);
});

test('no cycle among the files of src/', () => {
  const cycles: string[] = [];
  const state = new Map<string, 'open' | 'done'>();
  const stack: string[] = [];
  const visit = (file: string): void => {
    state.set(file, 'open');
    stack.push(file);
    for (const next of graph.get(file) ?? []) {
      if (state.get(next) === 'open') cycles.push([...stack.slice(stack.indexOf(next)), next].map(name).join(' -> '));
      else if (!state.has(next)) visit(next);
    }
    stack.pop();
    state.set(file, 'done');
  };
  for (const file of files) if (!state.has(file)) visit(file);
  expect(cycles).toEqual([]);
});

test('the checker sees every kind of import', () => {
  // A sample that uses each form, so a regression in the pattern cannot pass silently.
  expect(importsOf(path.join(SRC, 'index.ts')).map(name)).toContain(path.join('core', 'native.ts'));
  const all = [...graph.values()].flat().map(name);
  expect(all).toContain(path.join('viz', 'mosaic.ts')); // lazily require()d
});
