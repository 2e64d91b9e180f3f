// Downloading MNIST-style IDX files: each file is streamed to a temp file, fsynced, checked
// (complete gzip, valid IDX, SHA-256) and only then renamed into place, so an interrupted or corrupt
// download never leaves a file that a later run would trust.

import { mkdirSync, statSync } from 'fs';
import { open, rename, rm } from 'fs/promises';
import { join } from 'path';
import { SingleBar } from 'cli-progress';
import { readIdxBytes } from '../formats/idx';
import { checkWritableTarget, temporarySiblingPath } from '../util/fs-atomic';
import { IDX_FILE_NAMES, verifyChecksum, type DatasetChecksums, type FileChecksum } from './checksums';

/** A download that receives nothing for this long is abandoned instead of hanging forever. */
const DOWNLOAD_IDLE_TIMEOUT_MS = 30_000;
const GZIP_EXTENSION = '.gz';

function isFile(path: string): boolean {
  try {
    return statSync(path).isFile();
  } catch {
    return false;
  }
}

/** What downloadInto needs: where from, which sums, and whether to show a bar. */
export interface DownloadSettings {
  mirrors: readonly string[];
  /** Each file's expected size and sum, or undefined not to check it. */
  checksums?: DatasetChecksums;
  progress: boolean;
}

/**
 * Downloads the four `.gz` files into `target` (files already there are kept), each from the first
 * mirror that serves it whole and valid.
 */
export async function downloadInto(target: string, opts: DownloadSettings): Promise<void> {
  mkdirSync(target, { recursive: true });
  for (const file of IDX_FILE_NAMES) {
    const destination = join(target, file + GZIP_EXTENSION);
    if (isFile(destination) || isFile(join(target, file))) continue; // kept from an earlier, partly successful run
    const failures: string[] = [];
    let done = false;
    for (const mirror of opts.mirrors) {
      const url = (mirror.endsWith('/') ? mirror : mirror + '/') + file + GZIP_EXTENSION;
      try {
        await downloadFile(url, destination, opts.checksums?.[file], opts.progress);
        done = true;
        break;
      } catch (error) {
        failures.push(`${url}: ${(error as Error).message}`);
      }
    }
    if (!done) throw new Error(`could not download ${file}${GZIP_EXTENSION} (${failures.join('; ')})`);
  }
}

/** Streams `url` into a temp file next to `destination`, checks it, then renames it into place. */
async function downloadFile(url: string, destination: string, checksum: FileChecksum | undefined, showProgress: boolean): Promise<void> {
  const temporary = temporarySiblingPath(destination);
  const abort = new AbortController();
  let idleTimer: NodeJS.Timeout | undefined;
  const resetIdleTimer = () => {
    clearTimeout(idleTimer);
    idleTimer = setTimeout(() => abort.abort(new Error(`no data for ${DOWNLOAD_IDLE_TIMEOUT_MS / 1000} s`)), DOWNLOAD_IDLE_TIMEOUT_MS);
  };
  const bar = showProgress ? new SingleBar({ stream: process.stderr, format: `${url} [{bar}] {percentage}% {value}/{total} bytes` }) : undefined;
  try {
    resetIdleTimer();
    const response = await fetch(url, { signal: abort.signal });
    if (!response.ok || !response.body) throw new Error(`HTTP ${response.status} ${response.statusText}`);
    const declared = Number(response.headers.get('content-length'));
    const total = Number.isFinite(declared) && declared > 0 ? declared : undefined;
    bar?.start(total ?? 0, 0);
    let received = 0;
    const handle = await open(temporary, 'wx', 0o644);
    try {
      const reader = response.body.getReader();
      for (;;) {
        const { done, value } = await reader.read().catch((error: Error) => {
          // undici says just "terminated"; its cause says why (e.g. "other side closed").
          const cause = error.cause instanceof Error ? ` (${error.cause.message})` : '';
          throw new Error(`connection lost after ${received} bytes: ${error.message}${cause}`, { cause: error });
        });
        if (done) break;
        resetIdleTimer();
        await handle.write(value);
        received += value.length;
        bar?.update(received);
      }
      if (total !== undefined && received !== total) throw new Error(`received ${received} of ${total} bytes`);
      await handle.sync();
    } finally {
      await handle.close();
    }
    checkDownloadedFile(temporary, destination, checksum);
    // As every file convscope writes: a regular file or a new path, never a link or a device renamed over.
    checkWritableTarget(destination);
    await rename(temporary, destination);
  } catch (error) {
    await rm(temporary, { force: true });
    throw error;
  } finally {
    clearTimeout(idleTimer);
    bar?.stop();
  }
}

/** A complete gzip holding a valid IDX file, with the expected sum: anything less is not kept. */
function checkDownloadedFile(temporary: string, destination: string, checksum: FileChecksum | undefined): void {
  const raw = readIdxBytes(temporary);
  if (checksum) verifyChecksum(destination, raw.bytes, checksum);
}
