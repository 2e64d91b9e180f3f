// Animated GIFs (e.g. first-layer filters developing over training) from RGBA frames, with gifenc.
// A single palette shared by all frames is the default: per-frame palettes make colours that did
// not change flicker between frames, which reads as the filters changing when they did not.

import { checkInteger, checkKnownKeys, checkNumber, checkObject, checkOneOf, expected } from '../util/validate';
import { isTypedArray } from '../core/host-tensor';
import { loadCanvas } from './canvas-loader';

/** One frame: `rgba` holds `width * height * 4` bytes, row-major, as from `getImageData`. */
export interface RgbaFrame {
  width: number;
  height: number;
  rgba: Uint8ClampedArray | Uint8Array;
}

/** Options of {@link encodeGif}. */
export interface GifOptions {
  /** Time each frame is shown, in milliseconds (GIF stores hundredths of a second). Default 500. */
  delayMs?: number;
  /** Extra loops after the first: 0 (default) loops forever, -1 plays once. */
  repeat?: number;
  /** `'global'` (default): one palette from all frames; `'per-frame'`: each frame its own. */
  palette?: 'global' | 'per-frame';
  /** Show the last frame this much longer than the others (ms), so the end state can be read. Default 0. */
  holdLastMs?: number;
}

type Palette = number[][];
interface GifEncoderStream {
  writeFrame(index: Uint8Array, width: number, height: number, opts?: { palette?: Palette; delay?: number; repeat?: number }): void;
  finish(): void;
  bytes(): Uint8Array;
}
interface Gifenc {
  GIFEncoder(opts?: { auto?: boolean }): GifEncoderStream;
  quantize(rgba: Uint8Array | Uint8ClampedArray, maxColors: number, opts?: { format?: string }): Palette;
  applyPalette(rgba: Uint8Array | Uint8ClampedArray, palette: Palette, format?: string): Uint8Array;
}
// gifenc ships no type declarations; this is the part of its API used here.
const gifenc = require('gifenc') as Gifenc;

// Enough pixels for a faithful palette; quantising every pixel of a long animation is slow.
const PALETTE_SAMPLE_PIXELS = 1 << 20;

function checkFrames(frames: unknown): RgbaFrame[] {
  if (!Array.isArray(frames) || frames.length === 0) {
    throw new TypeError(expected('a non-empty array of { width, height, rgba } frames', 'frames', frames));
  }
  return frames.map((f, i) => {
    const frame = checkObject(f, `frames[${i}]`);
    const width = checkInteger(frame.width, `frames[${i}].width`, 1, 65535);
    const height = checkInteger(frame.height, `frames[${i}].height`, 1, 65535);
    const rgba = frame.rgba;
    if (!isTypedArray(rgba, 'Uint8Array') && !isTypedArray(rgba, 'Uint8ClampedArray')) {
      throw new TypeError(expected('a Uint8Array or Uint8ClampedArray', `frames[${i}].rgba`, rgba));
    }
    if (rgba.length !== width * height * 4) {
      throw new RangeError(`Expected ${width * height * 4} bytes (${width} x ${height} x 4) for frames[${i}].rgba but received ${rgba.length}`);
    }
    return { width, height, rgba: rgba as Uint8Array };
  });
}

/**
 * Grows a frame to `width x height`, filling the new area with the frame's top-left pixel (its
 * background), so frames whose pictures differ slightly in size can share one animation.
 */
function padFrame(frame: RgbaFrame, width: number, height: number): Uint8Array {
  if (frame.width === width && frame.height === height) return new Uint8Array(frame.rgba.buffer, frame.rgba.byteOffset, frame.rgba.length);
  const out = new Uint8Array(width * height * 4);
  const bg = frame.rgba.subarray(0, 4);
  for (let p = 0; p < width * height; p++) out.set(bg, p * 4);
  for (let y = 0; y < frame.height; y++) {
    out.set(frame.rgba.subarray(y * frame.width * 4, (y + 1) * frame.width * 4), y * width * 4);
  }
  return out;
}

function samplePixels(frames: Uint8Array[]): Uint8Array {
  const total = frames.reduce((n, f) => n + f.length / 4, 0);
  const step = Math.max(1, Math.ceil(total / PALETTE_SAMPLE_PIXELS));
  const sample = new Uint8Array(Math.ceil(total / step) * 4 + 4);
  let k = 0;
  let global = 0;
  for (const f of frames) {
    for (let p = 0; p < f.length / 4; p++, global++) {
      if (global % step !== 0) continue;
      sample.set(f.subarray(p * 4, p * 4 + 4), k);
      k += 4;
    }
  }
  return sample.subarray(0, k);
}

/**
 * Encodes RGBA frames as an animated GIF (looping forever by default). Frames of different sizes
 * are padded to the largest with each frame's top-left (background) colour.
 *
 * @returns the GIF bytes
 * @throws TypeError / RangeError for empty or malformed frames and bad options
 * @example
 * const gif = encodeGif(pngs.map(pngToRgba), { delayMs: 400 });
 * fs.writeFileSync('filters.gif', gif);
 */
export function encodeGif(frames: RgbaFrame[], options: GifOptions = {}): Buffer {
  const checked = checkFrames(frames);
  const o = checkObject(options, 'options');
  checkKnownKeys(o, 'options', ['delayMs', 'repeat', 'palette', 'holdLastMs']);
  const delayMs = o.delayMs === undefined ? 500 : checkNumber(o.delayMs, 'options.delayMs', 0, 655350);
  const repeat = o.repeat === undefined ? 0 : checkInteger(o.repeat, 'options.repeat', -1, 65535);
  const paletteMode = o.palette === undefined ? 'global' : checkOneOf(o.palette, 'options.palette', ['global', 'per-frame'] as const);
  const holdLastMs = o.holdLastMs === undefined ? 0 : checkNumber(o.holdLastMs, 'options.holdLastMs', 0, 655350);

  const width = Math.max(...checked.map((f) => f.width));
  const height = Math.max(...checked.map((f) => f.height));
  const pixels = checked.map((f) => padFrame(f, width, height));
  const shared = paletteMode === 'global' ? gifenc.quantize(samplePixels(pixels), 256) : undefined;

  const gif = gifenc.GIFEncoder();
  pixels.forEach((rgba, i) => {
    const palette = shared ?? gifenc.quantize(rgba, 256);
    const index = gifenc.applyPalette(rgba, palette);
    const last = i === pixels.length - 1;
    gif.writeFrame(index, width, height, {
      // With a shared palette only the first frame carries it (the GIF's global colour table).
      ...(i === 0 || !shared ? { palette } : {}),
      delay: delayMs + (last ? holdLastMs : 0),
      repeat,
    });
  });
  gif.finish();
  return Buffer.from(gif.bytes());
}

/**
 * Decodes a PNG (or any image node-canvas reads) into an RGBA frame for {@link encodeGif}.
 * Synchronous: node-canvas decodes when `Image.src` is set to a Buffer.
 *
 * @throws Error when the bytes are not a decodable image, or node-canvas cannot be loaded
 * @example
 * const frame = pngToRgba(fs.readFileSync('step-0000100.png'));
 * frame.width; frame.height; frame.rgba.length; // w * h * 4
 */
export function pngToRgba(png: Buffer): RgbaFrame {
  if (!Buffer.isBuffer(png)) throw new TypeError(expected('a Buffer of PNG bytes', 'png', png));
  const { Image, createCanvas } = loadCanvas();
  const img = new Image();
  let failure: Error | undefined;
  img.onerror = (err: Error) => {
    failure = err;
  };
  img.src = png;
  if (failure || img.width === 0 || img.height === 0) {
    throw new Error(`Could not decode image (${png.length} bytes): ${failure?.message ?? 'empty image'}`);
  }
  const canvas = createCanvas(img.width, img.height);
  const ctx = canvas.getContext('2d');
  ctx.drawImage(img, 0, 0);
  const data = ctx.getImageData(0, 0, img.width, img.height);
  return { width: img.width, height: img.height, rgba: data.data };
}
