// TorchScript files from anywhere (convscope's exportTorchScript or Python's torch.jit.save) loaded
// for inference and evaluation.
import { readRegularFile, UnreadableFileError } from '../util/fs-read';
import { float32Values, native, NativeScriptModel, NativeTensor } from '../core/native';
import { checkArchive } from '../formats/archive-check';
import { noGrad } from '../core/ops';
import { track } from '../core/tidy';
import { checkInteger, checkKnownKeys, checkObject, checkString, expected } from '../util/validate';
import { Classifier, InputNorm, NO_NORM, predictProbabilities } from './model';
import { checkInputNorm, PredictOptions } from './model-options';
import { checkInputSize, MAX_CLASSES, MAX_INPUT_CHANNELS } from './spec';

export interface LoadTorchScriptOptions {
  /** Input size the module expects (default 28x28). */
  inputSize?: [number, number];
  /** Channels of the images the module takes (default 1; 3 for colour). */
  inputChannels?: number;
  classes?: number;
  inputNorm?: InputNorm;
}

export class TorchScriptModel implements Classifier {
  readonly device = 'cpu';
  readonly inputNorm: InputNorm;
  readonly classes: number;
  readonly inputSize: [number, number];
  readonly inputChannels: number;
  private module: NativeScriptModel | undefined;

  constructor(module: NativeScriptModel, options: LoadTorchScriptOptions) {
    this.module = module;
    this.inputNorm = options.inputNorm ?? NO_NORM;
    this.classes = options.classes ?? 10;
    this.inputSize = options.inputSize ?? [28, 28];
    this.inputChannels = options.inputChannels ?? 1;
    module.train(false);
  }

  private checked(what: string): NativeScriptModel {
    if (!this.module) throw new Error(`${what}: the TorchScript model was used after dispose()`);
    return this.module;
  }

  logits(x: NativeTensor): NativeTensor {
    return track(this.checked('logits').forward(x));
  }

  /** Parameter names, shapes and host copies of the values. */
  parameters(): { name: string; shape: number[]; values: Float32Array }[] {
    return this.checked('parameters').namedParameters().map(([name, tensor]) => {
      const info = { name, shape: tensor.shape, values: float32Values(tensor) };
      tensor.dispose();
      return info;
    });
  }

  predict(images: Uint8Array | Float32Array, options: PredictOptions = {}): Float32Array {
    this.checked('predict');
    return predictProbabilities(this, images, options);
  }

  dispose(): void {
    this.module?.dispose();
    this.module = undefined;
  }
}

/** The options checked before the file is read (unknown keys are errors), with inputSize's default. */
function resolveLoadOptions(input: unknown): LoadTorchScriptOptions & { inputSize: [number, number]; inputChannels: number } {
  const o = checkObject(input, 'options');
  checkKnownKeys(o, 'loadTorchScript options', ['inputSize', 'inputChannels', 'classes', 'inputNorm']);
  return {
    inputSize: checkInputSize(o.inputSize ?? [28, 28], 'inputSize'),
    inputChannels: checkInteger(o.inputChannels ?? 1, 'inputChannels', 1, MAX_INPUT_CHANNELS),
    classes: o.classes === undefined ? undefined : checkInteger(o.classes, 'classes', 2, MAX_CLASSES),
    inputNorm: o.inputNorm === undefined ? undefined : checkInputNorm(o.inputNorm, 'inputNorm'),
  };
}

/**
 * The module's outputs per image, from a forward pass on one blank image of inputSize: a module that
 * cannot take that size, or whose output does not match `classes`, is refused at load, not at the
 * first predict() or after a whole evaluation.
 */
function outputsPerImage(file: string, module: NativeScriptModel, [h, w]: [number, number], channels: number): number {
  const blank = new (native().Tensor)(new Float32Array(channels * h * w), [1, channels, h, w]);
  let shape: number[];
  try {
    module.train(false);
    const output = noGrad(() => module.forward(blank));
    shape = output.shape;
    output.dispose();
  } catch (err) {
    // The interpreter's message is a whole traceback; its last line says what failed.
    const reason = (err as Error).message.trim().split('\n').pop();
    throw new RangeError(`${file}: the module does not take ${channels === 1 ? '' : `${channels}-channel `}${h}x${w} images (${reason}); ` +
      'pass the size it expects as inputSize (and its channels as inputChannels)');
  } finally {
    blank.dispose();
  }
  if (shape.length !== 2 || shape[0] !== 1 || shape[1] < 2 || shape[1] > MAX_CLASSES) {
    throw new RangeError(`${file}: the module returns shape [${shape}] for one image; expected [1, classes] with 2 to ${MAX_CLASSES} classes`);
  }
  return shape[1];
}

/** A TorchScript file larger than this is refused before it is read (convscope's exports are ~13 MB). */
const MAX_TORCHSCRIPT_BYTES = 4 * 1024 ** 3;

function readTorchScriptBytes(file: string): Buffer {
  try {
    return readRegularFile(file, MAX_TORCHSCRIPT_BYTES);
  } catch (err) {
    if (!(err instanceof UnreadableFileError)) throw err;
    throw new Error(err.reason === 'missing' ? `${file}: no such TorchScript file` : err.message);
  }
}

/**
 * Loads a TorchScript file (`torch.jit.save` in Python, or `model.exportTorchScript`) for inference.
 * A TorchScript file is a program: its archive is checked as a checkpoint's is (records, sizes,
 * pickles), but its code then runs with this process's rights, once here on a blank image (to learn
 * what it outputs) and on every prediction, so a hostile one can loop for ever, allocate what it
 * likes or read any file the process can (`torch.from_file`). Load only TorchScript you trust; a
 * checkpoint (`loadModel`) runs no code.
 * @example const m = loadTorchScript('model.ts.pt'); const { accuracy } = await evaluate(m, test);
 */
export function loadTorchScript(file: string, options: LoadTorchScriptOptions = {}): TorchScriptModel {
  checkString(file, 'path');
  const resolved = resolveLoadOptions(options);
  const bytes = readTorchScriptBytes(file);
  let module: NativeScriptModel;
  try {
    checkArchive(bytes);
    module = new (native().ScriptModel)({ bytes });
  } catch (err) {
    throw new Error(`${file}: not a loadable TorchScript file (${(err as Error).message})`);
  }
  try {
    const classes = outputsPerImage(file, module, resolved.inputSize, resolved.inputChannels);
    if (resolved.classes !== undefined && resolved.classes !== classes) {
      throw new RangeError(expected(`${classes} (what ${file} outputs per image)`, 'classes', resolved.classes));
    }
    return new TorchScriptModel(module, { ...resolved, classes });
  } catch (err) {
    module.dispose();
    throw err;
  }
}
