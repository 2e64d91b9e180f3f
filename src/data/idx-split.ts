// The checks every IDX split goes through (MNIST, Fashion-MNIST, and any IDX folder): 8-bit images
// [count, height, width], labels [count], labels below the class count.

import type { IdxArray } from '../formats/idx';
import type { Split } from './dataset-types';
import { checkLabelsBelow } from './splits';

function checkUint8(array: IdxArray, file: string, what: string): Uint8Array {
  if (array.dtype !== 'uint8') throw new Error(`${file}: expected uint8 ${what} but the file holds ${array.dtype} values`);
  return array.data as Uint8Array;
}

/**
 * A split from an IDX images file and its labels file: uint8 images [count, height, width] (channels 1),
 * as many labels, each below `classCount`. Errors name the file.
 */
export function idxSplit(images: IdxArray, labels: IdxArray, imagesFile: string, labelsFile: string, classCount: number): Split {
  const pixels = checkUint8(images, imagesFile, 'images');
  const labelData = checkUint8(labels, labelsFile, 'labels');
  if (images.dims.length !== 3) {
    throw new Error(`${imagesFile}: expected image dims [count, height, width] but the file has dims [${images.dims.join(', ')}]`);
  }
  if (labels.dims.length !== 1) {
    throw new Error(`${labelsFile}: expected label dims [count] but the file has dims [${labels.dims.join(', ')}]`);
  }
  const [count, height, width] = images.dims;
  if (labels.dims[0] !== count) {
    throw new Error(`${labelsFile} has ${labels.dims[0]} labels but ${imagesFile} has ${count} images (expected the same count)`);
  }
  checkLabelsBelow(labelData, classCount, labelsFile);
  return { images: pixels, labels: labelData, count, channels: 1, height, width };
}
