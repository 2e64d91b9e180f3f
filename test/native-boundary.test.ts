// The addon is typed once, in src/core/native.ts. These tests read those interfaces with the
// TypeScript compiler and check that the loaded addon registers exactly their members: an entry
// point added in C++ but not declared (or declared but never registered) fails here.
import * as fs from 'fs';
import * as path from 'path';
import * as ts from 'typescript';
import { native } from '../src/core/native';

const NATIVE_TS = path.join(__dirname, '..', 'src', 'core', 'native.ts');

/** The member names each interface of native.ts declares. */
function declaredMembers(): Map<string, string[]> {
  const source = ts.createSourceFile(NATIVE_TS, fs.readFileSync(NATIVE_TS, 'utf8'), ts.ScriptTarget.ES2022, true);
  const out = new Map<string, string[]>();
  source.forEachChild((node) => {
    if (!ts.isInterfaceDeclaration(node)) return;
    out.set(node.name.text, node.members.map((m) => (m.name && ts.isIdentifier(m.name) ? m.name.text : '')).filter((n) => n !== ''));
  });
  return out;
}

const declared = declaredMembers();
const sorted = (names: Iterable<string>) => [...names].sort();
const members = (name: string) => sorted(declared.get(name) ?? []);
/** Methods and accessors a native class defines on its prototype. */
const prototypeMembers = (cls: { prototype: object }) => sorted(Object.getOwnPropertyNames(cls.prototype).filter((n) => n !== 'constructor'));

test('the addon registers exactly what NativeAddon declares', () => {
  const addon = native();
  const expected = members('NativeAddon').filter((n) => n !== 'cuda' || addon.torchInfo().cudaSources);
  expect(sorted(Object.keys(addon))).toEqual(expected);
});

test('addon.ops registers exactly what NativeOps declares', () => {
  expect(sorted(Object.keys(native().ops))).toEqual(members('NativeOps'));
});

test.each([
  ['Tensor', 'NativeTensor'],
  ['Optimizer', 'NativeOptimizer'],
  ['ScriptModel', 'NativeScriptModel'],
] as const)('%s instances have exactly what %s declares', (cls, iface) => {
  expect(prototypeMembers(native()[cls])).toEqual(members(iface));
});

test('addon.cuda, where compiled in, registers exactly what NativeCuda declares', () => {
  const cuda = native().cuda;
  if (!cuda) return; // a build without native/cuda/: nothing registered, nothing to compare
  expect(sorted(Object.keys(cuda))).toEqual(members('NativeCuda'));
});
