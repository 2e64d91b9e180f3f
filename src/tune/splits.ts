// The data of a search: the training images it may use, split into the part trials train on and a
// validation part that scores them, and the test images kept apart for the one final test.
import { createHash } from 'crypto';
import { loadImageDataset } from '../data/load-image-dataset';
import { LabelledImages, sliceImages } from '../train/evaluate';
import type { InMemoryDataset } from '../train/options';
import { expected } from '../util/validate';
import type { TuneBaseOptions } from './trial-options';

export interface SearchData {
  name: string;
  classNames: string[];
  /** The training images the search uses: train and validation together (the best is retrained on these). */
  pool: LabelledImages;
  /** What trials train on: the pool without its last `validation` images. */
  train: LabelledImages;
  /** What trials are scored and selected on. */
  validation: LabelledImages;
  /** Only the retrained best is ever evaluated on these. */
  test: LabelledImages;
  /** Identifies the images, so that a search is only resumed on the data it started with. */
  fingerprint: { name: string; pool: number; validation: number; test: number; sha256: string };
}

function fingerprintOf(name: string, pool: LabelledImages, validation: number, test: LabelledImages): SearchData['fingerprint'] {
  const hash = createHash('sha256');
  for (const part of [pool.images, pool.labels, test.images, test.labels]) hash.update(part);
  return { name, pool: pool.count, validation, test: test.count, sha256: hash.digest('hex') };
}

/**
 * Loads the dataset (or takes the one given) and carves the search's splits: the first `limit`
 * training images form the pool, its last `validation` images (default 10%) score the trials.
 */
export async function loadSearchData(base: TuneBaseOptions, limits: { limit?: number; validation?: number; testLimit?: number }): Promise<SearchData> {
  const dataset: InMemoryDataset = typeof base.dataset === 'object'
    ? base.dataset
    : await loadImageDataset(base.dataset ?? 'fashion-mnist', { ...base.data, ...(base.dataDir === undefined ? {} : { dataDir: base.dataDir }) });
  const all = dataset.train;
  const poolCount = Math.min(limits.limit ?? all.count, all.count);
  const validation = limits.validation ?? Math.max(1, Math.floor(poolCount / 10));
  if (validation >= poolCount) {
    throw new RangeError(expected(`fewer than the ${poolCount} training images used, so that some are left to train on`, 'validation', validation));
  }
  const pool = sliceImages(all, 0, poolCount);
  const test = sliceImages(dataset.test, 0, Math.min(limits.testLimit ?? dataset.test.count, dataset.test.count));
  return {
    name: dataset.name, classNames: dataset.classNames, pool,
    train: sliceImages(pool, 0, poolCount - validation), validation: sliceImages(pool, poolCount - validation, poolCount), test,
    fingerprint: fingerprintOf(dataset.name, pool, validation, test),
  };
}

/**
 * A dataset for trainCnn that holds no test image. trainCnn evaluates a test split after every
 * epoch and needs one, so it gets the first training image as a stand-in; what it reports for it is
 * discarded. This way no trial and no retraining can see, or spend time on, the real test images.
 */
export function withoutTestImages(name: string, classNames: string[], train: LabelledImages, validation?: LabelledImages): InMemoryDataset {
  return { name, classNames, train, test: sliceImages(train, 0, 1), ...(validation ? { validation } : {}) };
}
