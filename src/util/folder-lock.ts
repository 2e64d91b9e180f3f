// One writer per folder: a run folder or a search folder is used by one training or one search at a
// time, in this process or any other on the machine. The lock is a file created with O_EXCL (atomic
// on every local file system) that holds the owner's process id; a lock whose process is gone (killed
// with SIGKILL) is stale and taken over.
import * as fs from 'fs';
import * as path from 'path';
import { processAlive } from './fs-atomic';

/** The lock's name inside the folder: hidden, so listings of a run's files leave it out. */
export const LOCK_FILE = '.convscope.lock';

/** A folder already in use by a live training or search (this process or another). */
export class FolderInUseError extends Error {
  readonly code = 'EBUSY';
  constructor(readonly dir: string, readonly pid: number, readonly purpose: string, readonly owner: string) {
    super(`${dir} is in use by ${pid === process.pid ? `another ${owner} in this process` : `a ${owner} in process ${pid}`} ` +
      `(lock file ${path.join(dir, LOCK_FILE)}); wait for it to end or give another folder for this ${purpose}`);
    this.name = 'FolderInUseError';
  }
}

interface LockContents { pid: number; owner: string }

function readLock(file: string): LockContents | undefined {
  try {
    const parsed = JSON.parse(fs.readFileSync(file, 'utf8')) as Partial<LockContents>;
    return { pid: Number(parsed.pid), owner: typeof parsed.owner === 'string' ? parsed.owner.slice(0, 40) : 'convscope process' };
  } catch {
    // Missing (released meanwhile) or torn (its writer died between create and write): not a live lock.
    return undefined;
  }
}

/**
 * Locks `dir` (which must exist) for `owner` ('training', 'search'); returns the function that
 * releases it. A live holder, in this process or another, makes it throw FolderInUseError.
 * @example const release = lockFolder('runs/x', 'training', 'run'); try { ... } finally { release(); }
 */
export function lockFolder(dir: string, owner: string, purpose: string): () => void {
  const file = path.join(dir, LOCK_FILE);
  const contents = JSON.stringify({ pid: process.pid, owner });
  for (let attempt = 0; ; ++attempt) {
    try {
      const fd = fs.openSync(file, 'wx', 0o644);
      try {
        fs.writeSync(fd, contents);
      } finally {
        fs.closeSync(fd);
      }
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST' || attempt >= 2) throw err;
    }
    const held = readLock(file);
    if (held && processAlive(held.pid)) throw new FolderInUseError(dir, held.pid, purpose, held.owner);
    // Stale: its process is gone. Two processes taking over the same stale lock at once both remove
    // it, and O_EXCL on the retry lets one of them create the new one.
    fs.rmSync(file, { force: true });
  }
  let released = false;
  return () => {
    if (released) return;
    released = true;
    const held = readLock(file);
    if (held?.pid === process.pid) fs.rmSync(file, { force: true });
  };
}
