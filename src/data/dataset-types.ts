// The shapes every data source returns: a Dataset of Splits, images N x C x H x W.

/**
 * Images and labels of one split, laid out N x C x H x W: image `i` is
 * `images.subarray(i*C*H*W, (i+1)*C*H*W)`, each image channel-planar (all of channel 0, row-major,
 * then channel 1, ...). Every source (IDX, CIFAR, image folders, arrays) returns this shape.
 */
export interface Split {
  /**
   * `count * channels * height * width` values: a Uint8Array holds 0..255, a Float32Array holds
   * values in [0, 1].
   */
  images: Uint8Array | Float32Array;
  /** `count` labels, each an index into `classNames` (at most 256 classes). */
  labels: Uint8Array;
  count: number;
  /** 1 for grey images (IDX files), 3 for colour; any count for arrays. */
  channels: number;
  /** 28 for MNIST and Fashion-MNIST; taken from the file. */
  height: number;
  width: number;
}

/** Where a dataset was found. */
export type DatasetSourceKind = 'option' | 'env' | 'cache' | 'installed' | 'download' | 'path';

/** A loaded dataset. */
export interface Dataset {
  /** A known name ('mnist', 'cifar10', ...), or the folder or file the images came from. */
  name: string;
  train: Split;
  test: Split;
  /** The last `options.validation` training images, when asked for (they are then not in `train`). */
  validation?: Split;
  classNames: string[];
  source: { kind: DatasetSourceKind; dir: string };
  /** Image folders only: the decoded-image cache entry, and whether this load read it (`hit`) or wrote it. */
  cache?: { file: string; hit: boolean };
}
