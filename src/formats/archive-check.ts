// A structural check of a torch.save / torch.jit.save file (a zip archive of stored records) before
// libtorch reads it. libtorch's reader trusts the archive: a flipped bit can make it read garbage or
// crash. Here every record's CRC-32 is checked against the archive's own, and every offset and size
// against the file, so a damaged file is refused with a clear message instead.
import * as zlib from 'zlib';
import { PickleError, PickleSummary, scanPickle } from './pickle-scan';

const EOCD_SIGNATURE = 0x06054b50;
const CENTRAL_SIGNATURE = 0x02014b50;
const LOCAL_SIGNATURE = 0x04034b50;
const EOCD_SIZE = 22;
const CENTRAL_HEADER_SIZE = 46;
const LOCAL_HEADER_SIZE = 30;
const MAX_COMMENT = 0xffff;
const ZIP64_MARKER = 0xffffffff;
const STORED = 0;
const DEFLATED = 8;

export class ArchiveError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ArchiveError';
  }
}

function findEndOfCentralDirectory(bytes: Buffer): number {
  const lowest = Math.max(0, bytes.length - EOCD_SIZE - MAX_COMMENT);
  for (let at = bytes.length - EOCD_SIZE; at >= lowest; --at) {
    if (bytes.readUInt32LE(at) === EOCD_SIGNATURE) return at;
  }
  throw new ArchiveError('not a zip archive (no end-of-central-directory record): the file is truncated or not a PyTorch file');
}

/** A record's bytes as stored, or inflated (bounded by the size the directory declares). */
function recordContent(raw: Buffer, method: number, unpackedSize: number, name: string): Buffer {
  if (method === STORED) return raw;
  try {
    const content = zlib.inflateRawSync(raw, { maxOutputLength: Math.max(unpackedSize, 1) });
    if (content.length !== unpackedSize) throw new Error(`${content.length} bytes, the directory says ${unpackedSize}`);
    return content;
  } catch (err) {
    throw new ArchiveError(`record ${name} does not inflate: ${(err as Error).message}`);
  }
}

/**
 * What the deflated records of an archive may inflate to in all: a PyTorch file stores its tensors
 * uncompressed (only TorchScript's code is deflated), so more than this is a zip bomb, refused before
 * anything is inflated.
 */
export function inflatedBudget(fileBytes: number): number {
  return Math.max(MIN_INFLATED_BUDGET, INFLATED_BUDGET_PER_BYTE * fileBytes);
}
const MIN_INFLATED_BUDGET = 64 * 1024 ** 2;
const INFLATED_BUDGET_PER_BYTE = 16;

/**
 * Runs every pickle of the archive (data.pkl, constants.pkl) through the structural check: storages
 * against their records (`<folder>/<pickle name>/<key>`), tensor views against their storages,
 * nesting and size bounded.
 */
function checkPickles(pickles: Map<string, Buffer>, sizes: Map<string, number>, options: ArchiveCheckOptions): void {
  for (const [name, content] of pickles) {
    const folder = name.slice(0, -'.pkl'.length);
    try {
      const summary = scanPickle(content, name, (key) => sizes.get(`${folder}/${key}`.toLowerCase()), options.allowGlobal);
      options.pickles?.set(name, summary);
    } catch (err) {
      if (err instanceof PickleError) throw new ArchiveError(err.message);
      throw err;
    }
  }
}

/** What checkArchive also checks, and where it reports what the pickles hold. */
export interface ArchiveCheckOptions {
  /** The Python globals the pickles may refer to (default: any). */
  allowGlobal?: (name: string) => boolean;
  /** Filled with each pickle's summary, by record name. */
  pickles?: Map<string, PickleSummary>;
}

/** Throws ArchiveError unless `bytes` is an intact zip archive whose pickles are sound; returns the record names. */
export function checkArchive(bytes: Buffer, options: ArchiveCheckOptions = {}): string[] {
  if (bytes.length < EOCD_SIZE) throw new ArchiveError(`too short to be a zip archive (${bytes.length} bytes)`);
  const eocd = findEndOfCentralDirectory(bytes);
  const entries = bytes.readUInt16LE(eocd + 10);
  const directorySize = bytes.readUInt32LE(eocd + 12);
  const directoryOffset = bytes.readUInt32LE(eocd + 16);
  // zip64 (> 4 GB) is not checked here; a smaller file has no need of it, and would skip the checks.
  const zip64 = (): never | string[] => {
    if (bytes.length < ZIP64_MARKER) throw new ArchiveError(`it uses zip64 fields in a file of ${bytes.length} bytes, which needs none`);
    return [];
  };
  if (directoryOffset === ZIP64_MARKER || directorySize === ZIP64_MARKER) return zip64();
  if (directoryOffset + directorySize > eocd) throw new ArchiveError('the central directory lies outside the file');
  const names: string[] = [];
  const sizes = new Map<string, number>();
  const pickles = new Map<string, Buffer>();
  let inflated = 0;
  let at = directoryOffset;
  for (let i = 0; i < entries; ++i) {
    if (at + CENTRAL_HEADER_SIZE > eocd || bytes.readUInt32LE(at) !== CENTRAL_SIGNATURE) {
      throw new ArchiveError(`central directory entry ${i} is damaged`);
    }
    const method = bytes.readUInt16LE(at + 10);
    const crc = bytes.readUInt32LE(at + 16);
    const size = bytes.readUInt32LE(at + 20);
    const unpackedSize = bytes.readUInt32LE(at + 24);
    const nameLength = bytes.readUInt16LE(at + 28);
    const extraLength = bytes.readUInt16LE(at + 30);
    const commentLength = bytes.readUInt16LE(at + 32);
    const localOffset = bytes.readUInt32LE(at + 42);
    const name = bytes.toString('utf8', at + CENTRAL_HEADER_SIZE, at + CENTRAL_HEADER_SIZE + nameLength);
    if (size === ZIP64_MARKER || unpackedSize === ZIP64_MARKER || localOffset === ZIP64_MARKER) return zip64().concat(names);
    if (method !== STORED && method !== DEFLATED) throw new ArchiveError(`record ${name} uses compression method ${method}; expected stored (0) or deflated (8)`);
    // A stored record is its own content: two different sizes would leave libtorch to pick one.
    if (method === STORED && size !== unpackedSize) throw new ArchiveError(`record ${name} is stored with ${size} bytes but declares ${unpackedSize}`);
    if (localOffset + LOCAL_HEADER_SIZE > bytes.length || bytes.readUInt32LE(localOffset) !== LOCAL_SIGNATURE) {
      throw new ArchiveError(`record ${name}: its local header is damaged`);
    }
    const dataStart = localOffset + LOCAL_HEADER_SIZE + bytes.readUInt16LE(localOffset + 26) + bytes.readUInt16LE(localOffset + 28);
    if (dataStart + size > bytes.length) throw new ArchiveError(`record ${name} runs past the end of the file`);
    if (method === DEFLATED && (inflated += unpackedSize) > inflatedBudget(bytes.length)) {
      throw new ArchiveError(`its deflated records would inflate to more than ${inflatedBudget(bytes.length)} bytes (record ${name} alone declares ${unpackedSize}), far more than a ${bytes.length}-byte PyTorch file holds`);
    }
    const content = recordContent(bytes.subarray(dataStart, dataStart + size), method, unpackedSize, name);
    const actual = zlib.crc32(content) >>> 0;
    if (actual !== crc) {
      throw new ArchiveError(`record ${name} is damaged: CRC-32 ${actual.toString(16).padStart(8, '0')}, the archive says ${crc.toString(16).padStart(8, '0')}`);
    }
    // libtorch finds records by name ignoring case (miniz's lookup): two names that differ only in
    // case would let it read a record other than the one checked here.
    const key = name.toLowerCase();
    if (sizes.has(key)) throw new ArchiveError(`it has two records named ${name} (names are compared ignoring case)`);
    names.push(name);
    sizes.set(key, content.length);
    if (key.endsWith('.pkl')) pickles.set(name, content);
    at += CENTRAL_HEADER_SIZE + nameLength + extraLength + commentLength;
  }
  checkPickles(pickles, sizes, options);
  return names;
}
