// Test-time augmentation: the views are the image moved and mirrored as promised, evaluate() averages
// the model's logits over them, and trainCnn evaluates every epoch with them and records it.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { native, valuesOf } from '../src/core/native';
import { noGrad } from '../src/core/ops';
import { tidy } from '../src/core/tidy';
import { createModel, evaluate, trainCnn } from '../src/index';
import { prepareImages } from '../src/nn/model';
import { resolveTrainOptions } from '../src/train/options';
import { ttaViews } from '../src/train/tta';
import { fashion, smallSpec } from './fixtures';
import { expectError, rejected } from './helpers';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'convscope-tta-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

const SIDE = 28;
const PIXELS = SIDE * SIDE;
const N = 200;

/** Image i of uint8 `images` mirrored (if asked) and then moved dy down and dx right, 0 where nothing came in. */
function moved(images: Uint8Array, i: number, dy: number, dx: number, mirror: boolean): Uint8Array {
  const out = new Uint8Array(PIXELS);
  for (let r = 0; r < SIDE; ++r) {
    for (let c = 0; c < SIDE; ++c) {
      const sr = r - dy;
      const shiftedC = c - dx;
      const sc = mirror ? SIDE - 1 - shiftedC : shiftedC;
      out[r * SIDE + c] = sr >= 0 && sr < SIDE && shiftedC >= 0 && shiftedC < SIDE ? images[i * PIXELS + sr * SIDE + sc] : 0;
    }
  }
  return out;
}

/** All n images as one view, built on the host. */
function hostView(images: Uint8Array, n: number, dy: number, dx: number, mirror: boolean): Uint8Array {
  const out = new Uint8Array(n * PIXELS);
  for (let i = 0; i < n; ++i) out.set(moved(images, i, dy, dx, mirror), i * PIXELS);
  return out;
}

const test200 = () => ({ images: fashion().test.images.subarray(0, N * PIXELS), labels: fashion().test.labels.subarray(0, N), count: N });

describe('test-time augmentation', () => {
  test.each([[0, 0, true], [1, 1, false], [-2, -2, true], [3, -1, false]] as const)('tta.view(dy %i, dx %i, flip %s) is the batch moved and mirrored, blank pixels padded', (dy, dx, flip) => {
    const n = 4;
    const images = fashion().test.images.subarray(0, n * PIXELS);
    const pad = -0.75;
    const got = tidy(() => {
      const x = new (native().Tensor)(Float32Array.from(images), [n, 1, SIDE, SIDE]);
      return valuesOf(native().tta.view(x, dy, dx, flip, pad), 'float32');
    });
    const want = hostView(images, n, dy, dx, flip);
    // Where the host view is 0 but the image moved in a real 0 pixel, the pad differs: check both.
    const wantPadded = hostView(new Uint8Array(n * PIXELS).fill(1), n, dy, dx, flip);
    for (let k = 0; k < got.length; ++k) expect([k, got[k]]).toEqual([k, wantPadded[k] === 0 ? pad : want[k]]);
  });

  test('the views: the image, one pixel down-right and up-left when shift is 1, each mirrored when flip', () => {
    expect(ttaViews({ flip: false, shift: 0 })).toEqual([{ dy: 0, dx: 0, flip: false }]);
    expect(ttaViews({ flip: true, shift: 1 })).toEqual([
      { dy: 0, dx: 0, flip: false }, { dy: 1, dx: 1, flip: false }, { dy: -1, dx: -1, flip: false },
      { dy: 0, dx: 0, flip: true }, { dy: 1, dx: 1, flip: true }, { dy: -1, dx: -1, flip: true },
    ]);
  });

  test('evaluate({ tta }) averages the logits of the views: the same loss and accuracy as averaging them by hand', async () => {
    // A little trained, so that the views' logits differ clearly (an untrained model's are all alike).
    const { model } = await trainCnn({ dataset: fashion(), spec: smallSpec(), limit: 1024, testLimit: 10, batchSize: 64, seed: 3 });
    const split = test200();
    const tta = { flip: true, shift: 1 };
    // By hand: each view made on the host, its logits, their mean, then softmax cross-entropy and argmax in JS.
    const views = ttaViews(tta).map((v) => tidy(() => noGrad(() => valuesOf(model.logits(prepareImages(hostView(split.images, N, v.dy, v.dx, v.flip), N, model)), 'float32'))));
    let loss = 0;
    let correct = 0;
    for (let i = 0; i < N; ++i) {
      const mean = Array.from({ length: 10 }, (_, c) => views.reduce((s, v) => s + v[i * 10 + c], 0) / views.length);
      const max = Math.max(...mean);
      const logSum = max + Math.log(mean.reduce((s, v) => s + Math.exp(v - max), 0));
      loss += logSum - mean[split.labels[i]];
      if (mean.indexOf(max) === split.labels[i]) correct += 1;
    }
    const withTta = await evaluate(model, split, { tta, chunkSize: 64 });
    const plain = await evaluate(model, split, { chunkSize: 64 });
    expect(withTta.accuracy).toBeCloseTo(correct / N, 10);
    expect(withTta.loss).toBeCloseTo(loss / N, 5);
    expect(withTta.loss).not.toBeCloseTo(plain.loss, 4);
    model.dispose();
  });

  test('colour images with a norm per channel: each channel\'s blank pixels are that channel\'s 0, as averaging host-made views by hand', async () => {
    const n = 40;
    const side = 12;
    const channels = 3;
    const spec = { inputChannels: channels, inputSize: [side, side] as [number, number], classes: 4, conv: [{ filters: 4, kernelSize: 3, padding: 'same' as const, pool: true }], dense: [8], dropout: 0 };
    const model = createModel(spec, { seed: 5, inputNorm: { mean: [40, 120, 200], std: [30, 60, 90] } });
    let state = 7;
    const images = Uint8Array.from({ length: n * channels * side * side }, () => (state = (state * 1103515245 + 12345) >>> 0) >>> 24);
    const labels = Uint8Array.from({ length: n }, (_, i) => i % 4);
    // Image i's channel c moved dy down and dx right, mirrored first when asked; 0 (black) where nothing came in.
    const view = (dy: number, dx: number, mirror: boolean): Uint8Array => {
      const out = new Uint8Array(images.length);
      for (let p = 0; p < n * channels; ++p) {
        for (let r = 0; r < side; ++r) {
          for (let c = 0; c < side; ++c) {
            const sr = r - dy;
            const shifted = c - dx;
            const sc = mirror ? side - 1 - shifted : shifted;
            if (sr >= 0 && sr < side && shifted >= 0 && shifted < side) out[p * side * side + r * side + c] = images[p * side * side + sr * side + sc];
          }
        }
      }
      return out;
    };
    const tta = { flip: true, shift: 1 };
    const views = ttaViews(tta).map((v) => tidy(() => noGrad(() => valuesOf(model.logits(prepareImages(view(v.dy, v.dx, v.flip), n, model)), 'float32'))));
    let loss = 0;
    for (let i = 0; i < n; ++i) {
      const mean = Array.from({ length: 4 }, (_, c) => views.reduce((sum, v) => sum + v[i * 4 + c], 0) / views.length);
      const max = Math.max(...mean);
      loss += max + Math.log(mean.reduce((sum, v) => sum + Math.exp(v - max), 0)) - mean[labels[i]];
    }
    const split = { images, labels, count: n, channels, height: side, width: side };
    expect((await evaluate(model, split, { tta, chunkSize: 16 })).loss).toBeCloseTo(loss / n, 5);
    model.dispose();
  });

  test.each(['eager', 'script'] as const)('trainCnn({ tta }) (%s): each epoch is evaluated with the views, and the history and the checkpoint say so', async (mode) => {
    const runDir = path.join(tmp, mode);
    const tta = { flip: true, shift: 1 };
    const result = await trainCnn({ dataset: fashion(), spec: smallSpec(), mode, limit: 256, testLimit: N, batchSize: 64, epochs: 2, seed: 2, tta, runDir, pictures: false });
    const again = await evaluate(result.model, test200(), { tta });
    const plain = await evaluate(result.model, test200());
    expect(result.testAccuracy).toBe(again.accuracy);
    expect(result.testLoss).toBeCloseTo(again.loss, 6);
    expect(result.testLoss).not.toBeCloseTo(plain.loss, 6);
    for (const record of result.history) expect(record.evaluatedWith).toEqual({ tta });
    const history = JSON.parse(fs.readFileSync(path.join(runDir, 'history.json'), 'utf8'));
    expect(history[1].evaluatedWith).toEqual({ tta });
    const config = JSON.parse(fs.readFileSync(path.join(runDir, 'config.json'), 'utf8'));
    expect((config.options ?? config).tta).toEqual(tta);
    result.model.dispose();
  });

  test('without tta the records stay as they were (no evaluatedWith)', async () => {
    const result = await trainCnn({ dataset: fashion(), spec: smallSpec(), limit: 128, testLimit: 50, batchSize: 64 });
    expect(result.history[0].evaluatedWith).toBeUndefined();
    expect(result.history[0].evaluationSeconds).toBeGreaterThan(0);
    expect(result.trainingSeconds).toBeCloseTo(result.history[0].seconds + result.history[0].evaluationSeconds!, 6);
    result.model.dispose();
  });

  test('bad tta options are refused before any work, naming the option', async () => {
    expectError(() => resolveTrainOptions({ tta: { flip: 'yes' } as never }), 'TypeError', /Expected a boolean for tta.flip but received "yes"/);
    expectError(() => resolveTrainOptions({ tta: { shift: 9 } }), 'RangeError', /for tta.shift but received 9/);
    expectError(() => resolveTrainOptions({ tta: { flips: true } as never }), 'TypeError', /Unknown option "flips" in tta/);
    expectError(() => resolveTrainOptions({ tta: true as never }), 'TypeError', /for tta but received true/);
    const model = createModel(smallSpec());
    const err = await rejected(evaluate(model, test200(), { tta: { shift: -1 } }));
    expect(err.message).toMatch(/for tta.shift but received -1/);
    const unknown = await rejected(evaluate(model, test200(), { ttta: {} } as never));
    expect(unknown.message).toMatch(/Unknown option "ttta" in evaluate options; expected one of chunkSize, precision, tta/);
    model.dispose();
  });
});
