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
import type { Visualisation } from './maximize';

/** A PNG mosaic of n grey images [n, h, w], or null without node-canvas. */
export function greyMosaic(images: Float32Array, shape: [number, number, number], options: MosaicOptions): Buffer | null {
  try {
    return renderFilterMosaic({ data: images, shape: [shape[0], 1, shape[1], shape[2]] }, { colormap: 'gray', ...options });
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
 * Writes a feature-visualisation folder: visualisations.npy (float32 [n, H, W], pixels in [0, 1]),
 * mosaic.png (one tile per unit, each stretched to its own range) and visualize.json (the layer,
 * the units, the objective at the start, per step and at the end, the settings).
 * @example writeVisualisation('viz-conv2', await maximize(model, { layer: 'conv2.act', channel: [0, 1] }), { checkpoint })
 */
export function writeVisualisation(dir: string, v: Visualisation, about: Record<string, unknown> = {}): VisualisationFiles {
  checkString(dir, 'dir');
  fs.mkdirSync(dir, { recursive: true });
  const [count] = v.shape;
  const files: VisualisationFiles = { images: path.join(dir, 'visualisations.npy'), mosaic: null, json: path.join(dir, 'visualize.json') };
  writeFileAtomic(files.images, encodeNpy({ data: v.images, shape: v.shape }));
  const what = v.layer === null ? 'class' : `${v.layer} channel`;
  const consecutive = v.units.every((u, i) => u === v.units[0] + i);
  const title = consecutive ? `${what} ${v.units[0]}${count > 1 ? `-${v.units[count - 1]}` : ''} (row-major)` : `${what}s: see visualize.json`;
  files.mosaic = writePicture(path.join(dir, 'mosaic.png'), greyMosaic(v.images, v.shape, { normalize: 'filter', title, gutter: 2 }));
  const steps = v.settings.steps;
  const json = {
    objective: v.layer === null ? 'class logit (pre-softmax)' : 'channel mean over positions (a vector layer: the unit)',
    layer: v.layer,
    units: v.units,
    settings: v.settings,
    ...about,
    shape: v.shape,
    initial: Array.from(v.initial),
    final: Array.from(v.final),
    totalVariation: Array.from(v.totalVariation),
    trace: v.units.map((_, i) => Array.from(v.trace.subarray(i * steps, (i + 1) * steps))),
    files: { images: 'visualisations.npy', mosaic: files.mosaic ? 'mosaic.png' : null },
  };
  writeFileAtomic(files.json, JSON.stringify(json, null, 2) + '\n');
  return files;
}
