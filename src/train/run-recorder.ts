// Everything a run leaves in its folder: config.json, history.json, the checkpoint (model.pt), the
// first-layer filters as PNG frames and a GIF, the training curves, the confusion matrix and a
// TensorBoard event file. Every file is written atomically. Pictures need node-canvas; where it
// cannot load, the run still trains and says once that it skipped them.
import * as fs from 'fs';
import * as path from 'path';
import { realSubfolder, removeStaleTemporaries, temporarySiblingPath, writeFileAtomic } from '../util/fs-atomic';
import { lockFolder } from '../util/folder-lock';
import type { CnnModel } from '../nn/model';
import type { SaveOptions } from './checkpoint';
import { saveCheckpoint } from './checkpoint';
import type { EvaluationResult } from './evaluate';
import type { EpochRecord } from './options';
import type { SummaryWriter } from '../summary/writer';
import { expected } from '../util/validate';

export const RUN_FILES = {
  config: 'config.json',
  history: 'history.json',
  checkpoint: 'model.pt',
  filtersDir: 'filters',
  filtersGif: 'filters.gif',
  mosaic: 'conv1-filters.png',
  /** Colour runs: each input channel of each conv1 filter on its own (rows: filters, columns: R, G, B). */
  channelMosaic: 'conv1-channels.png',
  curves: 'curves.png',
  confusion: 'confusion.json',
  confusionPng: 'confusion.png',
  augmented: 'augmented.png',
} as const;

/** The file keepEpochCheckpoints writes for an epoch: epoch-1.pt, epoch-2.pt, ... */
export function epochCheckpointName(epoch: number): string {
  return `epoch-${epoch}.pt`;
}

/**
 * How conv1's mosaic is normalised: grey filters on one range over all of them (their sizes compare),
 * colour filters each on its own range over its three channels (AlexNet's figure: the hue shows).
 */
function filterNormalisation(shape: number[]): 'global' | 'filter' {
  return shape[1] === 3 ? 'filter' : 'global';
}

/** A folder name for a run: `2026-11-27T10-08-26-fashion-mnist-eager`. */
export function runFolderName(name: string, now = new Date()): string {
  const stamp = now.toISOString().replace(/\.\d+Z$/, '').replace(/:/g, '-');
  return `${stamp}-${name.replace(/[^A-Za-z0-9_.-]+/g, '-')}`;
}

/** Suffixes tried after a taken run folder name (`<name>-2` ... ) before giving up. */
const MAX_RUN_FOLDER_SUFFIX = 1000;

/**
 * Creates a new run folder `parent/name`, or `parent/name-2`, `-3`, ... when the name is taken (two
 * runs started in the same second with the same name): mkdir without `recursive` fails on an
 * existing folder, so no two processes get the same one. Returns the folder created.
 * @example const runDir = claimRunFolder('runs', runFolderName('fashion-mnist-eager'));
 */
export function claimRunFolder(parent: string, name: string): string {
  fs.mkdirSync(parent, { recursive: true });
  for (let n = 1; n <= MAX_RUN_FOLDER_SUFFIX; ++n) {
    const dir = path.join(parent, n === 1 ? name : `${name}-${n}`);
    try {
      fs.mkdirSync(dir);
      return dir;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
  }
  throw new Error(`cannot create a run folder for ${name} in ${parent}: ${name} to ${name}-${MAX_RUN_FOLDER_SUFFIX} are all taken`);
}

/** Removes `dir` if it is empty; a folder with anything in it is kept. */
export function removeIfEmpty(dir: string): void {
  try {
    fs.rmdirSync(dir);
  } catch {
    // Not empty (ENOTEMPTY), or already gone: kept as it is.
  }
}

interface Frame { step: number; png: Buffer }

/** Creates `dir` and its parents, with the real reason when it cannot. */
function makeFolder(dir: string): void {
  try {
    fs.mkdirSync(dir, { recursive: true });
  } catch (err) {
    // Node's recursive mkdir says ENOENT for a folder a read-only file system cannot take; where the
    // parent exists, a plain mkdir gives the real reason (EROFS, EACCES).
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT' || !fs.existsSync(path.dirname(path.resolve(dir)))) throw err;
    fs.mkdirSync(dir);
  }
}

/**
 * Creates `dir` and writes and removes a file in it, so that a run folder that is a file, lies under
 * a file or is read-only fails before the model and data are built rather than after an epoch.
 * (A write, not access(W_OK): root passes every permission check, and a read-only mount only shows
 * on a write.)
 */
export function checkWritableFolder(dir: string): void {
  const probe = temporarySiblingPath(path.join(dir, 'write-probe'));
  try {
    makeFolder(dir);
    fs.closeSync(fs.openSync(probe, 'wx'));
    fs.rmSync(probe);
  } catch (err) {
    throw new Error(`${expected('a folder that can be created and written', 'runDir', dir)} (${(err as Error).message})`);
  }
}

/** Whether `file` is a symbolic link (lstat: not followed). */
function isLink(file: string): boolean {
  try {
    return fs.lstatSync(file).isSymbolicLink();
  } catch {
    return false;
  }
}

export class RunRecorder {
  private frames: Frame[] = [];
  private writer: SummaryWriter | undefined;
  private picturesEnabled: boolean;
  private warned = false;

  /** Whether this recorder created the folder (and so removes it when a failed run leaves it empty). */
  private readonly created: boolean;
  private readonly unlock: () => void;

  /**
   * Makes sure the folder exists and takes files, and locks it: a folder in use by another training
   * (in this process or another) is refused. Removes what writes killed midway left behind.
   * trainCnn builds this before any native work.
   */
  constructor(readonly dir: string, options: { pictures: boolean }) {
    this.created = !fs.existsSync(dir);
    checkWritableFolder(dir);
    try {
      this.unlock = lockFolder(dir, 'training', 'run (runDir)');
    } catch (err) {
      if (this.created) removeIfEmpty(dir);
      throw err;
    }
    try {
      // Checked now: a filters/ that is a symbolic link would take the frames out of the run folder.
      const filters = path.join(dir, RUN_FILES.filtersDir);
      if (fs.existsSync(filters) || isLink(filters)) realSubfolder(dir, RUN_FILES.filtersDir);
      for (const folder of [dir, path.join(dir, RUN_FILES.filtersDir)]) removeStaleTemporaries(folder);
    } catch (err) {
      this.close(false);
      throw new Error(`${expected('a run folder whose files lie inside it', 'runDir', dir)} (${(err as Error).message})`);
    }
    this.picturesEnabled = options.pictures;
  }

  /**
   * Releases the folder. After a failed run, a folder this recorder created and nothing was written
   * into is removed, so a failed `train` leaves no empty run folder behind.
   */
  close(succeeded: boolean): void {
    this.writer?.close();
    this.writer = undefined;
    this.unlock();
    if (!succeeded && this.created) removeIfEmpty(this.dir);
  }

  private warnOnce(err: unknown): void {
    if (!this.warned) {
      this.warned = true;
      process.emitWarning(`convscope: pictures skipped for ${this.dir}: ${(err as Error).message.split('\n')[0]}`);
    }
    this.picturesEnabled = false;
  }

  private summaries(): SummaryWriter {
    if (!this.writer) {
      const { SummaryWriter } = require('../summary/writer') as typeof import('../summary/writer');
      this.writer = new SummaryWriter(this.dir);
    }
    return this.writer;
  }

  start(config: Record<string, unknown>): void {
    writeFileAtomic(path.join(this.dir, RUN_FILES.config), JSON.stringify(config, null, 2) + '\n');
  }

  /** A grid of augmented training images [count, C, h, w] as the run sees them (standardised values; colour for 3 channels). */
  augmentedSamples(images: Float32Array, shape: [number, number, number, number]): void {
    if (!this.picturesEnabled) return;
    try {
      const { renderFilterMosaic } = require('../viz/mosaic') as typeof import('../viz/mosaic');
      const png = renderFilterMosaic({ data: images, shape }, { colormap: 'gray', normalize: 'global', title: 'augmented training images' });
      writeFileAtomic(path.join(this.dir, RUN_FILES.augmented), png);
    } catch (err) {
      this.warnOnce(err);
    }
  }

  /** Records the first-layer filters at a global step: a PNG frame and a TensorBoard image. */
  async snapshot(model: CnnModel, step: number): Promise<void> {
    if (!this.picturesEnabled || model.plan.conv.length === 0) return;
    try {
      const { renderFilterMosaic } = require('../viz/mosaic') as typeof import('../viz/mosaic');
      const weights = model.parameters().find((p) => p.name === 'conv1.weight')!;
      const png = renderFilterMosaic({ data: weights.values, shape: weights.shape }, { colormap: 'RdBu', normalize: filterNormalisation(weights.shape), title: `conv1, step ${step}` });
      writeFileAtomic(path.join(realSubfolder(this.dir, RUN_FILES.filtersDir), `step-${String(step).padStart(7, '0')}.png`), png);
      this.frames.push({ step, png });
      this.summaries().addImage('conv1/filters', png, step);
    } catch (err) {
      this.warnOnce(err);
    }
  }

  /** After each epoch: scalars, history, and the checkpoint a resumed run starts from. */
  epochEnd(model: CnnModel, history: EpochRecord[], evaluation: EvaluationResult, save: SaveOptions): void {
    // The checkpoint first: after a crash or a full disk between writes, history.json and the
    // scalars may lag behind the checkpoint but never list an epoch the checkpoint lacks.
    saveCheckpoint(path.join(this.dir, RUN_FILES.checkpoint), model, save);
    const record = history[history.length - 1];
    const writer = this.summaries();
    writer.addScalar('loss/train', record.trainLoss, record.epoch);
    writer.addScalar('loss/test', record.testLoss, record.epoch);
    writer.addScalar('accuracy/train', record.trainAccuracy, record.epoch);
    writer.addScalar('accuracy/test', record.testAccuracy, record.epoch);
    writer.addScalar('learning_rate', record.learningRate, record.epoch);
    writer.addScalar('images_per_second', record.imagesPerSecond, record.epoch);
    writer.flush();
    writeFileAtomic(path.join(this.dir, RUN_FILES.history), JSON.stringify(history, null, 2) + '\n');
    writeFileAtomic(path.join(this.dir, RUN_FILES.confusion), JSON.stringify(evaluation.confusion) + '\n');
  }

  /** keepEpochCheckpoints: this epoch's weights and spec as epoch-<n>.pt (no optimizer state: for looking back, not resuming). */
  epochCheckpoint(model: CnnModel, epoch: number): void {
    saveCheckpoint(path.join(this.dir, epochCheckpointName(epoch)), model);
  }

  /** A scheduled run's learning rate at every step of an epoch (TensorBoard's x axis: the step, from 1). */
  stepLearningRates(firstStep: number, rates: Float64Array): void {
    const writer = this.summaries();
    rates.forEach((rate, i) => writer.addScalar('learning_rate/step', rate, firstStep + i + 1));
    writer.flush();
  }

  /** Where an aborted run stopped (mid-epoch): the checkpoint only, so `resumeFrom` continues from there. */
  abortCheckpoint(model: CnnModel, save: SaveOptions): void {
    saveCheckpoint(path.join(this.dir, RUN_FILES.checkpoint), model, save);
  }

  /** At the end: the final mosaic, the GIF of the filters developing, curves and confusion matrix. */
  async finish(model: CnnModel, history: EpochRecord[], evaluation: EvaluationResult, classNames: string[]): Promise<void> {
    try {
      if (this.picturesEnabled && model.plan.conv.length > 0) {
        const { renderFilterMosaic } = require('../viz/mosaic') as typeof import('../viz/mosaic');
        const { encodeGif, pngToRgba } = require('../viz/gif') as typeof import('../viz/gif');
        const { renderTrainingCurves, renderHeatmap } = require('../viz/charts') as typeof import('../viz/charts');
        const weights = model.parameters().find((p) => p.name === 'conv1.weight')!;
        writeFileAtomic(path.join(this.dir, RUN_FILES.mosaic), renderFilterMosaic({ data: weights.values, shape: weights.shape }, {
          colormap: 'RdBu', normalize: filterNormalisation(weights.shape), labels: true, colorbar: true, title: 'conv1 filters',
        }));
        if (weights.shape[1] > 1) {
          const { renderLayerGrid } = require('../viz/mosaic') as typeof import('../viz/mosaic');
          writeFileAtomic(path.join(this.dir, RUN_FILES.channelMosaic), renderLayerGrid({ data: weights.values, shape: weights.shape }, {
            colormap: 'RdBu', normalize: 'global', colorbar: true, title: 'conv1 filters per input channel (rows: filters, columns: channels)',
          }));
        }
        if (this.frames.length > 0) {
          writeFileAtomic(path.join(this.dir, RUN_FILES.filtersGif), encodeGif(this.frames.map((f) => pngToRgba(f.png)), { delayMs: 400 }));
        }
        if (history.length > 0) writeFileAtomic(path.join(this.dir, RUN_FILES.curves), await renderTrainingCurves(history));
        writeFileAtomic(path.join(this.dir, RUN_FILES.confusionPng), renderHeatmap(evaluation.confusion, {
          labels: classNames, colormap: 'viridis', title: 'confusion (rows: true class, columns: predicted)',
        }));
      }
    } catch (err) {
      this.warnOnce(err);
    } finally {
      this.writer?.close();
      this.writer = undefined;
    }
  }
}
