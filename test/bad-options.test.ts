// At least 40 bad calls across the public API: each gets the right error type and a message naming
// what was wrong, and none reaches the addon (no native tensor is created).
import * as os from 'os';
import * as path from 'path';
import { createModel, defaultSpec, evaluate, loadDataset, loadModel, predictProbabilitiesForTest, readIdx, renderFilterMosaic, setNumThreads, SummaryWriter, trainCnn } from './bad-options-api';
import { native } from '../src/native';
import { smallSpec } from './fixtures';

type Case = [string, () => unknown, 'TypeError' | 'RangeError' | 'CheckpointError', RegExp];

const conv = (layer: object) => ({ ...defaultSpec(), conv: [{ filters: 8, kernelSize: 5, padding: 'same', pool: true, ...layer }] });
const split = { images: new Uint8Array(784 * 2), labels: new Uint8Array(2), count: 2 };

const trainCases: Case[] = [
  ['epochs as a string', () => trainCnn({ epochs: 'x' as never }), 'TypeError', /Expected positive integer for epochs but received "x" of type string/],
  ['zero epochs', () => trainCnn({ epochs: 0 }), 'RangeError', /for epochs but received 0/],
  ['negative epochs', () => trainCnn({ epochs: -2 }), 'RangeError', /epochs/],
  ['fractional epochs', () => trainCnn({ epochs: 1.5 }), 'TypeError', /epochs but received 1.5/],
  ['zero batch size', () => trainCnn({ batchSize: 0 }), 'RangeError', /batchSize but received 0/],
  ['batch size NaN', () => trainCnn({ batchSize: NaN }), 'TypeError', /batchSize but received NaN/],
  ['NaN learning rate', () => trainCnn({ learningRate: NaN }), 'RangeError', /finite number for learningRate but received NaN/],
  ['negative learning rate', () => trainCnn({ learningRate: -1 }), 'RangeError', /learningRate but received -1/],
  ['zero learning rate', () => trainCnn({ learningRate: 0 }), 'RangeError', /learningRate but received 0/],
  ['infinite learning rate', () => trainCnn({ learningRate: Infinity }), 'RangeError', /finite number for learningRate/],
  ['learning rate as a string', () => trainCnn({ learningRate: '0.1' as never }), 'TypeError', /a number for learningRate but received "0.1"/],
  ['unknown dataset', () => trainCnn({ dataset: 'cifar' as never }), 'RangeError', /one of mnist, fashion-mnist for dataset but received "cifar"/],
  ['unknown mode', () => trainCnn({ mode: 'graph' as never }), 'RangeError', /one of eager, script for mode but received "graph"/],
  ['unknown device', () => trainCnn({ device: 'tpu' as never }), 'RangeError', /one of cpu, cuda, auto for device but received "tpu"/],
  ['unknown optimizer', () => trainCnn({ optimizer: 'rmsprop' as never }), 'RangeError', /one of adam, sgd for optimizer/],
  ['negative weight decay', () => trainCnn({ weightDecay: -0.1 }), 'RangeError', /weightDecay but received -0.1/],
  ['negative l1', () => trainCnn({ l1: -1 }), 'RangeError', /for l1 but received -1/],
  ['momentum 1', () => trainCnn({ momentum: 1 }), 'RangeError', /momentum but received 1/],
  ['nesterov as a string', () => trainCnn({ nesterov: 'yes' as never }), 'TypeError', /a boolean for nesterov/],
  ['negative seed', () => trainCnn({ seed: -1 }), 'RangeError', /for seed but received -1/],
  ['zero eval chunk', () => trainCnn({ evalChunkSize: 0 }), 'RangeError', /evalChunkSize but received 0/],
  ['zero limit', () => trainCnn({ limit: 0 }), 'RangeError', /for limit but received 0/],
  ['onProgress not a function', () => trainCnn({ onProgress: 3 as never }), 'TypeError', /a function for onProgress/],
  ['signal not an AbortSignal', () => trainCnn({ signal: {} as never }), 'TypeError', /an AbortSignal for signal/],
  ['a misspelt option', () => trainCnn({ epoch: 3 } as never), 'TypeError', /Unknown option "epoch"/],
  ['options not an object', () => trainCnn(5 as never), 'TypeError', /an object for options/],
  ['snapshotEvery zero', () => trainCnn({ snapshotEvery: 0 }), 'RangeError', /snapshotEvery but received 0/],
  ['empty spec', () => trainCnn({ spec: { conv: [], dense: [], dropout: 0 } }), 'RangeError', /empty spec/],
  ['spec without conv array', () => trainCnn({ spec: { dense: [], dropout: 0 } as never }), 'TypeError', /spec.conv/],
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
  ['evaluate with float images', () => evaluate({} as never, { ...split, images: new Float32Array(2) as never }), 'TypeError', /a Uint8Array for split.images/],
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

  test.each([...trainCases, ...otherCases])('%s', async (_name, fn, type, message) => {
    const before = native().liveTensors();
    const err = await errorOf(fn);
    expect(err.name).toBe(type);
    expect(err.message).toMatch(message);
    // Refused before any native work: no tensor was made.
    expect(native().liveTensors()).toBe(before);
  });
});
