// Reads TensorBoard event files back, verifying every record's CRCs. Used by tests to check what
// SummaryWriter wrote and by the report tool to collect scalars without TensorBoard.

import { readRegularFile } from '../util/fs-read';
import { decodeEvent } from './event-schema';
import { splitRecords } from './record-framing';

/** A scalar summary value. */
export interface ScalarValue {
  tag: string;
  value: number;
}

/** An image summary value; `png` holds the encoded image bytes. */
export interface ImageValue {
  tag: string;
  width: number;
  height: number;
  colorspace: number;
  png: Buffer;
}

/** One decoded event. */
export interface ReadEvent {
  wallTime: number;
  step: number;
  fileVersion?: string;
  scalars: ScalarValue[];
  images: ImageValue[];
}

/**
 * Parses already-loaded event-file bytes; see {@link readEvents}.
 *
 * @param source - name for error messages
 * @example
 * const events = parseEvents(await fs.promises.readFile(file), file);
 */
export function parseEvents(bytes: Buffer, source = '<buffer>'): ReadEvent[] {
  return splitRecords(bytes, source).map(({ data, offset }, index) => {
    let event;
    try {
      event = decodeEvent(data);
    } catch (err) {
      throw new Error(`Undecodable Event in ${source}: record ${index} at byte offset ${offset}: ${(err as Error).message}`, { cause: err });
    }
    const values = event.summary?.value ?? [];
    return {
      wallTime: event.wall_time,
      step: event.step,
      ...(event.file_version ? { fileVersion: event.file_version } : {}),
      scalars: values.filter((v) => v.simple_value !== undefined && v.simple_value !== null).map((v) => ({ tag: v.tag, value: v.simple_value as number })),
      images: values
        .filter((v) => v.image)
        .map((v) => ({
          tag: v.tag,
          width: v.image!.width,
          height: v.image!.height,
          colorspace: v.image!.colorspace,
          png: Buffer.from(v.image!.encoded_image_string),
        })),
    };
  });
}

/** An event file larger than this is refused before it is read (a 100-epoch run's is a few MB). */
const MAX_EVENT_FILE_BYTES = 1024 ** 3;

/**
 * Reads every event of a TensorBoard event file, checking both CRCs of each record.
 *
 * @throws Error naming the file, record and byte offset on a CRC mismatch, truncation or an
 *   undecodable event
 * @example
 * const events = readEvents(writer.path);
 * events[0].fileVersion; // 'brain.Event:2'
 * const losses = events.flatMap((e) => e.scalars.filter((s) => s.tag === 'loss/train').map((s) => [e.step, s.value]));
 */
export function readEvents(path: string): ReadEvent[] {
  return parseEvents(readRegularFile(path, MAX_EVENT_FILE_BYTES), path);
}
