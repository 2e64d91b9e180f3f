// binding.gyp compiles native/'s sources in two unity units (native/unity/bindings.cc says why). A
// source that no unit includes would be missing from the addon (a link error at best, a symbol that
// resolves at load time at worst); one included twice would be defined twice. Every source of native/
// must be compiled exactly once: listed in binding.gyp's sources or included by one unity unit.
import * as fs from 'fs';
import * as path from 'path';

const root = path.join(__dirname, '..');
const native = path.join(root, 'native');

/** binding.gyp's source lists (the target's and its conditions'), paths relative to the project. */
function gypSources(): string[] {
  // gyp files are Python literals: drop the # comments, then read them as JSON.
  const text = fs.readFileSync(path.join(root, 'binding.gyp'), 'utf8').replace(/^\s*#.*$/gm, '');
  const found: string[] = [];
  const visit = (node: unknown): void => {
    if (Array.isArray(node)) node.forEach(visit);
    else if (node && typeof node === 'object') {
      for (const [key, value] of Object.entries(node)) {
        if (key === 'sources' && Array.isArray(value)) found.push(...value.map(String));
        else visit(value);
      }
    }
  };
  visit(JSON.parse(text));
  return found;
}

/** What a unity unit includes, as paths relative to the project. */
function unityIncludes(unit: string): string[] {
  const text = fs.readFileSync(path.join(root, unit), 'utf8');
  return [...text.matchAll(/^#include "([^"]+\.cc)"/gm)].map((m) => path.relative(root, path.resolve(path.dirname(path.join(root, unit)), m[1])));
}

test('every source in native/ is compiled exactly once by the node-gyp build', () => {
  const listed = gypSources();
  const units = listed.filter((s) => s.startsWith('native/unity/'));
  expect(units.length).toBeGreaterThanOrEqual(2);
  const compiled = [...listed.filter((s) => !s.startsWith('native/unity/')), ...units.flatMap(unityIncludes)];
  const sources = fs.readdirSync(native).filter((f) => f.endsWith('.cc')).map((f) => `native/${f}`);
  const cudaSources = fs.readdirSync(path.join(native, 'cuda')).filter((f) => f.endsWith('.cc')).map((f) => `native/cuda/${f}`);
  expect([...compiled].sort()).toEqual([...sources, ...cudaSources].sort());
});

test('a unity unit includes only sources of native/, each by a path that exists', () => {
  for (const unit of fs.readdirSync(path.join(native, 'unity'))) {
    for (const source of unityIncludes(`native/unity/${unit}`)) {
      expect(fs.existsSync(path.join(root, source))).toBe(true);
      expect(path.dirname(source)).toBe('native');
    }
  }
});
