// Writes a synthetic colour dataset as an .npz (x_train, y_train, x_test, y_test; uint8 NHWC), for
// README's colour mosaic and for trying the colour pipeline without CIFAR: four classes of 32x32
// gratings at equal luminance, told apart by their colour axis (red-green or blue-yellow) and their
// orientation (horizontal or vertical), with a random frequency, phase and luminance texture each.
// A grey copy of these images carries the orientation only (the colour axis is invisible at equal
// luminance), so a grey model tops out near 50%.
// Usage: node dist/scripts/colour-gratings.js out.npz [trainCount] [testCount]
import { writeFileSync } from 'fs';
import { zipSync } from 'fflate';
import { encodeNpy } from '../src/formats/npy';
import { mulberry32 } from '../src/util/random';

const SIDE = 32;
/** Zero-luma chroma directions (BT.601): red-green and blue-yellow. */
const AXES = [[0.587, -0.299, 0], [0.114 * 0.587, 0.114 * 0.299, -2 * 0.299 * 0.587].map((v) => v * 2.2)];
const CLASS_NAMES = ['red-green horizontal', 'red-green vertical', 'blue-yellow horizontal', 'blue-yellow vertical'];

/** The same numbers on every run. */
const random = mulberry32;

function gratings(count: number, seed: number): { images: Uint8Array; labels: Uint8Array } {
  const next = random(seed);
  const images = new Uint8Array(count * SIDE * SIDE * 3);
  const labels = new Uint8Array(count);
  for (let i = 0; i < count; ++i) {
    const label = Math.floor(next() * 4);
    labels[i] = label;
    const axis = AXES[label >> 1];
    const vertical = (label & 1) === 1;
    const frequency = (2 + 3 * next()) * (2 * Math.PI / SIDE);
    const phase = 2 * Math.PI * next();
    const amplitude = 0.06 + 0.06 * next();
    for (let y = 0; y < SIDE; ++y) {
      for (let x = 0; x < SIDE; ++x) {
        // Pixel noise in luminance and along both colour axes: one pixel says little, a filter must pool.
        const luminance = 0.5 + 0.3 * (next() - 0.5);
        const noise = [0.25 * (next() - 0.5), 0.25 * (next() - 0.5)];
        const wave = amplitude * Math.sin(frequency * (vertical ? x : y) + phase);
        for (let c = 0; c < 3; ++c) {
          const v = luminance + wave * axis[c] + noise[0] * AXES[0][c] + noise[1] * AXES[1][c];
          images[((i * SIDE + y) * SIDE + x) * 3 + c] = Math.max(0, Math.min(255, Math.round(v * 255)));
        }
      }
    }
  }
  return { images, labels };
}

function main(): void {
  const [out, trainArg, testArg] = process.argv.slice(2);
  if (!out) throw new Error('usage: node dist/scripts/colour-gratings.js out.npz [trainCount] [testCount]');
  const train = gratings(Number(trainArg ?? 4000), 1);
  const test = gratings(Number(testArg ?? 1000), 2);
  const npy = (data: Uint8Array, shape: number[]) => new Uint8Array(encodeNpy({ data, shape }));
  writeFileSync(out, zipSync({
    'x_train.npy': npy(train.images, [train.labels.length, SIDE, SIDE, 3]),
    'y_train.npy': npy(train.labels, [train.labels.length]),
    'x_test.npy': npy(test.images, [test.labels.length, SIDE, SIDE, 3]),
    'y_test.npy': npy(test.labels, [test.labels.length]),
  }));
  process.stdout.write(`${out}: ${train.labels.length} training and ${test.labels.length} test images, classes ${CLASS_NAMES.join(', ')}\n`);
}

main();
