// The eager path's layers: each forward() runs native ops one by one (libtorch autograd records
// them), so a user can step through a pass, read any intermediate tensor or change the model in TS.
import { LEAKY_RELU_SLOPE, NativeTensor } from '../core/native';
import { ops } from '../core/ops';
import type { Activation, ConvPlan, DensePlan } from './spec';

export interface Layer {
  readonly name: string;
  forward(x: NativeTensor, training: boolean): NativeTensor;
}

export type ParameterLookup = (name: string) => NativeTensor;

export class Conv2d implements Layer {
  constructor(readonly name: string, private readonly plan: ConvPlan, private readonly param: ParameterLookup) {}
  forward(x: NativeTensor): NativeTensor {
    const { stride, padding } = this.plan;
    return ops().conv2d(x, this.param(`${this.name}.weight`), this.param(`${this.name}.bias`), [stride, stride], padding);
  }
}

export class Linear implements Layer {
  constructor(readonly name: string, private readonly param: ParameterLookup) {}
  forward(x: NativeTensor): NativeTensor {
    return ops().linear(x, this.param(`${this.name}.weight`), this.param(`${this.name}.bias`));
  }
}

export class ActivationLayer implements Layer {
  constructor(readonly name: string, private readonly fn: Activation) {}
  forward(x: NativeTensor): NativeTensor {
    return ops().activation(x, this.fn, LEAKY_RELU_SLOPE);
  }
}

export class MaxPool2d implements Layer {
  constructor(readonly name: string, private readonly size = 2) {}
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

/** The layer sequence of a plan, named after PyTorch's modules (conv1, conv1.act, conv1.pool, ...). */
export function buildLayers(conv: ConvPlan[], dense: DensePlan[], param: ParameterLookup): Layer[] {
  const layers: Layer[] = [];
  for (const c of conv) {
    layers.push(new Conv2d(c.name, c, param), new ActivationLayer(`${c.name}.act`, c.activation));
    if (c.pool) layers.push(new MaxPool2d(`${c.name}.pool`));
  }
  layers.push(new Flatten());
  for (const d of dense) {
    layers.push(new Linear(d.name, param));
    if (d.activation) layers.push(new ActivationLayer(`${d.name}.act`, d.activation));
    if (d.dropout > 0) layers.push(new Dropout(`${d.name}.dropout`, d.dropout));
  }
  return layers;
}
