// TorchScript files from anywhere (convscope's exportTorchScript or Python's torch.jit.save) loaded
// for inference and evaluation.
import * as fs from 'fs';
import { native, NativeScriptModel, NativeTensor } from '../native';
import { checkArchive } from '../train/archive-check';
import { track } from '../tidy';
import { checkString, expected } from '../validate';
import { Classifier, InputNorm, NO_NORM, predictProbabilities } from './model';

export interface LoadTorchScriptOptions {
  /** Input size the module expects (default 28x28). */
  inputSize?: [number, number];
  classes?: number;
  inputNorm?: InputNorm;
}

export class TorchScriptModel implements Classifier {
  readonly device = 'cpu';
  readonly inputNorm: InputNorm;
  readonly classes: number;
  readonly inputSize: [number, number];
  private module: NativeScriptModel | undefined;

  constructor(module: NativeScriptModel, options: LoadTorchScriptOptions) {
    this.module = module;
    this.inputNorm = options.inputNorm ?? NO_NORM;
    this.classes = options.classes ?? 10;
    this.inputSize = options.inputSize ?? [28, 28];
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
      const info = { name, shape: tensor.shape, values: tensor.toTypedArray() as Float32Array };
      tensor.dispose();
      return info;
    });
  }

  predict(images: Uint8Array | Float32Array, options: { chunkSize?: number } = {}): Float32Array {
    this.checked('predict');
    return predictProbabilities(this, images, options);
  }

  dispose(): void {
    this.module?.dispose();
    this.module = undefined;
  }
}

/**
 * Loads a TorchScript file (`torch.jit.save` in Python, or `model.exportTorchScript`) for inference.
 * @example const m = loadTorchScript('model.ts.pt'); const { accuracy } = await evaluate(m, test);
 */
export function loadTorchScript(file: string, options: LoadTorchScriptOptions = {}): TorchScriptModel {
  checkString(file, 'path');
  if (!fs.existsSync(file)) throw new Error(`${file}: no such TorchScript file`);
  let module: NativeScriptModel;
  try {
    const bytes = fs.readFileSync(file);
    checkArchive(bytes);
    module = new (native().ScriptModel)({ bytes });
  } catch (err) {
    throw new Error(`${file}: not a loadable TorchScript file (${(err as Error).message})`);
  }
  if (options.classes !== undefined && (!Number.isInteger(options.classes) || options.classes < 2)) {
    module.dispose();
    throw new RangeError(expected('an integer >= 2', 'classes', options.classes));
  }
  return new TorchScriptModel(module, options);
}
