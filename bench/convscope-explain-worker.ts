// One convscope contender of the explanation benchmark (bench/explain-throughput.ts), in its own
// process so that each can load a different build of the addon ($CONVSCOPE_ADDON). Prints one JSON line.
// usage: node dist/bench/convscope-explain-worker.js MODE METHOD CHECKPOINT CHUNK IMAGES [MAPS_OUT]
// explain() of the first IMAGES Fashion-MNIST test images (uint8, as a caller passes them) with the
// model of CHECKPOINT loaded in MODE (eager or script), chunks of CHUNK network inputs. One untimed
// block of CHUNK images first, whose maps go to MAPS_OUT as raw float32 (the bench compares them with
// PyTorch's), then one timed call over the IMAGES images: the figure is what a caller waits for.
import * as fs from 'fs';
import { loadDataset } from '../src/data/datasets';
import { loadModel } from '../src/train/load-model';
import { takeImages } from '../src/train/evaluate';
import { explain } from '../src/probe/explain';
import type { ExplainOptions } from '../src/probe/options';
import { torchInfo } from '../src/index';
import type { InMemoryDataset } from '../src/train/options';
import { EXPLAIN_METHODS, ExplainBenchMethod, explainOptions } from './explain-methods';

async function main(): Promise<void> {
  const [mode, method, checkpoint, chunk, images, mapsOut] = process.argv.slice(2);
  if (mode !== 'eager' && mode !== 'script') throw new Error(`MODE must be eager or script, not ${mode}`);
  if (!EXPLAIN_METHODS.includes(method as ExplainBenchMethod)) throw new Error(`METHOD must be one of ${EXPLAIN_METHODS.join(', ')}, not ${method}`);
  const chunkSize = Number(chunk);
  const test = takeImages((loadDataset('fashion-mnist') as unknown as InMemoryDataset).test, Number(images));
  const pixels = test.images.length / test.count;
  const model = loadModel(checkpoint, { mode });
  const options: ExplainOptions = { ...explainOptions(method as ExplainBenchMethod), chunkSize };
  const firstBlock = await explain(model, test.images.subarray(0, Math.min(test.count, chunkSize) * pixels), options);
  if (mapsOut) fs.writeFileSync(mapsOut, Buffer.from(firstBlock.maps.buffer, firstBlock.maps.byteOffset, firstBlock.maps.byteLength));
  const started = performance.now();
  const result = await explain(model, test.images, options);
  const seconds = (performance.now() - started) / 1000;
  model.dispose();
  process.stdout.write(JSON.stringify({ imagesPerSecond: test.count / seconds, seconds, images: result.shape[0], torch: torchInfo().version }) + '\n');
}

main().catch((err) => {
  process.stderr.write(`${(err as Error).message}\n`);
  process.exitCode = 1;
});
