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
