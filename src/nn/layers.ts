// The eager path's layers: each forward() runs native ops one by one (libtorch autograd records
// them), so a user can step through a pass, read any intermediate tensor or change the model in TS.
import { LEAKY_RELU_SLOPE, NativeTensor } from '../core/native';
import { ops } from '../core/ops';
import { Activation, BATCH_NORM_EPS, BATCH_NORM_MOMENTUM, ConvPlan, convolvesChannelsLast, DensePlan } from './spec';

export interface Layer {
  readonly name: string;
  forward(x: NativeTensor, training: boolean): NativeTensor;
}

export type ParameterLookup = (name: string) => NativeTensor;

export class Conv2d implements Layer {
  /** channelsLast: on the CPU (convolvesChannelsLast). */
  constructor(readonly name: string, private readonly plan: ConvPlan, private readonly param: ParameterLookup, private readonly channelsLast: boolean) {}
  forward(x: NativeTensor): NativeTensor {
    const { stride, padding } = this.plan;
    const bias = this.plan.bias ? this.param(`${this.name}.bias`) : null;
    return ops().conv2d(x, this.param(`${this.name}.weight`), bias, [stride, stride], padding, this.channelsLast);
  }
}

export class Linear implements Layer {
  constructor(readonly name: string, private readonly bias: boolean, private readonly param: ParameterLookup) {}
  forward(x: NativeTensor): NativeTensor {
    return ops().linear(x, this.param(`${this.name}.weight`), this.bias ? this.param(`${this.name}.bias`) : null);
  }
}

/** PyTorch's BatchNorm2d (after a conv) or BatchNorm1d (after a dense layer); training updates its running statistics. */
export class BatchNorm implements Layer {
  constructor(readonly name: string, private readonly param: ParameterLookup) {}
  forward(x: NativeTensor, training: boolean): NativeTensor {
    const p = (field: string) => this.param(`${this.name}.${field}`);
    return ops().batchNorm(x, p('weight'), p('bias'), p('running_mean'), p('running_var'), p('num_batches_tracked'),
      training, BATCH_NORM_MOMENTUM, BATCH_NORM_EPS);
  }
}

export class GlobalAvgPool implements Layer {
  readonly name = 'global_avg_pool';
  forward(x: NativeTensor): NativeTensor {
    return ops().globalAvgPool(x);
  }
}

export class ActivationLayer implements Layer {
  constructor(readonly name: string, readonly fn: Activation) {}
  forward(x: NativeTensor): NativeTensor {
    return ops().activation(x, this.fn, LEAKY_RELU_SLOPE);
  }
}

/**
 * A ReLU or leaky ReLU and the 2x2 max pooling after it, as one native op (native/pool_activation.h):
 * the same values (max commutes with these activations), one pass each way instead of four; without
 * a gradient to keep, one pass that writes only the output (what evaluation and prediction run).
 */
export class PooledActivation implements Layer {
  constructor(readonly name: string, private readonly fn: 'relu' | 'leaky_relu') {}
  forward(x: NativeTensor): NativeTensor {
    return ops().maxPoolActivation(x, this.fn, LEAKY_RELU_SLOPE);
  }
}

export class MaxPool2d implements Layer {
  constructor(readonly name: string, readonly size = 2) {}
  forward(x: NativeTensor): NativeTensor {
    return ops().maxPool2d(x, this.size, this.size);
  }
}

export class Dropout implements Layer {
  constructor(readonly name: string, private readonly rate: number) {}
  forward(x: NativeTensor, training: boolean): NativeTensor {
    return ops().dropout(x, this.rate, training);
  }
}

export class Flatten implements Layer {
  readonly name = 'flatten';
  forward(x: NativeTensor): NativeTensor {
    return ops().flatten(x);
  }
}

/**
 * The layer sequence of a plan, named after PyTorch's modules (conv1, conv1_bn, conv1.act, conv1.pool,
 * ...). `param` looks up parameters and buffers alike.
 */
export function buildLayers(conv: ConvPlan[], dense: DensePlan[], globalAvgPool: boolean, param: ParameterLookup): Layer[] {
  const layers: Layer[] = [];
  conv.forEach((c, index) => {
    layers.push(new Conv2d(c.name, c, param, convolvesChannelsLast(c, index)));
    if (c.batchNorm) layers.push(new BatchNorm(c.batchNorm, param));
    layers.push(new ActivationLayer(`${c.name}.act`, c.activation));
    if (c.pool) layers.push(new MaxPool2d(`${c.name}.pool`));
    if (c.dropout > 0) layers.push(new Dropout(`${c.name}.dropout`, c.dropout));
  });
  layers.push(globalAvgPool ? new GlobalAvgPool() : new Flatten());
  for (const d of dense) {
    layers.push(new Linear(d.name, d.bias, param));
    if (d.batchNorm) layers.push(new BatchNorm(d.batchNorm, param));
    if (d.activation) layers.push(new ActivationLayer(`${d.name}.act`, d.activation));
    if (d.dropout > 0) layers.push(new Dropout(`${d.name}.dropout`, d.dropout));
  }
  return layers;
}

/** The layers forward() runs: each ReLU or leaky ReLU followed by a 2x2 pooling becomes one PooledActivation. */
export function fusePoolActivation(layers: Layer[]): Layer[] {
  const fused: Layer[] = [];
  for (let i = 0; i < layers.length; ++i) {
    const layer = layers[i];
    const next = layers[i + 1];
    if (layer instanceof ActivationLayer && (layer.fn === 'relu' || layer.fn === 'leaky_relu') && next instanceof MaxPool2d && next.size === 2) {
      fused.push(new PooledActivation(`${layer.name}+pool`, layer.fn));
      ++i;
    } else {
      fused.push(layer);
    }
  }
  return fused;
}
