// Generates the TorchScript forward() for a plan: the same ops, in the same order and with the same
// padding, as the eager layers, so both paths compute identical values from identical weights.
import type { ModelPlan } from './spec';

const SCRIPT_ACTIVATION: Record<string, string> = {
  relu: 'torch.relu(x)',
  elu: 'torch.elu(x)',
  tanh: 'torch.tanh(x)',
  sigmoid: 'torch.sigmoid(x)',
  leaky_relu: 'torch.leaky_relu(x, 0.01)',
};

export function scriptSource(plan: ModelPlan): string {
  const lines = ['def forward(self, x):'];
  for (const c of plan.conv) {
    const [left, right, top, bottom] = c.padding;
    const stride = `[${c.stride}, ${c.stride}]`;
    if (left === right && top === bottom) {
      lines.push(`    x = torch.conv2d(x, self.${c.name}.weight, self.${c.name}.bias, ${stride}, [${top}, ${left}])`);
    } else {
      lines.push(`    x = torch.constant_pad_nd(x, [${left}, ${right}, ${top}, ${bottom}], 0.0)`);
      lines.push(`    x = torch.conv2d(x, self.${c.name}.weight, self.${c.name}.bias, ${stride}, [0, 0])`);
    }
    lines.push(`    x = ${SCRIPT_ACTIVATION[c.activation]}`);
    if (c.pool) lines.push('    x = torch.max_pool2d(x, [2, 2], [2, 2])');
  }
  lines.push('    x = torch.flatten(x, 1)');
  for (const d of plan.dense) {
    lines.push(`    x = torch.linear(x, self.${d.name}.weight, self.${d.name}.bias)`);
    if (d.activation) lines.push(`    x = ${SCRIPT_ACTIVATION[d.activation]}`);
    if (d.dropout > 0) lines.push(`    x = torch.dropout(x, ${d.dropout}, self.training)`);
  }
  lines.push('    return x');
  return lines.join('\n') + '\n';
}
