// At least 40 bad calls across the public API: each gets the right error type and a message naming
// what was wrong, and none reaches the addon (no native tensor is created).
import * as os from 'os';
import * as path from 'path';
import * as fs from 'fs';
import {
  checkpointFile, createModel, defaultSpec, evaluate, loadDataset, loadModel, loadTorchScript, predictProbabilitiesForTest, readIdx,
  renderActivationsForTest, renderFilterMosaic, scratchDir, setNumThreads, SummaryWriter, torchScriptFile, trainCnn,
} from './bad-options-api';
import { native } from '../src/core/native';
import { smallSpec } from './fixtures';
import { settledLiveTensors } from './helpers';

type Case = [string, () => unknown, 'TypeError' | 'RangeError' | 'CheckpointError', RegExp];

const conv = (layer: object) => ({ ...defaultSpec(), conv: [{ filters: 8, kernelSize: 5, padding: 'same', pool: true, ...layer }] });
const split = { images: new Uint8Array(784 * 2), labels: new Uint8Array(2), count: 2 };
const image = new Uint8Array(784);
const withSpec = (fields: object) => ({ spec: { ...defaultSpec(), ...fields } as never });
afterAll(() => fs.rmSync(scratchDir, { recursive: true, force: true }));

const trainCases: Case[] = [
  ['epochs as a string', () => trainCnn({ epochs: 'x' as never }), 'TypeError', /Expected positive integer for epochs but received "x" of type string/],
  ['zero epochs', () => trainCnn({ epochs: 0 }), 'RangeError', /for epochs but received 0/],
  ['negative epochs', () => trainCnn({ epochs: -2 }), 'RangeError', /Expected integer in \[1, 100000\] for epochs but received -2 of type number/],
  ['fractional epochs', () => trainCnn({ epochs: 1.5 }), 'TypeError', /epochs but received 1.5/],
  ['zero batch size', () => trainCnn({ batchSize: 0 }), 'RangeError', /batchSize but received 0/],
  ['batch size NaN', () => trainCnn({ batchSize: NaN }), 'TypeError', /batchSize but received NaN/],
  ['NaN learning rate', () => trainCnn({ learningRate: NaN }), 'RangeError', /finite number for learningRate but received NaN/],
  ['negative learning rate', () => trainCnn({ learningRate: -1 }), 'RangeError', /learningRate but received -1/],
  ['zero learning rate', () => trainCnn({ learningRate: 0 }), 'RangeError', /learningRate but received 0/],
  ['infinite learning rate', () => trainCnn({ learningRate: Infinity }), 'RangeError', /finite number for learningRate but received Infinity/],
  ['learning rate as a string', () => trainCnn({ learningRate: '0.1' as never }), 'TypeError', /a number for learningRate but received "0.1"/],
  ['unknown dataset', () => trainCnn({ dataset: 'cifar' }), 'RangeError', /one of mnist, fashion-mnist, cifar10, cifar100, idx, an IDX set in dataDir, or an existing folder or \.npz\/\.npy file for dataset but received "cifar" of type string \(no such file or folder\)/],
  ['dataset idx without dataDir', () => trainCnn({ dataset: 'idx' }), 'TypeError', /Expected a folder \(--data-dir\) holding the IDX files of dataset 'idx' for dataDir but received undefined/],
  ['unknown data option', () => trainCnn({ data: { colour: true } as never }), 'TypeError', /colour/],
  ['data.validation (trainCnn has its own)', () => trainCnn({ data: { validation: 5 } as never }), 'TypeError', /validation/],
  ['bad data.imageSize', () => trainCnn({ data: { imageSize: '32' } }), 'TypeError', /Expected a size HxW .* for data\.imageSize but received "32"/],
  ['bad data.channels', () => trainCnn({ data: { channels: 0 } }), 'RangeError', /for data\.channels but received 0/],
  ['unknown mode', () => trainCnn({ mode: 'graph' as never }), 'RangeError', /one of eager, script for mode but received "graph"/],
  ['unknown device', () => trainCnn({ device: 'tpu' as never }), 'RangeError', /one of cpu, cuda, auto for device but received "tpu"/],
  ['unknown optimizer', () => trainCnn({ optimizer: 'rmsprop' as never }), 'RangeError', /one of adam, adamw, sgd for optimizer but received "rmsprop"/],
  ['negative weight decay', () => trainCnn({ weightDecay: -0.1 }), 'RangeError', /weightDecay but received -0.1/],
  ['negative l1', () => trainCnn({ l1: -1 }), 'RangeError', /for l1 but received -1/],
  ['momentum 1', () => trainCnn({ momentum: 1 }), 'RangeError', /momentum but received 1/],
  ['nesterov as a string', () => trainCnn({ nesterov: 'yes' as never }), 'TypeError', /a boolean for nesterov but received "yes"/],
  ['unknown schedule', () => trainCnn({ schedule: 'linear' as never }), 'RangeError', /one of constant, cosine, one-cycle for schedule but received "linear"/],
  ['negative warm-up', () => trainCnn({ warmupSteps: -1 }), 'RangeError', /for warmupSteps but received -1/],
  ['label smoothing 1', () => trainCnn({ labelSmoothing: 1 }), 'RangeError', /for labelSmoothing but received 1/],
  ['augment shift negative', () => trainCnn({ augment: { shift: -1 } }), 'RangeError', /for augment\.shift but received -1/],
  ['augment misspelt', () => trainCnn({ augment: { flips: true } as never }), 'TypeError', /Unknown option "flips" in augment; expected one of shift, flip/],
  ['cudaGraph as a string', () => trainCnn({ cudaGraph: 'yes' as never }), 'TypeError', /a boolean for cudaGraph but received "yes"/],
  ['cudaGraph in eager mode', () => trainCnn({ mode: 'eager', cudaGraph: true }), 'RangeError', /mode 'script' for cudaGraph: true .* for mode but received "eager"/],
  ['cudaGraph on the CPU', () => trainCnn({ mode: 'script', device: 'cpu', cudaGraph: true }), 'RangeError', /a scripted run on a CUDA device for cudaGraph: true .*but the run's device is cpu/],
  ['negative seed', () => trainCnn({ seed: -1 }), 'RangeError', /for seed but received -1/],
  ['zero eval chunk', () => trainCnn({ evalChunkSize: 0 }), 'RangeError', /evalChunkSize but received 0/],
  ['zero limit', () => trainCnn({ limit: 0 }), 'RangeError', /for limit but received 0/],
  ['onProgress not a function', () => trainCnn({ onProgress: 3 as never }), 'TypeError', /a function for onProgress but received 3 of type number/],
  ['signal not an AbortSignal', () => trainCnn({ signal: {} as never }), 'TypeError', /an AbortSignal for signal but received a value of type object/],
  ['a misspelt option', () => trainCnn({ epoch: 3 } as never), 'TypeError', /Unknown option "epoch" in trainCnn options; expected one of dataset, .*epochs/],
  ['options not an object', () => trainCnn(5 as never), 'TypeError', /an object for options but received 5 of type number/],
  ['snapshotEvery zero', () => trainCnn({ snapshotEvery: 0 }), 'RangeError', /snapshotEvery but received 0/],
  ['empty spec', () => trainCnn({ spec: { conv: [], dense: [], dropout: 0 } }), 'RangeError', /at least one conv or dense layer for spec but received an empty spec/],
  ['spec without conv array', () => trainCnn({ spec: { dense: [], dropout: 0 } as never }), 'TypeError', /an array of conv layers for spec.conv but received undefined/],
  ['kernel larger than the input', () => trainCnn({ spec: conv({ kernelSize: 29, padding: 'valid' }) }), 'RangeError', /kernel is larger than the input/],
  ['kernel size zero', () => trainCnn({ spec: conv({ kernelSize: 0 }) }), 'RangeError', /spec.conv\[0\].kernelSize but received 0/],
  ['fractional filter count', () => trainCnn({ spec: conv({ filters: 2.5 }) }), 'TypeError', /spec.conv\[0\].filters but received 2.5/],
  ['unknown activation', () => trainCnn({ spec: conv({ activation: 'gelu' }) }), 'RangeError', /spec.conv\[0\].activation but received "gelu"/],
  ['unknown padding', () => trainCnn({ spec: conv({ padding: 'full' }) }), 'RangeError', /spec.conv\[0\].padding but received "full"/],
  ['dropout 1', () => trainCnn({ spec: { ...defaultSpec(), dropout: 1 } }), 'RangeError', /spec.dropout but received 1/],
  ['negative dense units', () => trainCnn({ spec: { ...defaultSpec(), dense: [-4] } }), 'RangeError', /spec.dense\[0\] but received -4/],
  ['pooling away all pixels', () => trainCnn({ spec: { conv: Array.from({ length: 5 }, () => ({ filters: 2, kernelSize: 1, pool: true })), dense: [], dropout: 0 } }), 'RangeError', /at least 2x2 pixels to pool/],
];

const otherCases: Case[] = [
  ['createModel with an unknown mode', () => createModel(smallSpec(), { mode: 'lazy' as never }), 'RangeError', /for mode but received "lazy"/],
  ['createModel with a string spec', () => createModel('big' as never), 'TypeError', /an object for spec/],
  ['evaluate with a zero chunk size', () => evaluate({} as never, split, { chunkSize: 0 }), 'RangeError', /chunkSize but received 0/],
  ['evaluate with labels of the wrong length', () => evaluate({} as never, { ...split, labels: new Uint8Array(3) }), 'RangeError', /2 labels for split.labels/],
  ['evaluate with int16 images', () => evaluate({} as never, { ...split, images: new Int16Array(2) as never }), 'TypeError', /a Uint8Array \(0\.\.255\) or Float32Array \(\[0, 1\]\) for split.images/],
  ['loadModel with a number', () => loadModel(7 as never), 'TypeError', /a non-empty string for path/],
  ['loadModel of a missing file', () => loadModel(path.join(os.tmpdir(), 'no-such-convscope.pt')), 'CheckpointError', /no such checkpoint file/],
  ['loadDataset with an unknown name', () => loadDataset('svhn' as never), 'RangeError', /svhn/],
  ['loadDataset with a negative validation split', () => loadDataset('fashion-mnist', { validation: -5 }), 'RangeError', /validation/],
  ['readIdx of a number', () => readIdx(42 as never), 'TypeError', /path|Buffer/],
  ['renderFilterMosaic with an unknown colormap', () => renderFilterMosaic({ data: new Float32Array(9), shape: [1, 1, 3, 3] }, { colormap: 'jet' as never }), 'RangeError', /jet/],
  ['renderFilterMosaic with weights of the wrong rank', () => renderFilterMosaic({ data: new Float32Array(9), shape: [3, 3] }), 'RangeError', /shape/],
  ['SummaryWriter.addScalar with NaN', () => new SummaryWriter(path.join(os.tmpdir(), 'convscope-bad-options')).addScalar('loss', NaN, 0), 'RangeError', /finite number/],
  ['predict with the wrong image size', () => predictProbabilitiesForTest(new Uint8Array(100)), 'RangeError', /multiple of 784 values/],
  ['setNumThreads(0)', () => setNumThreads(0), 'RangeError', /threads/],
];

// Issue 16 #2: predict's options went unchecked (a chunk of 0 never returned).
const predictCases: Case[] = [
  ['predict with a zero chunk size', () => predictProbabilitiesForTest(image, { chunkSize: 0 }), 'RangeError', /integer in \[1, 16777216\] for chunkSize but received 0 of type number/],
  ['predict with a negative chunk size', () => predictProbabilitiesForTest(image, { chunkSize: -1 }), 'RangeError', /for chunkSize but received -1 of type number/],
  ['predict with a NaN chunk size', () => predictProbabilitiesForTest(image, { chunkSize: NaN }), 'TypeError', /positive integer for chunkSize but received NaN of type number/],
  ['predict with a fractional chunk size', () => predictProbabilitiesForTest(image, { chunkSize: 1.5 }), 'TypeError', /positive integer for chunkSize but received 1.5 of type number/],
  ['predict with a chunk size as a string', () => predictProbabilitiesForTest(image, { chunkSize: '2' as never }), 'TypeError', /positive integer for chunkSize but received "2" of type string/],
  ['predict with options not an object', () => predictProbabilitiesForTest(image, 3 as never), 'TypeError', /an object for options but received 3/],
];

// Issue 16 #6: holes in a spec's layer lists were skipped by forEach/map (raw TypeErrors, leaked tensors);
// classes went up to 100000 though evaluation takes 4096.
const specCases: Case[] = [
  ['a sparse conv list', () => trainCnn(withSpec({ conv: [, { filters: 4, kernelSize: 3 }] })), 'TypeError', /an object for spec.conv\[0\] but received undefined/],
  ['a sparse dense list (trainCnn)', () => trainCnn(withSpec({ dense: [, 16] })), 'TypeError', /positive integer for spec.dense\[0\] but received undefined/],
  ['a sparse dense list (createModel)', () => createModel({ ...defaultSpec(), dense: [, 16] } as never), 'TypeError', /positive integer for spec.dense\[0\] but received undefined/],
  ['more classes than evaluation supports', () => trainCnn(withSpec({ classes: 4097 })), 'RangeError', /integer in \[2, 4096\] for spec.classes but received 4097/],
  ['100000 classes', () => createModel({ ...defaultSpec(), classes: 100000 }), 'RangeError', /for spec.classes but received 100000/],
];

// Issue 16 #10 and #12: options of loadTorchScript, createModel, loadModel and evaluate, and misspelt keys.
const loadCases: Case[] = [
  ['loadTorchScript with fewer classes than the module has', () => loadTorchScript(torchScriptFile, { classes: 5 }), 'RangeError', /Expected 10 \(what .*model\.ts\.pt outputs per image\) for classes but received 5/],
  ['loadTorchScript with more classes than the module has', () => loadTorchScript(torchScriptFile, { classes: 12 }), 'RangeError', /Expected 10 .* for classes but received 12/],
  ['loadTorchScript with a size the module does not take', () => loadTorchScript(torchScriptFile, { inputSize: [32, 32] }), 'RangeError', /does not take 32x32 images.*inputSize/],
  ['loadTorchScript with a zero input height', () => loadTorchScript(torchScriptFile, { inputSize: [0, -3] }), 'RangeError', /for inputSize\[0\] but received 0/],
  ['loadTorchScript with a negative input width', () => loadTorchScript(torchScriptFile, { inputSize: [28, -3] }), 'RangeError', /for inputSize\[1\] but received -3/],
  ['loadTorchScript with a zero std', () => loadTorchScript(torchScriptFile, { inputNorm: { mean: 0, std: 0 } }), 'RangeError', /for inputNorm.std but received 0/],
  ['loadTorchScript with 100000 classes', () => loadTorchScript(torchScriptFile, { classes: 100000 }), 'RangeError', /integer in \[2, 4096\] for classes/],
  ['loadTorchScript with a misspelt option', () => loadTorchScript(torchScriptFile, { clases: 10 } as never), 'TypeError', /Unknown option "clases" in loadTorchScript options; expected one of inputSize, inputChannels, classes, inputNorm/],
  ['createModel with a zero std', () => createModel(smallSpec(), { inputNorm: { mean: 0, std: 0 } }), 'RangeError', /for inputNorm.std but received 0/],
  ['createModel with a NaN mean', () => createModel(smallSpec(), { inputNorm: { mean: NaN, std: 1 } }), 'RangeError', /finite number for inputNorm.mean but received NaN/],
  ['createModel with an unknown device', () => createModel(smallSpec(), { device: 'tpu' }), 'RangeError', /"cpu", "cuda" or "cuda:N" for device but received "tpu"/],
  ['createModel with a negative seed', () => createModel(smallSpec(), { seed: -1 }), 'RangeError', /for seed but received -1/],
  ['createModel with a misspelt option', () => createModel(smallSpec(), { mdoe: 'script' } as never), 'TypeError', /Unknown option "mdoe" in createModel options; expected one of mode, device, seed, inputNorm/],
  ['loadModel with a misspelt option', () => loadModel(checkpointFile, { mdoe: 'script' } as never), 'TypeError', /Unknown option "mdoe" in loadModel options; expected one of mode, device, spec/],
  ['loadModel with an unknown mode', () => loadModel(checkpointFile, { mode: 'graph' as never }), 'RangeError', /one of eager, script for mode but received "graph"/],
  ['evaluate with a misspelt option', () => evaluate({} as never, split, { chunksize: 10 } as never), 'TypeError', /Unknown option "chunksize" in evaluate options; expected one of chunkSize/],
  ['predict with a misspelt option', () => predictProbabilitiesForTest(image, { chunksize: 10 } as never), 'TypeError', /Unknown option "chunksize" in predict options; expected one of chunkSize/],
  ['renderActivations with a misspelt option', () => renderActivationsForTest(image, { colourmap: 'gray' }), 'TypeError', /Unknown option "colourmap" in renderActivations options; expected one of colormap, title/],
];

async function errorOf(fn: () => unknown): Promise<Error> {
  try {
    await fn();
  } catch (err) {
    return err as Error;
  }
  throw new Error('expected an error');
}

describe('bad options across the public API', () => {
  test('there are at least 40 cases', () => {
    expect(trainCases.length + otherCases.length).toBeGreaterThanOrEqual(40);
  });

  test.each([...trainCases, ...otherCases, ...predictCases, ...specCases, ...loadCases])('%s', async (_name, fn, type, message) => {
    const before = await settledLiveTensors();
    const err = await errorOf(fn);
    expect(err.name).toBe(type);
    expect(err.message).toMatch(message);
    // Refused before any native work: no tensor was made.
    expect(native().liveTensors()).toBe(before);
  });
});
