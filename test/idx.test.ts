import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'fs';
import { tmpdir } from 'os';
import { join } from 'path';
import { gzipSync } from 'zlib';
import { randomBytes } from 'crypto';
import { encodeIdx, IdxArray, IdxFormatError, IdxFormatProblem, MAX_IDX_PAYLOAD_BYTES, readIdx, writeIdx } from '../src/formats/idx';

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'convscope-idx-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Header bytes: 00 00 <code> <ndims> then big-endian dims. */
function header(code: number, dims: number[]): Buffer {
  const out = Buffer.alloc(4 + 4 * dims.length);
  out[2] = code;
  out[3] = dims.length;
  dims.forEach((d, i) => out.writeUInt32BE(d, 4 + 4 * i));
  return out;
}

const samples: IdxArray[] = [
  { dtype: 'uint8', dims: [2, 3], data: Uint8Array.of(0, 1, 127, 128, 254, 255) },
  { dtype: 'int8', dims: [4], data: Int8Array.of(-128, -1, 0, 127) },
  { dtype: 'int16', dims: [2, 2], data: Int16Array.of(-32768, -2, 258, 32767) },
  { dtype: 'int32', dims: [1, 2, 2], data: Int32Array.of(-2147483648, -1, 0x01020304, 2147483647) },
  { dtype: 'float32', dims: [3], data: Float32Array.of(-1.5, 0, 3.25e-5) },
  { dtype: 'float64', dims: [2, 1], data: Float64Array.of(-Math.PI, 1e300) },
];

describe('round trip', () => {
  for (const sample of samples) {
    for (const gzip of [false, true]) {
      test(`${sample.dtype} ${gzip ? 'gzip' : 'raw'}`, () => {
        const path = join(dir, `${sample.dtype}-${gzip ? 'gz' : 'raw'}.idx`);
        writeIdx(path, sample, { gzip });
        const back = readIdx(path);
        expect(back.dtype).toBe(sample.dtype);
        expect(back.dims).toEqual(sample.dims);
        expect(back.data.constructor).toBe(sample.data.constructor);
        expect(Array.from(back.data)).toEqual(Array.from(sample.data));
        expect(readFileSync(path)[0] === 0x1f).toBe(gzip);
      });
    }
  }

  test('writeIdx leaves no temp file behind', () => {
    const sub = mkdtempSync(join(dir, 'atomic-'));
    writeIdx(join(sub, 'a.idx'), samples[0]);
    writeIdx(join(sub, 'a.idx'), samples[1]); // overwrite
    expect(readdirSync(sub)).toEqual(['a.idx']);
    expect(readIdx(join(sub, 'a.idx')).dtype).toBe('int8');
  });
});

describe('big-endian bytes', () => {
  const cases: Array<[IdxArray, number[]]> = [
    [{ dtype: 'int8', dims: [2], data: Int8Array.of(-128, 127) }, [0, 0, 0x09, 1, 0, 0, 0, 2, 0x80, 0x7f]],
    [{ dtype: 'int16', dims: [2], data: Int16Array.of(-2, 258) }, [0, 0, 0x0b, 1, 0, 0, 0, 2, 0xff, 0xfe, 0x01, 0x02]],
    [{ dtype: 'int32', dims: [2], data: Int32Array.of(-1, 0x01020304) }, [0, 0, 0x0c, 1, 0, 0, 0, 2, 0xff, 0xff, 0xff, 0xff, 1, 2, 3, 4]],
    [{ dtype: 'float32', dims: [1], data: Float32Array.of(1.5) }, [0, 0, 0x0d, 1, 0, 0, 0, 1, 0x3f, 0xc0, 0, 0]],
    [{ dtype: 'float64', dims: [1], data: Float64Array.of(-2) }, [0, 0, 0x0e, 1, 0, 0, 0, 1, 0xc0, 0, 0, 0, 0, 0, 0, 0]],
    [{ dtype: 'uint8', dims: [1, 2], data: Uint8Array.of(7, 255) }, [0, 0, 0x08, 2, 0, 0, 0, 1, 0, 0, 0, 2, 7, 255]],
  ];
  for (const [array, bytes] of cases) {
    test(`${array.dtype} decodes hand-made bytes and encodes to them`, () => {
      const decoded = readIdx(Buffer.from(bytes));
      expect(decoded.dims).toEqual(array.dims);
      expect(Array.from(decoded.data)).toEqual(Array.from(array.data));
      expect([...encodeIdx(array)]).toEqual(bytes);
    });
  }

  test('uint8 data is a zero-copy view into the input', () => {
    const input = Buffer.from([0, 0, 0x08, 1, 0, 0, 0, 3, 1, 2, 3]);
    const { data } = readIdx(input);
    expect(data.buffer).toBe(input.buffer);
    input[8] = 42;
    expect(data[0]).toBe(42);
  });

  test('multi-byte data read from an odd offset is aligned and in host order', () => {
    const bytes = Buffer.from([0, 0, 0x0c, 1, 0, 0, 0, 1, 0x80, 0, 0, 1]);
    const padded = Buffer.concat([Buffer.from([9]), bytes]).subarray(1); // byteOffset 1
    expect(Array.from(readIdx(padded).data)).toEqual([-2147483647]);
  });
});

test('gzip is detected by magic bytes, not by name', () => {
  const encoded = encodeIdx(samples[2]);
  const gzipNamedPlain = join(dir, 'looks-raw.idx');
  const rawNamedGz = join(dir, 'looks-compressed.gz');
  writeFileSync(gzipNamedPlain, gzipSync(encoded));
  writeFileSync(rawNamedGz, encoded);
  expect(Array.from(readIdx(gzipNamedPlain).data)).toEqual(Array.from(samples[2].data));
  expect(Array.from(readIdx(rawNamedGz).data)).toEqual(Array.from(samples[2].data));
});

describe('corrupt files', () => {
  const valid = Buffer.concat([header(0x08, [10]), Buffer.alloc(10, 1)]);
  const validGz = gzipSync(valid);
  const truncatedGz = validGz.subarray(0, validGz.length - 12);
  const badDeflate = Buffer.from(validGz);
  badDeflate[10] = 0xff; // first deflate block header: reserved block type 3
  const badCrc = Buffer.from(validGz);
  badCrc[badCrc.length - 8] ^= 0xff;
  // Random bytes do not compress, so this gzip is well over the 4 KiB header peek.
  const bigGz = (dims: number[], payloadBytes: number) => gzipSync(Buffer.concat([header(0x08, dims), randomBytes(payloadBytes)]));
  // A gzip FNAME field longer than the header peek: 64 KiB of input yields no output at all.
  const hugeNameGz = (() => {
    const gz = gzipSync(valid);
    const withName = Buffer.concat([gz.subarray(0, 10), Buffer.alloc(70_000, 0x61), Buffer.from([0]), gz.subarray(10)]);
    withName[3] |= 0x08; // FLG.FNAME
    return withName;
  })();

  const cases: Array<[string, Buffer, IdxFormatProblem, RegExp]> = [
    ['empty', Buffer.alloc(0), 'empty', /the file is empty \(expected at least the 4-byte IDX magic\)/],
    ['three-bytes', Buffer.from([0, 0, 8]), 'shorter-than-magic', /the file is 3 bytes, shorter than the 4-byte IDX magic/],
    ['bad-magic', Buffer.from([0x12, 0x34, 8, 1, 0, 0, 0, 1, 0]), 'bad-magic', /bad magic 0x12 0x34 \(expected the first two bytes to be 0x00 0x00\)/],
    ['unknown-dtype', Buffer.from([0, 0, 0x0a, 1, 0, 0, 0, 1, 0]), 'unknown-dtype', /unknown dtype code 0x0a \(expected one of 0x08 \(uint8\), 0x09 \(int8\), 0x0b \(int16\)/],
    ['no-dims', Buffer.from([0, 0, 8, 0, 1, 2]), 'no-dimensions', /declares 0 dimensions \(expected at least 1\)/],
    ['short-header', Buffer.from([0, 0, 8, 3, 0, 0, 0, 1, 0, 0]), 'header-truncated', /header needs 16 bytes for 3 dimensions but the file is only 10 bytes/],
    ['zero-dim', Buffer.concat([header(0x08, [3, 0]), Buffer.alloc(3)]), 'zero-dimension', /dimension 1 is 0 \(expected every dimension to be at least 1\)/],
    ['absurd-dims', Buffer.concat([header(0x0e, [65536, 65536]), Buffer.alloc(1000)]), 'too-large', /dims \[65536, 65536\] of float64 claim 34359738368 bytes, more than the 2147483648-byte limit/],
    ['short-payload', Buffer.concat([header(0x08, [10]), Buffer.alloc(5)]), 'payload-too-short', /the payload is 5 bytes but dims \[10\] of uint8 need 10 \(truncated file\?\)/],
    ['long-payload', Buffer.concat([valid, Buffer.alloc(2)]), 'payload-too-long', /the payload is 12 bytes but dims \[10\] of uint8 need only 10 \(2 trailing bytes\)/],
    ['truncated-gzip', truncatedGz, 'gzip-truncated', /the gzip stream is truncated \(unexpected end of file\)/],
    ['corrupt-gzip', badDeflate, 'gzip-corrupt', /the gzip stream is corrupt \(invalid block type\)/],
    ['crc-gzip', badCrc, 'gzip-checksum', /the gzip checksum does not match the decompressed data \(incorrect data check\)/],
    ['gzip-claims-too-much', bigGz([1_500_000_000], 8000), 'gzip-cannot-hold', /claim 1500000008 bytes but a \d+-byte gzip file can decompress to at most \d+/],
    ['gzip-too-long', bigGz([4000], 8000), 'payload-too-long', /the gzip stream decompresses to more than the 4008 bytes the header declares/],
    ['gzip-no-header', hugeNameGz, 'gzip-no-header', /the first 65536 bytes of the gzip stream do not decompress to a complete IDX header/],
  ];

  const seen = new Set<IdxFormatProblem>();
  for (const [name, bytes, problem, message] of cases) {
    test(`${name}: ${problem}`, () => {
      const path = join(dir, `${name}.idx`);
      writeFileSync(path, bytes);
      let error: unknown;
      try {
        readIdx(path);
      } catch (e) {
        error = e;
      }
      expect(error).toBeInstanceOf(IdxFormatError);
      const idxError = error as IdxFormatError;
      expect(idxError.message).toMatch(message);
      expect(idxError.message).toContain(`Invalid IDX file ${path}:`);
      expect(idxError.file).toBe(path);
      expect(idxError.problem).toBe(problem);
      seen.add(problem);
      // The same bytes from memory name "<buffer>".
      expect(() => readIdx(bytes)).toThrow(/^Invalid IDX file <buffer>: /);
    });
  }

  test('a missing file is reported with its path', () => {
    const path = join(dir, 'does-not-exist.idx');
    expect(() => readIdx(path)).toThrow(new RegExp(`Invalid IDX file ${path}: cannot read the file \\(ENOENT`));
  });

  test('at least ten distinct problems were each reported', () => {
    expect(seen.size).toBeGreaterThanOrEqual(10);
  });
});

describe('absurd sizes are refused before allocating', () => {
  const allocators = ['alloc', 'allocUnsafe', 'allocUnsafeSlow'] as const;
  function largestAllocation(run: () => void): number {
    let largest = 0;
    const spies = allocators.map((name) => {
      const original = Buffer[name].bind(Buffer) as (size: number, ...rest: unknown[]) => Buffer;
      return jest.spyOn(Buffer, name).mockImplementation(((size: number, ...rest: unknown[]) => {
        largest = Math.max(largest, size);
        return original(size, ...rest);
      }) as never);
    });
    try {
      run();
    } finally {
      spies.forEach((spy) => spy.mockRestore());
    }
    return largest;
  }

  const kilobyte = randomBytes(1024);
  const cases: Array<[string, Buffer, RegExp]> = [
    ['1 KB raw file claiming 2^32 items', Buffer.concat([header(0x08, [65536, 65536]), kilobyte]), /more than the 2147483648-byte limit/],
    ['1 KB raw file claiming 2^32 - 1 items', Buffer.concat([header(0x08, [0xffffffff]), kilobyte]), /more than the 2147483648-byte limit/],
    ['1 KB raw file claiming 2^30 items', Buffer.concat([header(0x08, [1024, 1024, 1024]), kilobyte]), /need 1073741824 \(truncated file\?\)/],
    ['1 KB gzip file claiming 2^30 items', gzipSync(Buffer.concat([header(0x08, [1 << 30]), kilobyte])), /need 1073741824 \(truncated file\?\)/],
    ['5 KB gzip file claiming 2^30 items', gzipSync(Buffer.concat([header(0x08, [1 << 30]), randomBytes(5000)])), /can decompress to at most/],
  ];
  for (const [name, bytes, message] of cases) {
    test(name, () => {
      const started = performance.now();
      const largest = largestAllocation(() => expect(() => readIdx(bytes)).toThrow(message));
      expect(performance.now() - started).toBeLessThan(200);
      expect(largest).toBeLessThan(1024 * 1024);
    });
  }

  test('the limit is 2 GiB', () => {
    expect(MAX_IDX_PAYLOAD_BYTES).toBe(2 ** 31);
  });
});

describe('writeIdx validates its input', () => {
  const path = () => join(dir, 'never-written.idx');
  test('wrong typed array for the dtype', () => {
    expect(() => writeIdx(path(), { dtype: 'float32', dims: [2], data: Uint8Array.of(1, 2) })).toThrow(
      new TypeError('Expected a Float32Array for dtype float32 for array.data but received a Uint8Array'),
    );
  });
  test('dims that do not match the data', () => {
    expect(() => writeIdx(path(), { dtype: 'uint8', dims: [3], data: Uint8Array.of(1, 2) })).toThrow(RangeError);
    expect(() => writeIdx(path(), { dtype: 'uint8', dims: [3], data: Uint8Array.of(1, 2) })).toThrow(
      /^Expected 3 elements \(the product of dims \[3\]\) for array.data.length but received 2 of type number$/,
    );
  });
  test('zero, negative or fractional dims', () => {
    expect(() => writeIdx(path(), { dtype: 'uint8', dims: [0], data: new Uint8Array(0) })).toThrow(RangeError);
    expect(() => writeIdx(path(), { dtype: 'uint8', dims: [1.5], data: new Uint8Array(1) })).toThrow(TypeError);
    expect(() => writeIdx(path(), { dtype: 'uint8', dims: [], data: new Uint8Array(1) })).toThrow(/for array.dims/);
  });
  test('unknown dtype and options', () => {
    expect(() => writeIdx(path(), { dtype: 'uint16' as never, dims: [1], data: new Uint8Array(1) })).toThrow(RangeError);
    expect(() => writeIdx(path(), samples[0], { gzip: 'yes' as never })).toThrow(
      new TypeError('Expected a boolean for options.gzip but received "yes" of type string'),
    );
    expect(() => writeIdx(path(), samples[0], { zip: true } as never)).toThrow(/Unknown option "zip"/);
  });
  test('nothing was written', () => {
    expect(readdirSync(dir)).not.toContain('never-written.idx');
  });
});
