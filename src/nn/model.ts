// CnnModel: one network, two execution paths. Both hold the same named parameter tensors; the
// scripted kind also holds a TorchScript module compiled over exactly those tensors.
import { writeFileAtomic } from '../util/fs-atomic';
import { float32Values, native, NativeScriptModel, NativeTensor, valuesOf } from '../core/native';
import { encodeCheckpoint, OptimizerSnapshot } from '../formats/checkpoint';
import { shapeSize } from '../core/host-tensor';
import { fromHost, noGrad, ops } from '../core/ops';
import { tidy, track } from '../core/tidy';
import { checkKnownKeys, checkObject, checkOneOf, checkString, expected } from '../util/validate';
import { buildLayers, fusePoolActivation, Layer } from './layers';
import {
  checkDevice, checkFinitePixels, checkInferenceOptions, checkInputNorm, checkSeed, InputNorm, isUniformNorm, NO_NORM, normChannels, PredictOptions,
} from './model-options';
import { withPrecision } from '../core/precision';
import { encodeOnnx } from '../formats/onnx';
import { recordedOptimizerState } from './optimizer-state';
import { scriptSource } from './script-source';
import { ANY_TRAINING, checkModelFits, TrainingFootprint } from './model-memory';
import { BATCH_NORM_EPS, BufferShape, CnnSpec, ModelPlan, ParameterShape, planModel } from './spec';

export const MODES = ['eager', 'script'] as const;
export type ExecutionMode = (typeof MODES)[number];

export { NO_NORM } from './model-options';
export type { InputNorm } from './model-options';

/** A model evaluate() and predict() can run: logits for a batch [N, C, H, W] of prepared images. */
export interface Classifier {
  readonly device: string;
  readonly inputNorm: InputNorm;
  readonly classes: number;
  readonly inputSize: [number, number];
  /** Channels of the images it takes (1 grey, 3 colour). */
  readonly inputChannels: number;
  /** Logits in evaluation mode (dropout off). Call inside noGrad(). */
  logits(x: NativeTensor): NativeTensor;
  dispose(): void;
}

export interface ParameterInfo { name: string; shape: number[]; values: Float32Array }
/** A buffer (a batch normalisation's running statistics; its int64 batch count as a float). */
export type BufferInfo = ParameterInfo;

export interface CreateModelOptions {
  mode?: ExecutionMode;
  device?: string;
  seed?: number;
  inputNorm?: InputNorm;
}

/** CreateModelOptions checked (unknown keys are errors) with the defaults filled in. */
function resolveCreateOptions(input: unknown, name: string): Required<Omit<CreateModelOptions, 'seed'>> & { seed?: number } {
  const o = checkObject(input, 'options');
  checkKnownKeys(o, `${name} options`, ['mode', 'device', 'seed', 'inputNorm']);
  return {
    mode: checkOneOf(o.mode ?? 'eager', 'mode', MODES),
    device: checkDevice(o.device ?? 'cpu', 'device'),
    seed: o.seed === undefined ? undefined : checkSeed(o.seed, 'seed'),
    inputNorm: checkInputNorm(o.inputNorm ?? NO_NORM, 'inputNorm'),
  };
}

export interface SaveOptions {
  /**
   * Store the optimizer state the model kept from its last training (trainCnn keeps it), so that
   * `trainCnn({ resumeFrom })` continues exactly. An error if the model has none.
   */
  includeOptimizer?: boolean;
}

/** What a checkpoint carries beyond the model; train/checkpoint.ts's saveCheckpoint fills it. */
export interface CheckpointExtras extends SaveOptions {
  /** This optimizer's state instead of the recorded one. */
  optimizer?: OptimizerSnapshot;
  /** Where training stood, stored in the metadata. */
  training?: unknown;
}

export class ModelDisposedError extends Error {
  constructor(what: string) {
    super(`${what}: the model was used after dispose()`);
    this.name = 'ModelDisposedError';
  }
}

export class CnnModel implements Classifier {
  readonly plan: ModelPlan;
  readonly mode: ExecutionMode;
  readonly device: string;
  readonly inputNorm: InputNorm;
  /** Parameters and buffers by name. */
  private readonly params: Map<string, NativeTensor>;
  /** One layer per module (conv1, conv1.act, conv1.pool, ...): what forwardWithActivations() reports. */
  private readonly layers: Layer[];
  /** The same computation with activation + pooling pairs fused (layers.ts): what forward() runs. */
  private readonly fusedLayers: Layer[];
  private script: NativeScriptModel | undefined;
  private disposed = false;

  /** Use createModel() or loadModel(); this takes ownership of `params` (every parameter and buffer of the plan). */
  constructor(plan: ModelPlan, params: Map<string, NativeTensor>, mode: ExecutionMode, device: string, inputNorm: InputNorm) {
    checkNormFits(inputNorm, plan.spec.inputChannels);
    this.plan = plan;
    this.mode = mode;
    this.device = device;
    this.inputNorm = inputNorm;
    this.params = params;
    for (const p of plan.parameters) {
      const tensor = params.get(p.name);
      if (!tensor) throw new Error(`model parameters lack ${p.name}`);
      if (tensor.shape.join('x') !== p.shape.join('x')) {
        throw new RangeError(`Expected shape [${p.shape}] for parameter ${p.name} but received [${tensor.shape}]`);
      }
    }
    for (const b of plan.buffers) {
      const tensor = params.get(b.name);
      if (!tensor) throw new Error(`model buffers lack ${b.name}`);
      if (tensor.shape.join('x') !== b.shape.join('x') || tensor.dtype !== b.dtype) {
        throw new RangeError(`Expected a ${b.dtype} buffer of shape [${b.shape}] for ${b.name} but received a ${tensor.dtype} one of shape [${tensor.shape}]`);
      }
    }
    this.layers = buildLayers(plan.conv, plan.dense, plan.globalAvgPool, (name) => this.param(name));
    this.fusedLayers = fusePoolActivation(this.layers);
    if (mode === 'script') this.script = this.compileScript(scriptSource(plan));
  }

  /** A TorchScript module over this model's own tensors (shared): what training and the export run. */
  private compileScript(source: string): NativeScriptModel {
    return new (native().ScriptModel)({
      source,
      parameters: this.plan.parameters.map((p) => [p.name, this.param(p.name)]),
      buffers: this.plan.buffers.map((b) => [b.name, this.param(b.name)]),
    });
  }

  get spec(): Required<CnnSpec> { return this.plan.spec; }
  get classes(): number { return this.plan.spec.classes; }
  get inputSize(): [number, number] { return this.plan.spec.inputSize; }
  get inputChannels(): number { return this.plan.spec.inputChannels; }
  get isDisposed(): boolean { return this.disposed; }

  /** The TorchScript module behind a scripted model (undefined for an eager one). */
  get scriptModule(): NativeScriptModel | undefined {
    this.check('scriptModule');
    return this.script;
  }

  /** The TorchScript source generated for this model's plan. */
  get scriptSource(): string { return scriptSource(this.plan); }

  check(what: string): void {
    if (this.disposed) throw new ModelDisposedError(what);
  }

  private param(name: string): NativeTensor {
    const tensor = this.params.get(name);
    if (!tensor) throw new Error(`no parameter named ${name}`);
    return tensor;
  }

  /** Parameter tensors in PyTorch's order (shared, not copies): what an optimizer updates. */
  parameterTensors(): NativeTensor[] {
    this.check('parameterTensors');
    return this.plan.parameters.map((p) => this.param(p.name));
  }

  /** Conv and dense weights (no biases, no batch-norm scales): what the L1 penalty covers. */
  weightTensors(): NativeTensor[] {
    this.check('weightTensors');
    return this.plan.parameters.filter((p) => p.penalised).map((p) => this.param(p.name));
  }

  tensor(name: string): NativeTensor {
    this.check('tensor');
    return this.param(name);
  }

  /** Name, shape and a host copy of the values of every parameter. */
  parameters(): ParameterInfo[] {
    this.check('parameters');
    return this.plan.parameters.map((p) => ({ name: p.name, shape: [...p.shape], values: valuesOf(this.param(p.name), 'float32') }));
  }

  /** Name, shape and a host copy of every buffer (batch normalisation's running statistics and batch counts). */
  buffers(): BufferInfo[] {
    this.check('buffers');
    return this.plan.buffers.map((b) => ({ name: b.name, shape: [...b.shape], values: float32Values(this.param(b.name)) }));
  }

  /**
   * Forward pass on a prepared batch [N, C, H, W]; `training` turns dropout on and makes batch
   * normalisation use (and update) the batch's statistics.
   */
  forward(x: NativeTensor, options: { training?: boolean } = {}): NativeTensor {
    this.check('forward');
    const training = options.training ?? false;
    if (this.script) {
      this.script.train(training);
      return track(this.script.forward(x));
    }
    let h = x;
    for (const layer of this.fusedLayers) h = layer.forward(h, training);
    return h;
  }

  logits(x: NativeTensor): NativeTensor {
    return this.forward(x, { training: false });
  }

  /**
   * Runs the eager layers over this model's weights (either mode) and returns every intermediate
   * output by layer name: what the activation maps show.
   */
  forwardWithActivations(x: NativeTensor): { name: string; output: NativeTensor }[] {
    this.check('forwardWithActivations');
    const outputs: { name: string; output: NativeTensor }[] = [];
    let h = x;
    for (const layer of this.layers) {
      h = layer.forward(h, false);
      outputs.push({ name: layer.name, output: h });
    }
    return outputs;
  }

  /** Names of the layers forwardWithActivations() reports. */
  layerNames(): string[] { return this.layers.map((l) => l.name); }

  /** A copy with the same weights on the other (or same) path. */
  convert(mode: ExecutionMode): CnnModel {
    this.check('convert');
    checkOneOf(mode, 'mode', MODES);
    return modelOver(this.plan, mode, this.device, this.inputNorm, (p) => leafCopy(this.param(p.name)), (b) => stateCopy(this.param(b.name)));
  }

  /** The same weights as a scripted (TorchScript) model. */
  toScript(): CnnModel { return this.convert('script'); }
  /** The same weights as an eager model. */
  toEager(): CnnModel { return this.convert('eager'); }

  /** A copy of this model on another device ('cpu', 'cuda'). */
  toDevice(device: string): CnnModel {
    this.check('toDevice');
    return modelOver(this.plan, this.mode, device, this.inputNorm, (p) => leafCopy(this.param(p.name), device), (b) => stateCopy(this.param(b.name), device));
  }

  /**
   * Saves spec + weights atomically in PyTorch's format (see formats/checkpoint.ts), with the
   * optimizer state of this model's last training when `includeOptimizer` is set.
   * @example model.save('model.pt'); const again = loadModel('model.pt');
   */
  save(file: string, options: SaveOptions = {}): void {
    checkString(file, 'path');
    writeFileAtomic(file, this.checkpointBytes({ includeOptimizer: options.includeOptimizer }));
  }

  /** This model as checkpoint bytes, with what a training adds (its optimizer, where it stood). */
  checkpointBytes(extras: CheckpointExtras = {}): Buffer {
    this.check('save');
    const optimizer = extras.optimizer ?? (extras.includeOptimizer ? recordedOptimizerState(this) : undefined);
    if (extras.includeOptimizer && !optimizer) {
      throw new Error('includeOptimizer: this model has no optimizer state (it was not trained by trainCnn in this process, nor loaded from a checkpoint with one)');
    }
    return encodeCheckpoint({
      parameters: this.plan.stateNames.map((name) => [name, this.param(name)]),
      inputNorm: this.inputNorm,
      meta: { spec: this.spec, mode: this.mode, inputNorm: this.inputNorm },
      optimizer,
      training: extras.training,
    });
  }

  /** Class probabilities (count x classes) for uint8 (0..255) or float ([0, 1]) images of inputSize. */
  predict(images: Uint8Array | Float32Array, options: PredictOptions = {}): Float32Array {
    this.check('predict');
    return predictProbabilities(this, images, options);
  }

  /**
   * Writes a TorchScript file (atomically) that Python's torch.jit.load runs, self-contained: its
   * forward takes pixels in [0, 1], shape (N, C, H, W), standardises them with this model's inputNorm
   * and returns the same logits as this model; parameters keep their names.
   * @example model.exportTorchScript('model.ts.pt'); // python: torch.jit.load('model.ts.pt')(x / 255)
   */
  exportTorchScript(file: string): void {
    this.check('exportTorchScript');
    checkString(file, 'path');
    const exported = this.compileScript(scriptSource(this.plan, this.inputNorm));
    try {
      exported.train(false);
      writeFileAtomic(file, exported.save());
    } finally {
      exported.dispose();
    }
  }

  /**
   * Writes an ONNX model (atomically), self-contained like the TorchScript export: input "pixels",
   * float32 (N, C, H, W) in [0, 1], standardised inside (per channel); output "logits" (N, classes). Opset 13.
   * @example model.exportOnnx('model.onnx'); // onnxruntime: session.run({ pixels }) -> { logits }
   */
  exportOnnx(file: string): void {
    this.check('exportOnnx');
    checkString(file, 'path');
    const statistics = this.buffers().filter((b) => !b.name.endsWith('.num_batches_tracked'));
    writeFileAtomic(file, Buffer.from(encodeOnnx(this.plan, [...this.parameters(), ...statistics], this.inputNorm, { batchNormEps: BATCH_NORM_EPS })));
  }

  /** This model if already on `device`, else a copy there with this one disposed. */
  toDeviceOwned(device: string): CnnModel {
    if (device === this.device) return this;
    const moved = this.toDevice(device);
    this.dispose();
    return moved;
  }

  /** Frees every native tensor and the script module now; further use is a clear error. */
  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.script?.dispose();
    this.script = undefined;
    for (const tensor of this.params.values()) tensor.dispose();
    this.params.clear();
  }
}

/** A norm with a value per channel must have one for each of the model's input channels. */
function checkNormFits(norm: InputNorm, channels: number): void {
  const given = normChannels(norm);
  if (given !== undefined && given !== channels) {
    throw new RangeError(expected(`one mean and std per input channel (${channels}, spec.inputChannels)`, 'inputNorm', norm));
  }
}

/**
 * A model over parameters made one by one with `make` and buffers with `makeBuffer` (default: fresh
 * statistics). If making one fails (an allocation too large for memory, an unavailable device) or
 * the model cannot be built (a script that does not compile), every tensor made so far is freed
 * before the error propagates.
 */
function modelOver(plan: ModelPlan, mode: ExecutionMode, device: string, inputNorm: InputNorm, make: (p: ParameterShape) => NativeTensor,
  makeBuffer: (b: BufferShape) => NativeTensor = (b) => freshBuffer(b, device)): CnnModel {
  const params = new Map<string, NativeTensor>();
  try {
    for (const p of plan.parameters) params.set(p.name, make(p));
    for (const b of plan.buffers) params.set(b.name, makeBuffer(b));
    return new CnnModel(plan, params, mode, device, inputNorm);
  } catch (err) {
    for (const t of params.values()) t.dispose();
    throw err;
  }
}

/** A detached copy that is a leaf requiring grad: a fresh parameter. */
export function leafCopy(tensor: NativeTensor, device?: string): NativeTensor {
  const copy = stateCopy(tensor, device);
  copy.requiresGrad = true;
  return copy;
}

/** A detached copy that takes no gradient (a buffer), on `device` if given. */
export function stateCopy(tensor: NativeTensor, device?: string): NativeTensor {
  const moved = device ? native().ops.to(tensor, device) : tensor;
  try {
    return native().ops.detach(moved);
  } finally {
    if (moved !== tensor) moved.dispose();
  }
}

/** A CPU tensor of `shape` holding `value` (0 or 1) everywhere. */
function constantTensor(shape: number[], dtype: 'float32' | 'int64', value: 0 | 1): NativeTensor {
  const zeros = native().ops.zeros(shape, dtype);
  if (value === 0) return zeros;
  try {
    return native().ops.affine(zeros, 0, 1);
  } finally {
    zeros.dispose();
  }
}

/** A buffer as PyTorch's module starts it, on `device`: running mean 0, running variance 1, no batch counted. */
export function freshBuffer(b: BufferShape, device: string): NativeTensor {
  const filled = constantTensor(b.shape, b.dtype, b.fill);
  if (device === 'cpu') return filled;
  try {
    return native().ops.to(filled, device);
  } finally {
    filled.dispose();
  }
}

/** A parameter as PyTorch initialises it (see ParameterShape.init), on the CPU. */
function initialParameter(p: ParameterShape): NativeTensor {
  if (p.init === 'uniform') {
    const bound = 1 / Math.sqrt(p.fanIn);
    return native().ops.uniform(p.shape, -bound, bound);
  }
  return constantTensor(p.shape, 'float32', p.init === 'ones' ? 1 : 0);
}

/**
 * Builds a model from a spec with PyTorch's initialisation (Kaiming-uniform with a = sqrt(5), i.e.
 * U(-1/sqrt(fan_in), 1/sqrt(fan_in)), for weights and biases; batch normalisation's scale 1 and shift
 * 0), drawn from `seed` in PyTorch's order: the same seed gives the same weights as
 * `torch.manual_seed(seed); Net()` in Python. A model whose training (weights, gradients and Adam's
 * two moments) cannot fit in the machine's memory is refused first, with its parameter count and
 * bytes (see checkModelFits).
 * @example const model = createModel(defaultSpec(), { mode: 'eager', seed: 1 });
 */
export function createModel(spec: CnnSpec, options: CreateModelOptions = {}): CnnModel {
  return createModelFor(ANY_TRAINING, spec, options);
}

/**
 * createModel for a training whose optimizer is known (trainCnn's): the memory check counts what that
 * optimizer keeps instead of the most any keeps. A model that cannot fit is refused (RangeError, with
 * its parameter count and bytes) before any tensor is made.
 */
export function createModelFor(training: TrainingFootprint, spec: CnnSpec, options: CreateModelOptions = {}): CnnModel {
  const plan = planModel(spec);
  const { mode, device, seed, inputNorm } = resolveCreateOptions(options, 'createModel');
  checkModelFits(plan, device, training);
  const addon = native();
  if (seed !== undefined) addon.manualSeed(seed);
  return modelOver(plan, mode, device, inputNorm, (p) => {
    const initial = initialParameter(p);
    if (device === 'cpu') {
      initial.requiresGrad = true;
      return initial;
    }
    try {
      return leafCopy(initial, device);
    } finally {
      initial.dispose();
    }
  });
}

/**
 * Builds a model from host weights (for example edited ones: pruned filters, a state dict from
 * elsewhere). Every parameter of the spec must be given with its exact shape; values are copied.
 * Buffers (model.buffers()) may be given in the same list; those missing start fresh.
 * @example const pruned = modelFromParameters(spec, model.parameters().map(edit));
 */
export function modelFromParameters(spec: CnnSpec, parameters: ParameterInfo[], options: CreateModelOptions = {}): CnnModel {
  const plan = planModel(spec);
  const { mode, device, inputNorm } = resolveCreateOptions(options, 'modelFromParameters');
  const byName = new Map(parameters.map((p) => [p.name, p]));
  const hostCopy = (p: { name: string; shape: number[] }, given: ParameterInfo, dtype: 'float32' | 'int64', finish: (t: NativeTensor) => NativeTensor) => {
    if (given.shape.join('x') !== p.shape.join('x') || given.values.length !== shapeSize(p.shape)) {
      throw new RangeError(`Expected shape [${p.shape}] for ${p.name} but received [${given.shape}] with ${given.values.length} values`);
    }
    const values = dtype === 'int64' ? BigInt64Array.from(given.values, (v) => BigInt(Math.round(v))) : given.values;
    const host = new (native().Tensor)(values, p.shape);
    try {
      return finish(host);
    } finally {
      host.dispose();
    }
  };
  return modelOver(plan, mode, device, inputNorm, (p) => {
    const given = byName.get(p.name);
    if (!given) throw new RangeError(`Expected a parameter named ${p.name} for parameters but it is missing`);
    return hostCopy(p, given, 'float32', (host) => leafCopy(host, device));
  }, (b) => {
    // Buffers (batch normalisation's statistics, as buffers() lists them) are optional: fresh ones otherwise.
    const given = byName.get(b.name);
    return given ? hostCopy(b, given, b.dtype, (host) => stateCopy(host, device)) : freshBuffer(b, device);
  });
}

/**
 * Turns host images (uint8 0..255 or float already in [0, 1]; N x C x H x W, channel-planar) into a
 * prepared batch [N, C, H, W] on the model's device. The host array is copied into libtorch memory
 * (the only copy).
 */
export function prepareImages(images: Uint8Array | Float32Array, count: number, model: Classifier): NativeTensor {
  const [h, w] = model.inputSize;
  const c = model.inputChannels;
  if (images.length !== count * c * h * w) {
    const what = c === 1 ? `${count} images of ${h}x${w}` : `${count} images of ${c}x${h}x${w}`;
    throw new RangeError(expected(`${what} (${count * c * h * w} values)`, 'images', images));
  }
  return tidy(() => {
    const host = fromHost(images, [count, c, h, w]);
    // To a GPU, bytes travel as bytes and become floats there: a quarter of the copy.
    const onDevice = model.device !== 'cpu' && images instanceof Uint8Array
      ? ops().to(ops().to(host, model.device), null, 'float32')
      : ops().to(host, model.device, 'float32');
    // Pixels to [0, 1], then standardised: x * (scale / std) - mean / std (per channel when the norm has a value per channel).
    const scale = images instanceof Uint8Array ? 1 / 255 : 1;
    const norm = model.inputNorm;
    if (isUniformNorm(norm)) return ops().affine(onDevice, scale / norm.std, -norm.mean / norm.std);
    return ops().standardize(onDevice, scale, norm.mean, norm.std);
  });
}

/**
 * Class probabilities for host images, evaluated in chunks so memory stays bounded.
 * @returns a Float32Array of count x classes probabilities.
 */
export function predictProbabilities(model: Classifier, images: Uint8Array | Float32Array, options: PredictOptions = {}): Float32Array {
  const { chunkSize: chunk, precision } = checkInferenceOptions(options, model.device, 'predict');
  const [h, w] = model.inputSize;
  const c = model.inputChannels;
  const pixels = c * h * w;
  if (!(images instanceof Uint8Array) && !(images instanceof Float32Array)) {
    throw new TypeError(expected('a Uint8Array or Float32Array of images', 'images', images));
  }
  if (images.length === 0 || images.length % pixels !== 0) {
    throw new RangeError(expected(`a multiple of ${pixels} values (${c === 1 ? `${h}x${w}` : `${c}x${h}x${w}`} images)`, 'images', images));
  }
  checkFinitePixels(images, 'images');
  const count = images.length / pixels;
  const out = new Float32Array(count * model.classes);
  for (let start = 0; start < count; start += chunk) {
    const end = Math.min(count, start + chunk);
    const probs = tidy(() => noGrad(() => {
      const x = prepareImages(images.subarray(start * pixels, end * pixels), end - start, model);
      return valuesOf(ops().softmax(withPrecision(precision, model.device, () => model.logits(x)), 1), 'float32');
    }));
    out.set(probs, start * model.classes);
  }
  return out;
}
