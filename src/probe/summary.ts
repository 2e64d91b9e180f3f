// Whole-split summaries of an attribution method: the mean |attribution| map of the images of each
// class, and of each cell of the confusion matrix (true label x prediction), with the mean image
// beside each. explain() runs on blocks of the split and only the running sums are kept, so memory
// is that of a block whatever the split's size. Where a class's images look (the diagonal) and
// where the mistakes look (an off-diagonal cell) is what one image's map cannot show. On a colour
// model the maps summed are the per-pixel ones (explanationPixelMaps: the sum over the map's
// channels), and the mean images are in colour.
import * as fs from 'fs';
import * as path from 'path';
import { encodeNpy } from '../formats/npy';
import type { CnnModel } from '../nn/model';
import { writeFileAtomic } from '../util/fs-atomic';
import { checkInteger, checkString, expected } from '../util/validate';
import { explain, explanationPixelMaps } from './explain';
import { checkProbeImages, imageGeometry } from './images';
import type { ExplainOptions, MethodName, MethodSettings } from './options';
import { resolveExplainOptions } from './options';
import { imageMosaic, writePicture } from './probe-folders';
import { renderFilterMosaic } from '../viz/mosaic';

/** Options of {@link attributionSummary}: explain()'s (target 'label' uses the labels given), and the block size. */
export type SummaryOptions = Omit<ExplainOptions, 'labels'> & {
  /** Images explained per block (default 256): memory holds one block's maps. */
  blockSize?: number;
};

/** What {@link attributionSummary} returns. Maps are [.., H, W] (per pixel), row-major; a cell without images is all 0. */
export interface AttributionSummary {
  method: MethodName;
  settings: MethodSettings;
  classes: number;
  shape: [number, number];
  /** The images' channels (meanImage has this many planes per class). */
  channels: number;
  /** classes * H * W: per true class, the mean |per-pixel map| of its images. */
  perClass: Float32Array;
  /** classes * C * H * W: per true class, the mean image (pixels in [0, 1]). */
  meanImage: Float32Array;
  /** Images per class. */
  classCounts: Int32Array;
  /** classes * classes * H * W: per (label, prediction), the mean |map|. */
  perCell: Float32Array;
  /** classes * classes: the confusion matrix (rows: label, columns: prediction). */
  cellCounts: Int32Array;
  /** Per class, the mean over its images of sum |map| (a scale to compare classes by). */
  classTotals: Float64Array;
}

const DEFAULT_BLOCK = 256;
const MAX_BLOCK = 1 << 16;

/**
 * Mean |attribution| per true class and per confusion-matrix cell over a whole split, by any of
 * explain()'s methods, in blocks (see the file's header and docs/probing.md).
 * @example
 * const s = await attributionSummary(model, test.images, test.labels, { method: 'saliency' });
 * s.perClass; // 10 * 28 * 28 mean |saliency| per class
 */
export async function attributionSummary(model: CnnModel, images: Uint8Array | Float32Array, labels: ArrayLike<number>,
  options: SummaryOptions = {}): Promise<AttributionSummary> {
  model.check('attributionSummary');
  const count = checkProbeImages(images, model);
  if (typeof labels !== 'object' || labels === null || labels.length !== count) {
    throw new RangeError(expected(`${count} labels (one per image)`, 'labels', labels));
  }
  const { blockSize: blockInput, ...rest } = (options ?? {}) as SummaryOptions;
  const blockSize = blockInput === undefined ? DEFAULT_BLOCK : checkInteger(blockInput, 'blockSize', 1, MAX_BLOCK);
  // Every explain() option (and the labels) checked once, on the whole split, before any native work.
  const resolved = resolveExplainOptions({ ...rest, labels }, model, count);
  const classes = model.classes;
  const { channels, height: h, width: w, plane: pixels, values } = imageGeometry(model);
  const perClass = new Float64Array(classes * pixels);
  const meanImage = new Float64Array(classes * values);
  const perCell = new Float64Array(classes * classes * pixels);
  const classCounts = new Int32Array(classes);
  const cellCounts = new Int32Array(classes * classes);
  const classTotals = new Float64Array(classes);
  const scale = images instanceof Uint8Array ? 1 / 255 : 1;
  const target = rest.target;
  for (let first = 0; first < count; first += blockSize) {
    const end = Math.min(count, first + blockSize);
    const blockLabels = Int32Array.from({ length: end - first }, (_, i) => labels[first + i]);
    const blockTarget = typeof target === 'object' && target !== null ? Array.from(target as ArrayLike<number>).slice(first, end) : target;
    const e = await explain(model, images.subarray(first * values, end * values), { ...rest, target: blockTarget, labels: blockLabels } as ExplainOptions);
    const maps = explanationPixelMaps(e);
    for (let i = 0; i < end - first; ++i) {
      const label = blockLabels[i];
      const cell = label * classes + e.predictions[i];
      classCounts[label] += 1;
      cellCounts[cell] += 1;
      let total = 0;
      for (let p = 0; p < pixels; ++p) {
        const a = Math.abs(maps[i * pixels + p]);
        total += a;
        perClass[label * pixels + p] += a;
        perCell[cell * pixels + p] += a;
      }
      for (let v = 0; v < values; ++v) meanImage[label * values + v] += images[(first + i) * values + v] * scale;
      classTotals[label] += total;
    }
  }
  const mean = (sums: Float64Array, counts: Int32Array, size = pixels) => Float32Array.from(sums, (v, k) => {
    const n = counts[Math.floor(k / size)];
    return n > 0 ? v / n : 0;
  });
  return {
    method: resolved.method, settings: resolved.settings, classes, shape: [h, w], channels,
    perClass: mean(perClass, classCounts), meanImage: mean(meanImage, classCounts, values), classCounts,
    perCell: mean(perCell, cellCounts), cellCounts,
    classTotals: Float64Array.from(classTotals, (v, c) => (classCounts[c] > 0 ? v / classCounts[c] : 0)),
  };
}

/** What writeSummary wrote. */
export interface SummaryFiles { perClass: string; perCell: string; classes: string | null; confusion: string | null; json: string }

/** A magma mosaic of maps [n, h, w] on one scale (global), or null without node-canvas. */
function mapMosaic(maps: Float32Array, n: number, [h, w]: [number, number], options: { cols?: number; title: string; labels?: boolean }): Buffer | null {
  try {
    return renderFilterMosaic({ data: maps, shape: [n, 1, h, w] }, { colormap: 'magma', normalize: 'global', colorbar: true, ...options });
  } catch (err) {
    if (!/needs node-canvas/.test((err as Error).message)) throw err;
    return null;
  }
}

/**
 * Writes a summary folder: per-class.npy (float32 [classes, H, W]), per-cell.npy (float32
 * [classes, classes, H, W]; per pixel for a colour model too), classes.png (the mean image of each class above its mean |map|),
 * confusion.png (a grid of the cells' mean |map|: rows the true label, columns the prediction, one
 * colour scale) and summary.json (the counts, the confusion matrix, per-class totals, the settings).
 * @example writeSummary('summary-saliency', await attributionSummary(model, test.images, test.labels), { classNames })
 */
export function writeSummary(dir: string, s: AttributionSummary, about: Record<string, unknown> = {}, classNames?: readonly string[]): SummaryFiles {
  checkString(dir, 'dir');
  fs.mkdirSync(dir, { recursive: true });
  const { classes, shape } = s;
  const [h, w] = shape;
  const files: SummaryFiles = {
    perClass: path.join(dir, 'per-class.npy'), perCell: path.join(dir, 'per-cell.npy'), classes: null, confusion: null, json: path.join(dir, 'summary.json'),
  };
  writeFileAtomic(files.perClass, encodeNpy({ data: s.perClass, shape: [classes, h, w] }));
  writeFileAtomic(files.perCell, encodeNpy({ data: s.perCell, shape: [classes, classes, h, w] }));
  const names = classNames ? ` (${classNames.map((n, c) => `${c} ${n}`).join(', ')})` : '';
  // Top row: the classes' mean images; bottom row: their mean |map|, on one scale.
  const images = imageMosaic(s.meanImage, s.channels ?? 1, [classes, h, w], { cols: classes, labels: true, title: `mean image per class` });
  const maps = mapMosaic(s.perClass, classes, shape, { cols: classes, labels: true, title: `${s.method}: mean |attribution| per class` });
  if (images && maps) {
    files.classes = writePicture(path.join(dir, 'classes.png'), stackPngs(images, maps));
  }
  files.confusion = writePicture(path.join(dir, 'confusion.png'),
    mapMosaic(s.perCell, classes * classes, shape, { cols: classes, title: `${s.method}: mean |attribution| per cell (rows: label, columns: prediction)` }));
  const json = {
    method: s.method,
    settings: s.settings,
    ...about,
    channels: s.channels ?? 1,
    classNames: classNames ?? null,
    classCounts: Array.from(s.classCounts),
    confusion: Array.from({ length: classes }, (_, r) => Array.from(s.cellCounts.subarray(r * classes, (r + 1) * classes))),
    meanTotalPerClass: Array.from(s.classTotals),
    files: { perClass: 'per-class.npy', perCell: 'per-cell.npy', classes: files.classes ? 'classes.png' : null, confusion: files.confusion ? 'confusion.png' : null },
    note: `tiles in class order${names}; a confusion cell without images is all 0`,
  };
  writeFileAtomic(files.json, JSON.stringify(json, null, 2) + '\n');
  return files;
}

/** Two PNGs one above the other (the wider sets the width), on white. */
function stackPngs(top: Buffer, bottom: Buffer): Buffer {
  const { loadCanvas } = require('../viz/canvas-loader') as typeof import('../viz/canvas-loader');
  const { createSurface, encodePng } = require('../viz/draw') as typeof import('../viz/draw');
  const { Image } = loadCanvas();
  const a = new Image();
  a.src = top;
  const b = new Image();
  b.src = bottom;
  const surface = createSurface(Math.max(a.width, b.width), a.height + b.height, '#ffffff');
  surface.ctx.drawImage(a, 0, 0);
  surface.ctx.drawImage(b, 0, a.height);
  return encodePng(surface);
}
