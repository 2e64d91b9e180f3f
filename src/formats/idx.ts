// Reader and writer for the IDX format (the container MNIST and Fashion-MNIST ship in).
//
// Layout: two zero bytes, a dtype code byte, an ndims byte, ndims big-endian uint32 dims, then the
// payload in row-major order with multi-byte values big-endian. Files are often gzip-compressed;
// that is detected from the gzip magic bytes, never from the file name.
//
// Every malformed input gets an IdxFormatError naming the file and what was expected, and every
// size a header claims is checked against what the input can possibly hold BEFORE anything of
// that size is allocated, so a 1 KB file claiming 2^32 items costs nothing.

import { endianness } from 'os';
import { constants as zlibConstants, gunzipSync, gzipSync } from 'zlib';
import { writeFileAtomic } from '../util/fs-atomic';
import { readRegularFile, UnreadableFileError } from '../util/fs-read';
import { checkBoolean, checkInteger, checkKnownKeys, checkObject, checkOneOf, checkString, expected } from '../util/validate';

/** Element types an IDX file can hold. */
export type IdxDtype = 'uint8' | 'int8' | 'int16' | 'int32' | 'float32' | 'float64';

/** The typed array that holds each dtype's values (in host byte order). */
export type IdxTypedArray = Uint8Array | Int8Array | Int16Array | Int32Array | Float32Array | Float64Array;

/** A decoded IDX file: `data.length` is the product of `dims`, row-major. */
export interface IdxArray {
  dtype: IdxDtype;
  dims: number[];
  data: IdxTypedArray;
}

type TypedArrayConstructor = {
  new (length: number): IdxTypedArray;
  new (buffer: ArrayBufferLike, byteOffset: number, length: number): IdxTypedArray;
  readonly name: string;
};

interface DtypeInfo {
  dtype: IdxDtype;
  code: number;
  bytes: number;
  ctor: TypedArrayConstructor;
}

/** The dtype codes of the IDX specification. */
export const IDX_DTYPE_CODES: Readonly<Record<IdxDtype, number>> = {
  uint8: 0x08,
  int8: 0x09,
  int16: 0x0b,
  int32: 0x0c,
  float32: 0x0d,
  float64: 0x0e,
};

const DTYPES: readonly DtypeInfo[] = [
  { dtype: 'uint8', code: IDX_DTYPE_CODES.uint8, bytes: 1, ctor: Uint8Array },
  { dtype: 'int8', code: IDX_DTYPE_CODES.int8, bytes: 1, ctor: Int8Array },
  { dtype: 'int16', code: IDX_DTYPE_CODES.int16, bytes: 2, ctor: Int16Array },
  { dtype: 'int32', code: IDX_DTYPE_CODES.int32, bytes: 4, ctor: Int32Array },
  { dtype: 'float32', code: IDX_DTYPE_CODES.float32, bytes: 4, ctor: Float32Array },
  { dtype: 'float64', code: IDX_DTYPE_CODES.float64, bytes: 8, ctor: Float64Array },
];
const DTYPE_NAMES = DTYPES.map((d) => d.dtype);

/** Bytes of the fixed prefix: two zero bytes, the dtype code, the number of dimensions. */
export const IDX_MAGIC_BYTES = 4;
/** Offset of the dtype code inside the magic. */
const IDX_DTYPE_OFFSET = 2;
/** Offset of the dimension count inside the magic. */
const IDX_NDIMS_OFFSET = 3;
/** Each dimension is a big-endian uint32. */
export const IDX_DIM_BYTES = 4;
/** ndims is a single byte. */
export const IDX_MAX_NDIMS = 255;
/** Largest dimension a uint32 can hold. */
const IDX_MAX_DIM = 0xffffffff;
/** Largest payload accepted (2 GiB): anything bigger is a corrupt header, not a dataset. */
export const MAX_IDX_PAYLOAD_BYTES = 2 ** 31;
/** The two bytes every gzip member starts with. */
export const GZIP_MAGIC: readonly [number, number] = [0x1f, 0x8b];
/** zlib's documented worst-case deflate ratio; bounds what a compressed file can expand to. */
const MAX_DEFLATE_RATIO = 1032;
/** Gzip member header + trailer overhead that holds no payload. */
const GZIP_OVERHEAD_BYTES = 18;
/**
 * Compressed prefixes tried, in order, to decompress just the IDX header. The biggest header
 * (255 dims) is 1024 bytes; 4 KiB of deflate input nearly always yields that, 64 KiB always does
 * short of a pathological gzip header, and either prefix expands to at most ~66 MB.
 */
const GZIP_HEADER_PEEK_BYTES = [4 * 1024, 64 * 1024] as const;
/** Largest single output chunk for gunzip; bigger files are decompressed in chunks of this size. */
const MAX_GUNZIP_CHUNK_BYTES = 64 * 1024 * 1024;
/** The smallest chunk zlib accepts. */
const MIN_GUNZIP_CHUNK_BYTES = 64;
/** What error messages call an input that did not come from a file. */
export const BUFFER_SOURCE_NAME = '<buffer>';

const HOST_IS_LITTLE_ENDIAN = endianness() === 'LE';

/** What went wrong with an IDX input; stable for programs, the message is for people. */
export type IdxFormatProblem =
  | 'unreadable'
  | 'file-too-large'
  | 'empty'
  | 'shorter-than-magic'
  | 'bad-magic'
  | 'unknown-dtype'
  | 'no-dimensions'
  | 'header-truncated'
  | 'zero-dimension'
  | 'too-large'
  | 'payload-too-short'
  | 'payload-too-long'
  | 'gzip-truncated'
  | 'gzip-corrupt'
  | 'gzip-checksum'
  | 'gzip-no-header'
  | 'gzip-cannot-hold';

/**
 * A malformed IDX input. `file` is the path, or `<buffer>` when decoding bytes from memory;
 * `problem` says what is wrong in a form programs can test.
 *
 * @example
 * try {
 *   readIdx('labels.idx');
 * } catch (error) {
 *   if (error instanceof IdxFormatError && error.problem === 'gzip-truncated') redownload(error.file);
 *   else throw error;
 * }
 */
export class IdxFormatError extends Error {
  readonly file: string;
  readonly problem: IdxFormatProblem;

  constructor(file: string, problem: IdxFormatProblem, detail: string) {
    super(`Invalid IDX file ${file}: ${detail}`);
    this.name = 'IdxFormatError';
    this.file = file;
    this.problem = problem;
  }
}

/** The parsed fixed part of an IDX file. */
export interface IdxHeader {
  dtype: IdxDtype;
  dims: number[];
  /** Bytes of magic + dims: where the payload starts. */
  headerBytes: number;
  /** Bytes the dims say the payload has. */
  payloadBytes: number;
}

/** The bytes of an IDX file after any gzip was removed. */
export interface IdxBytes {
  /** Decompressed content: hash this to verify a file without decompressing it again. */
  bytes: Buffer;
  /** Whether the input was gzip-compressed. */
  gzipped: boolean;
  /** Path, or `<buffer>`, for messages. */
  file: string;
  /** The header, already validated against the size of `bytes`'s source. */
  header: IdxHeader;
}

function hex(byte: number): string {
  return `0x${byte.toString(16).padStart(2, '0')}`;
}

function formatDims(dims: readonly number[]): string {
  return `[${dims.join(', ')}]`;
}

/**
 * True when the bytes start with the gzip magic (how gzip is detected: names are not trusted).
 *
 * @example
 * isGzip(readFileSync('train-labels-idx1-ubyte.gz')); // true
 */
export function isGzip(bytes: Uint8Array): boolean {
  return bytes.length >= 2 && bytes[0] === GZIP_MAGIC[0] && bytes[1] === GZIP_MAGIC[1];
}

/**
 * Parses and checks the header. With `complete` false (a partial gzip peek) it returns undefined
 * when more bytes are needed instead of calling the input truncated.
 */
function parseIdxHeader(bytes: Uint8Array, file: string, complete: boolean): IdxHeader | undefined {
  if (bytes.length < IDX_MAGIC_BYTES) {
    if (!complete) return undefined;
    if (bytes.length === 0) throw new IdxFormatError(file, 'empty', `the file is empty (expected at least the ${IDX_MAGIC_BYTES}-byte IDX magic)`);
    throw new IdxFormatError(file, 'shorter-than-magic', `the file is ${bytes.length} bytes, shorter than the ${IDX_MAGIC_BYTES}-byte IDX magic`);
  }
  if (bytes[0] !== 0 || bytes[1] !== 0) {
    throw new IdxFormatError(file, 'bad-magic', `bad magic ${hex(bytes[0])} ${hex(bytes[1])} (expected the first two bytes to be 0x00 0x00)`);
  }
  const code = bytes[IDX_DTYPE_OFFSET];
  const info = DTYPES.find((d) => d.code === code);
  if (!info) {
    const known = DTYPES.map((d) => `${hex(d.code)} (${d.dtype})`).join(', ');
    throw new IdxFormatError(file, 'unknown-dtype', `unknown dtype code ${hex(code)} (expected one of ${known})`);
  }
  const ndims = bytes[IDX_NDIMS_OFFSET];
  if (ndims === 0) throw new IdxFormatError(file, 'no-dimensions', 'the header declares 0 dimensions (expected at least 1)');
  const headerBytes = IDX_MAGIC_BYTES + ndims * IDX_DIM_BYTES;
  if (bytes.length < headerBytes) {
    if (!complete) return undefined;
    throw new IdxFormatError(file, 'header-truncated', `the header needs ${headerBytes} bytes for ${ndims} dimensions but the file is only ${bytes.length} bytes`);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, headerBytes);
  const dims: number[] = [];
  let items = 1;
  for (let i = 0; i < ndims; i++) {
    const dim = view.getUint32(IDX_MAGIC_BYTES + i * IDX_DIM_BYTES, false);
    if (dim === 0) throw new IdxFormatError(file, 'zero-dimension', `dimension ${i} is 0 (expected every dimension to be at least 1)`);
    dims.push(dim);
    items *= dim; // a double: exact up to 2^53, and anything near that is refused just below anyway
  }
  const payloadBytes = items * info.bytes;
  if (payloadBytes > MAX_IDX_PAYLOAD_BYTES) {
    throw new IdxFormatError(file, 'too-large', `dims ${formatDims(dims)} of ${info.dtype} claim ${payloadBytes} bytes, more than the ${MAX_IDX_PAYLOAD_BYTES}-byte limit (corrupt header?)`);
  }
  return { dtype: info.dtype, dims, headerBytes, payloadBytes };
}

function checkPayloadLength(header: IdxHeader, available: number, file: string): void {
  const expectedTotal = header.headerBytes + header.payloadBytes;
  const what = `dims ${formatDims(header.dims)} of ${header.dtype}`;
  if (available < expectedTotal) {
    throw new IdxFormatError(file, 'payload-too-short', `the payload is ${available - header.headerBytes} bytes but ${what} need ${header.payloadBytes} (truncated file?)`);
  }
  if (available > expectedTotal) {
    throw new IdxFormatError(file, 'payload-too-long', `the payload is ${available - header.headerBytes} bytes but ${what} need only ${header.payloadBytes} (${available - expectedTotal} trailing bytes)`);
  }
}

/** Turns a zlib failure into a message about the file. */
function gzipError(error: unknown, file: string): IdxFormatError {
  const err = error as NodeJS.ErrnoException;
  const message = err && typeof err.message === 'string' ? err.message : String(error);
  if (err && err.code === 'Z_BUF_ERROR') {
    return new IdxFormatError(file, 'gzip-truncated', `the gzip stream is truncated (${message}); expected a complete gzip file`);
  }
  if (/incorrect data check|incorrect length check/.test(message)) {
    return new IdxFormatError(file, 'gzip-checksum', `the gzip checksum does not match the decompressed data (${message}); the file is corrupt`);
  }
  return new IdxFormatError(file, 'gzip-corrupt', `the gzip stream is corrupt (${message})`);
}

/** Decompresses only as much of a gzip input as the IDX header needs. */
function peekGzipHeader(compressed: Buffer, file: string): IdxHeader | undefined {
  for (const prefixBytes of GZIP_HEADER_PEEK_BYTES) {
    const wholeInput = prefixBytes >= compressed.length;
    if (wholeInput) return undefined; // small enough to decompress whole; the caller reports its header
    let partial: Buffer;
    try {
      // Z_SYNC_FLUSH returns what the prefix decodes to instead of failing on the missing end.
      partial = gunzipSync(compressed.subarray(0, prefixBytes), { finishFlush: zlibConstants.Z_SYNC_FLUSH });
    } catch (error) {
      throw gzipError(error, file);
    }
    const header = parseIdxHeader(partial, file, false);
    if (header) return header;
  }
  const last = GZIP_HEADER_PEEK_BYTES[GZIP_HEADER_PEEK_BYTES.length - 1];
  throw new IdxFormatError(file, 'gzip-no-header', `the first ${last} bytes of the gzip stream do not decompress to a complete IDX header (expected at most ${IDX_MAGIC_BYTES + IDX_MAX_NDIMS * IDX_DIM_BYTES} header bytes)`);
}

/**
 * Gunzips at most `maxOutputLength` bytes. With `exactSize` (the header said how big the output
 * is) zlib gets one output chunk one byte bigger than that, and returns it without a concat copy.
 */
function gunzipBounded(compressed: Buffer, file: string, maxOutputLength: number, exactSize: boolean): Buffer {
  try {
    return gunzipSync(compressed, {
      maxOutputLength: Math.max(1, maxOutputLength),
      ...(exactSize && { chunkSize: Math.max(MIN_GUNZIP_CHUNK_BYTES, Math.min(MAX_GUNZIP_CHUNK_BYTES, maxOutputLength + 1)) }),
    });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE') {
      throw new IdxFormatError(file, 'payload-too-long', `the gzip stream decompresses to more than the ${maxOutputLength} bytes the header declares`);
    }
    throw gzipError(error, file);
  }
}

function decompressIdx(compressed: Buffer, file: string): IdxBytes {
  const header = peekGzipHeader(compressed, file);
  if (!header) {
    // At most 64 KiB of input, so at most ~66 MB of output: decompress it all and check it whole.
    const bytes = gunzipBounded(compressed, file, Math.min(MAX_IDX_PAYLOAD_BYTES, compressed.length * MAX_DEFLATE_RATIO), false);
    const fullHeader = parseIdxHeader(bytes, file, true) as IdxHeader;
    checkPayloadLength(fullHeader, bytes.length, file);
    return { bytes, gzipped: true, file, header: fullHeader };
  }
  const expectedTotal = header.headerBytes + header.payloadBytes;
  const mostPossible = Math.max(0, compressed.length - GZIP_OVERHEAD_BYTES) * MAX_DEFLATE_RATIO;
  if (expectedTotal > mostPossible) {
    throw new IdxFormatError(file, 'gzip-cannot-hold', `dims ${formatDims(header.dims)} of ${header.dtype} claim ${expectedTotal} bytes but a ${compressed.length}-byte gzip file can decompress to at most ${mostPossible} (corrupt header?)`);
  }
  const bytes = gunzipBounded(compressed, file, expectedTotal, true);
  checkPayloadLength(header, bytes.length, file);
  return { bytes, gzipped: true, file, header };
}

function readInput(pathOrBuffer: string | Buffer): { input: Buffer; file: string } {
  if (Buffer.isBuffer(pathOrBuffer)) return { input: pathOrBuffer, file: BUFFER_SOURCE_NAME };
  const file = checkString(pathOrBuffer, 'pathOrBuffer');
  // Generous: gzip can only shrink a payload, and a raw file may exceed the limit by its header.
  const maxBytes = MAX_IDX_PAYLOAD_BYTES + IDX_MAGIC_BYTES + IDX_MAX_NDIMS * IDX_DIM_BYTES;
  try {
    return { input: readRegularFile(file, maxBytes), file };
  } catch (error) {
    if (!(error instanceof UnreadableFileError)) throw error;
    if (error.reason === 'too-large') {
      throw new IdxFormatError(file, 'file-too-large', `the file ${error.detail}: more than an IDX file can be (at most ${MAX_IDX_PAYLOAD_BYTES} payload bytes)`);
    }
    throw new IdxFormatError(file, 'unreadable', `cannot read the file (${error.detail})`);
  }
}

/**
 * Reads an IDX input and removes any gzip, checking the header and the payload length but not
 * decoding values. Use it when the decompressed bytes are needed too (to hash them); pass the
 * result to {@link decodeIdxBytes}.
 *
 * @param pathOrBuffer - a file path, or the file's bytes (raw or gzip).
 * @throws IdxFormatError naming the file and what is wrong.
 * @example
 * const raw = readIdxBytes('train-labels-idx1-ubyte.gz');
 * const sum = createHash('sha256').update(raw.bytes).digest('hex');
 * const labels = decodeIdxBytes(raw);
 */
export function readIdxBytes(pathOrBuffer: string | Buffer): IdxBytes {
  if (!Buffer.isBuffer(pathOrBuffer) && typeof pathOrBuffer !== 'string') {
    throw new TypeError(expected('a file path or a Buffer', 'pathOrBuffer', pathOrBuffer));
  }
  const { input, file } = readInput(pathOrBuffer);
  if (isGzip(input)) return decompressIdx(input, file);
  const header = parseIdxHeader(input, file, true) as IdxHeader;
  checkPayloadLength(header, input.length, file);
  return { bytes: input, gzipped: false, file, header };
}

function dtypeInfo(dtype: IdxDtype): DtypeInfo {
  return DTYPES.find((d) => d.dtype === dtype) as DtypeInfo;
}

/** Swaps each element's bytes in place (big-endian <-> little-endian). */
function swapBytes(buffer: Buffer, elementBytes: number): void {
  if (elementBytes === 2) buffer.swap16();
  else if (elementBytes === 4) buffer.swap32();
  else if (elementBytes === 8) buffer.swap64();
}

/**
 * Decodes bytes returned by {@link readIdxBytes} into a typed array. Single-byte dtypes are a
 * zero-copy view into `raw.bytes`; multi-byte dtypes are copied once into host byte order.
 *
 * @example
 * const images = decodeIdxBytes(readIdxBytes('t10k-images-idx3-ubyte')); // dims [10000, 28, 28]
 */
export function decodeIdxBytes(raw: IdxBytes): IdxArray {
  const { header, bytes } = raw;
  const info = dtypeInfo(header.dtype);
  const count = header.payloadBytes / info.bytes;
  const start = bytes.byteOffset + header.headerBytes;
  if (info.bytes === 1) {
    return { dtype: header.dtype, dims: header.dims, data: new info.ctor(bytes.buffer, start, count) };
  }
  // A fresh, unpooled buffer: offset 0 so any element size is aligned, and swapping it is safe.
  const hostOrder = Buffer.allocUnsafeSlow(header.payloadBytes);
  bytes.copy(hostOrder, 0, header.headerBytes, header.headerBytes + header.payloadBytes);
  if (HOST_IS_LITTLE_ENDIAN) swapBytes(hostOrder, info.bytes);
  return { dtype: header.dtype, dims: header.dims, data: new info.ctor(hostOrder.buffer, hostOrder.byteOffset, count) };
}

/**
 * Reads an IDX file (raw or gzip, detected from its first bytes) into one typed array.
 *
 * For uint8/int8 the data is a view into the file's bytes: when `pathOrBuffer` is a Buffer the
 * result shares its memory.
 *
 * @param pathOrBuffer - a file path, or the file's bytes.
 * @throws IdxFormatError naming the file (or `<buffer>`) and what is wrong with it.
 * @example
 * const { dims, data } = readIdx('/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz');
 * // dims: [10000, 28, 28], data: Uint8Array of 7,840,000 pixels
 */
export function readIdx(pathOrBuffer: string | Buffer): IdxArray {
  return decodeIdxBytes(readIdxBytes(pathOrBuffer));
}

function checkIdxArray(array: unknown, name: string): { array: IdxArray; info: DtypeInfo } {
  const obj = checkObject(array, name);
  const dtype = checkOneOf(obj.dtype, `${name}.dtype`, DTYPE_NAMES);
  const info = dtypeInfo(dtype);
  if (!Array.isArray(obj.dims)) throw new TypeError(expected('an array of dimensions', `${name}.dims`, obj.dims));
  const dims = obj.dims as unknown[];
  if (dims.length < 1 || dims.length > IDX_MAX_NDIMS) {
    throw new RangeError(expected(`1 to ${IDX_MAX_NDIMS} dimensions`, `${name}.dims`, dims));
  }
  let items = 1;
  dims.forEach((dim, i) => {
    items *= checkInteger(dim, `${name}.dims[${i}]`, 1, IDX_MAX_DIM);
  });
  if (!(obj.data instanceof info.ctor)) throw new TypeError(expected(`a ${info.ctor.name} for dtype ${dtype}`, `${name}.data`, obj.data));
  const data = obj.data as IdxTypedArray;
  if (data.length !== items) {
    throw new RangeError(expected(`${items} elements (the product of dims ${formatDims(dims as number[])})`, `${name}.data.length`, data.length));
  }
  if (items * info.bytes > MAX_IDX_PAYLOAD_BYTES) {
    throw new RangeError(expected(`at most ${MAX_IDX_PAYLOAD_BYTES} payload bytes`, `${name}.data`, data));
  }
  return { array: { dtype, dims: dims as number[], data }, info };
}

/**
 * Encodes an array as IDX bytes (uncompressed, big-endian as the format requires).
 *
 * @throws TypeError or RangeError when dtype, dims and data do not agree.
 * @example
 * const bytes = encodeIdx({ dtype: 'int16', dims: [2], data: Int16Array.of(-1, 258) });
 * // <00 00 0b 01 | 00 00 00 02 | ff ff 01 02>
 */
export function encodeIdx(array: IdxArray): Buffer {
  const { array: checked, info } = checkIdxArray(array, 'array');
  const headerBytes = IDX_MAGIC_BYTES + checked.dims.length * IDX_DIM_BYTES;
  const payloadBytes = checked.data.length * info.bytes;
  const out = Buffer.allocUnsafeSlow(headerBytes + payloadBytes);
  out[0] = 0;
  out[1] = 0;
  out[IDX_DTYPE_OFFSET] = info.code;
  out[IDX_NDIMS_OFFSET] = checked.dims.length;
  checked.dims.forEach((dim, i) => out.writeUInt32BE(dim, IDX_MAGIC_BYTES + i * IDX_DIM_BYTES));
  const payload = out.subarray(headerBytes);
  Buffer.from(checked.data.buffer, checked.data.byteOffset, payloadBytes).copy(payload);
  if (HOST_IS_LITTLE_ENDIAN) swapBytes(payload, info.bytes);
  return out;
}

/** Options of {@link writeIdx}. */
export interface WriteIdxOptions {
  /**
   * Gzip the file (default false). Readers detect gzip from its magic bytes, so the name need not
   * end in `.gz`.
   * @example writeIdx('labels.idx.gz', labels, { gzip: true })
   */
  gzip?: boolean;
}

/**
 * Writes an array as an IDX file, atomically (temp file + fsync + rename).
 *
 * @throws TypeError or RangeError when the array or options are invalid.
 * @example
 * writeIdx('weights.idx', { dtype: 'float32', dims: [3, 3], data: new Float32Array(9) });
 * writeIdx('labels-idx1-ubyte.gz', { dtype: 'uint8', dims: [4], data: Uint8Array.of(1, 2, 3, 4) }, { gzip: true });
 */
export function writeIdx(path: string, array: IdxArray, options: WriteIdxOptions = {}): void {
  checkString(path, 'path');
  const opts = checkObject(options, 'options');
  checkKnownKeys(opts, 'writeIdx options', ['gzip']);
  const gzip = opts.gzip === undefined ? false : checkBoolean(opts.gzip, 'options.gzip');
  const encoded = encodeIdx(array);
  writeFileAtomic(path, gzip ? gzipSync(encoded) : encoded);
}
