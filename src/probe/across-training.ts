// Maps across training: the same images explained by a run's model at each saved epoch
// (trainCnn's keepEpochCheckpoints writes epoch-<n>.pt), for the same targets, and Spearman's rank
// correlation of |map| between consecutive epochs (and with the last): where the explanation
// settles, and whether it settles before the accuracy does. On a colour model the maps are kept
// per channel and compared (and drawn) per pixel (explanationPixelMaps: the sum over the channels).
import * as fs from 'fs';
import * as path from 'path';
import { encodeNpy } from '../formats/npy';
import type { CnnModel } from '../nn/model';
import { writeFileAtomic } from '../util/fs-atomic';
import { checkString, expected } from '../util/validate';
import { renderFilterMosaic } from '../viz/mosaic';
import { explain, explanationPixelMaps, mapSize, type Explanation, type ExplanationShape } from './explain';
import type { ExplainOptions, MethodName, MethodSettings } from './options';
import { writePicture } from './probe-folders';
import { spearman } from './randomisation';
import { imageSizeText } from './images';

const EPOCH_FILE = /^epoch-(\d+)\.pt$/;

/**
 * A run folder's per-epoch checkpoints (epoch-<n>.pt), in epoch order.
 * @example epochCheckpoints('runs/2026-12-02T10-00-00-fashion-mnist-eager') // [{ epoch: 1, file }, ...]
 */
export function epochCheckpoints(runDir: string): { epoch: number; file: string }[] {
  checkString(runDir, 'runDir');
  const found = fs.readdirSync(runDir).map((name) => EPOCH_FILE.exec(name)).filter((m): m is RegExpExecArray => m !== null)
    .map((m) => ({ epoch: Number(m[1]), file: path.join(runDir, m[0]) })).sort((a, b) => a.epoch - b.epoch);
  if (found.length < 2) {
    throw new RangeError(`Expected at least 2 epoch checkpoints (epoch-<n>.pt) in ${runDir} but found ${found.length}; train with keepEpochCheckpoints: true (convscope train --keep-epoch-checkpoints)`);
  }
  return found;
}

/** What {@link mapsAcrossTraining} returns. */
export interface MapsAcrossTraining {
  method: MethodName;
  settings: MethodSettings;
  /** One entry per model: its maps (n * H * W, or n * C * H * W: see Explanation). */
  maps: Float32Array[];
  /** One model's maps: [n, H, W] or [n, C, H, W]. */
  shape: ExplanationShape;
  /** Values per pixel of a map (Explanation.mapChannels). */
  mapChannels: number;
  /** The class every model's maps explain, per image (the same for all models). */
  targets: Int32Array;
  /** Per model, its prediction per image. */
  predictions: Int32Array[];
  /** Per consecutive pair (k, k + 1): the mean over images of Spearman's correlation of |map|, and per image. */
  consecutive: { spearman: number; perImage: Float64Array }[];
  /** Per model: the mean correlation of its |map| with the last model's. */
  withLast: number[];
}

/**
 * Explains the same images with each model (a run's models in epoch order), for the same targets:
 * `target: 'predicted'` (default) means the last model's prediction, so that every epoch's map
 * explains the same class. Returns the maps and the rank correlations between consecutive models.
 * @example
 * const models = epochCheckpoints(runDir).map(({ file }) => loadModel(file));
 * const t = await mapsAcrossTraining(models, test.images.subarray(0, 16 * 784), { method: 'saliency' });
 * t.consecutive.map((c) => c.spearman); // rises towards 1 as the maps settle
 */
export async function mapsAcrossTraining(models: readonly CnnModel[], images: Uint8Array | Float32Array, options: ExplainOptions = {}): Promise<MapsAcrossTraining> {
  if (!Array.isArray(models) || models.length < 2) throw new RangeError(expected('at least 2 models (one per epoch)', 'models', models));
  models.forEach((m, i) => m.check(`models[${i}]`));
  const [h, w] = models[0].inputSize;
  const channels = models[0].inputChannels;
  const size = (m: CnnModel) => imageSizeText(m.inputChannels, m.inputSize[0], m.inputSize[1]);
  models.forEach((m, i) => {
    if (m.inputSize[0] !== h || m.inputSize[1] !== w || m.inputChannels !== channels || m.classes !== models[0].classes) {
      throw new RangeError(`Expected models of one run (input ${size(models[0])}, ${models[0].classes} classes) but models[${i}] takes ${size(m)} with ${m.classes} classes`);
    }
  });
  const last = await explain(models[models.length - 1], images, options);
  const target = options.target === undefined || options.target === 'predicted' ? last.targets : options.target;
  const results: Explanation[] = [];
  for (const model of models.slice(0, -1)) results.push(await explain(model, images, { ...options, target }));
  results.push(last);
  const { count: n } = mapSize(last);
  const pixels = h * w;
  const perPixel = results.map(explanationPixelMaps);
  const abs = (maps: Float32Array, i: number) => Float32Array.from(maps.subarray(i * pixels, (i + 1) * pixels), Math.abs);
  const correlation = (a: Float32Array, b: Float32Array) => {
    const perImage = Float64Array.from({ length: n }, (_, i) => spearman(abs(a, i), abs(b, i)));
    return { spearman: perImage.reduce((s, v) => s + v, 0) / n, perImage };
  };
  const consecutive = perPixel.slice(1).map((r, k) => correlation(perPixel[k], r));
  const withLast = perPixel.map((r) => correlation(r, perPixel[perPixel.length - 1]).spearman);
  return {
    method: last.method, settings: last.settings, maps: results.map((r) => r.maps), shape: last.shape, mapChannels: last.mapChannels, targets: last.targets,
    predictions: results.map((r) => r.predictions), consecutive, withLast,
  };
}

/** What writeAcrossTraining wrote. */
export interface AcrossTrainingFiles { maps: string; picture: string | null; json: string }

/**
 * Writes across-training.npy (float32 [epochs, n, H, W], or [epochs, n, C, H, W] for a colour
 * model's per-channel maps), across-training.png (one row per image, one column per epoch, each
 * |per-pixel map| on its own scale) and across-training.json (epochs, targets, predictions, the
 * correlations).
 */
export function writeAcrossTraining(dir: string, t: MapsAcrossTraining, epochs: number[], about: Record<string, unknown> = {}): AcrossTrainingFiles {
  checkString(dir, 'dir');
  if (epochs.length !== t.maps.length) throw new RangeError(expected(`${t.maps.length} epoch numbers (one per model)`, 'epochs', epochs));
  fs.mkdirSync(dir, { recursive: true });
  const { count: n, height: h, width: w } = mapSize(t);
  const e = t.maps.length;
  const perModel = t.maps[0].length;
  const all = new Float32Array(e * perModel);
  t.maps.forEach((m, k) => all.set(m, k * perModel));
  const files: AcrossTrainingFiles = { maps: path.join(dir, 'across-training.npy'), picture: null, json: path.join(dir, 'across-training.json') };
  writeFileAtomic(files.maps, encodeNpy({ data: all, shape: [e, ...t.shape] }));
  const pixelMapsOf = t.maps.map((maps) => explanationPixelMaps({ maps, shape: t.shape, mapChannels: t.mapChannels }));
  // Rows: images; columns: epochs.
  const shown = Math.min(n, 16);
  const tiles = new Float32Array(shown * e * h * w);
  for (let i = 0; i < shown; ++i) {
    for (let k = 0; k < e; ++k) tiles.set(Float32Array.from(pixelMapsOf[k].subarray(i * h * w, (i + 1) * h * w), Math.abs), (i * e + k) * h * w);
  }
  try {
    files.picture = writePicture(path.join(dir, 'across-training.png'), renderFilterMosaic({ data: tiles, shape: [shown * e, 1, h, w] }, {
      colormap: 'magma', normalize: 'filter', cols: e, title: `${t.method} |map|, columns: epochs ${epochs.join(', ')}`,
    }));
  } catch (err) {
    if (!/needs node-canvas/.test((err as Error).message)) throw err;
  }
  const json = {
    method: t.method, settings: t.settings, ...about, epochs, shape: t.shape, mapChannels: t.mapChannels,
    targets: Array.from(t.targets), predictions: t.predictions.map((p) => Array.from(p)),
    consecutive: t.consecutive.map((c, k) => ({ from: epochs[k], to: epochs[k + 1], spearman: c.spearman, perImage: Array.from(c.perImage) })),
    withLast: t.withLast.map((v, k) => ({ epoch: epochs[k], spearman: v })),
    files: { maps: 'across-training.npy', picture: files.picture ? 'across-training.png' : null, pictureImages: files.picture ? shown : 0 },
  };
  writeFileAtomic(files.json, JSON.stringify(json, null, 2) + '\n');
  return files;
}
