// Feeds mutated IDX files to readIdx: every outcome must be a valid parse or an IdxFormatError
// with a message, never a crash, a hang or another kind of exception. Seeded, so a failure
// reproduces: the failing case's index and mutation are in the assertion message.

import { mkdtempSync, rmSync, writeFileSync } from 'fs';
import { tmpdir } from 'os';
import { join } from 'path';
import { gzipSync } from 'zlib';
import { encodeIdx, IdxArray, IdxFormatError, readIdx } from '../src/formats/idx';

// Override to explore further, e.g. CONVSCOPE_FUZZ_SEED=7 CONVSCOPE_FUZZ_CASES=50000 npx jest test/fuzz-idx.test.ts
const SEED = Number(process.env.CONVSCOPE_FUZZ_SEED ?? 0xc0ffee);
const CASES = Number(process.env.CONVSCOPE_FUZZ_CASES ?? 3000);
const FILE_EVERY = 25; // every 25th case goes through a real file, to check the path is named

/** mulberry32: tiny, fast, good enough to pick mutations reproducibly. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const random = prng(SEED);
const int = (n: number) => Math.floor(random() * n);

function filled<T extends { length: number; [i: number]: number }>(array: T, value: (i: number) => number): T {
  for (let i = 0; i < array.length; i++) array[i] = value(i);
  return array;
}

const bases: Buffer[] = (
  [
    { dtype: 'uint8', dims: [4, 5, 5], data: filled(new Uint8Array(100), (i) => i * 7) },
    { dtype: 'uint8', dims: [3, 64, 64], data: filled(new Uint8Array(3 * 64 * 64), () => int(256)) }, // > 4 KiB gzipped
    { dtype: 'int8', dims: [17], data: filled(new Int8Array(17), (i) => i - 8) },
    { dtype: 'int16', dims: [3, 7], data: filled(new Int16Array(21), (i) => i * -1000) },
    { dtype: 'int32', dims: [9], data: filled(new Int32Array(9), (i) => i * 123456789) },
    { dtype: 'float32', dims: [2, 2, 2, 2], data: filled(new Float32Array(16), (i) => i / 3) },
    { dtype: 'float64', dims: [5, 1], data: filled(new Float64Array(5), (i) => -i * 1e10) },
  ] as IdxArray[]
).map(encodeIdx);

type Mutation = { name: string; apply: (b: Buffer) => Buffer };

const mutations: Mutation[] = [
  {
    name: 'bit flips',
    apply: (b) => {
      const out = Buffer.from(b);
      const flips = 1 + int(4);
      for (let i = 0; i < flips; i++) {
        // Half the flips hit the header, where a single bit changes the most.
        const at = random() < 0.5 ? int(Math.min(out.length, 20)) : int(out.length);
        out[at] ^= 1 << int(8);
      }
      return out;
    },
  },
  { name: 'truncation', apply: (b) => b.subarray(0, int(b.length)) },
  {
    name: 'inflated dim',
    apply: (b) => {
      const out = Buffer.from(b);
      const ndims = out[3];
      const choices = [0xffffffff, 0x80000000, 0x10000, 2 ** int(32), int(2 ** 32), out.readUInt32BE(4) + 1];
      out.writeUInt32BE(choices[int(choices.length)] >>> 0, 4 + 4 * int(ndims));
      return out;
    },
  },
  {
    name: 'ndims/dtype byte',
    apply: (b) => {
      const out = Buffer.from(b);
      out[2 + int(2)] = int(256);
      return out;
    },
  },
  { name: 'appended bytes', apply: (b) => Buffer.concat([b, Buffer.alloc(1 + int(64), int(256))]) },
];

const gzipMutations: Mutation[] = [mutations[0], mutations[1]];

function checkOutcome(input: string | Buffer, label: string): 'parsed' | 'rejected' {
  let result: IdxArray;
  try {
    result = readIdx(input);
  } catch (error) {
    if (!(error instanceof Error)) throw new Error(`${label}: threw a non-Error ${String(error)}`);
    if (!(error instanceof IdxFormatError)) throw new Error(`${label}: threw ${error.name} instead of IdxFormatError: ${error.message}`);
    if (error.message.length === 0) throw new Error(`${label}: empty message`);
    const name = typeof input === 'string' ? input : '<buffer>';
    if (!error.message.includes(name)) throw new Error(`${label}: message does not name ${name}: ${error.message}`);
    return 'rejected';
  }
  const items = result.dims.reduce((a, b) => a * b, 1);
  if (result.data.length !== items) throw new Error(`${label}: dims [${result.dims}] but ${result.data.length} values`);
  return 'parsed';
}

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'convscope-fuzz-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

test(`${CASES} mutated IDX files parse or fail cleanly (seed ${SEED})`, () => {
  const counts = { parsed: 0, rejected: 0 };
  let slowest = 0;
  const started = performance.now();
  for (let i = 0; i < CASES; i++) {
    const base = bases[int(bases.length)];
    const mutation = mutations[int(mutations.length)];
    let bytes = mutation.apply(base);
    let label = `case ${i}: ${mutation.name}`;
    const kind = int(3); // 0 raw, 1 gzip of the mutated file, 2 mutated gzip of the valid file
    if (kind === 1) {
      bytes = gzipSync(bytes);
      label += ', then gzip';
    } else if (kind === 2) {
      const gzMutation = gzipMutations[int(gzipMutations.length)];
      bytes = gzMutation.apply(gzipSync(base));
      label = `case ${i}: gzip, then ${gzMutation.name}`;
    }
    let input: string | Buffer = bytes;
    if (i % FILE_EVERY === 0) {
      input = join(dir, `case-${i}.idx`);
      writeFileSync(input, bytes);
    }
    const caseStarted = performance.now();
    counts[checkOutcome(input, label)]++;
    slowest = Math.max(slowest, performance.now() - caseStarted);
  }
  const elapsed = performance.now() - started;
  console.log(`fuzz: ${counts.parsed} parsed, ${counts.rejected} rejected in ${elapsed.toFixed(0)} ms (slowest case ${slowest.toFixed(1)} ms)`);
  expect(counts.parsed + counts.rejected).toBe(CASES);
  expect(counts.rejected).toBeGreaterThan(CASES / 2);
  expect(slowest).toBeLessThan(1000);
  expect(elapsed).toBeLessThan(Math.max(10_000, CASES * 5));
});
