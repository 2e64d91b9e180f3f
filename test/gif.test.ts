// GIFs decoded with omggif (an independent decoder): size, frame count, timing and colours.

import { encodeGif, pngToRgba, type RgbaFrame } from '../src/viz/gif';
import { renderFilterMosaic } from '../src/viz/mosaic';
import { colorDistance } from './png-pixels';

interface GifFrameInfo { x: number; y: number; width: number; height: number; delay: number }
interface GifReaderType {
  width: number;
  height: number;
  numFrames(): number;
  frameInfo(i: number): GifFrameInfo;
  loopCount(): number | null;
  decodeAndBlitFrameRGBA(i: number, pixels: Uint8Array): void;
}
// omggif ships no type declarations; this is the part used here.
const { GifReader } = require('omggif') as { GifReader: new (buf: Uint8Array) => GifReaderType };

function solid(width: number, height: number, rgb: [number, number, number]): RgbaFrame {
  const rgba = new Uint8ClampedArray(width * height * 4);
  for (let p = 0; p < width * height; p++) rgba.set([...rgb, 255], p * 4);
  return { width, height, rgba };
}

function decodeFrame(reader: GifReaderType, i: number): Uint8Array {
  const pixels = new Uint8Array(reader.width * reader.height * 4);
  // Frames draw over the previous ones; each of ours covers the whole canvas.
  for (let k = 0; k <= i; k++) reader.decodeAndBlitFrameRGBA(k, pixels);
  return pixels;
}

const COLORS: [number, number, number][] = [
  [255, 0, 0],
  [0, 200, 0],
  [0, 0, 255],
  [255, 255, 255],
  [20, 20, 20],
];

describe('encodeGif', () => {
  for (const palette of ['global', 'per-frame'] as const) {
    test(`${palette} palette: N frames with the expected size, delay and colours`, () => {
      const frames = COLORS.map((c) => solid(40, 30, c));
      // Give frame 2 a left/right split so one frame holds two colours.
      for (let y = 0; y < 30; y++) for (let x = 0; x < 20; x++) frames[2].rgba.set([255, 255, 0, 255], (y * 40 + x) * 4);
      const gif = encodeGif(frames, { delayMs: 250, palette });
      expect(gif.subarray(0, 6).toString('latin1')).toBe('GIF89a');
      const reader = new GifReader(gif);
      expect([reader.width, reader.height, reader.numFrames()]).toEqual([40, 30, 5]);
      expect(reader.loopCount()).toBe(0); // loop forever
      for (let i = 0; i < 5; i++) {
        expect(reader.frameInfo(i).delay).toBe(25); // hundredths of a second
        const px = decodeFrame(reader, i);
        const at = (x: number, y: number) => Array.from(px.subarray((y * 40 + x) * 4, (y * 40 + x) * 4 + 3));
        expect(colorDistance(at(35, 15), COLORS[i])).toBeLessThanOrEqual(8);
        if (i === 2) expect(colorDistance(at(5, 15), [255, 255, 0])).toBeLessThanOrEqual(8);
      }
    });
  }

  test('frames of different sizes are padded with their background; the last frame can be held longer', () => {
    const gif = encodeGif([solid(10, 10, [0, 0, 255]), solid(14, 12, [255, 0, 0])], { delayMs: 100, holdLastMs: 900, repeat: -1 });
    const reader = new GifReader(gif);
    expect([reader.width, reader.height]).toEqual([14, 12]);
    expect(reader.frameInfo(0).delay).toBe(10);
    expect(reader.frameInfo(1).delay).toBe(100);
    expect(reader.loopCount()).toBeNull(); // play once: no looping extension
    const first = decodeFrame(reader, 0);
    const corner = Array.from(first.subarray((11 * 14 + 13) * 4, (11 * 14 + 13) * 4 + 3));
    expect(colorDistance(corner, [0, 0, 255])).toBeLessThanOrEqual(8);
  });

  test('rendered mosaics round-trip through pngToRgba into an animation', () => {
    const frames = [0, 1, 2].map((step) => {
      const data = Float32Array.from({ length: 4 * 9 }, (_, i) => Math.sin(i + step));
      return pngToRgba(renderFilterMosaic({ data, shape: [4, 1, 3, 3] }, { colormap: 'gray' }));
    });
    expect(frames[0].rgba.length).toBe(frames[0].width * frames[0].height * 4);
    const reader = new GifReader(encodeGif(frames, { delayMs: 400 }));
    expect([reader.width, reader.height, reader.numFrames()]).toEqual([frames[0].width, frames[0].height, 3]);
    const px = decodeFrame(reader, 0);
    expect(colorDistance(Array.from(px.subarray(0, 3)), [255, 255, 255])).toBeLessThanOrEqual(4); // the mosaic's white border
  });

  test('pngToRgba rejects bytes that are not an image', () => {
    expect(() => pngToRgba(Buffer.from('not a png'))).toThrow(/Could not decode image/);
  });
});
