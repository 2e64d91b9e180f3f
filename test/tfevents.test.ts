// TensorBoard event files: TFRecord framing and CRCs, the Event/Summary wire format (checked with
// a small independent protobuf reader), the round trip through readEvents, and corruption errors.

import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { PYTHON, testIfInstalled } from './helpers';
import { crc32c } from '@node-rs/crc32';
import { renderFilterMosaic } from '../src/viz/mosaic';
import { frameRecord, maskCrc, maskedCrc32c, splitRecords } from '../src/summary/record-framing';
import { readEvents } from '../src/summary/tfevents-reader';
import { FILE_VERSION, SummaryWriter } from '../src/summary/writer';

/** Bitwise CRC-32C (Castagnoli, reflected polynomial 0x82F63B78): a reference independent of @node-rs/crc32. */
function referenceCrc32c(bytes: Uint8Array): number {
  let crc = 0xffffffff;
  for (const b of bytes) {
    crc ^= b;
    for (let k = 0; k < 8; k++) crc = crc & 1 ? (crc >>> 1) ^ 0x82f63b78 : crc >>> 1;
  }
  return (crc ^ 0xffffffff) >>> 0;
}

/** Minimal protobuf wire reader: field number → list of raw values (varint as bigint, others as bytes). */
function wireFields(bytes: Uint8Array): Map<number, (bigint | Buffer)[]> {
  const buf = Buffer.from(bytes);
  const out = new Map<number, (bigint | Buffer)[]>();
  let p = 0;
  const varint = (): bigint => {
    let result = 0n;
    let shift = 0n;
    for (;;) {
      const b = buf[p++];
      result |= BigInt(b & 0x7f) << shift;
      if (!(b & 0x80)) return result;
      shift += 7n;
    }
  };
  while (p < buf.length) {
    const key = Number(varint());
    const field = key >>> 3;
    const wire = key & 7;
    let value: bigint | Buffer;
    if (wire === 0) value = varint();
    else if (wire === 1) value = buf.subarray(p, (p += 8));
    else if (wire === 5) value = buf.subarray(p, (p += 4));
    else if (wire === 2) {
      const n = Number(varint());
      value = buf.subarray(p, (p += n));
    } else throw new Error(`unexpected wire type ${wire}`);
    out.set(field, [...(out.get(field) ?? []), value]);
  }
  return out;
}

let dir: string;
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'convscope-tfevents-'));
});
afterEach(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});

describe('CRC-32C and masking', () => {
  test('known vector: CRC-32C("123456789") = 0xE3069283, and its masked form', () => {
    const vector = Buffer.from('123456789');
    expect(crc32c(vector) >>> 0).toBe(0xe3069283);
    expect(referenceCrc32c(vector)).toBe(0xe3069283);
    // mask(c) = ((c >>> 15) | (c << 17)) + 0xa282ead8 (mod 2^32)
    expect(maskCrc(0xe3069283)).toBe(0xc78ab0e5);
    expect(maskedCrc32c(vector)).toBe(0xc78ab0e5);
    expect(maskCrc(0)).toBe(0xa282ead8);
  });

  test('record framing: length, masked length CRC, data, masked data CRC', () => {
    const data = Buffer.from('hello tensorboard');
    const record = frameRecord(data);
    expect(record.length).toBe(8 + 4 + data.length + 4);
    expect(record.readBigUInt64LE(0)).toBe(BigInt(data.length));
    expect(record.readUInt32LE(8)).toBe(maskCrc(referenceCrc32c(record.subarray(0, 8))));
    expect(record.subarray(12, 12 + data.length)).toEqual(data);
    expect(record.readUInt32LE(12 + data.length)).toBe(maskCrc(referenceCrc32c(data)));
    expect(splitRecords(Buffer.concat([record, frameRecord(Buffer.alloc(0))]), 'x').map((r) => r.data.toString())).toEqual(['hello tensorboard', '']);
  });
});

describe('SummaryWriter', () => {
  test('file name, first event, scalars and images round-trip through readEvents', () => {
    const logDir = path.join(dir, 'runs', 'a'); // created recursively
    const writer = new SummaryWriter(logDir);
    expect(path.dirname(writer.path)).toBe(logDir);
    expect(path.basename(writer.path)).toMatch(new RegExp(`^events\\.out\\.tfevents\\.\\d{10}\\.${os.hostname().replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`));

    const png = renderFilterMosaic({ data: Float32Array.from({ length: 8 * 25 }, (_, i) => Math.cos(i)), shape: [8, 1, 5, 5] });
    writer.addScalar('loss/train', 0.5, 1);
    writer.addScalar('loss/train', 0, 2); // zero must be written, not dropped as a proto3 default
    writer.addScalar('accuracy/test', -1.25, 3_000_000_000); // step beyond int32
    writer.addImage('conv1/filters', png, 2);
    writer.addImage('conv1/resized', png, 3, { width: 10, height: 20 });
    writer.flush();
    writer.close();
    writer.close(); // idempotent
    expect(() => writer.addScalar('x', 1, 1)).toThrow(/is closed/);

    const events = readEvents(writer.path);
    expect(events).toHaveLength(6);
    expect(events[0].fileVersion).toBe(FILE_VERSION);
    expect(events[0].fileVersion).toBe('brain.Event:2');
    expect(events[0].scalars).toEqual([]);
    const now = Date.now() / 1000;
    for (const e of events) expect(Math.abs(e.wallTime - now)).toBeLessThan(60);
    expect(events.slice(1, 4).map((e) => [e.step, e.scalars])).toEqual([
      [1, [{ tag: 'loss/train', value: 0.5 }]],
      [2, [{ tag: 'loss/train', value: 0 }]],
      [3_000_000_000, [{ tag: 'accuracy/test', value: -1.25 }]],
    ]);
    const [image, resized] = [events[4].images[0], events[5].images[0]];
    expect(events[4].step).toBe(2);
    expect(image.tag).toBe('conv1/filters');
    const ihdrWidth = png.readUInt32BE(16);
    const ihdrHeight = png.readUInt32BE(20);
    expect([image.width, image.height]).toEqual([ihdrWidth, ihdrHeight]);
    expect(image.colorspace).toBe(png[25] === 6 ? 4 : 3); // RGBA or RGB, from the PNG colour type
    expect(image.png.equals(png)).toBe(true);
    expect([resized.width, resized.height]).toEqual([10, 20]);
  });

  test('Event and Summary use TensorFlow field numbers and wire types', () => {
    const writer = new SummaryWriter(dir);
    writer.addScalar('lr', 0.25, 7, 1700000000.5);
    writer.close();
    const records = splitRecords(fs.readFileSync(writer.path), writer.path);
    const first = wireFields(records[0].data);
    expect((first.get(1)![0] as Buffer).length).toBe(8); // double wall_time = 1 (64-bit)
    expect((first.get(3)![0] as Buffer).toString()).toBe('brain.Event:2'); // string file_version = 3

    const scalar = wireFields(records[1].data);
    expect((scalar.get(1)![0] as Buffer).readDoubleLE(0)).toBe(1700000000.5); // wall_time
    expect(scalar.get(2)![0]).toBe(7n); // int64 step = 2 (varint)
    const summary = wireFields(scalar.get(5)![0] as Buffer); // Summary summary = 5
    const value = wireFields(summary.get(1)![0] as Buffer); // repeated Value value = 1
    expect((value.get(1)![0] as Buffer).toString()).toBe('lr'); // string tag = 1
    expect((value.get(2)![0] as Buffer).readFloatLE(0)).toBe(0.25); // float simple_value = 2 (32-bit)
  });

  test('image summaries carry height=1, width=2, colorspace=3, encoded_image_string=4', () => {
    const writer = new SummaryWriter(dir);
    const png = renderFilterMosaic({ data: new Float32Array(9), shape: [1, 1, 3, 3] });
    writer.addImage('img', png, 1);
    writer.close();
    const record = splitRecords(fs.readFileSync(writer.path), writer.path)[1];
    const value = wireFields(wireFields(wireFields(record.data).get(5)![0] as Buffer).get(1)![0] as Buffer);
    const image = wireFields(value.get(4)![0] as Buffer); // Image image = 4
    expect(Number(image.get(1)![0])).toBe(png.readUInt32BE(20));
    expect(Number(image.get(2)![0])).toBe(png.readUInt32BE(16));
    expect([3n, 4n]).toContain(image.get(3)![0]);
    expect((image.get(4)![0] as Buffer).equals(png)).toBe(true);
  });

  test('two writers in the same directory and second get different files', () => {
    const a = new SummaryWriter(dir);
    const b = new SummaryWriter(dir);
    expect(a.path).not.toBe(b.path);
    a.close();
    b.close();
    expect(fs.readdirSync(dir).filter((f) => f.includes('tfevents'))).toHaveLength(2);
  });

  test('arguments are validated', () => {
    const writer = new SummaryWriter(dir);
    expect(() => writer.addScalar('', 1, 0)).toThrow(new TypeError('Expected a non-empty string for tag but received "" of type string'));
    expect(() => writer.addScalar('x', Number.NaN, 0)).toThrow(new RangeError('Expected a finite number for value but received NaN of type number'));
    expect(() => writer.addScalar('x', Infinity, 0)).toThrow(RangeError);
    expect(() => writer.addScalar('x', '1' as unknown as number, 0)).toThrow(TypeError);
    expect(() => writer.addScalar('x', 1, -1)).toThrow(new RangeError('Expected integer >= 0 for step but received -1 of type number'));
    expect(() => writer.addScalar('x', 1, 1.5)).toThrow(TypeError);
    expect(() => writer.addImage('x', Buffer.from('not a png'), 0)).toThrow(/Not a PNG/);
    expect(() => writer.addImage('x', 'png' as unknown as Buffer, 0)).toThrow(TypeError);
    writer.close();
    expect(() => new SummaryWriter('')).toThrow(TypeError);
    expect(readEvents(writer.path)).toHaveLength(1); // nothing invalid was written
  });
});

describe('corruption is detected', () => {
  function writeSample(): string {
    const writer = new SummaryWriter(dir);
    writer.addScalar('a', 1, 1);
    writer.addScalar('b', 2, 2);
    writer.close();
    return writer.path;
  }

  test('a flipped data byte: data CRC mismatch naming the record and offset', () => {
    const file = writeSample();
    const bytes = fs.readFileSync(file);
    const records = splitRecords(bytes, file);
    const target = records[2].offset + 12 + 3; // inside record 2's data
    bytes[target] ^= 0x01;
    fs.writeFileSync(file, bytes);
    expect(() => readEvents(file)).toThrow(new RegExp(`record 2 at byte offset ${records[2].offset}: data CRC mismatch \\(stored 0x[0-9a-f]{8}, computed 0x[0-9a-f]{8}\\)`));
  });

  test('a flipped length byte: length CRC mismatch', () => {
    const file = writeSample();
    const bytes = fs.readFileSync(file);
    const offset = splitRecords(bytes, file)[1].offset;
    bytes[offset] ^= 0x40;
    fs.writeFileSync(file, bytes);
    expect(() => readEvents(file)).toThrow(/record 1 at byte offset \d+: length CRC mismatch/);
  });

  test('a flipped CRC byte and truncation', () => {
    const file = writeSample();
    const bytes = fs.readFileSync(file);
    const flipped = Buffer.from(bytes);
    flipped[flipped.length - 1] ^= 0xff; // last data CRC
    fs.writeFileSync(file, flipped);
    expect(() => readEvents(file)).toThrow(/data CRC mismatch/);
    fs.writeFileSync(file, bytes.subarray(0, bytes.length - 3));
    expect(() => readEvents(file)).toThrow(/Truncated TFRecord in .*record 2 at byte offset \d+: header says \d+ data bytes/);
    fs.writeFileSync(file, bytes.subarray(0, bytes.length - (bytes.length - splitRecords(bytes, file)[2].offset) + 5));
    expect(() => readEvents(file)).toThrow(/Truncated TFRecord in .*expected a 12-byte length header, found 5 bytes/);
  });
});

describe('TensorBoard reads the file', () => {
  // TENSORBOARD_PYTHON may name another interpreter (e.g. a virtualenv with tensorboard installed).
  const python = process.env.TENSORBOARD_PYTHON ?? PYTHON;
  const probe = spawnSync(python, ['-c', 'import tensorboard'], { encoding: 'utf8' });
  const testWithTensorBoard = testIfInstalled(probe.status === 0,
    `${python} cannot import tensorboard (${(probe.stderr || String(probe.error)).trim().split('\n').pop()}); set TENSORBOARD_PYTHON to an interpreter that can`);
  testWithTensorBoard('EventAccumulator sees the scalars and images', () => {
    const writer = new SummaryWriter(dir);
    writer.addScalar('loss/train', 0.75, 3);
    writer.addScalar('loss/train', 0, 4);
    const png = renderFilterMosaic({ data: new Float32Array(9), shape: [1, 1, 3, 3] });
    writer.addImage('conv1/filters', png, 3);
    writer.close();
    const script = [
      'import json, sys',
      'from tensorboard.backend.event_processing.event_accumulator import EventAccumulator',
      'acc = EventAccumulator(sys.argv[1], size_guidance={"scalars": 0, "images": 0}); acc.Reload()',
      's = acc.Scalars("loss/train"); i = acc.Images("conv1/filters")',
      'print(json.dumps({"scalars": [[e.step, e.value] for e in s], "image": [i[0].step, i[0].width, i[0].height, len(i[0].encoded_image_string)]}))',
    ].join('\n');
    const run = spawnSync(python, ['-c', script, writer.path], { encoding: 'utf8' });
    expect(run.stderr).not.toMatch(/Traceback/);
    const result = JSON.parse(run.stdout.trim().split('\n').pop()!);
    expect(result.scalars).toEqual([[3, 0.75], [4, 0]]);
    expect(result.image).toEqual([3, png.readUInt32BE(16), png.readUInt32BE(20), png.length]);
  });
});
