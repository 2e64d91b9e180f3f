// loadModel and loadCheckpoint as the public API offers them: their options are checked like
// trainCnn's (a misspelt key such as `mdoe` is an error naming the accepted ones) before the file is
// read. checkpoint.ts does the reading; its internal callers pass options they built themselves.
import type { CnnModel } from '../nn/model';
import { MODES } from '../nn/model';
import { checkDevice, checkInputNorm } from '../nn/model-options';
import { planModel } from '../nn/spec';
import { checkKnownKeys, checkObject, checkOneOf } from '../util/validate';
import { loadCheckpoint as readCheckpoint, LoadedCheckpoint, LoadOptions } from './checkpoint';

const LOAD_KEYS = ['mode', 'device', 'spec', 'inputNorm'];

/** Checks LoadOptions before any work: the keys, the mode, the device and, when given, the spec. */
export function checkLoadOptions(input: unknown, name: string): LoadOptions {
  const o = checkObject(input, 'options');
  checkKnownKeys(o, `${name} options`, LOAD_KEYS);
  if (o.mode !== undefined) checkOneOf(o.mode, 'mode', MODES);
  if (o.device !== undefined) checkDevice(o.device, 'device');
  if (o.spec !== undefined) planModel(o.spec);
  if (o.inputNorm !== undefined) checkInputNorm(o.inputNorm, 'inputNorm');
  return o as LoadOptions;
}

/** Reads a checkpoint written by saveCheckpoint (or a plain PyTorch state dict, given its spec). */
export function loadCheckpoint(file: string, options: LoadOptions = {}): LoadedCheckpoint {
  return readCheckpoint(file, checkLoadOptions(options, 'loadCheckpoint'));
}

/**
 * Loads a model saved with `model.save(path)`.
 * @example const model = loadModel('runs/x/model.pt'); const probs = model.predict(images);
 */
export function loadModel(file: string, options: LoadOptions = {}): CnnModel {
  return readCheckpoint(file, checkLoadOptions(options, 'loadModel')).model;
}
