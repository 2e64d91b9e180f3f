// Reads a PNG's size and colour type from its IHDR chunk, so an image summary can be written
// without decoding the image (and without node-canvas).

import { COLORSPACE } from './event-schema';

const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

/** A PNG's dimensions and the TensorBoard colorspace matching its colour type. */
export interface PngInfo {
  width: number;
  height: number;
  /** 1 gray, 2 gray + alpha, 3 RGB, 4 RGBA (TensorFlow's Summary.Image numbering). */
  colorspace: number;
}

/**
 * Width, height and colorspace from a PNG's IHDR chunk.
 *
 * @throws Error when the bytes are not a PNG with an IHDR first
 * @example
 * readPngInfo(fs.readFileSync('mosaic.png')); // { width: 374, height: 374, colorspace: 4 }
 */
export function readPngInfo(png: Uint8Array): PngInfo {
  const buf = Buffer.from(png.buffer, png.byteOffset, png.byteLength);
  // signature (8) + chunk length (4) + "IHDR" (4) + width (4) + height (4) + depth (1) + colour type (1)
  if (buf.length < 26 || !buf.subarray(0, 8).equals(PNG_SIGNATURE) || buf.toString('latin1', 12, 16) !== 'IHDR') {
    throw new Error('Not a PNG image: missing the PNG signature or IHDR chunk');
  }
  const colorType = buf[25];
  // Palette images (type 3) are expanded to RGB by decoders.
  const colorspace = colorType === 0 ? COLORSPACE.gray : colorType === 4 ? COLORSPACE.grayAlpha : colorType === 6 ? COLORSPACE.rgba : COLORSPACE.rgb;
  return { width: buf.readUInt32BE(16), height: buf.readUInt32BE(20), colorspace };
}
