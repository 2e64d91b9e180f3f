// Data shared by the training tests: Fashion-MNIST loaded once per test file.
import { loadDataset } from '../src/data/datasets';
import type { InMemoryDataset } from '../src/train/options';
import type { CnnSpec } from '../src/nn/spec';

let cached: InMemoryDataset | undefined;

export function fashion(): InMemoryDataset {
  if (!cached) cached = loadDataset('fashion-mnist') as unknown as InMemoryDataset;
  return cached;
}

/** A small network that trains in well under a second on a few thousand images. */
export function smallSpec(): CnnSpec {
  return {
    conv: [{ filters: 8, kernelSize: 5, padding: 'same', pool: true }, { filters: 16, kernelSize: 3, padding: 'same', pool: true }],
    dense: [64],
    dropout: 0.25,
  };
}

/**
 * Specs that exercise every activation, 'valid' padding with odd sizes (pooling drops a row), even
 * kernels with asymmetric 'same' padding, strides, batch normalisation, a block of two convolutions
 * and global average pooling: for tests that two implementations agree.
 */
export function specVariants(): [string, CnnSpec][] {
  return [
    ['relu, odd sizes after valid padding', { conv: [{ filters: 8, kernelSize: 5, padding: 'valid', activation: 'relu', pool: true }, { filters: 12, kernelSize: 4, padding: 'valid', activation: 'relu', pool: true }], dense: [32], dropout: 0 }],
    ['leaky_relu, even kernel, stride 2', { conv: [{ filters: 6, kernelSize: 4, padding: 'same', activation: 'leaky_relu', pool: true }, { filters: 10, kernelSize: 3, stride: 2, activation: 'leaky_relu', pool: false }], dense: [24], dropout: 0 }],
    ['tanh and sigmoid', { conv: [{ filters: 6, kernelSize: 3, activation: 'tanh', pool: true }, { filters: 8, kernelSize: 3, activation: 'sigmoid', pool: true }], dense: [16], dropout: 0, denseActivation: 'elu' }],
    ['elu', { conv: [{ filters: 4, kernelSize: 7, activation: 'elu', pool: true }], dense: [16], dropout: 0 }],
    ['batch norm, a two-conv block, global average pooling', { conv: [{ filters: 6, kernelSize: 3, pool: false }, { filters: 8, kernelSize: 3, pool: true }, { filters: 10, kernelSize: 3, pool: true }], dense: [16], dropout: 0, batchNorm: true, globalAvgPool: true }],
    ['batch norm with tanh, flattened', { conv: [{ filters: 6, kernelSize: 5, activation: 'tanh', pool: true }], dense: [24], dropout: 0, batchNorm: true }],
  ];
}

/**
 * Fashion-MNIST's training statistics, as trainCnn measures them: far from the identity, so an
 * exported file that lost them gives visibly different answers.
 */
export const FASHION_INPUT_NORM = { mean: 0.2860405969887955, std: 0.3530242445149223 };
