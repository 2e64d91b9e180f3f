// Writes TensorBoard event files (`events.out.tfevents.<seconds>.<hostname>`) without TensorFlow:
// Events serialized with protobufjs, framed as TFRecords. Every event is appended with its own
// write call, so a process killed mid-training loses at most the event being written, and
// TensorBoard can follow the file while training runs.

import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { namingFile } from '../util/fs-atomic';
import { isTypedArray } from '../core/host-tensor';
import { checkInteger, checkKnownKeys, checkNumber, checkObject, checkString, expected } from '../util/validate';
import { encodeEvent, type EventMessage } from './event-schema';
import { readPngInfo } from './png-size';
import { frameRecord } from './record-framing';

/** The version string TensorBoard expects in a file's first event. */
export const FILE_VERSION = 'brain.Event:2';

/** Optional image metadata for {@link SummaryWriter.addImage}; read from the PNG header when omitted. */
export interface ImageSize {
  width?: number;
  height?: number;
}

function openUnique(logDir: string): { fd: number; file: string } {
  const base = path.join(logDir, `events.out.tfevents.${Math.floor(Date.now() / 1000)}.${os.hostname()}`);
  // Two writers started in the same second (or a restarted run) must not clobber each other's file.
  for (let attempt = 0; ; attempt++) {
    const file = attempt === 0 ? base : `${base}.${process.pid}.${attempt}`;
    try {
      return { fd: fs.openSync(file, 'wx'), file };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST' || attempt > 1000) throw err;
    }
  }
}

/**
 * Appends scalars and images to a new TensorBoard event file in `logDir`.
 *
 * @example
 * const writer = new SummaryWriter('runs/lenet');
 * writer.addScalar('loss/train', 0.42, 100);
 * writer.addImage('conv1/filters', renderFilterMosaic(weights), 100);
 * writer.close(); // then: tensorboard --logdir runs
 */
export class SummaryWriter {
  /** The directory given to the constructor (created if missing). */
  readonly logDir: string;
  /** Full path of the event file being written. */
  readonly path: string;
  private fd: number | undefined;

  /**
   * Creates `logDir` (recursively) and a new event file in it, whose first event carries
   * `file_version: "brain.Event:2"`.
   *
   * @example
   * const writer = new SummaryWriter(path.join('runs', new Date().toISOString()));
   */
  constructor(logDir: string) {
    this.logDir = checkString(logDir, 'logDir');
    fs.mkdirSync(logDir, { recursive: true });
    const { fd, file } = openUnique(logDir);
    this.fd = fd;
    this.path = file;
    this.append({ wall_time: Date.now() / 1000, step: 0, file_version: FILE_VERSION });
  }

  /** Whether {@link close} has been called. */
  get closed(): boolean {
    return this.fd === undefined;
  }

  /**
   * Records a scalar (shown as a curve in TensorBoard's Scalars tab).
   *
   * @param tag - non-empty name; `/` groups curves (`'loss/train'`, `'loss/test'`)
   * @param value - finite number (stored as float32, as TensorBoard does)
   * @param step - non-negative integer x position (epoch, batch or example count)
   * @param wallTime - seconds since the epoch; default now
   * @example
   * writer.addScalar('accuracy/test', 0.987, 5);
   */
  addScalar(tag: string, value: number, step: number, wallTime?: number): void {
    checkString(tag, 'tag');
    checkNumber(value, 'value');
    checkInteger(step, 'step', 0);
    this.append({ wall_time: this.wallTime(wallTime), step, summary: { value: [{ tag, simple_value: value }] } });
  }

  /**
   * Records a PNG image (TensorBoard's Images tab; one slider position per step).
   *
   * @param png - PNG bytes, e.g. from `renderFilterMosaic`
   * @param size - width/height to record; read from the PNG's IHDR chunk when omitted
   * @example
   * writer.addImage('conv1/filters', png, step);
   */
  addImage(tag: string, png: Buffer, step: number, size: ImageSize = {}, wallTime?: number): void {
    checkString(tag, 'tag');
    if (!isTypedArray(png, 'Uint8Array')) throw new TypeError(expected('a Buffer of PNG bytes', 'png', png));
    checkInteger(step, 'step', 0);
    const s = checkObject(size, 'size');
    checkKnownKeys(s, 'size', ['width', 'height']);
    const info = readPngInfo(png);
    const width = s.width === undefined ? info.width : checkInteger(s.width, 'size.width', 1);
    const height = s.height === undefined ? info.height : checkInteger(s.height, 'size.height', 1);
    this.append({
      wall_time: this.wallTime(wallTime),
      step,
      summary: { value: [{ tag, image: { width, height, colorspace: info.colorspace, encoded_image_string: png } }] },
    });
  }

  /**
   * Forces written events to disk (fsync). Events are already in the file after each add call;
   * this makes them survive a power loss too.
   */
  flush(): void {
    const fd = this.openFd();
    try {
      fs.fsyncSync(fd);
    } catch (err) {
      throw namingFile(err, this.path);
    }
  }

  /** Flushes and closes the file. Calling it again does nothing; adding after it throws. */
  close(): void {
    if (this.fd === undefined) return;
    const fd = this.fd;
    this.fd = undefined;
    try {
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
  }

  private wallTime(wallTime: number | undefined): number {
    return wallTime === undefined ? Date.now() / 1000 : checkNumber(wallTime, 'wallTime', 0);
  }

  private openFd(): number {
    if (this.fd === undefined) throw new Error(`SummaryWriter for ${this.path} is closed`);
    return this.fd;
  }

  private append(event: EventMessage): void {
    const fd = this.openFd();
    const record = frameRecord(encodeEvent(event));
    let written = 0;
    try {
      while (written < record.length) written += fs.writeSync(fd, record, written, record.length - written);
    } catch (err) {
      // A full disk must say which file it could not write (Node's message does not).
      throw namingFile(err, this.path);
    }
  }
}
