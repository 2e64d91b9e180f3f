// Exports of a colour model: ONNX (onnxruntime-node), TorchScript (loadTorchScript here, and
// PyTorch's torch.jit.load where the project's Python has torch) and the checkpoint (torch.load) take
// input [N, 3, H, W] in [0, 1], standardise it per channel themselves, and give predict's
// probabilities.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { spawnSync } from 'child_process';
import { createModel, loadTorchScript } from '../src/index';
import type { CnnSpec } from '../src/index';
import { maxAbsDiff, PYTHON, testWithPython } from './helpers';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'convscope-colour-exports-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

const COUNT = 8;
const [H, W] = [20, 24];
const NORM = { mean: [0.49, 0.48, 0.45], std: [0.25, 0.24, 0.26] };
/** Deterministic colour images in [0, 1], N x 3 x H x W. */
const IMAGES = Float32Array.from({ length: COUNT * 3 * H * W }, (_, i) => ((i * 7919) % 1000) / 999);

const SPECS: [string, CnnSpec][] = [
  ['plain', { conv: [{ filters: 6, kernelSize: 5, pool: true }, { filters: 8, kernelSize: 3, pool: true }], dense: [16], dropout: 0, inputSize: [H, W], inputChannels: 3, classes: 5 }],
  ['batch-norm, global average pooling', {
    conv: [{ filters: 6, kernelSize: 3 }, { filters: 8, kernelSize: 3, pool: true }], dense: [12], dropout: 0, batchNorm: true, globalAvgPool: true,
    inputSize: [H, W], inputChannels: 3, classes: 4,
  }],
];

function softmaxRows(logits: Float32Array, classes: number): Float32Array {
  const out = new Float32Array(logits.length);
  for (let r = 0; r < logits.length / classes; ++r) {
    const row = logits.subarray(r * classes, (r + 1) * classes);
    const top = Math.max(...row);
    const exps = Array.from(row, (v) => Math.exp(v - top));
    const sum = exps.reduce((a, b) => a + b, 0);
    exps.forEach((v, i) => { out[r * classes + i] = v / sum; });
  }
  return out;
}

/** Logits from onnxruntime-node in a child process (its instanceof checks fail across jest's sandbox). */
function onnxruntimeLogits(file: string): Float32Array {
  const script = `
    const ort = require('onnxruntime-node');
    const input = Float32Array.from(JSON.parse(require('fs').readFileSync(process.argv[2], 'utf8')));
    ort.InferenceSession.create(process.argv[1]).then(async (session) => {
      const result = await session.run({ pixels: new ort.Tensor('float32', input, [${COUNT}, 3, ${H}, ${W}]) });
      process.stdout.write(JSON.stringify(Array.from(result.logits.data)));
    });`;
  // The images travel in a file: as an argument they would pass the kernel's limit on one argument's length.
  const input = path.join(tmp, 'onnx-input.json');
  fs.writeFileSync(input, JSON.stringify(Array.from(IMAGES)));
  const run = spawnSync(process.execPath, ['-e', script, file, input], { encoding: 'utf8', cwd: path.join(__dirname, '..') });
  expect(run.stderr).toBe('');
  return Float32Array.from(JSON.parse(run.stdout) as number[]);
}

describe('exports of a 3-channel model', () => {
  test.each(SPECS)('ONNX (%s): onnxruntime gives predict\'s probabilities for [N, 3, H, W] input in [0, 1]', (_name, spec) => {
    const model = createModel(spec, { seed: 5, inputNorm: NORM });
    try {
      const file = path.join(tmp, 'colour.onnx');
      model.exportOnnx(file);
      const theirs = softmaxRows(onnxruntimeLogits(file), model.classes);
      expect(maxAbsDiff(model.predict(IMAGES), theirs)).toBeLessThan(1e-5);
    } finally {
      model.dispose();
    }
  });

  test.each(SPECS)('TorchScript (%s): the exported file, loaded with inputChannels 3, predicts the same', (_name, spec) => {
    const model = createModel(spec, { seed: 6, inputNorm: NORM });
    const file = path.join(tmp, 'colour.ts.pt');
    try {
      model.exportTorchScript(file);
      const loaded = loadTorchScript(file, { inputSize: [H, W], inputChannels: 3 });
      try {
        expect(loaded.classes).toBe(model.classes);
        expect(maxAbsDiff(model.predict(IMAGES), loaded.predict(IMAGES))).toBeLessThan(1e-5);
      } finally {
        loaded.dispose();
      }
    } finally {
      model.dispose();
    }
    expect(() => loadTorchScript(file, { inputSize: [H, W] })).toThrow(/does not take 20x24 images.*inputChannels/);
  });

  testWithPython(['torch'])('PyTorch: torch.jit.load runs the TorchScript export, and torch.load reads the per-channel norm of the checkpoint', () => {
    const model = createModel(SPECS[1][1], { seed: 7, inputNorm: NORM });
    const scriptFile = path.join(tmp, 'py.ts.pt');
    const checkpoint = path.join(tmp, 'py.pt');
    const input = path.join(tmp, 'input.json');
    try {
      model.exportTorchScript(scriptFile);
      model.save(checkpoint);
      fs.writeFileSync(input, JSON.stringify(Array.from(IMAGES)));
      const script = [
        'import json, sys, torch',
        'm = torch.jit.load(sys.argv[1])',
        `x = torch.tensor(json.load(open(sys.argv[3])), dtype=torch.float32).view(${COUNT}, 3, ${H}, ${W})`,
        'sd = torch.load(sys.argv[2])',
        'print(json.dumps({"logits": m(x).detach().flatten().tolist(), "mean": sd["convscope.input_mean"].tolist(), "std": sd["convscope.input_std"].tolist()}))',
      ].join('\n');
      const run = spawnSync(PYTHON!, ['-c', script, scriptFile, checkpoint, input], { encoding: 'utf8' });
      expect(run.stderr).toBe('');
      const out = JSON.parse(run.stdout) as { logits: number[]; mean: number[]; std: number[] };
      expect(maxAbsDiff(model.predict(IMAGES), softmaxRows(Float32Array.from(out.logits), model.classes))).toBeLessThan(1e-5);
      out.mean.forEach((m, c) => expect(m).toBeCloseTo(NORM.mean[c], 6));
      out.std.forEach((s, c) => expect(s).toBeCloseTo(NORM.std[c], 6));
    } finally {
      model.dispose();
    }
  });

  test('a norm with another channel count than the spec is refused', () => {
    expect(() => createModel(SPECS[0][1], { inputNorm: { mean: [0.5], std: [0.2] } })).toThrow(/one mean and std per input channel \(3, spec.inputChannels\)/);
  });
});
