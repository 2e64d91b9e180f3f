// CnnSpec: the one description of a network. The eager layers (layers.ts) and the TorchScript source
// (script-source.ts) are both built from the plan computed here, so the two paths cannot drift apart.
import { shapeSize } from '../core/host-tensor';
import { ACTIVATIONS, type Activation } from '../core/native';
import { checkBoolean, checkInteger, checkKnownKeys, checkNumber, checkObject, checkOneOf, expected } from '../util/validate';

export { ACTIVATIONS };
export type { Activation };
export const PADDINGS = ['same', 'valid'] as const;
export type Padding = (typeof PADDINGS)[number];

/**
 * One convolution, followed by batch normalisation (when the spec asks for it), its activation, 2x2
 * max pooling with stride 2 if `pool`, and dropout if `dropout` > 0. A block of two convolutions
 * before pooling is two entries, the first without `pool`.
 */
export interface ConvLayerSpec {
  filters: number;
  kernelSize: number;
  stride?: number;
  padding?: Padding;
  activation?: Activation;
  pool?: boolean;
  /** Dropout rate after this layer (after its pooling), 0 = none (the default). */
  dropout?: number;
}

/**
 * A CNN for images of `inputChannels` channels (1, grey, by default; 3 for colour) and `classes` outputs.
 * @example const spec: CnnSpec = { conv: [{ filters: 8, kernelSize: 3, padding: 'same', pool: true }], dense: [64], dropout: 0 };
 */
export interface CnnSpec {
  conv: ConvLayerSpec[];
  /** Hidden dense layers' units; the output layer (`classes` units) is added after them. */
  dense: number[];
  /** Dropout rate after each hidden dense layer (0 = none). */
  dropout: number;
  denseActivation?: Activation;
  inputSize?: [number, number];
  /** Channels of the input images: 1 (grey, the default), 3 (RGB) or any count up to 64 (arrays). */
  inputChannels?: number;
  classes?: number;
  /**
   * Batch normalisation (PyTorch's BatchNorm2d/BatchNorm1d: momentum 0.1, eps 1e-5, learnt scale and
   * shift) after every convolution and hidden dense layer, before its activation. Those layers then
   * have no bias of their own (the normalisation's shift takes its place), as in PyTorch's batch-norm
   * networks. Default false.
   */
  batchNorm?: boolean;
  /**
   * Average each channel of the last conv layer's output to one value (global average pooling)
   * instead of flattening it: the dense layers then see `filters` features. Default false.
   */
  globalAvgPool?: boolean;
}

/** The TensorFlow layers-tutorial network: conv 5x5x32 + pool, conv 5x5x64 + pool, dense 1024, dropout 0.4. */
export function defaultSpec(): CnnSpec {
  return {
    conv: [
      { filters: 32, kernelSize: 5, padding: 'same', activation: 'relu', pool: true },
      { filters: 64, kernelSize: 5, padding: 'same', activation: 'relu', pool: true },
    ],
    dense: [1024],
    dropout: 0.4,
    denseActivation: 'relu',
    inputSize: [28, 28],
    inputChannels: 1,
    classes: 10,
    batchNorm: false,
    globalAvgPool: false,
  };
}

/** PyTorch's BatchNorm defaults, which every path (eager, TorchScript, ONNX) uses. */
export const BATCH_NORM_MOMENTUM = 0.1;
export const BATCH_NORM_EPS = 1e-5;

export interface ConvPlan {
  kind: 'conv';
  name: string;
  inChannels: number;
  outChannels: number;
  kernelSize: number;
  stride: number;
  /** [left, right, top, bottom], TensorFlow's 'same' rule (the extra pixel goes right/bottom). */
  padding: [number, number, number, number];
  activation: Activation;
  pool: boolean;
  /** False when batch normalisation follows (its shift replaces the bias). */
  bias: boolean;
  /** The batch normalisation's module name (conv1_bn), or null. */
  batchNorm: string | null;
  dropout: number;
  inputSize: [number, number];
  outputSize: [number, number];
}

/**
 * Whether a convolution computes channels-last on the CPU, in both paths (the eager
 * layers and the TorchScript source ask the same question, so they keep computing in the same
 * layouts). A batch norm after it runs several times faster on channels-last tensors; the first
 * convolution's one-channel input only needs its strides relabelled (no copy), and its output then
 * reaches the channels-last pooling without a copy: 5% on the tutorial network scripted, 14% eager
 * (pairs of runs, 2026-11-28). In evaluation too, since the pooling is fused (native/pool_activation.h):
 * the tutorial network evaluates the test images in 1.4 s against 2.6 s in NCHW (2026-12-01).
 */
export function convolvesChannelsLast(c: ConvPlan, index: number): boolean {
  return c.batchNorm !== null || index === 0;
}

export interface DensePlan {
  kind: 'dense';
  name: string;
  inFeatures: number;
  outFeatures: number;
  activation: Activation | null;
  dropout: number;
  bias: boolean;
  batchNorm: string | null;
}

/**
 * A trainable tensor. `init`: PyTorch's initialisation, 'uniform' U(-1/sqrt(fanIn), 1/sqrt(fanIn)) for
 * conv and dense layers, 'ones'/'zeros' for a batch normalisation's scale/shift. `penalised`: the L1
 * penalty covers it (conv and dense weights).
 */
export interface ParameterShape { name: string; shape: number[]; fanIn: number; init: 'uniform' | 'ones' | 'zeros'; penalised: boolean }

/** A state tensor that is not trained (a batch normalisation's running statistics and batch count). */
export interface BufferShape { name: string; shape: number[]; dtype: 'float32' | 'int64'; fill: 0 | 1 }

export interface ModelPlan {
  spec: Required<CnnSpec>;
  conv: ConvPlan[];
  dense: DensePlan[];
  flatFeatures: number;
  globalAvgPool: boolean;
  parameters: ParameterShape[];
  buffers: BufferShape[];
  /** Every parameter and buffer name in PyTorch's state-dict order (module by module). */
  stateNames: string[];
}

export const SPEC_KEYS = ['conv', 'dense', 'dropout', 'denseActivation', 'inputSize', 'inputChannels', 'classes', 'batchNorm', 'globalAvgPool'];
/** The most input channels a spec takes (colour is 3; arrays may carry more, up to this). */
export const MAX_INPUT_CHANNELS = 64;
/** The most classes evaluation supports (the addon's confusion matrix); a bigger spec is refused before training. */
export const MAX_CLASSES = 4096;
/** The largest image height or width a model takes. */
export const MAX_INPUT_SIDE = 4096;
export const CONV_KEYS = ['filters', 'kernelSize', 'stride', 'padding', 'activation', 'pool', 'dropout'];

function samePadding(size: number, kernel: number, stride: number): [number, number] {
  const out = Math.ceil(size / stride);
  const total = Math.max((out - 1) * stride + kernel - size, 0);
  return [Math.floor(total / 2), total - Math.floor(total / 2)];
}

/** Checks an image size [height, width]: two integers in [1, MAX_INPUT_SIDE]. */
export function checkInputSize(value: unknown, name: string): [number, number] {
  if (!Array.isArray(value) || value.length !== 2) throw new TypeError(expected('[height, width]', name, value));
  return [checkInteger(value[0], `${name}[0]`, 1, MAX_INPUT_SIDE), checkInteger(value[1], `${name}[1]`, 1, MAX_INPUT_SIDE)];
}

/**
 * The entries of a layer list, holes included: forEach and map skip the holes of a sparse array
 * (`[, 16]`), which would let a missing layer through unchecked.
 */
function entries(list: unknown[]): unknown[] {
  return Array.from(list);
}

/** The padding [left, right, top, bottom] of a conv layer on an input of `size`, checked against the kernel. */
function convPadding(where: string, padding: Padding, kernelSize: number, stride: number, size: [number, number]): [number, number, number, number] {
  if (padding === 'valid') {
    if (kernelSize > size[0] || kernelSize > size[1]) {
      throw new RangeError(`Expected ${where}.kernelSize <= its input size ${size[0]}x${size[1]} with 'valid' padding but received ${kernelSize} (the kernel is larger than the input)`);
    }
    return [0, 0, 0, 0];
  }
  if (kernelSize > size[0] * 2 || kernelSize > size[1] * 2) {
    throw new RangeError(`Expected ${where}.kernelSize <= ${Math.min(size[0], size[1]) * 2} for its ${size[0]}x${size[1]} input but received ${kernelSize} (the kernel is larger than the input)`);
  }
  const [top, bottom] = samePadding(size[0], kernelSize, stride);
  const [left, right] = samePadding(size[1], kernelSize, stride);
  return [left, right, top, bottom];
}

/** Checks conv layer i of the spec and plans it on an input of `channels` x `size`. */
function planConv(layerInput: unknown, i: number, channels: number, size: [number, number], batchNorm: boolean): ConvPlan {
  const where = `spec.conv[${i}]`;
  const layer = checkObject(layerInput, where);
  checkKnownKeys(layer, where, CONV_KEYS);
  const filters = checkInteger(layer.filters, `${where}.filters`, 1, 4096);
  const kernelSize = checkInteger(layer.kernelSize, `${where}.kernelSize`, 1, 1024);
  const stride = checkInteger(layer.stride ?? 1, `${where}.stride`, 1, 1024);
  const padding = checkOneOf(layer.padding ?? 'same', `${where}.padding`, PADDINGS);
  const activation = checkOneOf(layer.activation ?? 'relu', `${where}.activation`, ACTIVATIONS);
  const pool = layer.pool === undefined ? false : layer.pool;
  if (typeof pool !== 'boolean') throw new TypeError(expected('a boolean', `${where}.pool`, layer.pool));
  const dropout = checkNumber(layer.dropout ?? 0, `${where}.dropout`, 0, 1, { exclusiveMax: true });
  const pad = convPadding(where, padding, kernelSize, stride, size);
  const outH = Math.floor((size[0] + pad[2] + pad[3] - kernelSize) / stride) + 1;
  const outW = Math.floor((size[1] + pad[0] + pad[1] - kernelSize) / stride) + 1;
  if (pool && (outH < 2 || outW < 2)) throw new RangeError(`Expected ${where} to leave at least 2x2 pixels to pool but it leaves ${outH}x${outW}`);
  const outputSize: [number, number] = pool ? [Math.floor(outH / 2), Math.floor(outW / 2)] : [outH, outW];
  const name = `conv${i + 1}`;
  return {
    kind: 'conv', name, inChannels: channels, outChannels: filters, kernelSize, stride, padding: pad, activation, pool,
    bias: !batchNorm, batchNorm: batchNorm ? `${name}_bn` : null, dropout, inputSize: size, outputSize,
  };
}

/**
 * PyTorch's construction order: each layer's weight, then its bias, then its batch normalisation's
 * scale, shift and statistics. Random draws happen only for conv and dense layers, in this order, so
 * a seed gives the weights PyTorch's module gives.
 */
function stateShapes(conv: ConvPlan[], dense: DensePlan[]): Pick<ModelPlan, 'parameters' | 'buffers' | 'stateNames'> {
  const parameters: ParameterShape[] = [];
  const buffers: BufferShape[] = [];
  const stateNames: string[] = [];
  const param = (p: ParameterShape) => { parameters.push(p); stateNames.push(p.name); };
  const layer = (name: string, weightShape: number[], fanIn: number, bias: boolean, batchNorm: string | null, channels: number) => {
    param({ name: `${name}.weight`, shape: weightShape, fanIn, init: 'uniform', penalised: true });
    if (bias) param({ name: `${name}.bias`, shape: [weightShape[0]], fanIn, init: 'uniform', penalised: false });
    if (!batchNorm) return;
    param({ name: `${batchNorm}.weight`, shape: [channels], fanIn: channels, init: 'ones', penalised: false });
    param({ name: `${batchNorm}.bias`, shape: [channels], fanIn: channels, init: 'zeros', penalised: false });
    for (const b of [
      { name: `${batchNorm}.running_mean`, shape: [channels], dtype: 'float32', fill: 0 },
      { name: `${batchNorm}.running_var`, shape: [channels], dtype: 'float32', fill: 1 },
      { name: `${batchNorm}.num_batches_tracked`, shape: [], dtype: 'int64', fill: 0 },
    ] as BufferShape[]) {
      buffers.push(b);
      stateNames.push(b.name);
    }
  };
  for (const c of conv) {
    layer(c.name, [c.outChannels, c.inChannels, c.kernelSize, c.kernelSize], c.inChannels * c.kernelSize * c.kernelSize, c.bias, c.batchNorm, c.outChannels);
  }
  for (const d of dense) layer(d.name, [d.outFeatures, d.inFeatures], d.inFeatures, d.bias, d.batchNorm, d.outFeatures);
  return { parameters, buffers, stateNames };
}

/** Checks a spec and derives every layer's shapes; errors name the offending field. */
export function planModel(input: unknown): ModelPlan {
  const raw = checkObject(input, 'spec');
  checkKnownKeys(raw, 'spec', SPEC_KEYS);
  if (!Array.isArray(raw.conv)) throw new TypeError(expected('an array of conv layers', 'spec.conv', raw.conv));
  if (!Array.isArray(raw.dense)) throw new TypeError(expected('an array of unit counts', 'spec.dense', raw.dense));
  if (raw.conv.length === 0 && raw.dense.length === 0) {
    throw new RangeError('Expected at least one conv or dense layer for spec but received an empty spec');
  }
  const inputSize = checkInputSize(raw.inputSize ?? [28, 28], 'spec.inputSize');
  const inputChannels = checkInteger(raw.inputChannels ?? 1, 'spec.inputChannels', 1, MAX_INPUT_CHANNELS);
  const classes = checkInteger(raw.classes ?? 10, 'spec.classes', 2, MAX_CLASSES);
  const dropout = checkNumber(raw.dropout ?? 0, 'spec.dropout', 0, 1, { exclusiveMax: true });
  const denseActivation = checkOneOf(raw.denseActivation ?? 'relu', 'spec.denseActivation', ACTIVATIONS);
  const batchNorm = checkBoolean(raw.batchNorm ?? false, 'spec.batchNorm');
  const globalAvgPool = checkBoolean(raw.globalAvgPool ?? false, 'spec.globalAvgPool');
  if (globalAvgPool && raw.conv.length === 0) throw new RangeError('Expected at least one conv layer for spec.globalAvgPool but spec.conv is empty');

  const conv: ConvPlan[] = [];
  let channels = inputChannels;
  let size: [number, number] = [inputSize[0], inputSize[1]];
  const convInputs = entries(raw.conv);
  convInputs.forEach((layerInput, i) => {
    const layer = planConv(layerInput, i, channels, size, batchNorm);
    conv.push(layer);
    channels = layer.outChannels;
    size = layer.outputSize;
  });

  const flatFeatures = globalAvgPool ? channels : channels * size[0] * size[1];
  const units = [...entries(raw.dense).map((u, i) => checkInteger(u, `spec.dense[${i}]`, 1, 1 << 20)), classes];
  const dense: DensePlan[] = units.map((out, i) => {
    const hidden = i < units.length - 1;
    const inFeatures = i === 0 ? flatFeatures : units[i - 1];
    const name = `fc${i + 1}`;
    const normalised = hidden && batchNorm;
    return {
      kind: 'dense', name, inFeatures, outFeatures: out, activation: hidden ? denseActivation : null, dropout: hidden ? dropout : 0,
      bias: !normalised, batchNorm: normalised ? `${name}_bn` : null,
    };
  });
  const spec: Required<CnnSpec> = {
    conv: conv.map((c, i) => ({
      filters: c.outChannels, kernelSize: c.kernelSize, stride: c.stride, padding: (convInputs[i] as ConvLayerSpec).padding ?? 'same',
      activation: c.activation, pool: c.pool, dropout: c.dropout,
    })),
    dense: units.slice(0, -1), dropout, denseActivation, inputSize: [inputSize[0], inputSize[1]], inputChannels, classes, batchNorm, globalAvgPool,
  };
  return { spec, conv, dense, flatFeatures, globalAvgPool, ...stateShapes(conv, dense) };
}

/** Whether two specs describe the same network once defaults are filled in (planModel checks both). */
export function specsEqual(a: CnnSpec, b: CnnSpec): boolean {
  return JSON.stringify(planModel(a).spec) === JSON.stringify(planModel(b).spec);
}

/** Number of trainable values in a plan. */
export function countParameters(plan: ModelPlan): number {
  return plan.parameters.reduce((sum, p) => sum + shapeSize(p.shape), 0);
}
