// Colour test data made in the tests: four classes told apart only by hue, at equal luminance (a
// grey version of the same images carries no class information).
import type { InMemoryDataset } from '../src/train/options';
import { mulberry32 } from '../src/util/random';

export const SIDE = 16;
export const PLANE = SIDE * SIDE;
/** ITU-R BT.601 luma weights: grey = 0.299 R + 0.587 G + 0.114 B. */
export const LUMA = [0.299, 0.587, 0.114];
/**
 * Two chroma directions with zero luma (LUMA . c = 0); the classes are +c1, -c1, +c2, -c2. Added to a
 * grey level L they change the hue, never the luminance.
 */
const C1 = [0.587, -0.299, 0].map((v) => v * 0.25);
const C2 = [0.114 * 0.587, 0.114 * 0.299, -(0.299 * 0.587 * 2)].map((v) => v * 0.6);
export const CHROMA = [C1, C1.map((v) => -v), C2, C2.map((v) => -v)];

/** The same numbers on every run. */
const random = mulberry32;

export interface HueData { colour: Float32Array; grey: Float32Array; labels: Uint8Array; count: number }

/**
 * `count` images: a random grey texture L in [0.3, 0.7] (blocks of 4x4 pixels), tinted with the
 * class's chroma. colour is N x 3 x 16 x 16, grey is the same images converted to luminance (exactly L).
 */
export function hueImages(count: number, seed: number): HueData {
  const next = random(seed);
  const colour = new Float32Array(count * 3 * PLANE);
  const grey = new Float32Array(count * PLANE);
  const labels = new Uint8Array(count);
  for (let i = 0; i < count; ++i) {
    const label = Math.floor(next() * CHROMA.length);
    labels[i] = label;
    const blocks = Array.from({ length: 16 }, () => 0.3 + 0.4 * next());
    for (let p = 0; p < PLANE; ++p) {
      const luminance = blocks[Math.floor(p / SIDE / 4) * 4 + Math.floor((p % SIDE) / 4)];
      let luma = 0;
      for (let c = 0; c < 3; ++c) {
        const v = luminance + CHROMA[label][c];
        colour[(i * 3 + c) * PLANE + p] = v;
        luma += LUMA[c] * v;
      }
      grey[i * PLANE + p] = luma;
    }
  }
  return { colour, grey, labels, count };
}

export const CLASS_NAMES = ['warm', 'cool', 'yellow', 'blue'];

export function hueDataset(train: HueData, test: HueData, channels: 1 | 3): InMemoryDataset {
  const split = (d: HueData) => ({ images: channels === 3 ? d.colour : d.grey, labels: d.labels, count: d.count, channels, height: SIDE, width: SIDE });
  return { name: `hue-${channels}`, train: split(train), test: split(test), classNames: CLASS_NAMES };
}

