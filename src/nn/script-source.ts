// Generates the TorchScript source for a plan: forward() computes the same function as the eager
// layers, from the same weights, with the same padding. Two choices make the graph faster on the CPU
// without changing a single value:
// - Max pooling runs on a channels-last tensor, and the tensor stays channels-last for the next
//   convolution: libtorch's CPU max-pool kernel is vectorised only for that layout, and oneDNN takes
//   channels-last input without reordering it. BENCHMARKS.md measures the effect (PyTorch running
//   the same rewrite is a row of `npm run bench`). The network's one-channel input is relabelled
//   channels-last (no copy), so the first convolution answers in that layout too.
// - A ReLU (or leaky ReLU) after a convolution is applied after its pooling: max(f(a), f(b)) =
//   f(max(a, b)) for these piecewise-linear increasing functions, bit for bit, and the gradient reaches
//   the same input element, so the activation and its backward touch a quarter of the elements.
//   Smooth activations keep their place: their float implementations are not guaranteed monotone.
//   Batch normalisation (an affine map per channel whose scale may be negative) stays before both.
//   In the training form, on the CPU, the pooling and that activation are one native operator
//   (convscope.max_pool2x2_act, native/pool_activation.h): one pass each way instead of
//   four, the same values, in training and in evaluation. The exported form calls only PyTorch's
//   own operators.
import { LEAKY_RELU_SLOPE } from '../core/native';
import { Activation, BATCH_NORM_EPS, BATCH_NORM_MOMENTUM, convolvesChannelsLast, ModelPlan } from './spec';

/** Each activation as a TorchScript expression of `x` (the training form, the export and the split sources of split-script.ts). */
export const SCRIPT_ACTIVATION: Record<Activation, string> = {
  relu: 'torch.relu(x)',
  elu: 'torch.elu(x)',
  tanh: 'torch.tanh(x)',
  sigmoid: 'torch.sigmoid(x)',
  leaky_relu: `torch.leaky_relu(x, ${LEAKY_RELU_SLOPE})`,
};

const COMMUTES_WITH_MAX_POOL: ReadonlySet<Activation> = new Set(['relu', 'leaky_relu']);

// c10::MemoryFormat::ChannelsLast: the name torch.channels_last is not resolvable in source compiled
// natively (it is a Python-side constant), the enum's value is.
const CHANNELS_LAST = 2;

// On the CPU in evaluation too: with the fused pooling and the block cache, channels-last evaluates
// the 10,000 test images of the tutorial network in 1.4 s against 2.6 s for NCHW (2026-12-01).
const POOL_METHOD = [
  'def pool(self, x):',
  '    if x.is_cuda:',
  '        return torch.max_pool2d(x, [2, 2], [2, 2])',
  `    return torch.max_pool2d(x.contiguous(memory_format=${CHANNELS_LAST}), [2, 2], [2, 2])`,
];

// Pooling and a commuting activation in one native pass on the CPU (without a gradient to keep, the
// op writes only the output); libtorch's ops on a GPU.
function fusedPoolMethod(activation: Activation): string[] {
  const slope = activation === 'leaky_relu' ? numberLiteral(LEAKY_RELU_SLOPE) : '0.0';
  return [
    `def pool_${activation}(self, x):`,
    '    if x.is_cuda:',
    '        x = torch.max_pool2d(x, [2, 2], [2, 2])',
    `        return ${SCRIPT_ACTIVATION[activation]}`,
    `    return convscope.max_pool2x2_act(x, ${slope})`,
  ];
}

// The input of the convolutions that compute channels-last on the CPU (convolvesChannelsLast); a
// convolution given a channels-last input returns one. The network's input (one channel) only needs
// its strides relabelled, no copy: contiguous() would return it unchanged (one channel is
// channels-last already by its rules), and with its NCHW strides the convolution would answer in
// NCHW, so that a batch norm after it met a channels-last gradient and took libtorch's serial
// fallback.
const CHANNELS_LAST_METHOD = [
  'def channels_last(self, x):',
  '    if x.is_cuda:',
  '        return x',
  '    if x.size(1) == 1 and x.is_contiguous():',
  '        return x.as_strided(x.size(), [x.size(2) * x.size(3), 1, x.size(3), 1])',
  `    return x.contiguous(memory_format=${CHANNELS_LAST})`,
];

/**
 * The export's standardisation of its [0, 1] input: one scalar pair, or one per channel, each channel
 * (x[:, c:c+1] - mean) / std with scalars as the training's gathering computes it (batch.h), joined
 * back with torch.cat. JS prints a double's shortest round-trip form, which TorchScript parses back to
 * the same double.
 */
function standardisationLines(norm: { mean: number | number[]; std: number | number[] }, channels: number): string[] {
  if (typeof norm.mean === 'number' && typeof norm.std === 'number') {
    return norm.mean !== 0 || norm.std !== 1 ? [`    x = (x - ${numberLiteral(norm.mean)}) / ${numberLiteral(norm.std)}`] : [];
  }
  const at = (v: number | number[], c: number): number => (typeof v === 'number' ? v : v[c]);
  const parts = Array.from({ length: channels }, (_, c) => `(x[:, ${c}:${c + 1}] - ${numberLiteral(at(norm.mean, c))}) / ${numberLiteral(at(norm.std, c))}`);
  return [`    x = torch.cat([${parts.join(', ')}], 1)`];
}

/**
 * The module's forward() for a plan. With `exported` (the file for PyTorch, carrying the input
 * standardisation) forward takes pixels in [0, 1] and standardises them itself, so that the file is
 * the whole model, and it calls only PyTorch's own operators; without it (the training form, compiled
 * inside convscope) forward takes images already standardised by the batch gathering and may call
 * convscope's native operators (native/script_ops.h), named `convscope.NAME` (the addon resolves
 * that name when it compiles the source).
 */
export function scriptSource(plan: ModelPlan, exported?: { mean: number | number[]; std: number | number[] }): string {
  const lines = ['def forward(self, x):'];
  if (exported) lines.push(...standardisationLines(exported, plan.spec.inputChannels));
  const fusedPools = new Set<Activation>();
  plan.conv.forEach((c, index) => {
    const [left, right, top, bottom] = c.padding;
    const stride = `[${c.stride}, ${c.stride}]`;
    const bias = c.bias ? `self.${c.name}.bias` : 'None';
    if (convolvesChannelsLast(c, index)) lines.push('    x = self.channels_last(x)');
    // The training form's convolution computes its bias gradient as a sum (native/conv2d.h).
    const conv2d = exported ? 'torch.conv2d' : 'convscope.conv2d';
    if (left === right && top === bottom) {
      lines.push(`    x = ${conv2d}(x, self.${c.name}.weight, ${bias}, ${stride}, [${top}, ${left}])`);
    } else {
      lines.push(`    x = torch.constant_pad_nd(x, [${left}, ${right}, ${top}, ${bottom}], 0.0)`);
      lines.push(`    x = ${conv2d}(x, self.${c.name}.weight, ${bias}, ${stride}, [0, 0])`);
    }
    if (c.batchNorm) lines.push(...batchNormLines(c.batchNorm, !exported));
    const activation = `    x = ${SCRIPT_ACTIVATION[c.activation]}`;
    if (!c.pool) lines.push(activation);
    else if (COMMUTES_WITH_MAX_POOL.has(c.activation) && !exported) {
      fusedPools.add(c.activation);
      lines.push(`    x = self.pool_${c.activation}(x)`);
    } else if (COMMUTES_WITH_MAX_POOL.has(c.activation)) lines.push('    x = self.pool(x)', activation);
    else lines.push(activation, '    x = self.pool(x)');
    if (c.dropout > 0) lines.push(`    x = torch.dropout(x, ${numberLiteral(c.dropout)}, self.training)`);
  });
  lines.push(plan.globalAvgPool ? '    x = torch.mean(x, [2, 3])' : '    x = torch.flatten(x, 1)');
  for (const d of plan.dense) {
    lines.push(`    x = torch.linear(x, self.${d.name}.weight, ${d.bias ? `self.${d.name}.bias` : 'None'})`);
    if (d.batchNorm) lines.push(...batchNormLines(d.batchNorm, !exported));
    if (d.activation) lines.push(`    x = ${SCRIPT_ACTIVATION[d.activation]}`);
    if (d.dropout > 0) lines.push(`    x = torch.dropout(x, ${d.dropout}, self.training)`);
  }
  lines.push('    return x');
  if (plan.conv.some((c) => c.pool && !(COMMUTES_WITH_MAX_POOL.has(c.activation) && !exported))) lines.push('', ...POOL_METHOD);
  for (const activation of fusedPools) lines.push('', ...fusedPoolMethod(activation));
  if (plan.conv.length > 0) lines.push('', ...CHANNELS_LAST_METHOD);
  return lines.join('\n') + '\n';
}

/**
 * nn.BatchNorm's forward: torch.batch_norm updates the running statistics in place when training,
 * and the module counts the batch (num_batches_tracked), as PyTorch's does. The training form calls
 * convscope.batch_norm, the same but for a data-parallel run that syncs batch norms
 * (native/sync_batch_norm.h), as the eager path's batchNorm does.
 */
export function batchNormLines(name: string, training = false): string[] {
  const m = `self.${name}`;
  const args = `x, ${m}.weight, ${m}.bias, ${m}.running_mean, ${m}.running_var, self.training, ` +
    `${numberLiteral(BATCH_NORM_MOMENTUM)}, ${numberLiteral(BATCH_NORM_EPS)}`;
  return [
    '    if self.training:',
    `        ${m}.num_batches_tracked.add_(1)`,
    training ? `    x = convscope.batch_norm(${args})` : `    x = torch.batch_norm(${args}, True)`,
  ];
}

/** A number as a TorchScript float literal (the shortest round-trip form, with a decimal point). */
export function numberLiteral(value: number): string {
  const text = String(value);
  return /[.eE]/.test(text) ? text : `${text}.0`;
}
