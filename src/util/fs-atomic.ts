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

/**
 * Writes `data` to `file` atomically (see above), creating the folder if needed. An error names the file.
 * @example writeFileAtomic('runs/x/history.json', JSON.stringify(history));
 */
export function writeFileAtomic(file: string, data: string | Uint8Array): void {
  const dir = path.dirname(path.resolve(file));
  const temporary = temporarySiblingPath(path.resolve(file));
  try {
    fs.mkdirSync(dir, { recursive: true });
    const fd = fs.openSync(temporary, 'wx', 0o644);
    try {
      writeInHalves(fd, typeof data === 'string' ? Buffer.from(data) : data, file);
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    fs.renameSync(temporary, file);
  } catch (err) {
    fs.rmSync(temporary, { force: true });
    throw namingFile(err, file);
  }
  syncDirectory(dir);
}
