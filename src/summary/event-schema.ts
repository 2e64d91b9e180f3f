// The slice of TensorFlow's event.proto / summary.proto that scalars and images need, parsed at
// runtime by protobufjs. Field numbers and types must match TensorFlow's exactly: TensorBoard
// decodes these bytes with the real schema.

import * as protobuf from 'protobufjs';

// `value` and `what` are oneofs as in TensorFlow. That matters for proto3: a oneof member has
// presence, so a scalar of exactly 0 is still written instead of being dropped as the default.
const EVENT_PROTO = `
syntax = "proto3";
package tensorboard;

message Event {
  double wall_time = 1;
  int64 step = 2;
  oneof what {
    string file_version = 3;
    Summary summary = 5;
  }
}

message Summary {
  message Image {
    int32 height = 1;
    int32 width = 2;
    int32 colorspace = 3;
    bytes encoded_image_string = 4;
  }
  message Value {
    string tag = 1;
    oneof value {
      float simple_value = 2;
      Image image = 4;
    }
  }
  repeated Value value = 1;
}
`;

/** `Summary.Image.colorspace` values (TensorFlow's numbering). */
export const COLORSPACE = { gray: 1, grayAlpha: 2, rgb: 3, rgba: 4 } as const;

/** A Summary.Image as plain data. */
export interface ImageMessage {
  height: number;
  width: number;
  colorspace: number;
  encoded_image_string: Uint8Array;
}

/** A Summary.Value: a tag with either a scalar or an image. */
export interface ValueMessage {
  tag: string;
  simple_value?: number;
  image?: ImageMessage;
}

/** An Event as plain data (snake_case, as in the .proto). */
export interface EventMessage {
  wall_time: number;
  step: number;
  file_version?: string;
  summary?: { value: ValueMessage[] };
}

let eventType: protobuf.Type | undefined;

function type(): protobuf.Type {
  eventType ??= protobuf.parse(EVENT_PROTO, { keepCase: true }).root.lookupType('tensorboard.Event');
  return eventType;
}

/**
 * Serializes an Event.
 *
 * @example
 * const bytes = encodeEvent({ wall_time: Date.now() / 1000, step: 0, file_version: 'brain.Event:2' });
 */
export function encodeEvent(event: EventMessage): Uint8Array {
  const t = type();
  return t.encode(t.fromObject(event)).finish();
}

/**
 * Parses a serialized Event; int64 steps come back as numbers.
 *
 * @example
 * decodeEvent(bytes).step; // 0
 */
export function decodeEvent(bytes: Uint8Array): EventMessage {
  const t = type();
  const obj = t.toObject(t.decode(bytes), { longs: Number, defaults: true, oneofs: false }) as EventMessage;
  if (obj.summary) obj.summary.value ??= [];
  return obj;
}
