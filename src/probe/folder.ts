// An explanation as a folder: attributions.npy (float32 [n, H, W], the raw maps; [n, C, H, W] for a
// colour model's per-channel maps), overlay.png (image, per-pixel map and blend for the first
// images) and explain.json (which images, targets, predictions, deltas where the method has them,
// the channels and the settings), each written atomically.
import * as fs from 'fs';
import * as path from 'path';
import { encodeNpy } from '../formats/npy';
import { writeFileAtomic } from '../util/fs-atomic';
import { checkString, expected } from '../util/validate';
import { explanationPixelMaps, mapSize, type Explanation } from './explain';
import { imageSizeText, PIXEL_REDUCTION } from './images';
import { renderOverlay, SIGNED_METHODS } from './render';

/** The most images the overlay picture shows (a taller PNG would pass cairo's size limit); the .npy has them all. */
export const MAX_OVERLAY_IMAGES = 64;

export interface ExplanationSource {
  /** The images' indices in their split. */
  indices: number[];
  /** The images explained, n * C * H * W pixels in [0, 1] (channel-planar). */
  pixels: Float32Array;
  /** The images' true classes, when known. */
  labels?: ArrayLike<number>;
  /** Class names for the captions. */
  classNames?: readonly string[];
  /** Recorded in explain.json as given (checkpoint, dataset, split, ...). */
  about?: Record<string, unknown>;
}

/** What writeExplanation wrote, by role. */
export interface ExplanationFiles { attributions: string; overlay: string | null; json: string }

/**
 * Writes an explanation folder (created if missing).
 * @example writeExplanation('explain-ig', await explain(model, pixels, { method: 'integrated-gradients' }), { indices, pixels })
 */
export function writeExplanation(dir: string, explanation: Explanation, source: ExplanationSource): ExplanationFiles {
  checkString(dir, 'dir');
  const { count, height: h, width: w } = mapSize(explanation);
  const channels = explanation.inputChannels ?? 1;
  if (!Array.isArray(source.indices) || source.indices.length !== count) {
    throw new RangeError(expected(`${count} image indices (one per map)`, 'source.indices', source.indices));
  }
  if (!(source.pixels instanceof Float32Array) || source.pixels.length !== count * channels * h * w) {
    throw new RangeError(expected(`a Float32Array of ${count} images of ${imageSizeText(channels, h, w)} in [0, 1]`, 'source.pixels', source.pixels));
  }
  if (source.labels !== undefined && source.labels.length !== count) throw new RangeError(expected(`${count} labels`, 'source.labels', source.labels));
  fs.mkdirSync(dir, { recursive: true });
  const files: ExplanationFiles = { attributions: path.join(dir, 'attributions.npy'), overlay: path.join(dir, 'overlay.png'), json: path.join(dir, 'explain.json') };
  writeFileAtomic(files.attributions, encodeNpy({ data: explanation.maps, shape: explanation.shape }));
  const shown = Math.min(count, MAX_OVERLAY_IMAGES);
  const name = (c: number) => (source.classNames?.[c] !== undefined ? `${c} ${source.classNames[c]}` : String(c));
  // Short enough to fit above three 112-pixel tiles: the target's name, the other classes by index.
  const captions = Array.from({ length: shown }, (_, i) => {
    const label = source.labels ? `, label ${source.labels[i]}` : '';
    const delta = explanation.deltas ? `, delta ${explanation.deltas[i].toPrecision(2)}` : '';
    return `#${source.indices[i]} target ${name(explanation.targets[i])}, pred ${explanation.predictions[i]}${label}${delta}`;
  });
  try {
    const png = renderOverlay(source.pixels.subarray(0, shown * channels * h * w), explanationPixelMaps(explanation).subarray(0, shown * h * w), h, w, {
      captions, signed: SIGNED_METHODS.includes(explanation.method), title: explanation.method, channels,
    });
    writeFileAtomic(path.join(dir, 'overlay.png'), png);
  } catch (err) {
    // Pictures need node-canvas (an optional dependency): without it the numbers are still written.
    if (!/needs node-canvas/.test((err as Error).message)) throw err;
    files.overlay = null;
  }
  const json = {
    method: explanation.method,
    settings: explanation.settings,
    ...source.about,
    shape: explanation.shape,
    inputChannels: channels,
    mapChannels: explanation.mapChannels ?? 1,
    ...(channels === 1 ? {} : { pixelMaps: PIXEL_REDUCTION }),
    indices: source.indices,
    targets: Array.from(explanation.targets),
    predictions: Array.from(explanation.predictions),
    ...(source.labels ? { labels: Array.from(source.labels) } : {}),
    ...(explanation.deltas ? { deltas: Array.from(explanation.deltas) } : {}),
    files: { attributions: 'attributions.npy', overlay: files.overlay ? 'overlay.png' : null, overlayImages: files.overlay ? shown : 0 },
  };
  writeFileAtomic(files.json, JSON.stringify(json, null, 2) + '\n');
  return files;
}
