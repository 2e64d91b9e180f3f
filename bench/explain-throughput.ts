// Explanation throughput, side by side in one run (issue 28: "explanations per second for saliency, IG
// (64 steps) and Grad-CAM on the 10,000 test images, side by side with the same computation in PyTorch
// 2.x"). convscope's explain() on its eager and scripted models (each build of the addon) against the
// same three methods written by hand with PyTorch's autograd (bench/pytorch_explain.py), on the same
// weights (one checkpoint, written here and read by both: torch.load on PyTorch's side), images, chunks
// of network inputs (explain()'s default 64), threads and OpenMP settings. Each contender runs in a
// process of its own: one untimed block, then one timed pass; rounds interleaved.
//
// Two PyTorch rows: the textbook module in NCHW (the reference of the ratios, as in the other
// sections) and the same with its first convolution's input channels-last, as convscope computes it.
//
// A benchmark of different computations is worthless, so every row carries a check: the maps of the
// untimed first block (64 images) against PyTorch channels-last's, max |difference| / max |PyTorch's
// map|, at most MAPS_AGREE[method]. Saliency and Grad-CAM agree to float rounding on every build
// (at most 7.2e-7, 2026-12-02). Integrated gradients evaluates 64 points along each path, and where
// the kernels round differently (PyTorch in NCHW, libtorch 1.13) a few units near a ReLU's or a max
// pooling's kink switch at some of them: 2.3e-3 (PyTorch NCHW) and 7.8e-4 (libtorch 1.13) on the
// seeded network's first 64 images, while convscope on libtorch 2.13 matches PyTorch channels-last
// to 1.7e-7. A different computation is further away: 60 steps instead of 64 differ by 1.5e-2, the
// right-point rule instead of the midpoint by 2.2e-2. A row whose maps differ says so beside its figures.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { DEBIAN_FASHION_MNIST_DIR } from '../src/data/datasets';
import { createModel } from '../src/nn/model';
import { defaultSpec, specsEqual } from '../src/nn/spec';
import { DEFAULT_CHUNK, defaultLayer } from '../src/probe/options';
import { loadModel } from '../src/train/load-model';
import { packageRoot } from '../src/util/package-root';
import { projectPython } from '../src/util/project-python';
import { EXPLAIN_METHODS, ExplainBenchMethod, IG_STEPS } from './explain-methods';
import { TEST_IMAGES } from './inference-throughput';
import { Contender, convscopeBuilds, interleavedRounds, spawnedContender, ThroughputRow, ThroughputSettings } from './training-throughput';

export const EXPLAIN_REFERENCE = 'PyTorch eager';
/** The row whose maps every other row's are checked against: PyTorch computing in convscope's layout. */
export const MAPS_REFERENCE = 'PyTorch channels-last';
/** Per method, the largest max |difference| between a row's first-block maps and MAPS_REFERENCE's, relative to the latter's largest |value| (see above). */
export const MAPS_AGREE: Record<ExplainBenchMethod, number> = { 'saliency': 1e-4, 'integrated-gradients': 5e-3, 'grad-cam': 1e-4 };
/** The layer PyTorch's Grad-CAM cuts the tutorial network at (bench/pytorch_explain.py's SplitNet). */
export const GRAD_CAM_LAYER = 'conv2.act';

export interface ExplainRow extends ThroughputRow {
  /** The first block's maps against PyTorch's: max |difference| / max |PyTorch's|; undefined for PyTorch's row or where a side wrote none. */
  mapsDifference?: number;
  /** 'same maps as PyTorch', or why the row does not measure the same computation. */
  agreement: string;
}

export interface ExplainSettings {
  /** Test images explained per pass (default: the 10,000 of the split; `--explain-limit`). */
  images: number;
  /** Network inputs per forward/backward pass, both sides (explain()'s default). */
  chunkSize: number;
  /** A checkpoint of the tutorial network (`--explain-model`); default: the network seeded with 1, untrained. */
  checkpoint?: string;
}

export const DEFAULT_EXPLAIN: ExplainSettings = { images: TEST_IMAGES, chunkSize: DEFAULT_CHUNK };

/**
 * The checkpoint every contender loads, written to `dir`: `source` re-saved (its spec must be the
 * tutorial network's, the one PyTorch's script builds), or the tutorial network seeded with 1.
 */
function benchCheckpoint(dir: string, source?: string): string {
  const model = source ? loadModel(source) : createModel(defaultSpec(), { seed: 1 });
  try {
    if (!specsEqual(model.plan.spec, defaultSpec())) {
      throw new Error(`--explain-model must be a checkpoint of the tutorial network (--preset tutorial): PyTorch's side builds that one; ${source} holds another spec`);
    }
    const layer = defaultLayer(model, 'grad-cam');
    if (layer !== GRAD_CAM_LAYER) throw new Error(`grad-cam's default layer is ${layer}, but bench/pytorch_explain.py cuts at ${GRAD_CAM_LAYER}`);
    const file = path.join(dir, 'model.pt');
    model.save(file);
    return file;
  } finally {
    model.dispose();
  }
}

const mapsFile = (dir: string, method: string, name: string) => path.join(dir, `${method}-${name.replace(/[^A-Za-z0-9.]+/g, '_')}.f32`);

export function explainContenders(method: ExplainBenchMethod, s: ThroughputSettings, e: ExplainSettings, checkpoint: string, dir: string): Contender[] {
  const script = path.join(packageRoot(), 'bench', 'pytorch_explain.py');
  const images = path.join(DEBIAN_FASHION_MNIST_DIR, 't10k-images-idx3-ubyte.gz');
  const pytorch = (name: string, flags: string[]) => spawnedContender(name, 'fp32', projectPython(), () => [script, '--method', method,
    '--checkpoint', checkpoint, '--images', images, '--count', String(e.images), '--chunk', String(e.chunkSize), '--threads', String(s.threads),
    '--steps', String(IG_STEPS), ...flags, '--maps-out', mapsFile(dir, method, name)]);
  const list: Contender[] = [pytorch(EXPLAIN_REFERENCE, []), pytorch(MAPS_REFERENCE, ['--channels-last'])];
  const worker = path.join(packageRoot(), 'dist', 'bench', 'convscope-explain-worker.js');
  for (const { addon, libtorch } of convscopeBuilds()) {
    for (const mode of ['eager', 'script'] as const) {
      const name = `convscope ${mode} (libtorch ${libtorch})`;
      list.push(spawnedContender(name, 'fp32', process.execPath,
        () => [worker, mode, method, checkpoint, String(e.chunkSize), String(e.images), mapsFile(dir, method, name)], { CONVSCOPE_ADDON: addon }));
    }
  }
  return list;
}

const readMaps = (file: string): Float32Array | undefined => {
  if (!fs.existsSync(file)) return undefined;
  const bytes = fs.readFileSync(file);
  return new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4);
};

/** max |a - b| / max |b|, or a reason why the two cannot be compared. */
export function relativeMapDifference(a: Float32Array, b: Float32Array): number | string {
  if (a.length !== b.length) return `${a.length} values against PyTorch's ${b.length}`;
  let diff = 0;
  let scale = 0;
  for (let i = 0; i < a.length; ++i) {
    diff = Math.max(diff, Math.abs(a[i] - b[i]));
    scale = Math.max(scale, Math.abs(b[i]));
  }
  return scale === 0 ? (diff === 0 ? 0 : Infinity) : diff / scale;
}

function agreementOf(row: ThroughputRow, method: ExplainBenchMethod, dir: string): ExplainRow {
  if (row.name === MAPS_REFERENCE) return { ...row, agreement: 'the maps the others are checked against' };
  const ours = readMaps(mapsFile(dir, method, row.name));
  const theirs = readMaps(mapsFile(dir, method, MAPS_REFERENCE));
  if (!ours || !theirs) return { ...row, agreement: 'NOT CHECKED: a side wrote no maps (see the errors)' };
  const difference = relativeMapDifference(ours, theirs);
  if (typeof difference === 'string') return { ...row, agreement: `NOT THE SAME COMPUTATION: ${difference}` };
  const shown = difference.toExponential(1);
  const tolerance = MAPS_AGREE[method];
  return {
    ...row, mapsDifference: difference,
    agreement: difference <= tolerance ? `same maps (${shown} <= ${tolerance})` : `NOT THE SAME COMPUTATION: maps differ by ${shown} > ${tolerance}`,
  };
}

/**
 * Each method in its own interleaved rounds. The checkpoint and the first blocks' maps live in a
 * temporary folder, removed at the end.
 */
export function benchExplainThroughput(s: ThroughputSettings, e: ExplainSettings = DEFAULT_EXPLAIN, only?: RegExp): Record<ExplainBenchMethod, { rows: ExplainRow[]; errors: string[] }> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'convscope-bench-explain-'));
  try {
    const checkpoint = benchCheckpoint(dir, e.checkpoint);
    const result = {} as Record<ExplainBenchMethod, { rows: ExplainRow[]; errors: string[] }>;
    for (const method of EXPLAIN_METHODS) {
      const list = explainContenders(method, s, e, checkpoint, dir).filter((c) => !only || c.name === EXPLAIN_REFERENCE || c.name === MAPS_REFERENCE || only.test(c.name));
      const { rows, errors } = interleavedRounds(list, EXPLAIN_REFERENCE, s);
      result[method] = { rows: rows.map((r) => agreementOf(r, method, dir)), errors };
    }
    return result;
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
