// A structural check of a PyTorch archive's pickles (data.pkl, constants.pkl) before libtorch reads
// them. libtorch's unpickler trusts what a pickle declares: a storage record shorter than its
// declared size is read past its end (leftover heap in the weights, or SIGSEGV), a tensor view with
// zero or overlapping strides expands a 4-byte storage into gigabytes, and lists nested a million
// deep overflow the native stack. Here the pickle is run on a small stack machine that builds no
// Python objects, only their shape: every storage is checked against its record, every tensor's
// offset, sizes and strides against its storage, and the nesting depth and object count are bounded.
// Nothing is executed: globals are names, never looked up.

/** A pickle is refused above this size: a model's data.pkl is a few hundred bytes per tensor. */
export const MAX_PICKLE_BYTES = 64 * 1024 ** 2;
/** Containers and objects a pickle may build (a tensor costs about ten). */
export const MAX_PICKLE_OBJECTS = 1_000_000;
/** Deepest nesting of containers and objects (a checkpoint needs about 5, a scripted module 2 per submodule level). */
export const MAX_PICKLE_DEPTH = 200;

/** What a scanned pickle holds, as far as its callers need to know. */
export interface PickleSummary { tensors: number; rootIsOrderedDict: boolean }

export class PickleError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PickleError';
  }
}

/** Bytes per element of each storage type torch.save and torch.jit.save name. */
const STORAGE_ELEMENT_BYTES: Record<string, number> = {
  'torch.DoubleStorage': 8, 'torch.FloatStorage': 4, 'torch.HalfStorage': 2, 'torch.BFloat16Storage': 2,
  'torch.LongStorage': 8, 'torch.IntStorage': 4, 'torch.ShortStorage': 2, 'torch.CharStorage': 1, 'torch.ByteStorage': 1,
  'torch.BoolStorage': 1, 'torch.ComplexHalfStorage': 4, 'torch.ComplexFloatStorage': 8, 'torch.ComplexDoubleStorage': 16,
  'torch.UInt16Storage': 2, 'torch.UInt32Storage': 4, 'torch.UInt64Storage': 8,
  'torch.QInt8Storage': 1, 'torch.QUInt8Storage': 1, 'torch.QInt32Storage': 4, 'torch.QUInt4x2Storage': 1, 'torch.QUInt2x4Storage': 1,
  'torch.Float8_e4m3fnStorage': 1, 'torch.Float8_e5m2Storage': 1, 'torch.Float8_e4m3fnuzStorage': 1, 'torch.Float8_e5m2fnuzStorage': 1,
  'torch.UntypedStorage': 1, 'torch.storage.UntypedStorage': 1,
};
const UNTYPED_STORAGES = new Set(['torch.UntypedStorage', 'torch.storage.UntypedStorage']);

/** Bytes per element of the dtypes a tensor over an untyped storage names (its rebuild call's 7th argument). */
const DTYPE_BYTES: Record<string, number> = {
  'torch.float64': 8, 'torch.float32': 4, 'torch.float16': 2, 'torch.bfloat16': 2, 'torch.int64': 8, 'torch.int32': 4,
  'torch.int16': 2, 'torch.int8': 1, 'torch.uint8': 1, 'torch.bool': 1, 'torch.complex32': 4, 'torch.complex64': 8,
  'torch.complex128': 16, 'torch.uint16': 2, 'torch.uint32': 4, 'torch.uint64': 8, 'torch.float8_e4m3fn': 1,
  'torch.float8_e5m2': 1, 'torch.float8_e4m3fnuz': 1, 'torch.float8_e5m2fnuz': 1,
};

/**
 * The globals a file of tensors (torch.save of a state dict, convscope's checkpoints) refers to: the
 * tensor rebuilders, storage types, dtypes, OrderedDict (backward hooks, state_dict()) and devices.
 * Anything else (os.system, a user's class) libtorch refuses with a message that hides the cause.
 */
export function isTensorFileGlobal(name: string): boolean {
  return name.startsWith('torch._utils._rebuild_') || name in STORAGE_ELEMENT_BYTES || name in DTYPE_BYTES ||
    name === 'collections.OrderedDict' || name === 'torch.device' || name.startsWith('torch.jit._pickle.');
}

/** The functions that rebuild a tensor as (storage, storage_offset, size, stride, ...). */
const TENSOR_REBUILDERS = new Set(['torch._utils._rebuild_tensor_v2', 'torch._utils._rebuild_tensor', 'torch._utils._rebuild_tensor_v3']);

class Global { constructor(readonly name: string) {} }
/** A storage: its size in elements of its type (bytes for an untyped one). */
class Storage { constructor(readonly numel: number, readonly key: string, readonly untyped: boolean) {} }
/** Any container or object: only what it holds matters here (for the depth). */
class Node { constructor(readonly kids: unknown[], readonly tuple = false) {} }
class Opaque {}
const MARK = Symbol('mark');
const OPAQUE = new Opaque();

/** Opcodes that push one constant-like value (their argument's length is read by `argumentBytes`). */
const P = {
  MARK: 0x28, STOP: 0x2e, POP: 0x30, POP_MARK: 0x31, DUP: 0x32, FLOAT: 0x46, INT: 0x49, BININT: 0x4a, BININT1: 0x4b, LONG: 0x4c,
  BININT2: 0x4d, NONE: 0x4e, PERSID: 0x50, BINPERSID: 0x51, REDUCE: 0x52, STRING: 0x53, BINSTRING: 0x54, SHORT_BINSTRING: 0x55,
  UNICODE: 0x56, BINUNICODE: 0x58, APPEND: 0x61, BUILD: 0x62, GLOBAL: 0x63, DICT: 0x64, EMPTY_DICT: 0x7d, APPENDS: 0x65, GET: 0x67,
  BINGET: 0x68, INST: 0x69, LONG_BINGET: 0x6a, LIST: 0x6c, EMPTY_LIST: 0x5d, OBJ: 0x6f, PUT: 0x70, BINPUT: 0x71, LONG_BINPUT: 0x72,
  SETITEM: 0x73, TUPLE: 0x74, EMPTY_TUPLE: 0x29, SETITEMS: 0x75, BINFLOAT: 0x47, PROTO: 0x80, NEWOBJ: 0x81, TUPLE1: 0x85,
  TUPLE2: 0x86, TUPLE3: 0x87, NEWTRUE: 0x88, NEWFALSE: 0x89, LONG1: 0x8a, LONG4: 0x8b, BINBYTES: 0x42, SHORT_BINBYTES: 0x43,
  SHORT_BINUNICODE: 0x8c, BINUNICODE8: 0x8d, BINBYTES8: 0x8e, EMPTY_SET: 0x8f, ADDITEMS: 0x90, FROZENSET: 0x91, NEWOBJ_EX: 0x92,
  STACK_GLOBAL: 0x93, MEMOIZE: 0x94, FRAME: 0x95, BYTEARRAY8: 0x96,
} as const;

/**
 * What a storage named in a pickle must match: the byte size of its record, or undefined when the
 * archive has no such record.
 */
export type StorageRecordSize = (key: string) => number | undefined;

/** The tensor a rebuild call describes must lie inside its storage, without zero or overlapping strides. */
function checkTensorView(args: unknown, where: string): void {
  if (!(args instanceof Node) || !args.tuple || args.kids.length < 4) throw new PickleError(`${where}: a tensor is rebuilt from ${args instanceof Node ? args.kids.length : 'no'} arguments, expected (storage, offset, size, stride, ...)`);
  const [storage, offset, size, stride] = args.kids;
  if (!(storage instanceof Storage)) throw new PickleError(`${where}: a tensor's storage is not a storage record`);
  const ints = (v: unknown, what: string): number[] => {
    if (!(v instanceof Node) || !v.tuple || !v.kids.every((k) => typeof k === 'number' && Number.isSafeInteger(k))) throw new PickleError(`${where}: a tensor's ${what} is not a tuple of integers`);
    return v.kids as number[];
  };
  const sizes = ints(size, 'size');
  const strides = ints(stride, 'stride');
  if (typeof offset !== 'number' || !Number.isSafeInteger(offset) || offset < 0) throw new PickleError(`${where}: a tensor's storage offset ${String(offset)} is not an integer >= 0`);
  if (sizes.length !== strides.length) throw new PickleError(`${where}: a tensor has ${sizes.length} sizes but ${strides.length} strides`);
  if (sizes.some((s) => s < 0)) throw new PickleError(`${where}: a tensor has a negative size [${sizes}]`);
  const numel = sizes.reduce((a, b) => a * b, 1);
  if (numel === 0) return;
  // Over an untyped storage, offsets and strides count elements of the dtype the call names.
  let elementBytes = 1;
  if (storage.untyped) {
    const dtype = args.kids[6];
    elementBytes = dtype instanceof Global ? DTYPE_BYTES[dtype.name] ?? 0 : 0;
    if (elementBytes === 0) throw new PickleError(`${where}: a tensor over untyped storage ${storage.key} names no dtype of known size`);
  }
  const dims = sizes.map((s, i) => ({ size: s, stride: strides[i] })).filter((d) => d.size > 1);
  if (dims.some((d) => d.stride <= 0)) throw new PickleError(`${where}: a tensor of size [${sizes}] has a zero or negative stride [${strides}]`);
  dims.sort((a, b) => a.stride - b.stride);
  for (let i = 1; i < dims.length; ++i) {
    if (dims[i].stride < dims[i - 1].stride * dims[i - 1].size) throw new PickleError(`${where}: a tensor of size [${sizes}] has overlapping strides [${strides}]`);
  }
  const last = offset + dims.reduce((a, d) => a + (d.size - 1) * d.stride, 0);
  const capacity = Math.floor(storage.numel / elementBytes);
  if (!Number.isSafeInteger(last) || last >= capacity) {
    throw new PickleError(`${where}: a tensor of size [${sizes}], stride [${strides}] at offset ${offset} reaches element ${last} of storage ${storage.key}, which holds ${capacity}`);
  }
}

/** The storage a persistent id ('storage', type, key, location, numel) names, checked against its record. */
function storageFrom(pid: unknown, recordSize: StorageRecordSize, where: string): Storage {
  if (!(pid instanceof Node) || !pid.tuple || pid.kids[0] !== 'storage' || pid.kids.length !== 5) throw new PickleError(`${where}: a persistent id is not ('storage', type, key, location, numel)`);
  const [, type, key, , numel] = pid.kids;
  if (!(type instanceof Global) || STORAGE_ELEMENT_BYTES[type.name] === undefined) throw new PickleError(`${where}: unknown storage type ${type instanceof Global ? type.name : String(type)}`);
  if (typeof key !== 'string') throw new PickleError(`${where}: a storage key is not a string`);
  if (typeof numel !== 'number' || !Number.isSafeInteger(numel) || numel < 0) throw new PickleError(`${where}: storage ${key} declares ${String(numel)} elements`);
  const bytes = numel * STORAGE_ELEMENT_BYTES[type.name];
  const size = recordSize(key);
  if (size === undefined) throw new PickleError(`${where}: storage ${key} has no record in the archive`);
  if (size < bytes) throw new PickleError(`${where}: storage ${key} declares ${numel} elements of ${type.name} (${bytes} bytes) but its record holds ${size} bytes`);
  return new Storage(numel, key, UNTYPED_STORAGES.has(type.name));
}

/** The deepest nesting under `root`; cycles are refused (no PyTorch file has one). */
function nestingDepth(root: unknown, where: string): number {
  const done = new Map<Node, number>();
  const onPath = new Set<Node>();
  if (!(root instanceof Node)) return 0;
  const stack: { node: Node; next: number; depth: number }[] = [{ node: root, next: 0, depth: 0 }];
  onPath.add(root);
  let deepest = 1;
  while (stack.length > 0) {
    const top = stack[stack.length - 1];
    if (stack.length > MAX_PICKLE_DEPTH) throw new PickleError(`${where}: containers nested more than ${MAX_PICKLE_DEPTH} deep`);
    if (top.next < top.node.kids.length) {
      const kid = top.node.kids[top.next++];
      if (!(kid instanceof Node)) continue;
      if (onPath.has(kid)) throw new PickleError(`${where}: a container holds itself`);
      const known = done.get(kid);
      if (known !== undefined) {
        top.depth = Math.max(top.depth, known);
        continue;
      }
      onPath.add(kid);
      stack.push({ node: kid, next: 0, depth: 0 });
      continue;
    }
    stack.pop();
    onPath.delete(top.node);
    const depth = top.depth + 1;
    if (depth > MAX_PICKLE_DEPTH) throw new PickleError(`${where}: containers nested more than ${MAX_PICKLE_DEPTH} deep`);
    done.set(top.node, depth);
    deepest = Math.max(deepest, depth);
    if (stack.length > 0) stack[stack.length - 1].depth = Math.max(stack[stack.length - 1].depth, depth);
  }
  return deepest;
}

/**
 * Runs the pickle `bytes` (named `where` in errors) on a stack machine that records shapes only,
 * and throws PickleError at the first thing libtorch would read out of bounds, expand or recurse
 * into without limit. Returns what it found: the number of tensors, and whether the top-level
 * object is a collections.OrderedDict (what nn.Module.state_dict() returns).
 * @example scanPickle(dataPkl, 'archive/data.pkl', (key) => sizes.get(`archive/data/${key}`));
 */
export function scanPickle(bytes: Buffer, where: string, recordSize: StorageRecordSize, allowGlobal: (name: string) => boolean = () => true): PickleSummary {
  if (bytes.length > MAX_PICKLE_BYTES) throw new PickleError(`${where} is ${bytes.length} bytes, more than the ${MAX_PICKLE_BYTES} a model's pickle may have`);
  const stack: unknown[] = [];
  const marks: number[] = [];
  const memo = new Map<number, unknown>();
  const storages = new Map<string, Storage>();
  let objects = 0;
  let tensors = 0;
  let at = 0;
  const fail = (what: string): never => { throw new PickleError(`${where} at byte ${at}: ${what}`); };
  const need = (n: number): number => {
    if (at + n > bytes.length) fail('the pickle ends in the middle of an instruction');
    const start = at;
    at += n;
    return start;
  };
  const line = (): string => {
    const end = bytes.indexOf(0x0a, at);
    if (end < 0) fail('a text argument has no end of line');
    const text = bytes.toString('latin1', at, end);
    at = end + 1;
    return text;
  };
  const sized = (n: number): Buffer => {
    if (!Number.isSafeInteger(n) || n < 0) fail(`a length of ${n}`);
    return bytes.subarray(need(n), at);
  };
  const pop = (): unknown => (stack.length > (marks.length ? marks[marks.length - 1] : 0) ? stack.pop() : fail('an instruction takes more values than the stack holds'));
  const popMark = (): unknown[] => {
    const mark = marks.pop();
    if (mark === undefined) fail('no MARK for an instruction that needs one');
    return stack.splice(mark!);
  };
  const node = (kids: unknown[], tuple = false): Node => {
    if (++objects > MAX_PICKLE_OBJECTS) fail(`more than ${MAX_PICKLE_OBJECTS} objects`);
    return new Node(kids, tuple);
  };
  const named = (name: string): Global => (allowGlobal(name) ? new Global(name) : fail(`it refers to the Python global ${name}, which this file has no use for`));
  // The stack, the marks and the memo are bounded as the objects are: a pickle of nothing but pushes
  // or MEMOIZE would otherwise make this check itself the memory bomb.
  const remember = (index: number): void => {
    if (stack.length === 0) fail('memoizes from an empty stack');
    memo.set(index, stack[stack.length - 1]);
    if (memo.size > MAX_PICKLE_OBJECTS) fail(`more than ${MAX_PICKLE_OBJECTS} memo entries`);
  };
  const target = (): Node => {
    const t = stack[stack.length - 1];
    return t instanceof Node ? t : fail('adds items to something that is not a container');
  };
  const reduce = (callable: unknown, args: unknown): Node => {
    if (callable instanceof Global && TENSOR_REBUILDERS.has(callable.name)) {
      checkTensorView(args, where);
      ++tensors;
    }
    return node([callable, args]);
  };
  for (;;) {
    const op = bytes[need(1)];
    switch (op) {
      case P.PROTO: need(1); break;
      case P.FRAME: need(8); break;
      case P.STOP: {
        if (stack.length !== 1 || marks.length !== 0) fail(`STOP with ${stack.length} values on the stack`);
        nestingDepth(stack[0], where);
        const root = stack[0];
        const orderedDict = root instanceof Node && root.kids[0] instanceof Global && root.kids[0].name === 'collections.OrderedDict';
        return { tensors, rootIsOrderedDict: orderedDict };
      }
      case P.MARK: marks.push(stack.length); break;
      case P.POP: pop(); break;
      case P.POP_MARK: popMark(); break;
      case P.DUP: { const v = pop(); stack.push(v, v); break; }
      case P.NONE: case P.NEWTRUE: case P.NEWFALSE: stack.push(OPAQUE); break;
      case P.BININT: stack.push(bytes.readInt32LE(need(4))); break;
      case P.BININT1: stack.push(bytes[need(1)]); break;
      case P.BININT2: stack.push(bytes.readUInt16LE(need(2))); break;
      case P.INT: case P.LONG: {
        const text = line().replace(/L$/, '');
        stack.push(text === '00' ? OPAQUE : text === '01' ? OPAQUE : Number(text));
        break;
      }
      case P.LONG1: case P.LONG4: {
        const n = op === P.LONG1 ? bytes[need(1)] : bytes.readInt32LE(need(4));
        const raw = sized(n);
        // Little-endian two's complement; only values that fit a safe integer are kept as numbers.
        let value = 0n;
        for (let i = raw.length - 1; i >= 0; --i) value = (value << 8n) | BigInt(raw[i]);
        if (raw.length > 0 && raw[raw.length - 1] & 0x80) value -= 1n << BigInt(8 * raw.length);
        stack.push(value >= BigInt(Number.MIN_SAFE_INTEGER) && value <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(value) : Infinity);
        break;
      }
      case P.FLOAT: line(); stack.push(OPAQUE); break;
      case P.BINFLOAT: need(8); stack.push(OPAQUE); break;
      case P.STRING: case P.UNICODE: stack.push(line()); break;
      case P.BINSTRING: case P.BINUNICODE: stack.push(sized(bytes.readUInt32LE(need(4))).toString('utf8')); break;
      case P.SHORT_BINSTRING: case P.SHORT_BINUNICODE: stack.push(sized(bytes[need(1)]).toString('utf8')); break;
      case P.BINUNICODE8: stack.push(sized(Number(bytes.readBigUInt64LE(need(8)))).toString('utf8')); break;
      case P.BINBYTES: sized(bytes.readUInt32LE(need(4))); stack.push(OPAQUE); break;
      case P.SHORT_BINBYTES: sized(bytes[need(1)]); stack.push(OPAQUE); break;
      case P.BINBYTES8: case P.BYTEARRAY8: sized(Number(bytes.readBigUInt64LE(need(8)))); stack.push(OPAQUE); break;
      case P.EMPTY_LIST: case P.EMPTY_DICT: case P.EMPTY_SET: stack.push(node([])); break;
      case P.EMPTY_TUPLE: stack.push(node([], true)); break;
      case P.LIST: case P.DICT: case P.FROZENSET: stack.push(node(popMark())); break;
      case P.TUPLE: stack.push(node(popMark(), true)); break;
      case P.TUPLE1: stack.push(node([pop()], true)); break;
      case P.TUPLE2: { const b = pop(); const a = pop(); stack.push(node([a, b], true)); break; }
      case P.TUPLE3: { const c = pop(); const b = pop(); const a = pop(); stack.push(node([a, b, c], true)); break; }
      case P.APPEND: { const v = pop(); target().kids.push(v); break; }
      case P.SETITEM: { const v = pop(); const k = pop(); target().kids.push(k, v); break; }
      case P.APPENDS: case P.SETITEMS: case P.ADDITEMS: { const items = popMark(); target().kids.push(...items); break; }
      case P.GLOBAL: { const module = line(); stack.push(named(`${module}.${line()}`)); break; }
      case P.STACK_GLOBAL: {
        const name = pop();
        const module = pop();
        if (typeof module !== 'string' || typeof name !== 'string') fail('STACK_GLOBAL of something that is not two names');
        stack.push(named(`${module as string}.${name as string}`));
        break;
      }
      case P.REDUCE: { const args = pop(); stack.push(reduce(pop(), args)); break; }
      case P.NEWOBJ: { const args = pop(); stack.push(node([pop(), args])); break; }
      case P.NEWOBJ_EX: { const kwargs = pop(); const args = pop(); stack.push(node([pop(), args, kwargs])); break; }
      case P.INST: { line(); line(); stack.push(node(popMark())); break; }
      case P.OBJ: stack.push(node(popMark())); break;
      case P.BUILD: { const state = pop(); target().kids.push(state); break; }
      case P.BINPERSID: case P.PERSID: {
        const pid = op === P.BINPERSID ? pop() : line();
        const declared = storageFrom(pid, recordSize, where);
        // One storage may back many tensors: every declaration must give the same size, so that
        // a view checked against one is checked against what libtorch allocates.
        const known = storages.get(declared.key);
        if (known && (known.numel !== declared.numel || known.untyped !== declared.untyped)) {
          fail(`storage ${declared.key} is declared with ${known.numel} and with ${declared.numel} elements`);
        }
        if (!known) storages.set(declared.key, declared);
        stack.push(known ?? declared);
        break;
      }
      case P.BINPUT: remember(bytes[need(1)]); break;
      case P.LONG_BINPUT: remember(bytes.readUInt32LE(need(4))); break;
      case P.PUT: remember(Number(line())); break;
      case P.MEMOIZE: remember(memo.size); break;
      case P.BINGET: case P.LONG_BINGET: case P.GET: {
        const index = op === P.BINGET ? bytes[need(1)] : op === P.LONG_BINGET ? bytes.readUInt32LE(need(4)) : Number(line());
        if (!memo.has(index)) fail(`memo entry ${index} is read before it is written`);
        stack.push(memo.get(index));
        break;
      }
      default: fail(`opcode 0x${op.toString(16)} is not one PyTorch writes`);
    }
    if (stack.length > MAX_PICKLE_OBJECTS || marks.length > MAX_PICKLE_OBJECTS) fail(`more than ${MAX_PICKLE_OBJECTS} values on the stack`);
  }
}
