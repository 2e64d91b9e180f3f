// ONNX export: onnxruntime (npm) and, where the project's Python has them, onnx.checker and Python's
// onnxruntime run the file and get predict's probabilities to 1e-5.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { spawnSync } from 'child_process';
import { createModel, defaultSpec, loadModel, loadTorchScript } from '../src/index';
import type { CnnSpec } from '../src/index';
import { planModel } from '../src/nn/spec';
import { encodeOnnx } from '../src/formats/onnx';
import { fashion, FASHION_INPUT_NORM as INPUT_NORM, specVariants } from './fixtures';
import { maxAbsDiff, PYTHON, testWithPython } from './helpers';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'convscope-onnx-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

const COUNT = 16;
const pixels = () => fashion().test.images.subarray(0, COUNT * 784);

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

/**
 * Logits from onnxruntime-node, run in a child process: onnxruntime checks its arrays with instanceof,
 * which fails across jest's sandbox and Node's own realm.
 */
function onnxruntimeProbabilities(file: string, classes: number): Float32Array {
  const script = `
    const ort = require('onnxruntime-node');
    const input = Float32Array.from(JSON.parse(process.argv[2]), (v) => v / 255);
    ort.InferenceSession.create(process.argv[1]).then(async (session) => {
      const result = await session.run({ pixels: new ort.Tensor('float32', input, [${COUNT}, 1, 28, 28]) });
      process.stdout.write(JSON.stringify(Array.from(result.logits.data)));
    });`;
  const run = spawnSync(process.execPath, ['-e', script, file, JSON.stringify(Array.from(pixels()))], { encoding: 'utf8', cwd: path.join(__dirname, '..') });
  expect(run.stderr).toBe('');
  return softmaxRows(Float32Array.from(JSON.parse(run.stdout) as number[]), classes);
}

describe('exportOnnx', () => {
  const cases: [string, CnnSpec][] = [['the default network', defaultSpec()], ...specVariants()];
  test.each(cases)('onnxruntime gives predict\'s probabilities for %s', (_name, spec) => {
    const model = createModel(spec, { seed: 31, inputNorm: INPUT_NORM });
    const file = path.join(tmp, 'model.onnx');
    model.exportOnnx(file);
    const theirs = onnxruntimeProbabilities(file, model.classes);
    expect(maxAbsDiff(model.predict(pixels()), theirs)).toBeLessThan(1e-5);
    model.dispose();
  });

  testWithPython(['onnx', 'onnxruntime'])('onnx.checker accepts the file and Python\'s onnxruntime agrees', () => {
    const model = createModel(defaultSpec(), { seed: 32, inputNorm: INPUT_NORM });
    const file = path.join(tmp, 'checked.onnx');
    model.exportOnnx(file);
    const script = [
      'import sys, json, numpy as np, onnx, onnxruntime as ort',
      'onnx.checker.check_model(onnx.load(sys.argv[1]), full_check=True)',
      `x = np.array(json.loads(sys.argv[2]), dtype=np.float32).reshape(${COUNT}, 1, 28, 28) / 255`,
      "logits = ort.InferenceSession(sys.argv[1], providers=['CPUExecutionProvider']).run(['logits'], {'pixels': x})[0]",
      'e = np.exp(logits - logits.max(1, keepdims=True)); print(json.dumps((e / e.sum(1, keepdims=True)).flatten().tolist()))',
    ].join('\n');
    const run = spawnSync(PYTHON, ['-c', script, file, JSON.stringify(Array.from(pixels()))], { encoding: 'utf8' });
    expect(run.stderr).toBe('');
    expect(maxAbsDiff(model.predict(pixels()), Float32Array.from(JSON.parse(run.stdout) as number[]))).toBeLessThan(1e-5);
    model.dispose();
  });

  test('a spec feature the export cannot express is a clear error naming the layer and the feature', () => {
    const plan = planModel(defaultSpec());
    const unsupported = { ...plan, conv: [{ ...plan.conv[0], activation: 'swish' as never }, plan.conv[1]] };
    expect(() => encodeOnnx(unsupported, [], { mean: 0, std: 1 }, { batchNormEps: 1e-5 })).toThrow(/conv1 uses the activation "swish", which the ONNX export does not support \(it supports relu, elu, tanh, sigmoid, leaky_relu\)/);
  });

  test('a disposed model or an unwritable path is a clear error and leaves no file behind', () => {
    const model = createModel(defaultSpec(), { seed: 33 });
    const dir = path.join(tmp, 'not-a-dir');
    fs.writeFileSync(dir, 'a file');
    expect(() => model.exportOnnx(path.join(dir, 'model.onnx'))).toThrow(/not-a-dir/);
    model.dispose();
    const file = path.join(tmp, 'disposed.onnx');
    expect(() => model.exportOnnx(file)).toThrow(/exportOnnx.*dispose/);
    expect(fs.existsSync(file)).toBe(false);
    expect(fs.readdirSync(tmp).filter((f) => f.includes('.tmp'))).toEqual([]);
  });
});

describe('convscope export', () => {
  const cli = path.join(__dirname, '..', 'dist', 'src', 'cli', 'main.js');
  test('writes each format from a checkpoint; each loads where it is meant to', () => {
    const model = createModel(defaultSpec(), { seed: 34, inputNorm: INPUT_NORM });
    const checkpoint = path.join(tmp, 'cli-source.pt');
    model.save(checkpoint);
    for (const [format, file] of [['onnx', 'cli.onnx'], ['torchscript', 'cli.ts.pt'], ['checkpoint', 'cli.pt']]) {
      const out = path.join(tmp, file);
      const run = spawnSync(process.execPath, [cli, 'export', checkpoint, '--format', format, '--out', out], { encoding: 'utf8' });
      expect(run.stderr).toBe('');
      expect(run.stdout.trim()).toBe(out);
    }
    expect(maxAbsDiff(model.predict(pixels()), onnxruntimeProbabilities(path.join(tmp, 'cli.onnx'), 10))).toBeLessThan(1e-5);
    const scripted = loadTorchScript(path.join(tmp, 'cli.ts.pt'));
    expect(maxAbsDiff(model.predict(pixels()), scripted.predict(pixels()))).toBeLessThan(1e-5);
    const again = loadModel(path.join(tmp, 'cli.pt'));
    expect(again.inputNorm).toEqual(INPUT_NORM);
    for (const m of [model, scripted, again]) m.dispose();
  });

  test('an unknown format or a missing checkpoint is one clear line and exit code 1', () => {
    const bad = spawnSync(process.execPath, [cli, 'export', 'x.pt', '--format', 'tflite', '--out', 'y'], { encoding: 'utf8' });
    expect(bad.status).toBe(1);
    expect(bad.stderr).toMatch(/--format <name>' argument 'tflite' is invalid\. Allowed choices are onnx, torchscript, checkpoint/);
    const missing = spawnSync(process.execPath, [cli, 'export', path.join(tmp, 'none.pt'), '--format', 'onnx', '--out', path.join(tmp, 'none.onnx')], { encoding: 'utf8' });
    expect(missing.status).toBe(1);
    expect(missing.stderr).toMatch(/^convscope: .*none\.pt: no such checkpoint file\n$/);
    expect(fs.existsSync(path.join(tmp, 'none.onnx'))).toBe(false);
  });
});
