// Generates the TorchScript source for a plan: forward() computes the same function as the eager
// layers, from the same weights, with the same padding. Two choices make the graph faster on the CPU
// without changing a single value:
// - Max pooling runs on a channels-last tensor, and the tensor stays channels-last for the next
//   convolution: libtorch's CPU max-pool kernel is vectorised only for that layout, and oneDNN takes
//   channels-last input without reordering it. BENCHMARKS.md measures the effect (PyTorch running
//   the same rewrite is a row of `npm run bench`).
// - A ReLU (or leaky ReLU) after a convolution is applied after its pooling: max(f(a), f(b)) =
//   f(max(a, b)) for these piecewise-linear increasing functions, bit for bit, and the gradient reaches
//   the same input element, so the activation and its backward touch a quarter of the elements.
//   Smooth activations keep their place: their float implementations are not guaranteed monotone.
import { LEAKY_RELU_SLOPE } from '../core/native';
import type { Activation, ModelPlan } from './spec';

const SCRIPT_ACTIVATION: Record<Activation, string> = {
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

const POOL_METHOD = [
  'def pool(self, x):',
  '    if x.is_cuda:',
  '        return torch.max_pool2d(x, [2, 2], [2, 2])',
  `    return torch.max_pool2d(x.contiguous(memory_format=${CHANNELS_LAST}), [2, 2], [2, 2])`,
];

/**
 * The module's forward() for a plan. With `inputNorm` (the exported form) forward takes pixels in
 * [0, 1] and standardises them itself, so that the file is the whole model; without it (the training
 * form) forward takes images already standardised by the batch gathering.
 */
export function scriptSource(plan: ModelPlan, inputNorm?: { mean: number; std: number }): string {
  const lines = ['def forward(self, x):'];
  // JS prints a double's shortest round-trip form, which TorchScript parses back to the same double.
  if (inputNorm && (inputNorm.mean !== 0 || inputNorm.std !== 1)) lines.push(`    x = (x - ${numberLiteral(inputNorm.mean)}) / ${numberLiteral(inputNorm.std)}`);
  for (const c of plan.conv) {
    const [left, right, top, bottom] = c.padding;
    const stride = `[${c.stride}, ${c.stride}]`;
    if (left === right && top === bottom) {
      lines.push(`    x = torch.conv2d(x, self.${c.name}.weight, self.${c.name}.bias, ${stride}, [${top}, ${left}])`);
    } else {
      lines.push(`    x = torch.constant_pad_nd(x, [${left}, ${right}, ${top}, ${bottom}], 0.0)`);
      lines.push(`    x = torch.conv2d(x, self.${c.name}.weight, self.${c.name}.bias, ${stride}, [0, 0])`);
    }
    const activation = `    x = ${SCRIPT_ACTIVATION[c.activation]}`;
    if (!c.pool) lines.push(activation);
    else if (COMMUTES_WITH_MAX_POOL.has(c.activation)) lines.push('    x = self.pool(x)', activation);
    else lines.push(activation, '    x = self.pool(x)');
  }
  lines.push('    x = torch.flatten(x, 1)');
  for (const d of plan.dense) {
    lines.push(`    x = torch.linear(x, self.${d.name}.weight, self.${d.name}.bias)`);
    if (d.activation) lines.push(`    x = ${SCRIPT_ACTIVATION[d.activation]}`);
    if (d.dropout > 0) lines.push(`    x = torch.dropout(x, ${d.dropout}, self.training)`);
  }
  lines.push('    return x');
  if (plan.conv.some((c) => c.pool)) lines.push('', ...POOL_METHOD);
  return lines.join('\n') + '\n';
}

function numberLiteral(value: number): string {
  const text = String(value);
  return /[.eE]/.test(text) ? text : `${text}.0`;
}
