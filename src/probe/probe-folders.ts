// The folders the probing functions beyond explain() write: pictures made with the mosaic code
// (src/viz), the raw numbers as float32 .npy files that np.load reads, and a JSON that says what
// they are. Each file is written atomically; without node-canvas (an optional dependency) the
// numbers are still written and the picture is reported as null.
import * as fs from 'fs';
import * as path from 'path';
import { encodeNpy } from '../formats/npy';
import { writeFileAtomic } from '../util/fs-atomic';
import { checkString } from '../util/validate';
import { renderFilterMosaic } from '../viz/mosaic';
import type { MosaicOptions } from '../viz/mosaic-options';
import type { DatasetExamples } from './dataset-examples';
import type { Visualisation } from './maximize';
import { displayImages } from './images';

/**
 * A PNG mosaic of n images of `channels` planes [n, channels, h, w] (grey for one channel, true
 * colour for three, any other count as the mean of its channels), or null without node-canvas.
 */
export function imageMosaic(images: Float32Array, channels: number, shape: [number, number, number], options: MosaicOptions): Buffer | null {
  const [n, h, w] = shape;
  const shown = displayImages(images, n, channels, h * w);
  try {
    return renderFilterMosaic({ data: shown.data, shape: [n, shown.channels, h, w] },
      shown.channels === 1 ? { colormap: 'gray', ...options } : options);
  } catch (err) {
    if (!/needs node-canvas/.test((err as Error).message)) throw err;
    return null;
  }
}

/** Writes a PNG if there is one; returns its path or null. */
export function writePicture(file: string, png: Buffer | null): string | null {
  if (!png) return null;
  writeFileAtomic(file, png);
  return file;
}

/** What writeVisualisation wrote. */
export interface VisualisationFiles { images: string; mosaic: string | null; json: string }

/**
 * Writes a feature-visualisation folder: visualisations.npy (float32 [n, H, W], or [n, C, H, W] for
 * a colour model, pixels in [0, 1]), mosaic.png (one tile per unit, each stretched to its own range, in colour for 3 channels) and visualize.json (the layer,
 * the units, the objective at the start, per step and at the end, the settings).
 * @example writeVisualisation('viz-conv2', await maximize(model, { layer: 'conv2.act', channel: [0, 1] }), { checkpoint })
 */
export function writeVisualisation(dir: string, v: Visualisation, about: Record<string, unknown> = {}): VisualisationFiles {
  checkString(dir, 'dir');
  fs.mkdirSync(dir, { recursive: true });
  const [count] = v.shape;
  const channels = v.channels ?? 1;
  const [h, w] = v.shape.slice(-2);
  const files: VisualisationFiles = { images: path.join(dir, 'visualisations.npy'), mosaic: null, json: path.join(dir, 'visualize.json') };
  writeFileAtomic(files.images, encodeNpy({ data: v.images, shape: v.shape }));
  const what = v.layer === null ? 'class' : `${v.layer} channel`;
  const consecutive = v.units.every((u, i) => u === v.units[0] + i);
  const title = consecutive ? `${what} ${v.units[0]}${count > 1 ? `-${v.units[count - 1]}` : ''} (row-major)` : `${what}s: see visualize.json`;
  files.mosaic = writePicture(path.join(dir, 'mosaic.png'), imageMosaic(v.images, channels, [count, h, w], { normalize: 'filter', title, gutter: 2 }));
  const steps = v.settings.steps;
  const json = {
    objective: v.layer === null ? 'class logit (pre-softmax)' : 'channel mean over positions (a vector layer: the unit)',
    layer: v.layer,
    units: v.units,
    settings: v.settings,
    ...about,
    shape: v.shape,
    channels,
    initial: Array.from(v.initial),
    final: Array.from(v.final),
    totalVariation: Array.from(v.totalVariation),
    trace: v.units.map((_, i) => Array.from(v.trace.subarray(i * steps, (i + 1) * steps))),
    files: { images: 'visualisations.npy', mosaic: files.mosaic ? 'mosaic.png' : null },
  };
  writeFileAtomic(files.json, JSON.stringify(json, null, 2) + '\n');
  return files;
}

/** What writeDatasetExamples wrote. */
export interface DatasetExampleFiles { examples: string | null; crops: string | null; json: string }

/** A short description of the units for a picture's title: "channels 0-15" or "4 channels". */
function unitsText(units: readonly number[], what: string): string {
  const consecutive = units.every((u, i) => u === units[0] + i);
  return consecutive ? `${what} ${units[0]}${units.length > 1 ? `-${units[units.length - 1]}` : ''}` : `${units.length} ${what}s`;
}

/**
 * The receptive-field crops of dataset examples as tiles of the field's full size: each crop sits
 * where it falls in its field, and the part of the field outside the image (padding) stays 0.
 * `channels` planes per image (the data is [n, channels, fh, fw]; `shape` is [n, fh, fw]).
 */
export function cropTiles(ex: DatasetExamples, images: Uint8Array | Float32Array, imageSize: [number, number], channels = 1): { data: Float32Array; shape: [number, number, number] } {
  if (!ex.field) throw new RangeError(`Expected a layer with positions for receptive-field crops but ${ex.layer} comes after the flatten`);
  const [fh, fw] = ex.field.size;
  const [h, w] = imageSize;
  const scale = images instanceof Uint8Array ? 1 / 255 : 1;
  const all = ex.examples.flat();
  const data = new Float32Array(all.length * channels * fh * fw);
  all.forEach((e, t) => {
    const top = e.y * ex.field!.jump[0] + ex.field!.offset[0];
    const left = e.x * ex.field!.jump[1] + ex.field!.offset[1];
    for (let c = 0; c < channels; ++c) {
      const source = (e.index * channels + c) * h * w;
      const tile = (t * channels + c) * fh * fw;
      for (let y = e.crop.y0; y < e.crop.y1; ++y) {
        for (let x = e.crop.x0; x < e.crop.x1; ++x) data[tile + (y - top) * fw + (x - left)] = images[source + y * w + x] * scale;
      }
    }
  });
  return { data, shape: [all.length, fh, fw] };
}

/**
 * Writes a dataset-examples folder: examples.png (one row per channel, its top images, largest
 * first), crops.png (the same, each cropped to the receptive field of the position where the
 * channel peaks; layers before the flatten) and examples.json (per channel: the images' indices,
 * values, peak positions and crop boxes, and the receptive field). `images` are the ones searched;
 * `firstIndex` (the index of the first in its split) is added to the indices in the JSON.
 * @example writeDatasetExamples('examples-conv2', ex, test.images, { split: 'test' })
 */
export function writeDatasetExamples(dir: string, ex: DatasetExamples, images: Uint8Array | Float32Array, imageSize: [number, number],
  about: Record<string, unknown> = {}, firstIndex = 0): DatasetExampleFiles {
  checkString(dir, 'dir');
  fs.mkdirSync(dir, { recursive: true });
  const [h, w] = imageSize;
  const channels = ex.imageChannels ?? 1;
  const values = channels * h * w;
  const top = ex.examples[0].length;
  const scale = images instanceof Uint8Array ? 1 / 255 : 1;
  const all = ex.examples.flat();
  const whole = new Float32Array(all.length * values);
  all.forEach((e, t) => { for (let v = 0; v < values; ++v) whole[t * values + v] = images[e.index * values + v] * scale; });
  const title = `${ex.layer} ${unitsText(ex.channels, 'channel')}: top ${top} images per row`;
  const files: DatasetExampleFiles = { examples: null, crops: null, json: path.join(dir, 'examples.json') };
  files.examples = writePicture(path.join(dir, 'examples.png'), imageMosaic(whole, channels, [all.length, h, w], { normalize: 'global', cols: top, title }));
  if (ex.field) {
    const crops = cropTiles(ex, images, imageSize, channels);
    files.crops = writePicture(path.join(dir, 'crops.png'), imageMosaic(crops.data, channels, crops.shape, {
      normalize: 'global', cols: top, title: `${ex.layer}: receptive fields (${crops.shape[1]}x${crops.shape[2]})`,
    }));
  }
  const json = {
    layer: ex.layer,
    ...about,
    searched: ex.searched,
    field: ex.field,
    channels: ex.channels.map((c, i) => ({
      channel: c,
      indices: ex.examples[i].map((e) => firstIndex + e.index),
      values: ex.examples[i].map((e) => e.value),
      positions: ex.examples[i].map((e) => [e.y, e.x]),
      crops: ex.examples[i].map((e) => [e.crop.y0, e.crop.y1, e.crop.x0, e.crop.x1]),
    })),
    files: { examples: files.examples ? 'examples.png' : null, crops: files.crops ? 'crops.png' : null },
  };
  writeFileAtomic(files.json, JSON.stringify(json, null, 2) + '\n');
  return files;
}
