// One process (or one rank) of `npm run bench -- distributed`: one epoch of the tutorial network on
// the first `limit` Fashion-MNIST images; rank 0 (or the single process) writes its figures to
// $BENCH_OUT. Options in $BENCH_DISTRIBUTED: { limit, batchSize, mode, device, distributed, batchNorm,
// syncBatchNorm }. On CUDA every row runs without the CUDA graph (a group replays one only when
// asked), so that the rows compare like with like.
import * as fs from 'fs';
import { countParameters, defaultSpec, loadDataset, planModel, trainCnn } from '../src/index';

async function main(): Promise<void> {
  const o = JSON.parse(process.env.BENCH_DISTRIBUTED ?? '{}') as {
    limit: number; batchSize: number; mode: 'eager' | 'script'; device: 'cpu' | 'cuda'; distributed: boolean; batchNorm: boolean; syncBatchNorm: boolean;
  };
  const dataset = loadDataset('fashion-mnist', { limit: { train: o.limit, test: 1000 } });
  const spec = { ...defaultSpec(), batchNorm: o.batchNorm };
  const r = await trainCnn({ dataset, spec, batchSize: o.batchSize, mode: o.mode, device: o.device, epochs: 1, seed: 1, dropLast: true,
    ...(o.device === 'cuda' ? { cudaGraph: false } : {}), ...(o.distributed ? { distributed: { syncBatchNorm: o.syncBatchNorm } } : {}) });
  const [epoch] = r.history;
  r.model.dispose();
  if ((process.env.RANK ?? '0') === '0') {
    fs.writeFileSync(process.env.BENCH_OUT!, JSON.stringify({
      imagesPerSecond: epoch.imagesPerSecond, seconds: epoch.seconds, parameters: countParameters(planModel(spec)), buckets: r.distributed?.buckets,
    }));
  }
}

main().catch((err) => {
  process.stderr.write(`bench distributed worker: ${(err as Error).message}\n`);
  process.exitCode = 1;
});
