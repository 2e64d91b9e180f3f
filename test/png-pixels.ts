// Test helper: decodes a PNG with node-canvas (Image -> drawImage -> getImageData) so tests can
// check individual pixel colours of rendered pictures.

import { createCanvas, Image } from 'canvas';

export type Rgba = [number, number, number, number];

export interface DecodedPng {
  width: number;
  height: number;
  data: Uint8ClampedArray;
  /** RGBA of pixel (x, y). */
  at(x: number, y: number): Rgba;
  /** RGB of pixel (x, y). */
  rgb(x: number, y: number): [number, number, number];
}

export function decodePng(png: Buffer): DecodedPng {
  expect(png.subarray(0, 8)).toEqual(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]));
  const img = new Image();
  img.src = png;
  const canvas = createCanvas(img.width, img.height);
  const ctx = canvas.getContext('2d');
  ctx.drawImage(img, 0, 0);
  const { data } = ctx.getImageData(0, 0, img.width, img.height);
  const at = (x: number, y: number): Rgba => {
    if (x < 0 || y < 0 || x >= img.width || y >= img.height) throw new Error(`pixel (${x}, ${y}) outside ${img.width} x ${img.height}`);
    const i = (y * img.width + x) * 4;
    return [data[i], data[i + 1], data[i + 2], data[i + 3]];
  };
  return { width: img.width, height: img.height, data, at, rgb: (x, y) => at(x, y).slice(0, 3) as [number, number, number] };
}

/** Largest per-channel difference between two colours. */
export function colorDistance(a: readonly number[], b: readonly number[]): number {
  return Math.max(Math.abs(a[0] - b[0]), Math.abs(a[1] - b[1]), Math.abs(a[2] - b[2]));
}
