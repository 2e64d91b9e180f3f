// Issue 18's speed goal: the batch-norm network (the fast preset's) trains on the CPU at least as
// fast as PyTorch 2.x trains the same network, side by side in one run. PyTorch gets the module
// built from the same plan (bench/plan_net.py), in NCHW (the reference: the faster of the two in
// the first run, 2026-11-27) and in its channels-last CPU recipe; convscope runs on the default
// build. Same batch, Adam 1e-3, threads and data as the tutorial network's rows.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { planModel } from '../src/nn/spec';
import { presetOptions } from '../src/train/presets';
import { Contender, convscope, convscopeBuilds, GLIBC_KEEPS_MEMORY, interleavedRounds, pytorch, ThroughputRow, ThroughputSettings, WITHOUT_BLOCK_CACHE } from './training-throughput';

export const BATCH_NORM_PRESET = 'fast';
export const BATCH_NORM_REFERENCE = 'PyTorch NCHW (batch-norm net)';

export function benchBatchNormThroughput(s: ThroughputSettings): { rows: ThroughputRow[]; errors: string[] } {
  const planFile = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'convscope-bench-')), 'plan.json');
  fs.writeFileSync(planFile, JSON.stringify(planModel(presetOptions(BATCH_NORM_PRESET, 'fashion-mnist').spec)));
  const build = convscopeBuilds()[0];
  const list: Contender[] = [
    pytorch(BATCH_NORM_REFERENCE, 'fp32', ['--plan', planFile]),
    pytorch('PyTorch channels-last (batch-norm net)', 'fp32', ['--plan', planFile, '--channels-last']),
    pytorch('PyTorch NCHW, glibc keeps memory (batch-norm net)', 'fp32', ['--plan', planFile], GLIBC_KEEPS_MEMORY),
    ...(build ? [{}, WITHOUT_BLOCK_CACHE].flatMap((env) => (['eager', 'script'] as const).map((mode) => {
      const c = convscope(mode, 'fp32', build.addon, build.libtorch, BATCH_NORM_PRESET, env);
      return { ...c, name: `${c.name} (batch-norm net)` };
    })) : []),
  ];
  try {
    return interleavedRounds(list, BATCH_NORM_REFERENCE, s);
  } finally {
    fs.rmSync(path.dirname(planFile), { recursive: true, force: true });
  }
}
