// Augmentation on the training device: random shifts (pad, crop) and left-right flips per image,
// seeded with the run, the same on both paths, shown in the run folder.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { native, valuesOf } from '../src/core/native';
import { tidy } from '../src/core/tidy';
import { createModel, trainCnn } from '../src/index';
import { fashion, smallSpec } from './fixtures';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'convscope-augment-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

const N = 64;
const SIDE = 28;
const PAD = -7;

/** The first N Fashion-MNIST training images as floats [N, 1, 28, 28], and their augmented copies. */
function augmented(shift: number, flip: boolean, seed: number): { input: Float32Array; output: Float32Array } {
  native().manualSeed(seed);
  return tidy(() => {
    const input = Float32Array.from(fashion().train.images.subarray(0, N * SIDE * SIDE), (v) => v / 255);
    const x = new (native().Tensor)(input, [N, 1, SIDE, SIDE]);
    return { input, output: valuesOf(native().ops.augment(x, shift, flip, PAD), 'float32') };
  });
}

/** Image i of `images` moved by (dy, dx), with PAD where nothing came in. */
function shifted(images: Float32Array, i: number, dy: number, dx: number, mirror: boolean): Float32Array {
  const out = new Float32Array(SIDE * SIDE);
  for (let r = 0; r < SIDE; ++r) {
    for (let c = 0; c < SIDE; ++c) {
      const sr = r + dy;
      const sc0 = c + dx;
      const sc = mirror ? SIDE - 1 - c + dx : sc0;
      out[r * SIDE + c] = sr >= 0 && sr < SIDE && sc >= 0 && sc < SIDE ? images[i * SIDE * SIDE + sr * SIDE + sc] : PAD;
    }
  }
  return out;
}

function same(a: Float32Array, b: Float32Array): boolean {
  return a.every((v, k) => v === b[k]);
}

describe('augment', () => {
  test('every image is its own shift by at most `shift` pixels, padded with the blank value, and the shifts vary', () => {
    const shift = 3;
    const { input, output } = augmented(shift, false, 1);
    const offsets = new Set<string>();
    for (let i = 0; i < N; ++i) {
      const got = output.subarray(i * SIDE * SIDE, (i + 1) * SIDE * SIDE);
      const found: string[] = [];
      for (let dy = -shift; dy <= shift; ++dy) for (let dx = -shift; dx <= shift; ++dx) if (same(got, shifted(input, i, dy, dx, false))) found.push(`${dy},${dx}`);
      expect(found.length).toBeGreaterThan(0);
      offsets.add(found[0]);
    }
    expect(offsets.size).toBeGreaterThan(10);
  });

  test('flips mirror about half of the images left-right and leave the others alone', () => {
    const { input, output } = augmented(0, true, 2);
    let mirrored = 0;
    for (let i = 0; i < N; ++i) {
      const got = output.subarray(i * SIDE * SIDE, (i + 1) * SIDE * SIDE);
      const isMirror = same(got, shifted(input, i, 0, 0, true));
      expect(isMirror || same(got, shifted(input, i, 0, 0, false))).toBe(true);
      if (isMirror) mirrored += 1;
    }
    expect(mirrored).toBeGreaterThan(N / 4);
    expect(mirrored).toBeLessThan((3 * N) / 4);
  });

  test('the same seed gives the same augmentation; no shift and no flip change nothing', () => {
    expect(same(augmented(2, true, 5).output, augmented(2, true, 5).output)).toBe(true);
    const plain = augmented(0, false, 5);
    expect(same(plain.output, plain.input)).toBe(true);
  });

  test.each(['eager', 'script'] as const)('training with augmentation (%s): the same weights on both paths, other weights than without, and the run folder shows samples', async (mode) => {
    const start = createModel({ ...smallSpec(), dropout: 0 }, { seed: 8 });
    const common = { dataset: fashion(), initialModel: start, optimizer: 'sgd' as const, learningRate: 0.05, limit: 64 * 6, batchSize: 64, testLimit: 100, seed: 4 };
    const runDir = path.join(tmp, mode);
    const a = await trainCnn({ ...common, mode, augment: { shift: 2, flip: true }, runDir });
    const b = await trainCnn({ ...common, mode: mode === 'eager' ? 'script' : 'eager', augment: { shift: 2, flip: true } });
    const plain = await trainCnn({ ...common, mode });
    const weights = (m: typeof start) => m.parameters().map((p) => Array.from(p.values));
    const diff = (x: number[][], y: number[][]) => Math.max(...x.map((w, i) => Math.max(...w.map((v, j) => Math.abs(v - y[i][j])))));
    expect(diff(weights(a.model), weights(b.model))).toBeLessThan(1e-5);
    expect(diff(weights(a.model), weights(plain.model))).toBeGreaterThan(1e-4);
    expect(fs.readFileSync(path.join(runDir, 'augmented.png')).subarray(1, 4).toString()).toBe('PNG');
    for (const m of [a.model, b.model, plain.model, start]) m.dispose();
  });
});
