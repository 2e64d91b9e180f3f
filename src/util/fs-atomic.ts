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
 * Tests' fault injection, honoured only when CONVSCOPE_FAULT_INJECT is set: `<action>:<file name>[:<n>]`
 * acts in the middle of the n-th write (default the first) of a file of that name in this process,
 * after its first half is on disk. `kill` sends SIGKILL to this process (a crash mid-write, which a
 * non-atomic write would leave as a torn file); `enospc` fails the write as a full disk does.
 * @example CONVSCOPE_FAULT_INJECT=kill:model.pt:2 node train.js   # dies while writing the second checkpoint
 */
export const FAULT_ENV = 'CONVSCOPE_FAULT_INJECT';
/** Writes of the named file seen since the variable took its current value (a new value counts afresh). */
const writesSeen = { spec: '', count: 0 };

function faultPoint(file: string): void {
  const spec = process.env[FAULT_ENV];
  if (!spec) return;
  const [action, name, nth = '1'] = spec.split(':');
  if (name !== path.basename(file)) return;
  if (writesSeen.spec !== spec) Object.assign(writesSeen, { spec, count: 0 });
  writesSeen.count += 1;
  if (writesSeen.count !== Number(nth)) return;
  if (action === 'kill') process.kill(process.pid, 'SIGKILL');
  if (action === 'enospc') throw Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC', errno: -28, syscall: 'write' });
}

/** Writes all of `bytes` to fd in two halves, with the fault-injection point between them. */
function writeInHalves(fd: number, bytes: Uint8Array, file: string): void {
  const half = bytes.length >> 1;
  fs.writeFileSync(fd, bytes.subarray(0, half));
  faultPoint(file);
  fs.writeFileSync(fd, bytes.subarray(half));
}

/**
 * An error of a write that names the file: Node's own ("ENOSPC: no space left on device, write")
 * does not say which of a run's files could not be written. Keeps code, errno and syscall.
 */
export function namingFile(err: unknown, file: string): Error {
  const cause = err as NodeJS.ErrnoException;
  if (typeof cause?.message !== 'string' || cause.message.includes(file)) return cause;
  return Object.assign(new Error(`cannot write ${file}: ${cause.message}`, { cause }), { code: cause.code, errno: cause.errno, syscall: cause.syscall, path: file });
}

/** What a path that is not a regular file is, for the message. */
function kindOf(stat: fs.Stats): string {
  if (stat.isSymbolicLink()) return 'a symbolic link';
  if (stat.isDirectory()) return 'a folder';
  if (stat.isFIFO()) return 'a FIFO (named pipe)';
  if (stat.isCharacterDevice()) return 'a character device';
  if (stat.isBlockDevice()) return 'a block device';
  if (stat.isSocket()) return 'a socket';
  return 'not a regular file';
}

/** A write refused because its target exists and is not a regular file. */
export class NotRegularFileError extends Error {
  readonly code = 'ENOTREG';
  constructor(readonly path: string, readonly kind: string) {
    super(`cannot write ${path}: it is ${kind}; convscope writes only regular files or new paths`);
    this.name = 'NotRegularFileError';
  }
}

/**
 * Throws unless `file` is missing or a regular file. The rename would replace anything else: a
 * device (as root, /dev/null), a FIFO, or a symbolic link (not followed: lstat).
 */
export function checkWritableTarget(file: string): void {
  let stat: fs.Stats;
  try {
    stat = fs.lstatSync(file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw err;
  }
  if (!stat.isFile()) throw new NotRegularFileError(file, kindOf(stat));
}

/**
 * Writes `data` to `file` atomically (see above), creating the folder if needed. Only a regular file
 * or a new path is written: anything else (a device, a FIFO, a folder, a symbolic link) is refused
 * by name before any byte is written. An error names the file.
 * @example writeFileAtomic('runs/x/history.json', JSON.stringify(history));
 */
export function writeFileAtomic(file: string, data: string | Uint8Array): void {
  const dir = path.dirname(path.resolve(file));
  const temporary = temporarySiblingPath(path.resolve(file));
  checkWritableTarget(file);
  try {
    fs.mkdirSync(dir, { recursive: true });
    const fd = fs.openSync(temporary, 'wx', 0o644);
    try {
      writeInHalves(fd, typeof data === 'string' ? Buffer.from(data) : data, file);
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    // Again just before the rename: what changed since the first check is not replaced either.
    checkWritableTarget(file);
    fs.renameSync(temporary, file);
  } catch (err) {
    fs.rmSync(temporary, { force: true });
    throw namingFile(err, file);
  }
  syncDirectory(dir);
}

/** The temporary files' names (see temporarySiblingPath): `.<name>.<pid>.<12 hex digits>.tmp`. */
const TEMPORARY_NAME = /^\..+\.(\d+)\.[0-9a-f]{12}\.tmp$/;

/** Whether a process with this id is alive (EPERM: it is, but another user's). */
export function processAlive(pid: number): boolean {
  if (!Number.isSafeInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Removes the temporary files a killed writer left in `dir` (SIGKILL between the temporary file and
 * its rename): only regular files with writeFileAtomic's naming whose process is gone. Returns their
 * names. Best effort: a file that cannot be removed is left.
 */
export function removeStaleTemporaries(dir: string): string[] {
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch {
    return [];
  }
  const removed: string[] = [];
  for (const name of names) {
    const match = TEMPORARY_NAME.exec(name);
    if (!match || processAlive(Number(match[1]))) continue;
    const file = path.join(dir, name);
    try {
      if (!fs.lstatSync(file).isFile()) continue;
      fs.rmSync(file);
      removed.push(name);
    } catch {
      // Gone meanwhile, or not ours to remove.
    }
  }
  return removed;
}

/**
 * `root/name` as a real folder inside `root`: created when missing, refused when it is a symbolic
 * link or anything but a folder, so that files written into it cannot land outside `root`.
 * @example writeFileAtomic(path.join(realSubfolder(runDir, 'filters'), 'step-0000001.png'), png);
 */
export function realSubfolder(root: string, name: string): string {
  const dir = path.join(root, name);
  try {
    fs.mkdirSync(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw namingFile(err, dir);
  }
  const stat = fs.lstatSync(dir);
  if (!stat.isDirectory()) throw new Error(`cannot write into ${dir}: it is ${kindOf(stat)}, not a folder of ${root}`);
  return dir;
}
