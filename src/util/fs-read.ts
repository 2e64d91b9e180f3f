// Reading a file a user named. readFileSync reads until end of file, so /dev/zero grows without bound
// and a FIFO blocks forever; here only a regular file of a bounded size is read, and the size is
// checked on the open descriptor (fstat), so a path swapped between a check and the read changes
// nothing. Every reader of user-named files (IDX, checkpoints, TorchScript, event files, run
// folders) goes through readRegularFile.
import * as fs from 'fs';
import * as path from 'path';

/** Why a file was refused: stable for programs (each reader maps it to its own error), the message is for people. */
export type UnreadableReason = 'missing' | 'not-regular' | 'too-large' | 'io';

export class UnreadableFileError extends Error {
  constructor(readonly file: string, readonly reason: UnreadableReason, readonly detail: string) {
    super(`${file}: ${detail}`);
    this.name = 'UnreadableFileError';
  }
}

/** What a non-regular file is, for the message. */
function kindOf(stat: fs.Stats): string {
  if (stat.isDirectory()) return 'a folder';
  if (stat.isFIFO()) return 'a FIFO (named pipe)';
  if (stat.isCharacterDevice()) return 'a character device';
  if (stat.isBlockDevice()) return 'a block device';
  if (stat.isSocket()) return 'a socket';
  return 'not a regular file';
}

/**
 * Opening a FIFO for reading blocks until a writer appears; O_NONBLOCK makes the open return at once
 * (it changes nothing for regular files), and O_NOCTTY keeps a terminal from becoming ours.
 */
const OPEN_FLAGS = fs.constants.O_RDONLY | (fs.constants.O_NONBLOCK ?? 0) | (fs.constants.O_NOCTTY ?? 0);

function openForReading(file: string): number {
  try {
    return fs.openSync(file, OPEN_FLAGS);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new UnreadableFileError(file, 'missing', 'ENOENT: no such file or directory');
    throw new UnreadableFileError(file, 'io', `cannot open the file (${(err as Error).message})`);
  }
}

/**
 * The bytes of `file`, which must be a regular file of at most `maxBytes` bytes.
 * @throws UnreadableFileError naming the file and the reason (missing, a folder, a FIFO, a device, too large).
 * @example const bytes = readRegularFile('runs/x/model.pt', 4 * 1024 ** 3);
 */
export function readRegularFile(file: string, maxBytes: number): Buffer {
  const fd = openForReading(file);
  try {
    const stat = fs.fstatSync(fd);
    if (!stat.isFile()) throw new UnreadableFileError(file, 'not-regular', `is ${kindOf(stat)}, not a regular file`);
    if (stat.size > maxBytes) throw new UnreadableFileError(file, 'too-large', `is ${stat.size} bytes, more than the ${maxBytes} it may have`);
    const bytes = Buffer.allocUnsafe(stat.size);
    let filled = 0;
    // Exactly the size fstat gave: a file that grows meanwhile cannot make this read more.
    while (filled < stat.size) {
      const n = fs.readSync(fd, bytes, filled, stat.size - filled, filled);
      if (n === 0) break;
      filled += n;
    }
    return filled === stat.size ? bytes : bytes.subarray(0, filled);
  } catch (err) {
    if (err instanceof UnreadableFileError) throw err;
    throw new UnreadableFileError(file, 'io', `cannot read the file (${(err as Error).message})`);
  } finally {
    fs.closeSync(fd);
  }
}

/** readRegularFile as UTF-8 text. */
export function readRegularTextFile(file: string, maxBytes: number): string {
  return readRegularFile(file, maxBytes).toString('utf8');
}

/** A path an input file names that resolves outside the folder it must stay in. */
export class OutsideFolderError extends Error {
  constructor(readonly file: string, readonly folder: string, readonly realPath: string) {
    super(`${file} lies outside ${folder} (it resolves to ${realPath}); only files inside the folder are read`);
    this.name = 'OutsideFolderError';
  }
}

/**
 * Whether `file` exists and resolves, symbolic links and `..` included, to a path inside `folder`
 * (itself resolved). Missing: false. Outside: OutsideFolderError. Reading the resolved path after this
 * check is safe against links in the input; a folder an attacker can still rewrite meanwhile is
 * beyond what a check can close.
 * @example if (existsInside('experiments/sweep', path.join('experiments/sweep', figure))) copy(...);
 */
export function existsInside(folder: string, file: string): boolean {
  let real: string;
  try {
    real = fs.realpathSync(file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT' || (err as NodeJS.ErrnoException).code === 'ENOTDIR') return false;
    throw err;
  }
  const root = fs.realpathSync(folder);
  if (real !== root && !real.startsWith(root.endsWith(path.sep) ? root : root + path.sep)) throw new OutsideFolderError(file, folder, real);
  return true;
}
