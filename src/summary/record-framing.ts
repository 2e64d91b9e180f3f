// TFRecord framing, the container TensorBoard event files use. Each record is
//   uint64 LE  length
//   uint32 LE  masked CRC-32C of the 8 length bytes
//   bytes      data (one serialized Event)
//   uint32 LE  masked CRC-32C of the data
// CRC-32C is the Castagnoli polynomial (not zlib's CRC-32); TensorFlow "masks" stored CRCs so that
// a CRC computed over data that itself contains CRCs is less likely to collide.

import { crc32c } from '@node-rs/crc32';

const MASK_DELTA = 0xa282ead8;
/** Bytes a record adds around its data: length, its CRC, and the data CRC. */
export const RECORD_OVERHEAD = 8 + 4 + 4;

/**
 * TensorFlow's CRC mask: rotate right by 15 bits, add a constant, as uint32.
 *
 * @example
 * maskCrc(0xe3069283); // masked CRC-32C of "123456789"
 */
export function maskCrc(crc: number): number {
  return ((((crc >>> 15) | (crc << 17)) >>> 0) + MASK_DELTA) >>> 0;
}

/**
 * Masked CRC-32C (Castagnoli) of `bytes`, as stored in TFRecord files.
 *
 * @example
 * maskedCrc32c(Buffer.from('123456789')) === maskCrc(0xe3069283); // true
 */
export function maskedCrc32c(bytes: Uint8Array): number {
  return maskCrc(crc32c(bytes) >>> 0);
}

/**
 * Frames one serialized message as a TFRecord.
 *
 * @example
 * fs.writeSync(fd, frameRecord(Buffer.from(eventBytes)));
 */
export function frameRecord(data: Uint8Array): Buffer {
  const out = Buffer.alloc(RECORD_OVERHEAD + data.length);
  out.writeBigUInt64LE(BigInt(data.length), 0);
  out.writeUInt32LE(maskedCrc32c(out.subarray(0, 8)), 8);
  out.set(data, 12);
  out.writeUInt32LE(maskedCrc32c(data), 12 + data.length);
  return out;
}

/** One record's data and where its frame starts in the file. */
export interface FramedRecord {
  data: Buffer;
  offset: number;
}

const hex = (n: number): string => `0x${n.toString(16).padStart(8, '0')}`;

/**
 * Splits a TFRecord file's bytes into records, verifying both CRCs of each.
 *
 * @param source - name used in error messages (usually the file path)
 * @throws Error naming the record index, its byte offset and what failed: a truncated header,
 *   length CRC mismatch, truncated data, or data CRC mismatch
 * @example
 * for (const { data } of splitRecords(fs.readFileSync(path), path)) decodeEvent(data);
 */
export function splitRecords(bytes: Buffer, source: string): FramedRecord[] {
  const records: FramedRecord[] = [];
  let offset = 0;
  while (offset < bytes.length) {
    const where = `${source}: record ${records.length} at byte offset ${offset}`;
    const left = bytes.length - offset;
    if (left < 12) throw new Error(`Truncated TFRecord in ${where}: expected a 12-byte length header, found ${left} bytes`);
    const lengthBytes = bytes.subarray(offset, offset + 8);
    const storedLengthCrc = bytes.readUInt32LE(offset + 8);
    const lengthCrc = maskedCrc32c(lengthBytes);
    if (storedLengthCrc !== lengthCrc) {
      throw new Error(`Corrupt TFRecord in ${where}: length CRC mismatch (stored ${hex(storedLengthCrc)}, computed ${hex(lengthCrc)})`);
    }
    const length = bytes.readBigUInt64LE(offset);
    if (length > BigInt(left - RECORD_OVERHEAD)) {
      throw new Error(`Truncated TFRecord in ${where}: header says ${length} data bytes, only ${Math.max(0, left - RECORD_OVERHEAD)} remain`);
    }
    const n = Number(length);
    const data = bytes.subarray(offset + 12, offset + 12 + n);
    const storedDataCrc = bytes.readUInt32LE(offset + 12 + n);
    const dataCrc = maskedCrc32c(data);
    if (storedDataCrc !== dataCrc) {
      throw new Error(`Corrupt TFRecord in ${where}: data CRC mismatch (stored ${hex(storedDataCrc)}, computed ${hex(dataCrc)})`);
    }
    records.push({ data, offset });
    offset += RECORD_OVERHEAD + n;
  }
  return records;
}
