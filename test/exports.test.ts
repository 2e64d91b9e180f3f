// Models that work outside convscope: each file carries its input convention, and Python gets
// convscope's probabilities from it to 1e-5.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { spawnSync } from 'child_process';
import { createModel, defaultSpec, loadModel } from '../src/index';
import { fashion, FASHION_INPUT_NORM as INPUT_NORM } from './fixtures';
import { maxAbsDiff, PYTHON, testWithPython } from './helpers';

const withTorch = testWithPython(['torch']);
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'convscope-exports-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

const COUNT = 20;

/** Runs a Python snippet with argv [file, images JSON]; returns the probabilities it prints. */
function pythonProbabilities(lines: string[], file: string, images: Uint8Array): Float32Array {
  const script = ['import sys, json, torch', "sys.path.insert(0, 'bench')", 'from pytorch_reference import Net',
    `x = torch.tensor(json.loads(sys.argv[2]), dtype=torch.float32).reshape(${COUNT}, 1, 28, 28) / 255`, ...lines,
    'print(json.dumps(torch.softmax(logits, 1).flatten().tolist()))'].join('\n');
  const run = spawnSync(PYTHON, ['-c', script, file, JSON.stringify(Array.from(images))], { encoding: 'utf8', cwd: path.join(__dirname, '..') });
  expect(run.stderr).toBe('');
  return Float32Array.from(JSON.parse(run.stdout) as number[]);
}

describe('exports carry the input standardisation', () => {
  const images = () => fashion().test.images.subarray(0, COUNT * 784);

  withTorch('torch.jit.load(file)(pixels / 255) gives predict\'s probabilities', () => {
    const model = createModel(defaultSpec(), { seed: 21, inputNorm: INPUT_NORM });
    const file = path.join(tmp, 'model.ts.pt');
    model.exportTorchScript(file);
    const theirs = pythonProbabilities(['m = torch.jit.load(sys.argv[1])', 'logits = m(x)'], file, images());
    expect(maxAbsDiff(model.predict(images()), theirs)).toBeLessThan(1e-5);
    model.dispose();
  });

  withTorch('torch.load(file) with PyTorch 2.x\'s defaults gives the weights and the documented mean and std', () => {
    const model = createModel(defaultSpec(), { seed: 22, inputNorm: INPUT_NORM });
    const file = path.join(tmp, 'model.pt');
    model.save(file);
    const theirs = pythonProbabilities([
      'sd = torch.load(sys.argv[1])  # weights_only=True by default since PyTorch 2.6',
      "net = Net().eval(); net.load_state_dict({k: v for k, v in sd.items() if not k.startswith('convscope.')})",
      "logits = net((x - sd['convscope.input_mean']) / sd['convscope.input_std'])",
    ], file, images());
    expect(maxAbsDiff(model.predict(images()), theirs)).toBeLessThan(1e-5);
    model.dispose();
  });

  withTorch('loadModel(stateDict, { spec, inputNorm }) reads a state dict saved from Python', () => {
    const file = path.join(tmp, 'from-python.pt');
    const theirs = pythonProbabilities([
      'torch.manual_seed(5); net = Net().eval()', 'torch.save(dict(net.state_dict()), sys.argv[1])',
      `logits = net((x - ${INPUT_NORM.mean}) / ${INPUT_NORM.std})`,
    ], file, images());
    const model = loadModel(file, { spec: defaultSpec(), inputNorm: INPUT_NORM });
    expect(model.inputNorm).toEqual(INPUT_NORM);
    expect(maxAbsDiff(model.predict(images()), theirs)).toBeLessThan(1e-5);
    model.dispose();
  });

  withTorch('an OrderedDict state dict (what state_dict() returns) is refused with the one-line fix', () => {
    const file = path.join(tmp, 'ordered.pt');
    const run = spawnSync(PYTHON, ['-c', 'import sys, torch; torch.save(torch.nn.Linear(2, 2).state_dict(), sys.argv[1])', file], { encoding: 'utf8' });
    expect(run.status).toBe(0);
    expect(() => loadModel(file, { spec: defaultSpec() })).toThrow(/collections\.OrderedDict.*torch\.save\(dict\(net\.state_dict\(\)\), path\)/);
  });

  test('a convscope checkpoint keeps its own inputNorm: a different one passed to loadModel is an error', () => {
    const model = createModel(defaultSpec(), { seed: 23, inputNorm: INPUT_NORM });
    const file = path.join(tmp, 'own-norm.pt');
    model.save(file);
    model.dispose();
    expect(() => loadModel(file, { inputNorm: { mean: 0, std: 1 } })).toThrow(/carries its own inputNorm .*only for plain state dicts/);
    const again = loadModel(file, { inputNorm: INPUT_NORM });
    expect(again.inputNorm).toEqual(INPUT_NORM);
    again.dispose();
  });
});
