// Issue 34 #1-#4: checkpoints whose structure lies. Built here from their parts (a pickle assembled
// opcode by opcode, records stored or deflated into a zip), so that each lie is exactly one: a
// storage record shorter than its declared size, tensor views with zero, overlapping or out-of-range
// strides and offsets, lists nested deep, deflated records that inflate to gigabytes, zip64 fields
// in a small file. The archive and pickle checks refuse them before libtorch reads them; a seeded
// fuzz run decodes mutants in a child process, where a crash counts as a failure.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as zlib from 'zlib';
import { spawnSync } from 'child_process';
import { native } from '../src/core/native';
import { readCheckpointEntries } from '../src/formats/checkpoint';
import { MAX_PICKLE_DEPTH } from '../src/formats/pickle-scan';
import { checkArchive } from '../src/formats/archive-check';
import { rejected, skipBecause, thrown, settledLiveTensors } from './helpers';
import { createModel, defaultSpec, loadModel, loadTorchScript, presetOptions, PRESETS, trainCnn } from '../src/index';
import { fashion } from './fixtures';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'convscope-checkpoint-structure-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));
const dist = path.join(__dirname, '..', 'dist', 'src', 'formats', 'checkpoint.js');

// --- a pickle, opcode by opcode (protocol 2, as torch.save writes it) ---
const op = (...codes: number[]) => Buffer.from(codes);
const text = (s: string) => Buffer.from(s, 'utf8');
const u32 = (n: number) => { const b = Buffer.alloc(4); b.writeUInt32LE(n); return b; };
const str = (s: string) => Buffer.concat([op(0x58), u32(Buffer.byteLength(s)), text(s)]);
const global = (module: string, name: string) => Buffer.concat([op(0x63), text(`${module}\n${name}\n`)]);
function int(n: number): Buffer {
  if (n >= 0 && n < 256) return op(0x4b, n);
  if (n >= -(2 ** 31) && n < 2 ** 31) { const b = Buffer.alloc(5); b[0] = 0x4a; b.writeInt32LE(n, 1); return b; }
  const b = Buffer.alloc(10); b[0] = 0x8a; b[1] = 8; b.writeBigInt64LE(BigInt(n), 2); return b;
}
const tuple = (items: Buffer[]) => Buffer.concat([op(0x28), ...items, op(0x74)]);
const MARK = op(0x28); const SETITEMS = op(0x75); const EMPTY_DICT = op(0x7d); const STOP = op(0x2e);

interface TensorSpec { key: string; numel: number; offset: number; size: number[]; stride: number[]; type?: string; dtype?: string }
function tensor(t: TensorSpec): Buffer {
  // An untyped storage (how PyTorch saves uint16, float8, ...) counts bytes; the dtype comes last.
  const type = t.type === 'UntypedStorage' ? global('torch.storage', 'UntypedStorage') : global('torch', t.type ?? 'FloatStorage');
  const storage = tuple([str('storage'), type, str(t.key), str('cpu'), int(t.numel)]);
  const dtype = t.dtype ? [global('torch', t.dtype)] : [];
  const args = tuple([Buffer.concat([storage, op(0x51)]), int(t.offset), tuple(t.size.map(int)), tuple(t.stride.map(int)), op(0x89), global('collections', 'OrderedDict'), op(0x29), op(0x52), ...dtype]);
  return Buffer.concat([global('torch._utils', '_rebuild_tensor_v2'), args, op(0x52)]);
}
const stateDict = (entries: [string, Buffer][]) => Buffer.concat([op(0x80, 2), EMPTY_DICT, MARK, ...entries.flatMap(([k, v]) => [str(k), v]), SETITEMS, STOP]);

// --- a zip of records, stored or deflated (what torch.save and miniz write) ---
interface Record { name: string; data: Buffer; deflate?: boolean; declaredSize?: number }
function zip(records: Record[]): Buffer {
  const locals: Buffer[] = [];
  const central: Buffer[] = [];
  let offset = 0;
  for (const r of records) {
    const body = r.deflate ? zlib.deflateRawSync(r.data) : r.data;
    const name = text(r.name);
    const crc = zlib.crc32(r.data) >>> 0;
    const local = Buffer.alloc(30);
    local.writeUInt32LE(0x04034b50, 0); local.writeUInt16LE(20, 4); local.writeUInt16LE(r.deflate ? 8 : 0, 8);
    local.writeUInt32LE(crc, 14); local.writeUInt32LE(body.length, 18); local.writeUInt32LE(r.declaredSize ?? r.data.length, 22); local.writeUInt16LE(name.length, 26);
    const head = Buffer.alloc(46);
    head.writeUInt32LE(0x02014b50, 0); head.writeUInt16LE(20, 4); head.writeUInt16LE(20, 6); head.writeUInt16LE(r.deflate ? 8 : 0, 10);
    head.writeUInt32LE(crc, 16); head.writeUInt32LE(body.length, 20); head.writeUInt32LE(r.declaredSize ?? r.data.length, 24);
    head.writeUInt16LE(name.length, 28); head.writeUInt32LE(offset, 42);
    locals.push(local, name, body);
    central.push(head, name);
    offset += local.length + name.length + body.length;
  }
  const directory = Buffer.concat(central);
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0); end.writeUInt16LE(records.length, 8); end.writeUInt16LE(records.length, 10);
  end.writeUInt32LE(directory.length, 12); end.writeUInt32LE(offset, 16);
  return Buffer.concat([...locals, directory, end]);
}

const floats = (n: number) => Buffer.from(Float32Array.from({ length: n }, (_, i) => i + 1).buffer);
/** A checkpoint of one tensor `w` over storage 0 holding `recordFloats` floats. */
function checkpoint(t: Partial<TensorSpec>, recordFloats = t.numel ?? 12, extra: Record[] = []): Buffer {
  const spec: TensorSpec = { key: '0', numel: 12, offset: 0, size: [3, 4], stride: [4, 1], ...t };
  return zip([{ name: 'archive/data.pkl', data: stateDict([['w', tensor(spec)]]) }, { name: 'archive/data/0', data: floats(recordFloats) }, ...extra, { name: 'archive/version', data: text('3\n') }]);
}

function write(name: string, bytes: Buffer): string {
  const file = path.join(tmp, name);
  fs.writeFileSync(file, bytes);
  return file;
}

test('records are named as libtorch finds them, ignoring case: duplicates are refused, an upper-case pickle is checked', () => {
  const spec: TensorSpec = { key: '0', numel: 12, offset: 0, size: [3, 4], stride: [4, 1] };
  const pickle = stateDict([['w', tensor(spec)]]);
  const duplicate = zip([{ name: 'archive/data.pkl', data: pickle }, { name: 'archive/data/0', data: floats(2) }, { name: 'archive/DATA/0', data: floats(12) }]);
  expect(() => checkArchive(duplicate)).toThrow(/two records named archive\/DATA\/0 \(names are compared ignoring case\)/);
  const upper = zip([{ name: 'archive/DATA.PKL', data: pickle }, { name: 'archive/DATA/0', data: floats(2) }]);
  expect(() => checkArchive(upper)).toThrow(/archive\/DATA\.PKL: storage 0 declares 12 elements/);
});

test('checkArchive checks the pickles whatever options it is given (TorchScript passes none)', () => {
  expect(() => checkArchive(checkpoint({}, 11))).toThrow(/storage 0 declares 12 elements/);
});

test('a tensor over an untyped storage that fits its bytes passes the structural check', () => {
  expect(checkArchive(checkpoint({ type: 'UntypedStorage', dtype: 'uint16', numel: 6, size: [3], stride: [1] }, 2))).toContain('archive/data.pkl');
});

describe('the builder makes checkpoints libtorch reads', () => {
  test.each([
    ['a contiguous tensor', {}],
    ['a transposed view', { size: [4, 3], stride: [1, 4] }],
    ['a view at an offset', { offset: 4, size: [2, 4], stride: [4, 1] }],
    ['a size-1 dimension with any stride', { size: [1, 12], stride: [0, 1] }],
    ['an empty tensor', { size: [0, 4], stride: [4, 1] }],
  ] as [string, Partial<TensorSpec>][])('%s', (_name, t) => {
    const entries = readCheckpointEntries(write('good.pt', checkpoint(t)));
    const w = entries.w as import('../src/core/native').NativeTensor;
    expect(w.shape).toEqual(t.size ?? [3, 4]);
    w.dispose();
  });
});

describe('lies in the structure are refused before libtorch reads them (#1, #3)', () => {
  const cases: [string, Buffer, RegExp][] = [
    ['a storage record shorter than declared (#1)', checkpoint({ numel: 1 << 20, size: [1024, 1024], stride: [1024, 1] }, 12), /storage 0 declares 1048576 elements of torch\.FloatStorage \(4194304 bytes\) but its record holds 48 bytes/],
    ['a storage record one float short', checkpoint({}, 11), /storage 0 declares 12 elements .* \(48 bytes\) but its record holds 44 bytes/],
    ['a view past the end of its storage', checkpoint({ offset: 4, size: [3, 4], stride: [4, 1] }), /reaches element 15 of storage 0, which holds 12/],
    ['zero strides (#3: a 4-byte storage as gigabytes)', checkpoint({ numel: 1, size: [1 << 20, 3136], stride: [0, 0] }, 1), /has a zero or negative stride \[0,0\]/],
    ['a negative stride', checkpoint({ size: [3, 4], stride: [4, -1] }), /zero or negative stride/],
    ['overlapping strides', checkpoint({ size: [3, 4], stride: [1, 1] }), /overlapping strides \[1,1\]/],
    ['a negative offset', checkpoint({ offset: -1 }), /storage offset -1 is not an integer >= 0/],
    ['a storage that names no record', checkpoint({ key: '7' }), /storage 7 has no record in the archive/],
    ['one storage declared with two sizes', zip([{ name: 'archive/data.pkl', data: stateDict([['a', tensor({ key: '0', numel: 4, offset: 0, size: [4], stride: [1] })], ['b', tensor({ key: '0', numel: 12, offset: 0, size: [12], stride: [1] })]]) }, { name: 'archive/data/0', data: floats(12) }]), /storage 0 is declared with 4 and with 12 elements/],
    ['an unknown storage type', checkpoint({ type: 'EvilStorage' }), /Python global torch\.EvilStorage, which this file has no use for/],
    ['sizes and strides of different lengths', checkpoint({ size: [12], stride: [1, 1] }), /1 sizes but 2 strides/],
    ['a uint16 view past the bytes of its untyped storage', checkpoint({ type: 'UntypedStorage', dtype: 'uint16', numel: 6, size: [4], stride: [1] }, 2), /reaches element 3 of storage 0, which holds 3/],
    ['an untyped storage without a dtype', checkpoint({ type: 'UntypedStorage', numel: 48 }), /names no dtype of known size/],
  ];
  test.each(cases)('%s', async (_name, bytes, message) => {
    const file = write('lie.pt', bytes);
    const before = await settledLiveTensors();
    const err = thrown(() => readCheckpointEntries(file));
    expect(err.name).toBe('CheckpointError');
    expect(err.message).toMatch(/lie\.pt: is not a readable PyTorch checkpoint \(archive\/data\.pkl( at byte \d+)?: /);
    expect(err.message).toMatch(message);
    expect(native().liveTensors()).toBe(before);
  });
});

describe('a model whose training cannot fit in memory is refused with its count and bytes, before any tensor (#3)', () => {
  // The issue's spec: the default convolutions, then 1 << 20 hidden units (3,136 inputs each).
  const huge = { ...defaultSpec(), dense: [1 << 20] };
  const HUGE_PARAMETERS = 3299920778;
  const HUGE_ADAM_BYTES = HUGE_PARAMETERS * 4 * 4; // weights, gradients, Adam's two moments in float32
  // Where the machine has that much memory, the spec fits and is rightly not refused: then these skip.
  const hugeTest = HUGE_ADAM_BYTES > os.totalmem() ? test : (skipBecause(`${os.totalmem()} bytes of memory hold the dense [1 << 20] spec's ${HUGE_ADAM_BYTES}`), test.skip);
  // Two such layers (2^40 weights between them, 17 TB to train) fit no machine: this one runs everywhere.
  const larger = { ...defaultSpec(), dense: [1 << 20, 1 << 20] };
  const sizeMessage = (parameters: number, optimizer: string) => new RegExp(`: ${parameters} parameters need ${parameters * 16} bytes to train with ${optimizer} \\(weights, gradients and optimizer state\\), more than the machine's ${os.totalmem()}`);
  const META = 'convscope.meta';
  /** A small checkpoint (one real tensor) whose metadata declares `spec`. */
  const declaring = (spec: object) => zip([
    { name: 'archive/data.pkl', data: stateDict([[META, str(JSON.stringify({ format: 'convscope-checkpoint/1', spec, mode: 'eager', inputNorm: { mean: 0, std: 1 } }))], ['w', tensor({ key: '0', numel: 12, offset: 0, size: [3, 4], stride: [4, 1] })]]) },
    { name: 'archive/data/0', data: floats(12) },
    { name: 'archive/version', data: text('3\n') },
  ]);

  hugeTest('trainCnn, knowing its optimizer (Adam), refuses the issue\'s spec', async () => {
    const before = await settledLiveTensors();
    const started = Date.now();
    const err = await rejected(trainCnn({ dataset: fashion(), spec: huge, limit: 64, testLimit: 64, pictures: false }));
    expect(err.name).toBe('RangeError');
    expect(err.message).toMatch(/^Expected a spec whose training fits in memory for spec but received a value of type object: 3299920778 parameters need 52798732448 bytes to train with adam \(weights, gradients and optimizer state\), more than the machine's \d+$/);
    expect(native().liveTensors()).toBe(before);
    expect(Date.now() - started).toBeLessThan(5000);
  });

  hugeTest('createModel refuses the issue\'s spec', async () => {
    const before = await settledLiveTensors();
    const err = thrown(() => createModel(huge));
    expect(err.name).toBe('RangeError');
    expect(err.message).toMatch(/^Expected a spec whose training fits in memory for spec but received a value of type object/);
    expect(err.message).toMatch(sizeMessage(HUGE_PARAMETERS, 'adam, the most any optimizer keeps'));
    expect(native().liveTensors()).toBe(before);
  });

  hugeTest('loadModel refuses a 2 KB checkpoint that declares the issue\'s spec, freeing what it decoded', async () => {
    const file = write('huge-spec.pt', declaring(huge));
    const before = await settledLiveTensors();
    const err = thrown(() => loadModel(file));
    expect(err.name).toBe('CheckpointError');
    expect(err.message).toMatch(/huge-spec\.pt: holds a spec whose model cannot fit in memory \(Expected a spec whose training fits in memory/);
    expect(err.message).toMatch(sizeMessage(HUGE_PARAMETERS, 'adam, the most any optimizer keeps'));
    expect(native().liveTensors()).toBe(before);
  });

  test('createModel and loadModel refuse a spec no machine holds (two dense layers of 1 << 20)', async () => {
    const parameters = HUGE_PARAMETERS + 2 ** 40 + 2 ** 20; // the issue's spec and a second layer's weights and biases
    const before = await settledLiveTensors();
    expect(thrown(() => createModel(larger)).message).toMatch(sizeMessage(parameters, 'adam, the most any optimizer keeps'));
    const err = thrown(() => loadModel(write('larger-spec.pt', declaring(larger))));
    expect(err.message).toMatch(/larger-spec\.pt: holds a spec whose model cannot fit in memory/);
    expect(err.message).toMatch(sizeMessage(parameters, 'adam, the most any optimizer keeps'));
    expect(native().liveTensors()).toBe(before);
  });

  test.each(PRESETS)('the %s preset\'s network is still made, and saved and loaded', async (name) => {
    const before = await settledLiveTensors();
    const model = createModel(presetOptions(name, 'fashion').spec);
    const file = path.join(tmp, `${name}.pt`);
    model.save(file);
    model.dispose();
    loadModel(file).dispose();
    expect(native().liveTensors()).toBe(before);
  });
});

describe('the OrderedDict hint only where the OrderedDict is the cause; else libtorch\'s own message (#14)', () => {
  const spec: TensorSpec = { key: '0', numel: 12, offset: 0, size: [3, 4], stride: [4, 1] };
  const HINT = /collections\.OrderedDict, which libtorch cannot read; save a plain dict: torch\.save\(dict\(net\.state_dict\(\)\), path\)/;
  /** A state dict as nn.Module.state_dict() pickles it: an OrderedDict at the top, its items set on it. */
  const orderedStateDict = (entries: [string, Buffer][]) =>
    Buffer.concat([op(0x80, 2), global('collections', 'OrderedDict'), op(0x29, 0x52), MARK, ...entries.flatMap(([k, v]) => [str(k), v]), SETITEMS, STOP]);
  const archive = (pickle: Buffer) => zip([{ name: 'archive/data.pkl', data: pickle }, { name: 'archive/data/0', data: floats(12) }, { name: 'archive/version', data: text('3\n') }]);
  const frozenset = Buffer.concat([MARK, int(1), op(0x91)]);

  test('an OrderedDict state dict and nothing else wrong keeps the hint', async () => {
    const before = await settledLiveTensors();
    const err = thrown(() => readCheckpointEntries(write('ordered.pt', archive(orderedStateDict([['w', tensor(spec)]])))));
    expect(err.message).toMatch(/ordered\.pt: is not a readable PyTorch checkpoint \(.*collections\.OrderedDict/);
    expect(err.message).toMatch(HINT);
    expect(native().liveTensors()).toBe(before);
  });

  test('an OrderedDict state dict with a value libtorch cannot read (a frozenset) gets libtorch\'s message', () => {
    const err = thrown(() => readCheckpointEntries(write('ordered-frozenset.pt', archive(orderedStateDict([['w', tensor(spec)], ['x', frozenset]])))));
    expect(err.message).toMatch(/ordered-frozenset\.pt: is not a readable PyTorch checkpoint \(libtorch: Unknown opcode for unpickling .*: 145\)$/);
    expect(err.message).not.toMatch(/OrderedDict/);
  });

  test('a plain dict with a value libtorch cannot read gets libtorch\'s message', async () => {
    const err = thrown(() => readCheckpointEntries(write('plain.pt', archive(stateDict([['w', tensor(spec)], ['x', frozenset]])))));
    expect(err.message).toMatch(/plain\.pt: is not a readable PyTorch checkpoint \(libtorch: Unknown opcode for unpickling/);
    expect(err.message).not.toMatch(/OrderedDict/);
  });

  // What the TypeScript checks refuse first (a foreign global, strides that do not match the sizes),
  // handed to the addon directly: in an OrderedDict state dict, libtorch's refusal is still reported as its own.
  test.each([
    ['a refused global', orderedStateDict([['w', tensor(spec)], ['x', Buffer.concat([global('os', 'system'), tuple([str('echo hi')]), op(0x52)])]]), /^libtorch: Unpickler found unknown type os\.system/],
    ['sizes and strides of different lengths', orderedStateDict([['w', tensor({ ...spec, stride: [4, 1, 1] })]]), /^libtorch: .*size and stride must have the same length, got 2 and 3/],
    ['an unknown torch global', orderedStateDict([['w', tensor({ ...spec, type: 'EvilStorage' })]]), /^libtorch: Unpickler found unknown torch global, 'torch\.EvilStorage'/],
  ] as [string, Buffer, RegExp][])('the addon, given an OrderedDict state dict with %s, passes libtorch\'s message on', async (_name, pickle, message) => {
    const before = await settledLiveTensors();
    const err = thrown(() => native().decodeStateDict(archive(pickle)));
    expect(err.message).toMatch(message);
    expect(err.message).not.toMatch(HINT);
    expect(native().liveTensors()).toBe(before);
  });
});

/** The records of a zip this file's `zip` (or PyTorch) wrote, in order, inflated. */
function unzip(bytes: Buffer): Record[] {
  const end = bytes.lastIndexOf(Buffer.from([0x50, 0x4b, 0x05, 0x06]));
  const records: Record[] = [];
  let at = bytes.readUInt32LE(end + 16);
  for (let i = 0; i < bytes.readUInt16LE(end + 10); ++i) {
    const method = bytes.readUInt16LE(at + 10);
    const size = bytes.readUInt32LE(at + 20);
    const nameLength = bytes.readUInt16LE(at + 28);
    const local = bytes.readUInt32LE(at + 42);
    const name = bytes.toString('utf8', at + 46, at + 46 + nameLength);
    const start = local + 30 + bytes.readUInt16LE(local + 26) + bytes.readUInt16LE(local + 28);
    const raw = bytes.subarray(start, start + size);
    records.push({ name, data: method === 8 ? zlib.inflateRawSync(raw) : Buffer.from(raw), deflate: method === 8 });
    at += 46 + nameLength + bytes.readUInt16LE(at + 30) + bytes.readUInt16LE(at + 32);
  }
  return records;
}

test.each([
  ['a checkpoint', (m: ReturnType<typeof createModel>, f: string) => m.save(f), (f: string) => loadModel(f)],
  ['a TorchScript export', (m: ReturnType<typeof createModel>, f: string) => m.exportTorchScript(f), (f: string) => loadTorchScript(f)],
] as const)('%s of convscope\'s own whose largest storage record is cut short is refused naming the record (#1)', async (_what, save, load) => {
  const model = createModel({ conv: [{ filters: 8, kernelSize: 5, padding: 'same', pool: true }], dense: [64], dropout: 0 }, { seed: 1 });
  const good = path.join(tmp, 'own.pt');
  save(model, good);
  model.dispose();
  const records = unzip(fs.readFileSync(good));
  const largest = records.filter((r) => /\/data\/\d+$/.test(r.name)).sort((a, b) => b.data.length - a.data.length)[0];
  largest.data = largest.data.subarray(0, 16);
  const file = write('own-short.pt', zip(records));
  const before = await settledLiveTensors();
  const err = thrown(() => load(file));
  expect(err.message).toMatch(new RegExp(`own-short\\.pt.*storage ${largest.name.split('/').pop()} declares \\d+ elements of torch\\.FloatStorage \\(\\d+ bytes\\) but its record holds 16 bytes`));
  expect(native().liveTensors()).toBe(before);
  // The same records zipped again, uncut, load: the builder changes nothing else.
  fs.writeFileSync(file, zip(unzip(fs.readFileSync(good))));
  load(file).dispose();
});

describe('pickles nested deep or made huge are refused, not run into the native stack (#2)', () => {
  /** Lists nested `depth` deep: ] ( ] ( ] ... a a a, 2 bytes a level. */
  const nested = (depth: number) => Buffer.concat([op(0x80, 2), Buffer.alloc(depth, 0x5d), Buffer.alloc(depth - 1, 0x61), STOP]);
  test.each([
    ['a million lists nested (a 2 MB pickle)', nested(1_000_000), /more than 200 deep|more than 1000000 objects/],
    [`${MAX_PICKLE_DEPTH + 1} lists nested`, nested(MAX_PICKLE_DEPTH + 1), new RegExp(`containers nested more than ${MAX_PICKLE_DEPTH} deep`)],
    ['a list that holds itself', Buffer.concat([op(0x80, 2, 0x5d, 0x71, 0, 0x68, 0, 0x61), STOP]), /a container holds itself/],
    ['two million values pushed', Buffer.concat([op(0x80, 2), Buffer.alloc(2_000_000, 0x4e), STOP]), /more than 1000000 values on the stack/],
    ['two million memo entries', Buffer.concat([op(0x80, 2, 0x4e), Buffer.alloc(2_000_000, 0x94), STOP]), /more than 1000000 memo entries/],
    ['an opcode PyTorch never writes (EXT1)', Buffer.concat([op(0x80, 2, 0x82, 1), STOP]), /opcode 0x82 is not one PyTorch writes/],
    ['a pickle cut short', op(0x80, 2, 0x58, 0xff, 0xff, 0, 0), /ends in the middle of an instruction/],
  ] as [string, Buffer, RegExp][])('%s', (_name, pickle, message) => {
    const file = write('deep.pt', zip([{ name: 'archive/data.pkl', data: pickle }, { name: 'archive/version', data: text('3\n') }]));
    const started = Date.now();
    const err = thrown(() => readCheckpointEntries(file));
    expect(err.message).toMatch(message);
    expect(Date.now() - started).toBeLessThan(5000);
  });

  test(`${MAX_PICKLE_DEPTH} levels are still read (what a deep scripted module may need)`, () => {
    const pickle = Buffer.concat([op(0x80, 2), Buffer.alloc(MAX_PICKLE_DEPTH - 1, 0x5d), Buffer.alloc(MAX_PICKLE_DEPTH - 2, 0x61), op(0x7d, 0x61), STOP]);
    // Refused by libtorch (a list is not a state dict), but past the structural check.
    const err = thrown(() => readCheckpointEntries(write('deep-ok.pt', zip([{ name: 'archive/data.pkl', data: pickle }, { name: 'archive/version', data: text('3\n') }]))));
    expect(err.message).not.toMatch(/nested more than/);
  });
});

describe('zip records that inflate far beyond the file are refused before inflating (#4)', () => {
  test('an unreferenced deflated record declaring 1 GiB', () => {
    // The declared size alone is refused: nothing is inflated, so the body need not be a real gigabyte.
    const file = write('bomb.pt', checkpoint({}, 12, [{ name: 'archive/bomb', data: Buffer.alloc(1024), deflate: true, declaredSize: 1024 ** 3 }]));
    const rss = process.memoryUsage().rss;
    const err = thrown(() => readCheckpointEntries(file));
    expect(err.message).toMatch(/its deflated records would inflate to more than 67108864 bytes \(record archive\/bomb alone declares 1073741824\)/);
    expect(process.memoryUsage().rss - rss).toBeLessThan(256 * 1024 ** 2);
  });

  test('a stored record whose two sizes differ is refused', () => {
    const file = write('sizes.pt', checkpoint({}, 12, [{ name: 'archive/odd', data: Buffer.alloc(16), declaredSize: 1 << 20 }]));
    expect(thrown(() => readCheckpointEntries(file)).message).toMatch(/record archive\/odd is stored with 16 bytes but declares 1048576/);
  });

  test('zip64 fields in a small file are refused (they would skip the checks)', () => {
    const bytes = checkpoint({});
    const central = bytes.lastIndexOf(Buffer.from([0x50, 0x4b, 0x01, 0x02]));
    bytes.writeUInt32LE(0xffffffff, central + 24);
    const err = thrown(() => readCheckpointEntries(write('zip64.pt', bytes)));
    expect(err.message).toMatch(/uses zip64 fields in a file of \d+ bytes, which needs none/);
  });
});

(fs.existsSync(dist) ? test : test.skip)('seeded fuzz: mutated sizes, strides, offsets, nesting and compression decode or fail clearly, never crash (child process)', () => {
  let state = 20261202;
  const random = () => { state = (Math.imul(state, 1664525) + 1013904223) >>> 0; return state / 2 ** 32; };
  const pick = <T>(items: T[]): T => items[Math.floor(random() * items.length)];
  const files: string[] = [];
  const mustFail = new Set<number>();
  for (let i = 0; i < 300; ++i) {
    // Now and then a large tensor: reading past a short record of one of those is a crash, not just garbage.
    const large = random() < 0.3;
    const rows = large ? 1024 : 1 + Math.floor(random() * 64);
    const cols = large ? 1024 : 1 + Math.floor(random() * 64);
    const t: TensorSpec = { key: '0', numel: rows * cols, offset: 0, size: [rows, cols], stride: [cols, 1] };
    let recordFloats = t.numel;
    const mutation = i % 6;
    if (mutation === 0) recordFloats = Math.floor(random() * Math.min(t.numel, 4096));
    if (mutation === 1) t.numel = pick([t.numel * 1024, 2 ** 31, 2 ** 40, t.numel + 1]);
    // A storage smaller than it says can never be read, whatever libtorch would make of it.
    if (mutation <= 1) mustFail.add(i);
    if (mutation === 2) t.stride = [pick([0, 1, cols - 1, -cols, 2 ** 30]), pick([0, 1, rows, -1])];
    if (mutation === 3) t.offset = pick([1, t.numel - 1, t.numel, 2 ** 31, 2 ** 45]);
    if (mutation === 4) t.size = [pick([rows, 2 ** 20, 2 ** 31]), pick([cols, 0, 2 ** 20])];
    let bytes: Buffer;
    if (mutation === 5) {
      const depth = pick([10, 1000, 50_000, 300_000]);
      bytes = zip([{ name: 'archive/data.pkl', data: Buffer.concat([op(0x80, 2), Buffer.alloc(depth, 0x5d), Buffer.alloc(depth - 1, 0x61), STOP]), deflate: random() < 0.5 }]);
    } else {
      bytes = checkpoint(t, recordFloats, random() < 0.2 ? [{ name: 'archive/extra', data: Buffer.alloc(1024), deflate: true, declaredSize: pick([1024, 2 ** 31]) }] : []);
    }
    files.push(write(`fuzz-${i}.pt`, bytes));
  }
  const started = Date.now();
  const child = spawnSync(process.execPath, [path.join(__dirname, 'fixtures', 'decode-checkpoints.js'), ...files], { encoding: 'utf8', timeout: 120000, maxBuffer: 64 * 1024 ** 2 });
  const lines = child.stdout.trim().split('\n').filter(Boolean).map((l) => JSON.parse(l));
  // A crash (SIGSEGV, abort, OOM kill) ends the child before the last line.
  expect({ status: child.status, signal: child.signal, decoded: lines.length }).toEqual({ status: 0, signal: null, decoded: files.length });
  expect(Date.now() - started).toBeLessThan(120000);
  lines.forEach((line, i) => {
    expect(line.rss).toBeLessThan(2 * 1024 ** 3);
    if (line.error) expect(line.error).toMatch(/fuzz-\d+\.pt: /);
    if (mustFail.has(i)) expect([i, line.error]).toEqual([i, expect.stringMatching(/storage 0 declares|would inflate/)]);
  });
  expect(lines.filter((l) => l.error).length).toBeGreaterThan(files.length / 2);
}, 180000);
