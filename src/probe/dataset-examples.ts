// Dataset examples (Zeiler & Fergus 2014; Olah et al. 2017): for each channel of a layer, the k
// images of a split that activate it most (the channel's maximum over positions), where in the
// image that maximum is, and the receptive field around it (layer-geometry.ts), found in one
// forward pass over the split in chunks (memory bounded by the chunk, whatever the split's size).
// Ties keep the earlier image, so the result does not depend on the chunking.
import type { CnnModel } from '../nn/model';
import { checkInteger, checkKnownKeys, checkObject, checkString, expected } from '../util/validate';
import { checkProbeImages, imageGeometry } from './images';
import { fieldCrop, layerShapes, type LayerShape, type ReceptiveField } from './layer-geometry';
import { ProbeRunner } from './runner';

/**
 * Options of {@link datasetExamples}.
 * @example await datasetExamples(model, test.images, { layer: 'conv2.act', channels: [0, 1, 2], top: 9 })
 */
export interface DatasetExamplesOptions {
  /** The layer (any of `model.layerNames()`; after the flatten, a unit has no position and the crop is the whole image). */
  layer: string;
  /** The channels (default: all of the layer's). */
  channels?: readonly number[];
  /** Images per channel (default 9). */
  top?: number;
  /** Images per forward pass (default 256). */
  chunkSize?: number;
}

/** A crop of the input, [y0, y1) x [x0, x1), clipped to the image. */
export interface Crop { y0: number; y1: number; x0: number; x1: number }

/** One of a channel's top images. */
export interface DatasetExample {
  /** The image's index among the images given. */
  index: number;
  /** The channel's maximum over positions on this image. */
  value: number;
  /** Where that maximum is, in the layer's positions (0, 0 for a vector layer). */
  y: number;
  x: number;
  /** The receptive field of that position in the image (the whole image for a vector layer). */
  crop: Crop;
}

/** What {@link datasetExamples} returns. */
export interface DatasetExamples {
  layer: string;
  channels: number[];
  /** Per channel, its top images, largest value first. */
  examples: DatasetExample[][];
  /** The layer's receptive field (null after the flatten). */
  field: ReceptiveField | null;
  /** How many images were searched. */
  searched: number;
  /** The images' channels (the model's inputChannels): the crops are in colour for 3. */
  imageChannels: number;
}

const DEFAULT_TOP = 9;
const DEFAULT_CHUNK = 256;
const MAX_CHUNK = 1 << 16;

function resolve(model: CnnModel, input: unknown, count: number): { shape: LayerShape; channels: number[]; top: number; chunkSize: number } {
  const o = checkObject(input, 'options');
  checkKnownKeys(o, 'dataset examples options', ['layer', 'channels', 'top', 'chunkSize']);
  const shapes = layerShapes(model.plan);
  const layer = checkString(o.layer, 'layer');
  const shape = shapes.find((s) => s.name === layer);
  if (!shape) throw new RangeError(expected(`one of ${shapes.map((s) => s.name).join(', ')}`, 'layer', layer));
  let channels: number[];
  if (o.channels === undefined) channels = Array.from({ length: shape.channels }, (_, i) => i);
  else {
    if (!Array.isArray(o.channels) || o.channels.length === 0) throw new TypeError(expected(`a non-empty array of channel indices of ${layer}`, 'channels', o.channels));
    channels = o.channels.map((c, i) => checkInteger(c, `channels[${i}]`, 0, shape.channels - 1));
  }
  const top = o.top === undefined ? Math.min(DEFAULT_TOP, count) : checkInteger(o.top, 'top', 1, count);
  const chunkSize = o.chunkSize === undefined ? DEFAULT_CHUNK : checkInteger(o.chunkSize, 'chunkSize', 1, MAX_CHUNK);
  return { shape, channels, top, chunkSize };
}

/** Inserts (value, index, position) into a list kept sorted by value, largest first, at most `top` long; ties keep the earlier entry first. */
function offer(list: DatasetExample[], top: number, entry: Omit<DatasetExample, 'crop'>): void {
  if (list.length === top && !(entry.value > list[top - 1].value)) return;
  let at = list.length;
  while (at > 0 && entry.value > list[at - 1].value) --at;
  list.splice(at, 0, { ...entry, crop: { y0: 0, y1: 0, x0: 0, x1: 0 } });
  if (list.length > top) list.pop();
}

/**
 * For each channel of a layer, the `top` images (of `images`, uint8 or [0, 1] floats as predict()
 * takes them) whose maximum of that channel over positions is largest, with the position of the
 * maximum and the receptive field around it. One forward pass over the images, in chunks.
 * @example
 * const ex = await datasetExamples(model, test.images, { layer: 'conv2.act', channels: [0, 1], top: 9 });
 * ex.examples[0][0]; // { index, value, y, x, crop: { y0, y1, x0, x1 } }
 */
export async function datasetExamples(model: CnnModel, images: Uint8Array | Float32Array, options: DatasetExamplesOptions): Promise<DatasetExamples> {
  model.check('datasetExamples');
  const count = checkProbeImages(images, model);
  const { shape, channels, top, chunkSize } = resolve(model, options, count);
  const { channels: imageChannels, height: h, width: w, values } = imageGeometry(model);
  const scale = images instanceof Uint8Array ? 1 / 255 : 1;
  const lists: DatasetExample[][] = channels.map(() => []);
  const runner = new ProbeRunner(model, chunkSize);
  try {
    await runner.featureMaps(shape.name, count, (row, into) => {
      for (let v = 0; v < values; ++v) into[v] = images[row * values + v] * scale;
    }, (start, maps) => {
      const area = maps.height * maps.width;
      const rows = maps.values.length / (maps.channels * area);
      for (let r = 0; r < rows; ++r) {
        channels.forEach((c, ci) => {
          const at = (r * maps.channels + c) * area;
          let best = 0;
          for (let p = 1; p < area; ++p) if (maps.values[at + p] > maps.values[at + best]) best = p;
          offer(lists[ci], top, { index: start + r, value: maps.values[at + best], y: Math.floor(best / maps.width), x: best % maps.width });
        });
      }
    });
  } finally {
    runner.dispose();
  }
  const field = shape.spatial ? shape.field! : null;
  for (const list of lists) {
    for (const e of list) e.crop = field ? fieldCrop(field, e.y, e.x, [h, w]) : { y0: 0, y1: h, x0: 0, x1: w };
  }
  return { layer: shape.name, channels, examples: lists, field, searched: count, imageChannels };
}
