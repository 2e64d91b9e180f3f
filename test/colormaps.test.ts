// Colormap tables against matplotlib's published values and the normalisation rules.

import { colorAt, colormapLut, COLORMAP_NAMES, isDiverging } from '../src/viz/colormaps';
import { rangesPerGroup, toUnit, unionRange, valueRange } from '../src/viz/normalize';

const byte = (v: number) => Math.round(v * 255);
const rgb = (r: number, g: number, b: number) => [byte(r), byte(g), byte(b)];

describe('colorAt', () => {
  test('endpoints and anchors equal matplotlib entries', () => {
    expect(colorAt('viridis', 0)).toEqual(rgb(0.267004, 0.004874, 0.329415));
    expect(colorAt('viridis', 1)).toEqual(rgb(0.993248, 0.906157, 0.143936));
    expect(colorAt('viridis', 0.5)).toEqual(rgb(0.127568, 0.566949, 0.550556)); // entry 128
    expect(colorAt('magma', 0)).toEqual(rgb(0.001462, 0.000466, 0.013866));
    expect(colorAt('magma', 1)).toEqual(rgb(0.987053, 0.991438, 0.749504));
    expect(colorAt('gray', 0)).toEqual([0, 0, 0]);
    expect(colorAt('gray', 1)).toEqual([255, 255, 255]);
    expect(colorAt('gray', 0.5)).toEqual([128, 128, 128]); // matplotlib: entry floor(0.5 * 256)
  });

  test('interpolated entries stay within 2/255 of matplotlib (viridis entry 100, magma entry 50)', () => {
    const near = (a: number[], b: number[]) => a.every((v, i) => Math.abs(v - b[i]) <= 2);
    expect(near(colorAt('viridis', 100 / 256), rgb(0.166617, 0.463708, 0.558119))).toBe(true);
    expect(near(colorAt('magma', 50 / 256), rgb(0.225302, 0.060445, 0.431742))).toBe(true);
  });

  test('RdBu follows matplotlib: red low, near-white centre, blue high', () => {
    expect(colorAt('RdBu', 0)).toEqual([0x67, 0x00, 0x1f]);
    expect(colorAt('RdBu', 1)).toEqual([0x05, 0x30, 0x61]);
    const centre = colorAt('RdBu', 0.5);
    centre.forEach((c) => expect(Math.abs(c - 247)).toBeLessThanOrEqual(1));
    const [r, , b] = colorAt('RdBu', 0.2);
    expect(r).toBeGreaterThan(b);
    const [r2, , b2] = colorAt('RdBu', 0.8);
    expect(b2).toBeGreaterThan(r2);
  });

  test('tables have 256 entries and every map is monotone where it should be', () => {
    for (const name of COLORMAP_NAMES) expect(colormapLut(name).length).toBe(768);
    const gray = colormapLut('gray');
    for (let i = 0; i < 256; i++) expect(gray[i * 3]).toBe(i);
  });

  test('isDiverging', () => {
    expect(isDiverging('RdBu')).toBe(true);
    expect(['gray', 'viridis', 'magma'].map((n) => isDiverging(n as 'gray'))).toEqual([false, false, false]);
  });

  test('bad names and positions are rejected', () => {
    expect(() => colorAt('jet' as 'gray', 0)).toThrow(RangeError);
    expect(() => colorAt('jet' as 'gray', 0)).toThrow('Expected one of gray, viridis, magma, RdBu for name but received "jet" of type string');
    expect(() => colorAt('gray', 1.5)).toThrow(RangeError);
    expect(() => colorAt('gray', Number.NaN)).toThrow(RangeError);
    expect(() => colorAt('gray', '0' as unknown as number)).toThrow(TypeError);
  });
});

describe('normalisation', () => {
  test('sequential range is min..max, diverging range symmetric', () => {
    const v = new Float32Array([-1, 0, 3]);
    expect(valueRange(v, false)).toEqual({ lo: -1, hi: 3 });
    expect(valueRange(v, true)).toEqual({ lo: -3, hi: 3 });
    expect(toUnit(0, valueRange(v, true))).toBe(0.5);
  });

  test('constant data maps to the middle without dividing by zero', () => {
    expect(toUnit(5, valueRange(new Float32Array([5, 5]), false))).toBe(0.5);
    expect(toUnit(0, valueRange(new Float32Array([0, 0]), true))).toBe(0.5);
  });

  test('values are clamped and groups get their own ranges', () => {
    expect(toUnit(10, { lo: 0, hi: 1 })).toBe(1);
    expect(toUnit(-10, { lo: 0, hi: 1 })).toBe(0);
    const ranges = rangesPerGroup(new Float32Array([0, 1, 5, 9]), 2, false);
    expect(ranges).toEqual([{ lo: 0, hi: 1 }, { lo: 5, hi: 9 }]);
    expect(unionRange(ranges)).toEqual({ lo: 0, hi: 9 });
  });
});
