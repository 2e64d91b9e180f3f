// TorchScript for a network cut in two at a named layer: a prefix module that returns the layer's
// output and a suffix module that takes it and returns the logits. Layer methods (Grad-CAM,
// Score-CAM) need the gradient at a layer, and a scripted model has no module hooks; compiled over
// the model's own tensors (shared, not copied), the two halves are still TorchScript running the
// model's weights. One source entry per layer of buildLayers() (layers.ts), by the same names
// (conv1, conv1_bn, conv1.act, conv1.pool, ...), so that a cut means the same place on both paths.
// The entries call only PyTorch's own operators in NCHW layout, without the training form's fused
// pooling: a cut may fall between an activation and its pooling, which the fused form swaps.
import { ModelPlan } from './spec';
import { batchNormLines, numberLiteral, SCRIPT_ACTIVATION } from './script-source';

/** One layer's lines of forward() (each transforms `x`), named as buildLayers() names the layer. */
export interface ScriptLayer {
  name: string;
  lines: string[];
}

/** The layers of a plan in forward order, each as TorchScript lines; the names are buildLayers()'s. */
export function scriptLayers(plan: ModelPlan): ScriptLayer[] {
  const layers: ScriptLayer[] = [];
  for (const c of plan.conv) {
    const [left, right, top, bottom] = c.padding;
    const stride = `[${c.stride}, ${c.stride}]`;
    const bias = c.bias ? `self.${c.name}.bias` : 'None';
    layers.push({
      name: c.name,
      lines: left === right && top === bottom
        ? [`    x = torch.conv2d(x, self.${c.name}.weight, ${bias}, ${stride}, [${top}, ${left}])`]
        : [`    x = torch.constant_pad_nd(x, [${left}, ${right}, ${top}, ${bottom}], 0.0)`,
          `    x = torch.conv2d(x, self.${c.name}.weight, ${bias}, ${stride}, [0, 0])`],
    });
    if (c.batchNorm) layers.push({ name: c.batchNorm, lines: batchNormLines(c.batchNorm) });
    layers.push({ name: `${c.name}.act`, lines: [`    x = ${SCRIPT_ACTIVATION[c.activation]}`] });
    if (c.pool) layers.push({ name: `${c.name}.pool`, lines: ['    x = torch.max_pool2d(x, [2, 2], [2, 2])'] });
    if (c.dropout > 0) layers.push({ name: `${c.name}.dropout`, lines: [`    x = torch.dropout(x, ${numberLiteral(c.dropout)}, self.training)`] });
  }
  layers.push(plan.globalAvgPool
    ? { name: 'global_avg_pool', lines: ['    x = torch.mean(x, [2, 3])'] }
    : { name: 'flatten', lines: ['    x = torch.flatten(x, 1)'] });
  for (const d of plan.dense) {
    layers.push({ name: d.name, lines: [`    x = torch.linear(x, self.${d.name}.weight, ${d.bias ? `self.${d.name}.bias` : 'None'})`] });
    if (d.batchNorm) layers.push({ name: d.batchNorm, lines: batchNormLines(d.batchNorm) });
    if (d.activation) layers.push({ name: `${d.name}.act`, lines: [`    x = ${SCRIPT_ACTIVATION[d.activation]}`] });
    if (d.dropout > 0) layers.push({ name: `${d.name}.dropout`, lines: [`    x = torch.dropout(x, ${numberLiteral(d.dropout)}, self.training)`] });
  }
  return layers;
}

/**
 * The two halves of the network cut after `layer`: `prefix` maps standardised images [N, 1, H, W]
 * to that layer's output, `suffix` maps that output to the logits (the identity if `layer` is the
 * last). Both take the model's parameter and buffer names (conv1.weight, conv1_bn.running_mean, ...).
 * @example const { prefix, suffix } = splitScriptSources(planModel(defaultSpec()), 'conv2.act');
 */
export function splitScriptSources(plan: ModelPlan, layer: string): { prefix: string; suffix: string } {
  const layers = scriptLayers(plan);
  const cut = layers.findIndex((l) => l.name === layer);
  if (cut < 0) throw new RangeError(`Expected one of ${layers.map((l) => l.name).join(', ')} for layer but received "${layer}"`);
  const source = (part: ScriptLayer[]) => ['def forward(self, x):', ...part.flatMap((l) => l.lines), '    return x', ''].join('\n');
  return { prefix: source(layers.slice(0, cut + 1)), suffix: source(layers.slice(cut + 1)) };
}

