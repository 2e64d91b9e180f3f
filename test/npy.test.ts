// NumPy .npy files: header bytes checked literally, values round-trip, and NumPy itself reads them.

import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { PYTHON, testWithPython } from './helpers';
import { decodeNpy, encodeNpy } from '../src/formats/npy';

const headerOf = (buf: Buffer) => {
  const length = buf.readUInt16LE(8);
  return { length, text: buf.toString('latin1', 10, 10 + length) };
};

describe('encodeNpy header', () => {
  test('magic, version 1.0, header length, dict text, 64-byte alignment', () => {
    const buf = encodeNpy({ data: Float32Array.from([1, 2, 3, 4, 5, 6]), shape: [2, 3] });
    expect([...buf.subarray(0, 6)]).toEqual([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]); // \x93NUMPY
    expect([buf[6], buf[7]]).toEqual([1, 0]);
    const { length, text } = headerOf(buf);
    expect((10 + length) % 64).toBe(0);
    expect(text.endsWith('\n')).toBe(true);
    expect(text.trimEnd()).toBe("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }");
    expect(text.slice(0, -1)).toMatch(/^\{.*\} *$/); // padded with spaces only
    expect(buf.length).toBe(10 + length + 6 * 4);
    expect(buf.readFloatLE(10 + length + 5 * 4)).toBe(6);
  });

  test('shape tuples and dtypes as NumPy writes them', () => {
    const cases: [Parameters<typeof encodeNpy>[0], string, string][] = [
      [{ data: new Float32Array(5), shape: [5] }, '<f4', '(5,)'],
      [{ data: new Float32Array(1), shape: [] }, '<f4', '()'],
      [{ data: new Float64Array(24), shape: [2, 3, 4] }, '<f8', '(2, 3, 4)'],
      [{ data: new Int32Array(2), shape: [2, 1] }, '<i4', '(2, 1)'],
      [{ data: new Uint8Array(3), shape: [3] }, '|u1', '(3,)'],
      [{ data: new BigInt64Array(2), shape: [2] }, '<i8', '(2,)'],
      [{ data: new Float32Array(0), shape: [0, 4] }, '<f4', '(0, 4)'],
    ];
    for (const [array, descr, shape] of cases) {
      const buf = encodeNpy(array);
      const { length, text } = headerOf(buf);
      expect((10 + length) % 64).toBe(0);
      expect(text.trimEnd()).toBe(`{'descr': '${descr}', 'fortran_order': False, 'shape': ${shape}, }`);
    }
  });

  test('values round-trip through decodeNpy, including a typed-array view with an offset', () => {
    const backing = Float32Array.from({ length: 20 }, (_, i) => i - 7.5);
    const view = backing.subarray(4, 16);
    const decoded = decodeNpy(encodeNpy({ data: view, shape: [3, 4] }));
    expect(decoded.descr).toBe('<f4');
    expect(decoded.shape).toEqual([3, 4]);
    expect(Array.from(decoded.data as Float32Array)).toEqual(Array.from(view));
    const ints = decodeNpy(encodeNpy({ data: BigInt64Array.from([-1n, 2n ** 40n]), shape: [2] }));
    expect(Array.from(ints.data as BigInt64Array)).toEqual([-1n, 2n ** 40n]);
  });

  test('bad input', () => {
    expect(() => encodeNpy({ data: new Float32Array(5), shape: [2, 3] })).toThrow(
      new RangeError('Expected 6 elements (shape [2, 3]) for array.data but received 5'),
    );
    expect(() => encodeNpy({ data: [1, 2] as unknown as Float32Array, shape: [2] })).toThrow(TypeError);
    expect(() => encodeNpy({ data: new Float32Array(2), shape: [2.5] })).toThrow(TypeError);
    expect(() => decodeNpy(Buffer.from('hello world'))).toThrow(/missing the \\x93NUMPY magic/);
    const truncated = encodeNpy({ data: new Float32Array(8), shape: [8] }).subarray(0, 80);
    expect(() => decodeNpy(truncated)).toThrow(/Truncated \.npy file/);
  });
});

describe('NumPy interoperability', () => {
  const python = PYTHON;
  const testWithNumpy = testWithPython(['numpy']);
  let dir: string;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'convscope-npy-'));
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  testWithNumpy('np.load reads what encodeNpy wrote, and decodeNpy reads what np.save wrote', () => {
    const weights = Float32Array.from({ length: 2 * 1 * 3 * 3 }, (_, i) => (i - 9) / 4);
    fs.writeFileSync(path.join(dir, 'w.npy'), encodeNpy({ data: weights, shape: [2, 1, 3, 3] }));
    fs.writeFileSync(path.join(dir, 'i.npy'), encodeNpy({ data: Int32Array.from([7, -8, 9]), shape: [3] }));
    const script = [
      'import json, sys, numpy as np',
      'd = sys.argv[1]',
      "w = np.load(d + '/w.npy'); i = np.load(d + '/i.npy')",
      "np.save(d + '/from_numpy.npy', np.arange(12, dtype='<f8').reshape(3, 4) / 8)",
      "print(json.dumps({'shape': list(w.shape), 'dtype': str(w.dtype), 'values': w.ravel().tolist(), 'ints': i.tolist(), 'idtype': str(i.dtype)}))",
    ].join('\n');
    const run = spawnSync(python, ['-c', script, dir], { encoding: 'utf8' });
    expect(run.stderr).toBe('');
    const result = JSON.parse(run.stdout);
    expect(result.shape).toEqual([2, 1, 3, 3]);
    expect(result.dtype).toBe('float32');
    expect(result.values).toEqual(Array.from(weights));
    expect([result.ints, result.idtype]).toEqual([[7, -8, 9], 'int32']);

    const fromNumpy = decodeNpy(fs.readFileSync(path.join(dir, 'from_numpy.npy')));
    expect(fromNumpy.descr).toBe('<f8');
    expect(fromNumpy.shape).toEqual([3, 4]);
    expect(Array.from(fromNumpy.data as Float64Array)).toEqual(Array.from({ length: 12 }, (_, k) => k / 8));
  });
});
