// Crash-safe file writes: a temporary file in the same folder, fsync, rename over the target, fsync
// the folder. A reader sees the old file or the new one, never half of one, even after SIGKILL or a
// power cut. Every file convscope writes (checkpoints, run files, pictures, IDX, downloads) goes
// through here.
import { randomBytes } from 'crypto';
import * as fs from 'fs';
import * as path from 'path';

/**
 * A path next to `file` for writing before an atomic rename: same folder (so the rename cannot
 * cross file systems) and a hidden, unique name that no reader looks for.
 * @example temporarySiblingPath('/cache/mnist/train-labels-idx1-ubyte.gz'); // '/cache/mnist/.train-labels-idx1-ubyte.gz.4242.9f86d081884c.tmp'
 */
export function temporarySiblingPath(file: string): string {
  return path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`);
}

/** Makes a rename durable; best effort, as some file systems refuse fsync on folders. */
export function syncDirectory(dir: string): void {
  let fd: number | undefined;
  try {
    fd = fs.openSync(dir, 'r');
    fs.fsyncSync(fd);
  } catch {
    // Not supported here; the data itself was already fsynced and the rename is still atomic.
  } finally {
    if (fd !== undefined) fs.closeSync(fd);
  }
}

/**
 * Writes `data` to `file` atomically (see above), creating the folder if needed.
 * @example writeFileAtomic('runs/x/history.json', JSON.stringify(history));
 */
export function writeFileAtomic(file: string, data: string | Uint8Array): void {
  const dir = path.dirname(path.resolve(file));
  fs.mkdirSync(dir, { recursive: true });
  const temporary = temporarySiblingPath(path.resolve(file));
  try {
    const fd = fs.openSync(temporary, 'wx', 0o644);
    try {
      fs.writeFileSync(fd, data);
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    fs.renameSync(temporary, file);
  } catch (err) {
    fs.rmSync(temporary, { force: true });
    throw err;
  }
  syncDirectory(dir);
}
