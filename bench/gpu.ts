// The GPU benchmark of issue 14, for a CUDA machine: convscope eager, script, and script + CUDA graph
// (each in its own process: bench/gpu-worker.ts) against PyTorch's eager loop, torch.compile
// (reduce-overhead) and its whole-step CUDA graph (bench/pytorch_gpu_reference.py), all on the same
// card in one call. Default network, Fashion-MNIST's 60k training images resident on the device,
// batch 128, Adam 1e-3, fp32, last partial batch dropped (468 steps); one warm-up epoch, then the
// median of --epochs epochs; chunked evaluation of the 10k test images (chunks of 1000), median of 5.
//
// usage: node dist/bench/gpu.js [--epochs N] [--out FILE] [--timeout S (per contender, default 240)]
//        node dist/bench/gpu.js --device cpu --limit 256 --epochs 1    (smoke test of the harness on a CPU;
//        script-graph and PyTorch's graph fail there by design, torch.compile is skipped)
// Data: loadDataset's search ($CONVSCOPE_DATA, the cache, Debian's copy); PyTorch is $CONVSCOPE_PYTHON
// or python3. Prints a table and writes every figure to --out (default bench/results/gpu.json).
// A contender that fails is recorded with its error; the others still run. Exit status 1 when CUDA
// is missing (on --device cuda) or when every contender failed.
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { IDX_FILE_NAMES } from '../src/data/checksums';
import { loadDataset, torchInfo } from '../src/index';
import { GPU_CONTENDERS, GpuWorkerResult } from './gpu-worker';

const PYTORCH_VARIANTS = ['eager', 'compile', 'graph'] as const;
const ROOT = path.join(__dirname, '..', '..');

interface Row {
  name: string;
  kind: 'convscope' | 'pytorch';
  variant: string;
  secondsPerEpoch?: number[];
  median?: number;
  warmupSeconds?: number;
  evalMs?: number;
  ratioToPytorchEager?: number;
  error?: string;
  skipped?: string;
  detail?: Record<string, unknown>;
}

interface Goal {
  goal: string;
  limit: number;
  unit: 's' | 'ms';
  value?: number;
  met: boolean;
}

function parseArgs(argv: string[]): { epochs: number; out: string; device: 'cuda' | 'cpu'; limit?: number; timeoutS: number } {
  const value = (flag: string): string | undefined => {
    const at = argv.indexOf(flag);
    return at >= 0 ? argv[at + 1] : undefined;
  };
  for (let i = 0; i < argv.length; i += 2) {
    if (!['--epochs', '--out', '--device', '--limit', '--timeout'].includes(argv[i]) || argv[i + 1] === undefined) {
      throw new Error(`usage: node dist/bench/gpu.js [--epochs N] [--out FILE] [--timeout S] [--device cuda|cpu --limit N]; got ${argv.join(' ')}`);
    }
  }
  const epochs = Number(value('--epochs') ?? 3);
  const device = (value('--device') ?? 'cuda') as 'cuda' | 'cpu';
  const limit = value('--limit') !== undefined ? Number(value('--limit')) : undefined;
  if (!Number.isInteger(epochs) || epochs < 1) throw new Error(`--epochs must be a whole number >= 1, got ${value('--epochs')}`);
  if (device !== 'cuda' && device !== 'cpu') throw new Error(`--device must be cuda or cpu, got ${device}`);
  if (limit !== undefined && !(Number.isInteger(limit) && limit >= 128)) throw new Error(`--limit must be a whole number >= 128, got ${value('--limit')}`);
  if (device === 'cpu' && limit === undefined) throw new Error('--device cpu is a smoke test of the harness: give --limit too (e.g. --limit 512)');
  return { epochs, device, limit, out: value('--out') ?? path.join(ROOT, 'bench', 'results', 'gpu.json'), timeoutS: Number(value('--timeout') ?? 240) };
}

/** The last line of a child's stdout that parses as JSON, or an error naming what went wrong. */
function runJson(command: string, args: string[], timeoutS: number): { json?: Record<string, unknown>; error?: string } {
  const run = spawnSync(command, args, { encoding: 'utf8', timeout: timeoutS * 1000, maxBuffer: 64 << 20, env: process.env });
  const lines = (run.stdout ?? '').trim().split('\n').reverse();
  for (const line of lines) {
    try {
      const json = JSON.parse(line);
      if (run.status === 0 && json && typeof json === 'object') return { json };
    } catch { /* not the JSON line */ }
  }
  const why = run.error ? String(run.error) : run.signal ? `killed by ${run.signal}${run.signal === 'SIGTERM' ? ` (timeout ${timeoutS} s?)` : ''}` : `exit status ${run.status}`;
  const tail = (run.stderr ?? '').trim().split('\n').slice(-12).join('\n');
  return { error: `${why}${tail ? `\n${tail}` : ''}` };
}

/** The four IDX files loadDataset found (raw preferred, else .gz), for the Python side to read. */
function datasetFiles(): Record<string, string> {
  const dir = loadDataset('fashion-mnist', { verify: false }).source.dir;
  const files: Record<string, string> = {};
  for (const name of IDX_FILE_NAMES) {
    const raw = path.join(dir, name);
    files[name] = fs.existsSync(raw) ? raw : `${raw}.gz`;
  }
  return files;
}

function cardName(): string {
  const smi = spawnSync('nvidia-smi', ['--query-gpu=name,driver_version,memory.total', '--format=csv,noheader'], { encoding: 'utf8' });
  return smi.status === 0 ? smi.stdout.trim().split('\n')[0] : 'unknown (no nvidia-smi)';
}

const fmt = (v: number | undefined, digits: number): string => (v === undefined || !Number.isFinite(v) ? '-' : v.toFixed(digits));

function main(): void {
  const args = parseArgs(process.argv.slice(2));
  const info = torchInfo();
  if (args.device === 'cuda' && !info.cuda) {
    process.stderr.write(`gpu bench: no CUDA: torchInfo().cuda is false (libtorch ${info.version} at ${info.libtorchPath}, `
      + `builtWithCuda ${info.builtWithCuda}, ${info.deviceCount} devices). Build the addon against a CUDA libtorch on a GPU machine, `
      + `or smoke-test the harness with --device cpu --limit 512.\n`);
    process.exit(1);
  }
  const python = process.env.CONVSCOPE_PYTHON || 'python3';
  const card = args.device === 'cuda' ? cardName() : `cpu: ${os.cpus()[0]?.model ?? 'unknown'}`;
  const files = datasetFiles();
  process.stdout.write(`GPU benchmark on ${card}; convscope libtorch ${info.version}; ${args.epochs} timed epochs after a warm-up; ${args.limit ?? 60000} training images\n`);

  const rows: Row[] = [];
  const worker = path.join(__dirname, 'gpu-worker.js');
  for (const contender of GPU_CONTENDERS) {
    process.stdout.write(`  convscope ${contender} ...\n`);
    const workerArgs = [worker, contender, String(args.epochs), args.device, ...(args.limit ? [String(args.limit)] : [])];
    const { json, error } = runJson(process.execPath, workerArgs, args.timeoutS);
    const r = json as unknown as GpuWorkerResult | undefined;
    rows.push({
      name: `convscope ${contender}`, kind: 'convscope', variant: contender, error,
      ...(r ? { secondsPerEpoch: r.secondsPerEpoch, median: r.median, warmupSeconds: r.warmupSeconds, evalMs: r.evalMs, detail: r as unknown as Record<string, unknown> } : {}),
    });
  }
  const script = path.join(ROOT, 'bench', 'pytorch_gpu_reference.py');
  for (const variant of PYTORCH_VARIANTS) {
    if (args.device === 'cpu' && variant === 'compile') {
      // Inductor compiling C++ kernels takes minutes of CPU: the smoke test checks the harness, not it.
      rows.push({ name: `pytorch ${variant}`, kind: 'pytorch', variant, skipped: 'torch.compile is skipped on the CPU smoke test' });
      continue;
    }
    process.stdout.write(`  pytorch ${variant} ...\n`);
    const pyArgs = [script, '--variant', variant, '--epochs', String(args.epochs), '--device', args.device,
      '--images', files['train-images-idx3-ubyte'], '--labels', files['train-labels-idx1-ubyte'],
      '--test-images', files['t10k-images-idx3-ubyte'], '--test-labels', files['t10k-labels-idx1-ubyte'],
      ...(args.limit ? ['--limit', String(args.limit)] : [])];
    const { json, error } = runJson(python, pyArgs, args.timeoutS);
    rows.push({
      name: `pytorch ${variant}`, kind: 'pytorch', variant, error,
      ...(json ? { secondsPerEpoch: json.secondsPerEpoch as number[], median: json.median as number, warmupSeconds: json.warmupSeconds as number, evalMs: json.evalMs as number, detail: json } : {}),
    });
  }

  const pytorchEager = rows.find((r) => r.name === 'pytorch eager')?.median;
  for (const r of rows) if (r.median !== undefined && pytorchEager !== undefined) r.ratioToPytorchEager = r.median / pytorchEager;
  const byName = (name: string) => rows.find((r) => r.name === name);
  const goal = (text: string, limit: number, unit: 's' | 'ms', value: number | undefined): Goal => ({ goal: text, limit, unit, value, met: value !== undefined && value <= limit });
  const goals: Goal[] = [
    goal('convscope script + CUDA graph, s per epoch', 0.35, 's', byName('convscope script-graph')?.median),
    goal('convscope eager, s per epoch', 1.0, 's', byName('convscope eager')?.median),
    goal('chunked evaluation of the test set (script model), ms', 15, 'ms', byName('convscope script-graph')?.evalMs ?? byName('convscope script')?.evalMs),
    goal('chunked evaluation of the test set (eager model), ms', 15, 'ms', byName('convscope eager')?.evalMs),
  ];

  process.stdout.write(`\n  ${'contender'.padEnd(24)}${'s/epoch (median)'.padStart(18)}${'epochs'.padStart(28)}${'vs PyTorch eager'.padStart(18)}${'eval ms'.padStart(10)}\n`);
  for (const r of rows) {
    const epochs = r.secondsPerEpoch ? r.secondsPerEpoch.map((s) => s.toFixed(3)).join(' ') : '';
    const ratio = r.ratioToPytorchEager !== undefined ? `${r.ratioToPytorchEager.toFixed(2)}x` : '-';
    process.stdout.write(`  ${r.name.padEnd(24)}${(r.error ? 'FAILED' : r.skipped ? 'skipped' : fmt(r.median, 3)).padStart(18)}${epochs.padStart(28)}${ratio.padStart(18)}${fmt(r.evalMs, 1).padStart(10)}\n`);
  }
  process.stdout.write(`  (time per epoch as a fraction of PyTorch eager's: lower is faster)\n\nGoals (issue 14)${args.device === 'cpu' ? ' — CPU smoke test, the goals are for CUDA' : ''}\n`);
  for (const g of goals) process.stdout.write(`  ${g.goal.padEnd(56)} <= ${String(g.limit).padEnd(5)}${fmt(g.value, g.unit === 's' ? 3 : 1).padStart(9)} ${g.unit}  ${g.met ? 'met' : 'MISSED'}\n`);
  for (const r of rows) {
    const replays = (r.detail as { cudaGraphReplays?: number } | undefined)?.cudaGraphReplays;
    if (replays !== undefined && (r.variant === 'script-graph') !== replays > 0) {
      process.stdout.write(`  WARNING: ${r.name} replayed the CUDA graph ${replays} times\n`);
    }
  }
  const failed = rows.filter((r) => r.error);
  for (const r of failed) process.stdout.write(`\n${r.name} failed: ${r.error}\n`);

  const report = {
    date: new Date().toISOString(), card, device: args.device, node: process.version, convscopeLibtorch: info.version,
    command: `node ${path.relative(ROOT, __filename)} ${process.argv.slice(2).join(' ')}`.trim(),
    settings: { network: 'default (TF layers tutorial)', batch: 128, optimizer: 'adam', learningRate: 1e-3, precision: 'fp32', dropLast: true, images: args.limit ?? 60000, epochs: args.epochs, evalChunk: 1000, evalRuns: 5 },
    rows, goals,
  };
  fs.mkdirSync(path.dirname(path.resolve(args.out)), { recursive: true });
  fs.writeFileSync(args.out, JSON.stringify(report, null, 2) + '\n');
  process.stdout.write(`\nwritten to ${args.out}\n`);
  if (failed.length === rows.filter((r) => !r.skipped).length) process.exitCode = 1;
}

try {
  main();
} catch (err) {
  process.stderr.write(`gpu bench: ${(err as Error).message}\n`);
  process.exitCode = 1;
}
