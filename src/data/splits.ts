// What every data source does once its images are in memory: check labels against the classes,
// take a seeded test split from a source that has only one, move the last training images into a
// validation split, and keep the first n images for quick runs. Splits are views (no copies) where
// the layout allows.

import { mulberry32 } from '../util/random';
import { checkInteger } from '../util/validate';
import type { Split } from './dataset-types';

/** Values per image (C x H x W) of a split. */
export function valuesPerImage(split: Pick<Split, 'channels' | 'height' | 'width'>): number {
  return split.channels * split.height * split.width;
}

/** Images `start..end` of a split, as views (no copy). */
export function sliceSplit(split: Split, start: number, end: number): Split {
  const values = valuesPerImage(split);
  return {
    images: split.images.subarray(start * values, end * values),
    labels: split.labels.subarray(start, end),
    count: end - start,
    channels: split.channels,
    height: split.height,
    width: split.width,
  };
}

/** The images at `indices`, copied into a new split in that order. */
export function pickImages(split: Split, indices: readonly number[]): Split {
  const values = valuesPerImage(split);
  const images = split.images instanceof Float32Array ? new Float32Array(indices.length * values) : new Uint8Array(indices.length * values);
  const labels = new Uint8Array(indices.length);
  indices.forEach((from, to) => {
    images.set(split.images.subarray(from * values, (from + 1) * values), to * values);
    labels[to] = split.labels[from];
  });
  return { images, labels, count: indices.length, channels: split.channels, height: split.height, width: split.width };
}

/**
 * Throws naming `where` when a label is not below `classCount`.
 * @example checkLabelsBelow(labels, 10, 'data.npz: y_train');
 */
export function checkLabelsBelow(labels: ArrayLike<number>, classCount: number, where: string): void {
  for (let i = 0; i < labels.length; i++) {
    if (!(labels[i] >= 0 && labels[i] < classCount)) {
      throw new RangeError(`${where}: label ${labels[i]} at index ${i} is outside 0..${classCount - 1} (${classCount} classes)`);
    }
  }
}

/** Fisher-Yates with mulberry32: the same order for the same seed on every machine. */
export function seededShuffle<T>(items: T[], seed: number): T[] {
  const random = mulberry32(seed);
  for (let i = items.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [items[i], items[j]] = [items[j], items[i]];
  }
  return items;
}

/**
 * Which indices of `labels` go to the test split: for each class, `round(fraction * n)` of its n
 * images (at least one when the class has two or more), chosen by a seeded shuffle, so that every
 * class with two images is in both splits and the same seed always picks the same images.
 * @returns sorted indices of the training and the test images
 */
export function stratifiedTestIndices(labels: ArrayLike<number>, fraction: number, seed: number): { train: number[]; test: number[] } {
  const byClass = new Map<number, number[]>();
  for (let i = 0; i < labels.length; i++) {
    const list = byClass.get(labels[i]) ?? [];
    list.push(i);
    byClass.set(labels[i], list);
  }
  const train: number[] = [];
  const test: number[] = [];
  for (const [label, indices] of [...byClass.entries()].sort((a, b) => a[0] - b[0])) {
    const shuffled = seededShuffle([...indices], seed + label);
    const wanted = Math.round(fraction * shuffled.length);
    const testCount = shuffled.length < 2 ? 0 : Math.min(shuffled.length - 1, Math.max(1, wanted));
    test.push(...shuffled.slice(0, testCount));
    train.push(...shuffled.slice(testCount));
  }
  return { train: train.sort((a, b) => a - b), test: test.sort((a, b) => a - b) };
}

/** Options every source applies after loading (see LoadImageDatasetOptions). */
export interface SplitOptions {
  validation?: number;
  limitTrain?: number;
  limitTest?: number;
}

/** `train`, `test` and `validation` after moving the last `validation` images and applying the limits. */
export function carveSplits(train: Split, test: Split, options: SplitOptions): { train: Split; test: Split; validation?: Split } {
  const validation = options.validation ?? 0;
  if (validation > 0) checkInteger(validation, 'options.validation', 0, train.count - 1);
  const trainEnd = train.count - validation;
  const result: { train: Split; test: Split; validation?: Split } = {
    train: sliceSplit(train, 0, Math.min(trainEnd, options.limitTrain ?? trainEnd)),
    test: sliceSplit(test, 0, Math.min(test.count, options.limitTest ?? test.count)),
  };
  if (validation > 0) result.validation = sliceSplit(train, trainEnd, train.count);
  return result;
}
