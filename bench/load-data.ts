// How much do parsing and SHA-256 verification add to loading Fashion-MNIST, compared with just
// gunzipping the same four Debian files? Target: loadDataset at most 1.25x plain gunzip.
//
// Both sides read the files from disk (page cache after the warm-up) and gunzip them; loadDataset
// additionally hashes each decompressed buffer, checks headers and labels and builds the splits.

import { readFileSync } from 'fs';
import { join } from 'path';
import { gunzipSync } from 'zlib';
import { IDX_FILE_NAMES } from '../src/data/checksums';
import { DEBIAN_FASHION_MNIST_DIR, loadDataset } from '../src/data/datasets';
import { median } from './stats';

const RUNS = 3;

/** Result of {@link benchLoadData}; times are medians in milliseconds. */
export interface LoadDataBenchResult {
  /** readFileSync + zlib.gunzipSync (default options) of the four .gz files. */
  gunzipMs: number;
  /** loadDataset('fashion-mnist') from the same files, verification on. */
  loadMs: number;
  /** loadMs / gunzipMs. */
  ratio: number;
}

function timeMs(run: () => unknown): number {
  const started = process.hrtime.bigint();
  run();
  return Number(process.hrtime.bigint() - started) / 1e6;
}

function plainGunzip(dir: string): number {
  let bytes = 0;
  for (const file of IDX_FILE_NAMES) bytes += gunzipSync(readFileSync(join(dir, `${file}.gz`))).length;
  return bytes;
}

function verifiedLoad(dir: string): number {
  const data = loadDataset('fashion-mnist', { dataDir: dir, verify: true });
  return data.train.count + data.test.count;
}

/**
 * Times loadDataset (verification on) against plain gunzip of the Debian Fashion-MNIST files,
 * median of {@link RUNS} interleaved runs each, after one untimed warm-up of each.
 *
 * @param dir - the folder with the four `.gz` files (default: Debian's).
 * @example
 * const { gunzipMs, loadMs, ratio } = await benchLoadData(); // ratio should be <= 1.25
 */
export async function benchLoadData(dir: string = DEBIAN_FASHION_MNIST_DIR): Promise<LoadDataBenchResult> {
  plainGunzip(dir);
  verifiedLoad(dir);
  const gunzipTimes: number[] = [];
  const loadTimes: number[] = [];
  for (let run = 0; run < RUNS; run++) {
    // Alternate which goes first so neither always runs right after the other's garbage.
    if (run % 2 === 0) {
      gunzipTimes.push(timeMs(() => plainGunzip(dir)));
      loadTimes.push(timeMs(() => verifiedLoad(dir)));
    } else {
      loadTimes.push(timeMs(() => verifiedLoad(dir)));
      gunzipTimes.push(timeMs(() => plainGunzip(dir)));
    }
  }
  const gunzipMs = median(gunzipTimes);
  const loadMs = median(loadTimes);
  return { gunzipMs, loadMs, ratio: loadMs / gunzipMs };
}

if (require.main === module) {
  benchLoadData(process.argv[2]).then(
    ({ gunzipMs, loadMs, ratio }) => {
      const row = (name: string, value: string) => `${name.padEnd(34)}${value.padStart(10)}`;
      console.log(row('plain gunzip (4 files)', `${gunzipMs.toFixed(1)} ms`));
      console.log(row('loadDataset, verify on', `${loadMs.toFixed(1)} ms`));
      console.log(row('ratio (target <= 1.25)', ratio.toFixed(3)));
    },
    (error: Error) => {
      console.error(error.message);
      process.exitCode = 1;
    },
  );
}
