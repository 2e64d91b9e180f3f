// The ONNX file format: a network's graph written with ONNX's own message definitions (the
// onnx-proto package: onnx.proto compiled for protobufjs). nn/model.ts hands it the same plan that
// builds the eager layers and the TorchScript source. The model is self-contained: its input "pixels"
// is float32 (N, C, H, W) in [0, 1], standardised (per channel) inside the graph; its output "logits" is (N, classes).
import { onnx } from 'onnx-proto';
import { Activation, LEAKY_RELU_SLOPE } from '../core/native';

/** What the writer needs of a model's plan; nn/spec's ModelPlan has this shape. */
export interface OnnxNetworkPlan {
  spec: { inputSize: [number, number]; inputChannels: number; classes: number };
  /** padding is [left, right, top, bottom]. */
  conv: { name: string; kernelSize: number; stride: number; padding: [number, number, number, number]; activation: Activation; pool: boolean; bias: boolean; batchNorm: string | null }[];
  dense: { name: string; activation: Activation | null; bias: boolean; batchNorm: string | null }[];
  globalAvgPool: boolean;
}

/** The batch normalisation's epsilon (PyTorch's default, nn/spec's BATCH_NORM_EPS). */
export interface OnnxOptions { batchNormEps: number }

/** Pixels in [0, 1] are standardised as (x - mean) / std inside the graph; one value, or one per channel. */
export interface OnnxInputNorm { mean: number | number[]; std: number | number[] }

/** The norm's values as an initializer: a scalar for one value, [1, C, 1, 1] (broadcast over N, H, W) for one per channel. */
function normTensor(name: string, value: number | number[], channels: number): onnx.ITensorProto {
  if (typeof value === 'number') return floatTensor(name, [], new Float32Array([value]));
  return floatTensor(name, [1, channels, 1, 1], Float32Array.from(value));
}

/** The opset every operator used here has had its current form in since (Conv, MaxPool, Gemm, ...). */
export const ONNX_OPSET = 13;
const IR_VERSION = 7;

export interface OnnxWeights {
  name: string;
  shape: number[];
  values: Float32Array;
}

type Attribute = { name: string; i?: number; f?: number; ints?: number[] };

const ACTIVATION_NODES: Record<Activation, { op: string; attributes: Attribute[] }> = {
  relu: { op: 'Relu', attributes: [] },
  elu: { op: 'Elu', attributes: [{ name: 'alpha', f: 1.0 }] },
  tanh: { op: 'Tanh', attributes: [] },
  sigmoid: { op: 'Sigmoid', attributes: [] },
  leaky_relu: { op: 'LeakyRelu', attributes: [{ name: 'alpha', f: LEAKY_RELU_SLOPE }] },
};

function attribute(a: Attribute): onnx.IAttributeProto {
  if (a.ints) return { name: a.name, type: onnx.AttributeProto.AttributeType.INTS, ints: a.ints };
  if (a.f !== undefined) return { name: a.name, type: onnx.AttributeProto.AttributeType.FLOAT, f: a.f };
  return { name: a.name, type: onnx.AttributeProto.AttributeType.INT, i: a.i };
}

function floatTensor(name: string, shape: number[], values: Float32Array): onnx.ITensorProto {
  // raw_data is little-endian by ONNX's definition, as are the machines Node runs on.
  return { name, dims: shape, dataType: onnx.TensorProto.DataType.FLOAT, rawData: new Uint8Array(values.buffer, values.byteOffset, values.byteLength).slice() };
}

function valueInfo(name: string, dims: (number | string)[]): onnx.IValueInfoProto {
  return {
    name,
    type: { tensorType: { elemType: onnx.TensorProto.DataType.FLOAT, shape: { dim: dims.map((d) => (typeof d === 'string' ? { dimParam: d } : { dimValue: d })) } } },
  };
}

/** An activation ONNX export has no node for: a clear error naming it (every current one maps). */
function activationNode(activation: Activation, layer: string): { op: string; attributes: Attribute[] } {
  const node = ACTIVATION_NODES[activation];
  if (!node) throw new RangeError(`exportOnnx: ${layer} uses the activation "${activation}", which the ONNX export does not support (it supports ${Object.keys(ACTIVATION_NODES).join(', ')})`);
  return node;
}

/**
 * The ONNX model's bytes for a plan, its weights (PyTorch names and shapes, batch normalisation's
 * running statistics included) and its input standardisation.
 */
export function encodeOnnx(plan: OnnxNetworkPlan, weights: OnnxWeights[], inputNorm: OnnxInputNorm, options: OnnxOptions): Uint8Array {
  const nodes: onnx.INodeProto[] = [];
  const initializers: onnx.ITensorProto[] = weights.map((w) => floatTensor(w.name, w.shape, w.values));
  let current = 'pixels';
  let counter = 0;
  const add = (op: string, inputs: string[], attributes: Attribute[] = [], name?: string): string => {
    const output = name ?? `${op.toLowerCase()}_${counter++}`;
    nodes.push({ opType: op, input: inputs, output: [output], name: output, attribute: attributes.map(attribute) });
    return output;
  };
  // Evaluation-mode batch normalisation with the running statistics; dropout is the identity here.
  const batchNorm = (name: string, input: string): string => add('BatchNormalization',
    [input, `${name}.weight`, `${name}.bias`, `${name}.running_mean`, `${name}.running_var`], [{ name: 'epsilon', f: options.batchNormEps }], name);
  const channels = plan.spec.inputChannels;
  if (inputNorm.mean !== 0 || inputNorm.std !== 1) {
    initializers.push(normTensor('input_mean', inputNorm.mean, channels), normTensor('input_std', inputNorm.std, channels));
    current = add('Div', [add('Sub', [current, 'input_mean'], [], 'centred'), 'input_std'], [], 'standardised');
  }
  for (const c of plan.conv) {
    const [left, right, top, bottom] = c.padding;
    current = add('Conv', [current, `${c.name}.weight`, ...(c.bias ? [`${c.name}.bias`] : [])], [
      { name: 'kernel_shape', ints: [c.kernelSize, c.kernelSize] },
      { name: 'strides', ints: [c.stride, c.stride] },
      // ONNX orders pads as [top, left, bottom, right]; uneven ('same' with an even kernel) is allowed.
      { name: 'pads', ints: [top, left, bottom, right] },
    ], c.name);
    if (c.batchNorm) current = batchNorm(c.batchNorm, current);
    const act = activationNode(c.activation, c.name);
    current = add(act.op, [current], act.attributes, `${c.name}.act`);
    if (c.pool) current = add('MaxPool', [current], [{ name: 'kernel_shape', ints: [2, 2] }, { name: 'strides', ints: [2, 2] }], `${c.name}.pool`);
  }
  if (plan.globalAvgPool) current = add('GlobalAveragePool', [current], [], 'global_avg_pool');
  current = add('Flatten', [current], [{ name: 'axis', i: 1 }], 'flatten');
  plan.dense.forEach((d, i) => {
    const last = i === plan.dense.length - 1;
    // Gemm computes x W^T + b with PyTorch's (out, in) weight as it is. Dropout is the identity here.
    current = add('Gemm', [current, `${d.name}.weight`, ...(d.bias ? [`${d.name}.bias`] : [])], [{ name: 'transB', i: 1 }], last && !d.activation ? 'logits' : d.name);
    if (d.batchNorm) current = batchNorm(d.batchNorm, current);
    if (d.activation) {
      const act = activationNode(d.activation, d.name);
      current = add(act.op, [current], act.attributes, last ? 'logits' : `${d.name}.act`);
    }
  });
  const [h, w] = plan.spec.inputSize;
  const model: onnx.IModelProto = {
    irVersion: IR_VERSION,
    producerName: 'convscope',
    opsetImport: [{ domain: '', version: ONNX_OPSET }],
    docString: `convscope CNN. Input "pixels": float32 (N, ${channels}, ${h}, ${w}) in [0, 1], standardised inside with mean ${JSON.stringify(inputNorm.mean)} ` +
      `and std ${JSON.stringify(inputNorm.std)}. Output "logits": (N, ${plan.spec.classes}).`,
    graph: {
      name: 'convscope',
      node: nodes,
      initializer: initializers,
      input: [valueInfo('pixels', ['N', channels, h, w])],
      output: [valueInfo('logits', ['N', plan.spec.classes])],
    },
  };
  return onnx.ModelProto.encode(onnx.ModelProto.create(model)).finish();
}
