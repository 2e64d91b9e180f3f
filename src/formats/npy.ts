// NumPy `.npy` files (format version 1.0) so exported weights open with a plain `np.load` in
// Python, without any extra package. Format: https://numpy.org/doc/stable/reference/generated/numpy.lib.format.html

import * as os from 'os';
import { shapeSize } from '../core/host-tensor';
import { expected } from '../util/validate';

/** Typed arrays `.npy` files are written from and read into. */
export type NpyData = Float32Array | Float64Array | Int32Array | Uint8Array | BigInt64Array;

/** An array to write: row-major `data` holding `product(shape)` elements (a HostTensor fits). */
export interface NpyArray {
  data: NpyData;
  shape: number[];
}

/** What {@link decodeNpy} returns. */
export interface DecodedNpy extends NpyArray {
  /** The dtype descriptor from the header, e.g. `'<f4'`. */
  descr: string;
}

const MAGIC = Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]); // "\x93NUMPY"
const ALIGNMENT = 64;

interface DtypeInfo {
  descr: string;
  bytes: number;
  make: (buffer: ArrayBuffer, length: number) => NpyData;
}

// Little-endian descriptors; '|u1' has no byte order.
const DTYPES: DtypeInfo[] = [
  { descr: '<f4', bytes: 4, make: (b, n) => new Float32Array(b, 0, n) },
  { descr: '<f8', bytes: 8, make: (b, n) => new Float64Array(b, 0, n) },
  { descr: '<i4', bytes: 4, make: (b, n) => new Int32Array(b, 0, n) },
  { descr: '|u1', bytes: 1, make: (b, n) => new Uint8Array(b, 0, n) },
  { descr: '<i8', bytes: 8, make: (b, n) => new BigInt64Array(b, 0, n) },
];

function dtypeOf(data: unknown): DtypeInfo {
  // Type tags rather than instanceof: arrays from a native addon or another realm must work too.
  const tag = Object.prototype.toString.call(data);
  const kinds = ['Float32Array', 'Float64Array', 'Int32Array', 'Uint8Array', 'BigInt64Array'];
  const i = kinds.findIndex((k) => tag === `[object ${k}]`);
  if (i >= 0) return DTYPES[i];
  throw new TypeError(expected('a Float32Array, Float64Array, Int32Array, Uint8Array or BigInt64Array', 'array.data', data));
}

/** Python tuple literal as NumPy writes it: `()`, `(5,)`, `(2, 3)`. */
function shapeTuple(shape: readonly number[]): string {
  if (shape.length === 1) return `(${shape[0]},)`;
  return `(${shape.join(', ')})`;
}

/** Reverses the byte order of each element in place (only needed on big-endian hosts). */
function swapBytes(bytes: Buffer, width: number): void {
  if (width === 4) bytes.swap32();
  else if (width === 8) bytes.swap64();
}

/**
 * Encodes an array as a NumPy `.npy` v1.0 file: the magic `\x93NUMPY`, version 1.0, a
 * little-endian uint16 header length, then the header dict
 * `{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }` padded with spaces and ended with
 * a newline so that data starts at a multiple of 64 bytes, then the little-endian data.
 *
 * @param array - a {@link NpyArray} such as a HostTensor; `data.length` must equal `product(shape)`
 * @returns the file's bytes
 * @example
 * fs.writeFileSync('conv1.npy', encodeNpy(weights)); // in Python: np.load('conv1.npy').shape
 */
export function encodeNpy(array: NpyArray): Buffer {
  if (typeof array !== 'object' || array === null) throw new TypeError(expected('an object { data, shape }', 'array', array));
  const { data, shape } = array;
  const dtype = dtypeOf(data);
  if (!Array.isArray(shape) || !shape.every((d) => Number.isInteger(d) && d >= 0)) {
    throw new TypeError(expected('an array of non-negative integers', 'array.shape', shape));
  }
  const count = shapeSize(shape);
  if (data.length !== count) {
    throw new RangeError(`Expected ${count} elements (shape [${shape.join(', ')}]) for array.data but received ${data.length}`);
  }
  const dict = `{'descr': '${dtype.descr}', 'fortran_order': False, 'shape': ${shapeTuple(shape)}, }`;
  const unpadded = MAGIC.length + 2 + 2 + dict.length + 1; // + trailing newline
  const padding = (ALIGNMENT - (unpadded % ALIGNMENT)) % ALIGNMENT;
  const headerText = dict + ' '.repeat(padding) + '\n';
  if (headerText.length > 0xffff) throw new RangeError(`Expected a shape that fits a v1.0 header for array.shape but received ${shape.length} dimensions`);

  const header = Buffer.alloc(MAGIC.length + 4 + headerText.length);
  MAGIC.copy(header, 0);
  header[6] = 1; // major version
  header[7] = 0; // minor version
  header.writeUInt16LE(headerText.length, 8);
  header.write(headerText, 10, 'latin1');
  const body = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  const out = Buffer.concat([header, body]);
  if (os.endianness() === 'BE') swapBytes(out.subarray(header.length), dtype.bytes);
  return out;
}

/**
 * Decodes a `.npy` file (versions 1.0 to 3.0, C order, the dtypes {@link encodeNpy} writes).
 *
 * @throws Error naming what is wrong for a non-npy buffer, an unsupported dtype or Fortran order
 * @example
 * const { data, shape, descr } = decodeNpy(fs.readFileSync('conv1.npy'));
 */
export function decodeNpy(buffer: Buffer): DecodedNpy {
  if (!Buffer.isBuffer(buffer)) throw new TypeError(expected('a Buffer', 'buffer', buffer));
  if (buffer.length < 10 || !buffer.subarray(0, 6).equals(MAGIC)) throw new Error('Not a .npy file: missing the \\x93NUMPY magic');
  const major = buffer[6];
  if (major < 1 || major > 3) throw new Error(`Unsupported .npy format version ${major}.${buffer[7]}`);
  const lengthBytes = major === 1 ? 2 : 4;
  const headerLength = major === 1 ? buffer.readUInt16LE(8) : buffer.readUInt32LE(8);
  const dataStart = 8 + lengthBytes + headerLength;
  if (buffer.length < dataStart) throw new Error(`Truncated .npy file: header needs ${dataStart} bytes, file has ${buffer.length}`);
  const header = buffer.toString(major === 3 ? 'utf8' : 'latin1', 8 + lengthBytes, dataStart);

  const descr = /'descr':\s*'([^']+)'/.exec(header)?.[1];
  const fortran = /'fortran_order':\s*(True|False)/.exec(header)?.[1];
  const shapeText = /'shape':\s*\(([^)]*)\)/.exec(header)?.[1];
  if (descr === undefined || fortran === undefined || shapeText === undefined) throw new Error(`Malformed .npy header: ${header.trim()}`);
  if (fortran === 'True') throw new Error('Fortran-order .npy arrays are not supported');
  const dtype = DTYPES.find((d) => d.descr === descr || (d.bytes === 1 && descr === '<u1'));
  if (!dtype) throw new Error(`Unsupported .npy dtype ${descr}; supported: ${DTYPES.map((d) => d.descr).join(', ')}`);
  const shape = shapeText.split(',').map((s) => s.trim()).filter((s) => s.length > 0).map(Number);
  const count = shapeSize(shape);
  const byteLength = count * dtype.bytes;
  if (buffer.length < dataStart + byteLength) {
    throw new Error(`Truncated .npy file: shape (${shape.join(', ')}) needs ${byteLength} data bytes, file has ${buffer.length - dataStart}`);
  }
  // Copy into a fresh, aligned ArrayBuffer: the data offset need not suit the element width.
  const bytes = Buffer.from(buffer.subarray(dataStart, dataStart + byteLength));
  if (os.endianness() === 'BE') swapBytes(bytes, dtype.bytes);
  const aligned = new ArrayBuffer(byteLength);
  new Uint8Array(aligned).set(bytes);
  return { data: dtype.make(aligned, count), shape, descr };
}
