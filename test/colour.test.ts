// Colour: training on C-channel images (float and uint8), per-channel standardisation through
// checkpoints and exports, augmentation on three channels, and the errors when channels do not match.
// The data is made here: four classes told apart only by hue, at equal luminance, so a model that
// sees grey cannot beat chance while one that sees colour can.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { native, valuesOf } from '../src/core/native';
import { tidy } from '../src/core/tidy';
import { createModel, evaluate, loadModel, setNumThreads, trainCnn } from '../src/index';
import type { InMemoryDataset } from '../src/train/options';
import type { CnnSpec } from '../src/nn/spec';
import { rejected } from './helpers';
import { CHROMA, CLASS_NAMES, hueDataset as dataset, HueData, hueImages, LUMA, PLANE, SIDE } from './hue-data';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'convscope-colour-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));
beforeAll(() => setNumThreads(1));

const spec = (): CnnSpec => ({ conv: [{ filters: 8, kernelSize: 3, padding: 'same', pool: true }], dense: [16], dropout: 0 });
const TRAIN = hueImages(2000, 1);
const TEST = hueImages(500, 2);

describe('the hue data', () => {
  test('has equal luminance across classes: every class has the same mean grey level', () => {
    const means = CHROMA.map((_, k) => {
      let sum = 0;
      let n = 0;
      for (let i = 0; i < TRAIN.count; ++i) {
        if (TRAIN.labels[i] !== k) continue;
        for (let p = 0; p < PLANE; ++p) sum += TRAIN.grey[i * PLANE + p];
        n += PLANE;
      }
      return sum / n;
    });
    for (const m of means) expect(Math.abs(m - 0.5)).toBeLessThan(0.01);
    for (const c of CHROMA) expect(Math.abs(c.reduce((s, v, i) => s + v * LUMA[i], 0))).toBeLessThan(1e-12);
  });
});

describe('training on colour', () => {
  let colourModelFile = '';
  /** The trained colour model's probabilities for the first 20 test images, before it was saved. */
  let colourProbs = new Float32Array(0);

  test.each(['eager', 'script'] as const)('a colour model (%s) tells the hues apart (> 95%%), a grey one cannot beat chance', async (mode) => {
    const common = { spec: spec(), epochs: 2, batchSize: 64, learningRate: 3e-3, mode, seed: 3 };
    const colour = await trainCnn({ ...common, dataset: dataset(TRAIN, TEST, 3) });
    const grey = await trainCnn({ ...common, dataset: dataset(TRAIN, TEST, 1) });
    try {
      expect(colour.model.spec.inputChannels).toBe(3);
      expect(grey.model.spec.inputChannels).toBe(1);
      expect(colour.testAccuracy).toBeGreaterThan(0.95);
      // Four classes: chance is 25% (about +-2% on 500 images).
      expect(grey.testAccuracy).toBeLessThan(0.33);
      // Per-channel standardisation: three means and stds from the training images.
      const norm = colour.model.inputNorm as { mean: number[]; std: number[] };
      expect(norm.mean).toHaveLength(3);
      norm.mean.forEach((m, c) => expect(m).toBeCloseTo(0.5 + CHROMA.reduce((s, k) => s + k[c], 0) / 4, 1));
      if (mode === 'script') {
        colourModelFile = path.join(tmp, 'colour.pt');
        colour.model.save(colourModelFile);
        colourProbs = colour.model.predict(TEST.colour.subarray(0, 20 * 3 * PLANE));
      }
    } finally {
      colour.model.dispose();
      grey.model.dispose();
    }
  });

  test('uint8 colour images train too (N x 3 x H x W bytes, scaled by 1/255)', async () => {
    const bytes = (d: HueData) => Uint8Array.from(d.colour, (v) => Math.round(v * 255));
    const data: InMemoryDataset = {
      name: 'hue-bytes', classNames: CLASS_NAMES,
      train: { images: bytes(TRAIN), labels: TRAIN.labels, count: TRAIN.count, channels: 3, height: SIDE, width: SIDE },
      test: { images: bytes(TEST), labels: TEST.labels, count: TEST.count, channels: 3, height: SIDE, width: SIDE },
    };
    const { model, testAccuracy } = await trainCnn({ dataset: data, spec: spec(), epochs: 2, batchSize: 64, learningRate: 3e-3, mode: 'script', seed: 3 });
    try {
      expect(testAccuracy).toBeGreaterThan(0.95);
      // predict takes the same bytes and agrees with evaluate.
      const probs = model.predict(bytes(TEST).subarray(0, 50 * 3 * PLANE));
      let correct = 0;
      for (let i = 0; i < 50; ++i) {
        const row = Array.from(probs.subarray(i * 4, i * 4 + 4));
        if (row.indexOf(Math.max(...row)) === TEST.labels[i]) correct += 1;
      }
      expect(correct).toBeGreaterThan(45);
    } finally {
      model.dispose();
    }
  });

  test('the per-channel standardisation survives a checkpoint round trip, and the loaded model predicts the same', () => {
    expect(colourModelFile).not.toBe('');
    const a = loadModel(colourModelFile);
    const b = loadModel(colourModelFile, { mode: 'eager' });
    try {
      const norm = a.inputNorm as { mean: number[]; std: number[] };
      expect(Array.isArray(norm.mean) && norm.mean.length === 3 && Array.isArray(norm.std) && norm.std.length === 3).toBe(true);
      expect(a.spec.inputChannels).toBe(3);
      const images = TEST.colour.subarray(0, 20 * 3 * PLANE);
      const pa = a.predict(images);
      const pb = b.predict(images);
      pa.forEach((v, i) => expect(v).toBeCloseTo(pb[i], 5));
      // The trained model's own answers: a norm lost in the file would change them.
      pa.forEach((v, i) => expect(v).toBeCloseTo(colourProbs[i], 5));
    } finally {
      a.dispose();
      b.dispose();
    }
  });

  test('a colour dataset given to a grey checkpoint (resume, evaluate) is refused before any training, naming both', async () => {
    const greyFile = path.join(tmp, 'grey.pt');
    const grey = createModel({ ...spec(), inputSize: [SIDE, SIDE], classes: 4 });
    try {
      grey.save(greyFile);
    } finally {
      grey.dispose();
    }
    const model = loadModel(greyFile);
    try {
      const evalErr = await rejected(evaluate(model, dataset(TRAIN, TEST, 3).test));
      expect(evalErr.name).toBe('RangeError');
      expect(evalErr.message).toMatch(/^Expected 1-channel images \(the model's\) for split but it has 3-channel images/);
    } finally {
      model.dispose();
    }
    const resumeErr = await rejected(trainCnn({ dataset: dataset(TRAIN, TEST, 3), resumeFrom: greyFile, epochs: 2 }));
    expect(resumeErr.name).toBe('RangeError');
    expect(resumeErr.message).toBe(`Expected 1-channel images (spec.inputChannels of the checkpoint ${greyFile}) for dataset.train but it has 3-channel images; ` +
      'a grey model cannot take colour images: train one with spec.inputChannels 3');
  });

  test('a spec that names its channels is kept: 1 channel against colour data is an error', async () => {
    const err = await rejected(trainCnn({ dataset: dataset(TRAIN, TEST, 3), spec: { ...spec(), inputChannels: 1 } }));
    expect(err.message).toMatch(/^Expected 1-channel images \(spec.inputChannels of the spec\) for dataset.train but it has 3-channel images/);
  });
});

describe('augmentation on three channels', () => {
  const N = 32;
  /** N colour test images as floats [N, 3, 16, 16], augmented with a pad value per channel. */
  function augmented(shift: number, flip: boolean, pad: number[], seed: number): { input: Float32Array; output: Float32Array } {
    native().manualSeed(seed);
    return tidy(() => {
      const input = TEST.colour.slice(0, N * 3 * PLANE);
      const x = new (native().Tensor)(input, [N, 3, SIDE, SIDE]);
      return { input, output: valuesOf(native().ops.augment(x, shift, flip, pad), 'float32') };
    });
  }

  /** Channel c of image i moved by (dy, dx) (and mirrored), `pad` where nothing came in. */
  function moved(images: Float32Array, i: number, c: number, dy: number, dx: number, mirror: boolean, pad: number): Float32Array {
    const out = new Float32Array(PLANE);
    for (let r = 0; r < SIDE; ++r) {
      for (let col = 0; col < SIDE; ++col) {
        const sr = r + dy;
        const sc = (mirror ? SIDE - 1 - col : col) + dx;
        out[r * SIDE + col] = sr >= 0 && sr < SIDE && sc >= 0 && sc < SIDE ? images[(i * 3 + c) * PLANE + sr * SIDE + sc] : pad;
      }
    }
    return out;
  }

  const same = (a: Float32Array, b: Float32Array): boolean => a.every((v, k) => v === b[k]);

  test('every channel of an image is shifted and flipped alike, the padding holds each channel its own value', () => {
    const shift = 4;
    const pad = [-1, -2, -3];
    const { input, output } = augmented(shift, true, pad, 7);
    const offsets = new Set<string>();
    let mirrored = 0;
    for (let i = 0; i < N; ++i) {
      let found: string | undefined;
      for (let dy = -shift; dy <= shift && !found; ++dy) {
        for (let dx = -shift; dx <= shift && !found; ++dx) {
          for (const mirror of [false, true]) {
            const all = [0, 1, 2].every((c) => same(output.subarray((i * 3 + c) * PLANE, (i * 3 + c + 1) * PLANE), moved(input, i, c, dy, dx, mirror, pad[c])));
            if (all) { found = `${dy},${dx},${mirror}`; if (mirror) mirrored += 1; break; }
          }
        }
      }
      expect(found).toBeDefined();
      offsets.add(found!);
    }
    expect(offsets.size).toBeGreaterThan(8);
    expect(mirrored).toBeGreaterThan(N / 5);
    expect(mirrored).toBeLessThan((4 * N) / 5);
  });

  test('a crop with padding 4 pads with the asked value: the border of a shifted image holds it', () => {
    const { output } = augmented(4, false, [0.25, 0.5, 0.75], 9);
    const values = new Set(Array.from(output));
    for (const v of [0.25, 0.5, 0.75]) expect(values.has(v)).toBe(true);
  });

  test('a pad value per channel must have one value per channel', () => {
    expect(() => augmented(2, false, [0, 1], 1)).toThrow(/one value or one per channel \(3\) for padValues/);
  });

  test('training with fill "mean" and "zero" both run, on both paths, with the same weights per path', async () => {
    const data = dataset(hueImages(256, 5), hueImages(64, 6), 3);
    for (const fill of ['zero', 'mean'] as const) {
      const common = { dataset: data, spec: spec(), epochs: 1, batchSize: 64, seed: 4, augment: { shift: 4, flip: true, fill } };
      const eager = await trainCnn({ ...common, mode: 'eager' });
      const script = await trainCnn({ ...common, mode: 'script' });
      try {
        const a = eager.model.parameters()[0].values;
        const b = script.model.parameters()[0].values;
        a.forEach((v, i) => expect(v).toBeCloseTo(b[i], 4));
      } finally {
        eager.model.dispose();
        script.model.dispose();
      }
    }
  });
});
