// Embeddings: a layer's activations of a split (default the penultimate layer: what the last dense
// layer classifies) with each image's prediction, and a folder TensorBoard's projector reads
// (`tensorboard --logdir <folder>`): tensors.tsv (one row of values per image), metadata.tsv (a
// header, then label, prediction and whether it is right, by class name, and the image's index), a
// sprite (the images' thumbnails in a grid, row-major from the top left, as the projector expects)
// and projector_config.pbtxt naming them with paths relative to the folder (the projector refuses
// paths that resolve outside it).
import * as fs from 'fs';
import * as path from 'path';
import type { CnnModel } from '../nn/model';
import { writeFileAtomic } from '../util/fs-atomic';
import { checkInteger, checkKnownKeys, checkObject, checkString, expected } from '../util/validate';
import { createSurface, encodePng } from '../viz/draw';
import { checkProbeImages, displayImages, imageGeometry, imageSizeText } from './images';
import { layerShapes } from './layer-geometry';
import { ProbeRunner } from './runner';

/**
 * Options of {@link embeddings}.
 * @example await embeddings(model, test.images, { layer: 'fc1.act' })
 */
export interface EmbeddingOptions {
  /** The layer (default: the penultimate: the last layer before the last dense layer, dropout skipped). */
  layer?: string;
  /** Images per forward pass (default 256). */
  chunkSize?: number;
}

/** What {@link embeddings} returns. */
export interface Embeddings {
  layer: string;
  /** count * dims values, image after image (a layer with positions is flattened channel-major, as torch.flatten). */
  vectors: Float32Array;
  count: number;
  dims: number;
  /** The model's predicted class per image. */
  predictions: Int32Array;
}

const DEFAULT_CHUNK = 256;
const MAX_CHUNK = 1 << 16;
/** The projector's limit on a sprite's side, in pixels. */
export const MAX_SPRITE_SIDE = 8192;

/** The layer whose output the last dense layer takes (dropout skipped): what the network's last step classifies. */
export function penultimateLayer(model: CnnModel): string {
  const names = layerShapes(model.plan).map((s) => s.name);
  const last = model.plan.dense[model.plan.dense.length - 1].name;
  let at = names.indexOf(last) - 1;
  while (at > 0 && names[at].endsWith('.dropout')) --at;
  return names[at];
}

/**
 * A layer's activations (default the penultimate layer's) for each image, and the model's
 * predictions, in chunks over the images. Eager and scripted models give the same vectors.
 * @example
 * const e = await embeddings(model, test.images);
 * e.vectors; // 10000 * 1024 values of fc1.act on the tutorial network
 */
export async function embeddings(model: CnnModel, images: Uint8Array | Float32Array, options: EmbeddingOptions = {}): Promise<Embeddings> {
  model.check('embeddings');
  const count = checkProbeImages(images, model);
  const o = checkObject(options ?? {}, 'options');
  checkKnownKeys(o, 'embedding options', ['layer', 'chunkSize']);
  const shapes = layerShapes(model.plan);
  const layer = o.layer === undefined ? penultimateLayer(model) : checkString(o.layer, 'layer');
  const shape = shapes.find((s) => s.name === layer);
  if (!shape) throw new RangeError(expected(`one of ${shapes.map((s) => s.name).join(', ')}`, 'layer', layer));
  const chunkSize = o.chunkSize === undefined ? DEFAULT_CHUNK : checkInteger(o.chunkSize, 'chunkSize', 1, MAX_CHUNK);
  const { values: pixels } = imageGeometry(model);
  const scale = images instanceof Uint8Array ? 1 / 255 : 1;
  const dims = shape.channels * shape.height * shape.width;
  const vectors = new Float32Array(count * dims);
  const predictions = new Int32Array(count);
  const fill = (row: number, into: Float32Array) => { for (let p = 0; p < pixels; ++p) into[p] = images[row * pixels + p] * scale; };
  const runner = new ProbeRunner(model, chunkSize);
  try {
    await runner.featureMaps(layer, count, fill, (start, maps) => vectors.set(maps.values, start * dims));
    const classes = model.classes;
    // Chunk by chunk so the logits of a whole split are never held at once.
    for (let first = 0; first < count; first += chunkSize) {
      const rows = Math.min(count, first + chunkSize) - first;
      const logits = await runner.logits(rows, (row, into) => fill(first + row, into));
      for (let r = 0; r < rows; ++r) {
        let best = 0;
        for (let c = 1; c < classes; ++c) if (logits[r * classes + c] > logits[r * classes + best]) best = c;
        predictions[first + r] = best;
      }
    }
  } finally {
    runner.dispose();
  }
  return { layer, vectors, count, dims, predictions };
}

/** The projector's folder: what writeProjector wrote. */
export interface ProjectorFiles { tensors: string; metadata: string; sprite: string | null; config: string }

/** What the metadata and the sprite are made of. */
export interface ProjectorSource {
  /** The images embedded (uint8 or [0, 1] floats), for the sprite. */
  images: Uint8Array | Float32Array;
  imageSize: [number, number];
  /** The images' channels (default 1): N x C x H x W, channel-planar; the sprite is in colour for 3. */
  channels?: number;
  /** The images' true classes. */
  labels: ArrayLike<number>;
  classNames?: readonly string[];
  /** Each image's index in its split (default 0, 1, ...). */
  indices?: ArrayLike<number>;
}

/** Class c by name where there is one ("Trouser"), else its index; tabs and newlines would break the TSV. */
function className(c: number, names?: readonly string[]): string {
  return (names?.[c] ?? String(c)).replace(/[\t\r\n]/g, ' ');
}

/** The sprite's grid: the projector wants a square grid, side ceil(sqrt(n)), row-major from the top left. */
export function spriteGrid(count: number, imageSize: [number, number]): { side: number; width: number; height: number } {
  const side = Math.ceil(Math.sqrt(count));
  return { side, width: side * imageSize[1], height: side * imageSize[0] };
}

/** The sprite PNG (grey, or true colour for 3 channels; other counts: the channels' mean), or null without node-canvas. */
function renderSprite(images: Uint8Array | Float32Array, count: number, [h, w]: [number, number], channels: number): Buffer | null {
  const grid = spriteGrid(count, [h, w]);
  const plane = h * w;
  // Grey and colour are drawn from the images as they are (no copy of a whole split); other counts as their channels' mean.
  const shown = channels === 1 || channels === 3 ? { data: images, channels } : displayImages(images, count, channels, plane);
  const unit = images instanceof Uint8Array ? 1 : 255;
  // Grey repeats its one plane in red, green and blue.
  const planeOf = (k: number) => (shown.channels === 3 ? k * plane : 0);
  try {
    const surface = createSurface(grid.width, grid.height, '#000000');
    const tile = surface.ctx.createImageData(w, h);
    for (let i = 0; i < count; ++i) {
      const at = i * shown.channels * plane;
      for (let p = 0; p < plane; ++p) {
        for (let k = 0; k < 3; ++k) tile.data[4 * p + k] = Math.round(Math.min(255, Math.max(0, shown.data[at + planeOf(k) + p] * unit)));
        tile.data[4 * p + 3] = 255;
      }
      surface.ctx.putImageData(tile, (i % grid.side) * w, Math.floor(i / grid.side) * h);
    }
    return encodePng(surface);
  } catch (err) {
    if (!/needs node-canvas/.test((err as Error).message)) throw err;
    return null;
  }
}

/** A pbtxt string literal. */
const quoted = (s: string) => `"${s.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;

/**
 * Writes a folder for TensorBoard's projector (`tensorboard --logdir <dir>`, the Projector tab):
 * tensors.tsv, metadata.tsv, sprite.png (when node-canvas is there and the grid fits the
 * projector's 8192-pixel limit) and projector_config.pbtxt.
 * @example writeProjector('embeddings', await embeddings(model, test.images), { images: test.images, imageSize: [28, 28], labels: test.labels, classNames })
 */
export function writeProjector(dir: string, e: Embeddings, source: ProjectorSource): ProjectorFiles {
  checkString(dir, 'dir');
  const [h, w] = source.imageSize;
  const channels = source.channels ?? 1;
  if (!(source.images instanceof Uint8Array || source.images instanceof Float32Array) || source.images.length !== e.count * channels * h * w) {
    throw new RangeError(expected(`${e.count} images of ${imageSizeText(channels, h, w)} (one per vector)`, 'source.images', source.images));
  }
  if (!source.labels || source.labels.length !== e.count) throw new RangeError(expected(`${e.count} labels (one per vector)`, 'source.labels', source.labels));
  if (source.indices !== undefined && source.indices.length !== e.count) throw new RangeError(expected(`${e.count} indices (one per vector)`, 'source.indices', source.indices));
  fs.mkdirSync(dir, { recursive: true });
  const files: ProjectorFiles = {
    tensors: path.join(dir, 'tensors.tsv'), metadata: path.join(dir, 'metadata.tsv'), sprite: null, config: path.join(dir, 'projector_config.pbtxt'),
  };
  const rows: string[] = [];
  for (let i = 0; i < e.count; ++i) rows.push(Array.from(e.vectors.subarray(i * e.dims, (i + 1) * e.dims), (v) => String(Number(v.toPrecision(6)))).join('\t'));
  writeFileAtomic(files.tensors, rows.join('\n') + '\n');
  // With more than one column the projector wants a header row.
  const meta = ['label\tprediction\tcorrect\tindex'];
  for (let i = 0; i < e.count; ++i) {
    const label = source.labels[i];
    const predicted = e.predictions[i];
    meta.push(`${className(label, source.classNames)}\t${className(predicted, source.classNames)}\t${label === predicted ? 'yes' : 'no'}\t${source.indices?.[i] ?? i}`);
  }
  writeFileAtomic(files.metadata, meta.join('\n') + '\n');
  const grid = spriteGrid(e.count, [h, w]);
  if (grid.width <= MAX_SPRITE_SIDE && grid.height <= MAX_SPRITE_SIDE) {
    const png = renderSprite(source.images, e.count, [h, w], channels);
    if (png) {
      files.sprite = path.join(dir, 'sprite.png');
      writeFileAtomic(files.sprite, png);
    }
  }
  const config = [
    'embeddings {',
    `  tensor_name: ${quoted(e.layer)}`,
    '  tensor_path: "tensors.tsv"',
    `  tensor_shape: ${e.count}`,
    `  tensor_shape: ${e.dims}`,
    '  metadata_path: "metadata.tsv"',
    ...(files.sprite ? ['  sprite {', '    image_path: "sprite.png"', `    single_image_dim: ${w}`, `    single_image_dim: ${h}`, '  }'] : []),
    '}',
    '',
  ].join('\n');
  writeFileAtomic(files.config, config);
  return files;
}
