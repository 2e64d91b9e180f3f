// Training throughput, side by side in one run: convscope's eager and scripted paths, built on the
// project's libtorch 2.x (the default) and on Debian's 1.13 (the fallback), against PyTorch's own loop
// in the project's PyTorch 2.x (.venv): eager, channels-last, bf16 autocast + channels-last,
// torch.compile, and the scripted graph's rewrite. Same network, batch, optimizer (Adam 1e-3),
// threads, OpenMP settings and data. Every contender runs in a process of its own, and rounds are
// interleaved so that machine noise hits all alike.
// With `--peers` (issue 19) Keras (model.fit on TensorFlow, bench/keras_reference.py in .venv-peers) and
// tfjs-node (bench/tfjs_reference.js on .peers/tfjs) join the same rounds; scripts/setup-peers.sh sets
// them up, and where it has not run their rows say so instead of failing.
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { DEBIAN_FASHION_MNIST_DIR } from '../src/data/datasets';
import { openMpDefaults } from '../src/core/native';
import { packageRoot } from '../src/util/package-root';
import { projectPython } from '../src/util/project-python';
import { mklAnyCpuPreload } from './mkl-preload';
import { median } from './stats';

export interface ThroughputSettings { batchSize: number; warmupSteps: number; steps: number; rounds: number; threads: number }
export const DEFAULT_THROUGHPUT: ThroughputSettings = { batchSize: 128, warmupSteps: 5, steps: 40, rounds: 8, threads: os.availableParallelism() };

export interface Contender {
  /** Row label, e.g. 'convscope script (libtorch 2.13.0)' or 'PyTorch channels-last'. */
  name: string;
  precision: 'fp32' | 'bf16';
  run(s: ThroughputSettings): number | string;
  /** Set where the contender cannot run here (a peer not set up): its row shows this and it never runs. */
  unavailable?: string;
}

export interface ThroughputRow {
  name: string;
  precision: 'fp32' | 'bf16';
  imagesPerSecond: number[];
  /** Median over rounds of this row's images/s divided by PyTorch eager fp32's in the same round. */
  pairedRatio?: number;
  /** Why the row has no figures (a contender that is not set up). */
  note?: string;
}

export const REFERENCE = 'PyTorch eager';

// The same OpenMP settings for every contender, PyTorch's too (native.ts sets them before libtorch loads).
const childEnv = (extra: Record<string, string> = {}) => ({ ...process.env, ...openMpDefaults(process.env), ...extra });

/**
 * A contender in a process of its own: `command args(s)...` with the shared OpenMP settings and `env`,
 * whose last line of output is JSON with imagesPerSecond. A failed run gives its stderr's last line.
 */
export function spawnedContender(name: string, precision: 'fp32' | 'bf16', command: string, args: (s: ThroughputSettings) => string[],
  env: Record<string, string> = {}, unavailable?: string): Contender {
  return {
    name, precision, unavailable,
    run: (s) => {
      const run = spawnSync(command, args(s), { encoding: 'utf8', env: childEnv(env) });
      if (run.status !== 0) return `${name} (${precision}) failed: ${(run.stderr || String(run.error)).trim().split('\n').pop()}`;
      return (JSON.parse(run.stdout.trim().split('\n').pop()!) as { imagesPerSecond: number }).imagesPerSecond;
    },
  };
}

const trainingData = () => ['--images', path.join(DEBIAN_FASHION_MNIST_DIR, 'train-images-idx3-ubyte.gz'),
  '--labels', path.join(DEBIAN_FASHION_MNIST_DIR, 'train-labels-idx1-ubyte.gz')];

/** The step counts, batch and threads every training contender takes. */
const trainingSteps = (s: ThroughputSettings) => ['--steps', String(s.steps), '--warmup', String(s.warmupSteps),
  '--batch', String(s.batchSize), '--threads', String(s.threads)];

/** One of PyTorch's variants, from bench/pytorch_reference.py in the project's Python. */
export function pytorch(name: string, precision: 'fp32' | 'bf16', flags: string[], env: Record<string, string> = {}): Contender {
  const script = path.join(packageRoot(), 'bench', 'pytorch_reference.py');
  return spawnedContender(name, precision, projectPython(), (s) => [script, ...trainingData(), ...trainingSteps(s), '--precision', precision, ...flags], env);
}

/** The peers' folders, made by scripts/setup-peers.sh. */
export const PEERS_VENV = () => path.join(packageRoot(), '.venv-peers');
export const PEERS_TFJS = () => path.join(packageRoot(), '.peers', 'tfjs');

/** The version in the name of the first folder under `dir` that starts with `prefix` (a dist-info), or ''. */
function versionIn(dir: string, prefix: string): string {
  const found = fs.existsSync(dir) ? fs.readdirSync(dir).find((f) => f.startsWith(prefix)) : undefined;
  return found ? found.slice(prefix.length).replace(/\.dist-info$/, '') : '';
}

/** A peer in a process of its own: `command args... --steps ... --threads T`, one JSON line out. */
function peer(name: string, unavailable: string | undefined, command: string, args: string[]): Contender {
  return spawnedContender(name, 'fp32', command, (s) => [...args, ...trainingData(), ...trainingSteps(s)], {}, unavailable);
}

/** What scripts/setup-peers.sh set up: the peers' Python, and the versions found ('' where not set up). */
export interface PeerSetup { python: string; keras: string; tf: string; tfjs: string }
export const PEER_NOT_SET_UP = 'not set up: run scripts/setup-peers.sh';

export function peerSetup(): PeerSetup {
  const python = path.join(PEERS_VENV(), 'bin', 'python3');
  const sitePackages = fs.existsSync(path.join(PEERS_VENV(), 'lib'))
    ? fs.readdirSync(path.join(PEERS_VENV(), 'lib')).map((d) => path.join(PEERS_VENV(), 'lib', d, 'site-packages')).find((d) => fs.existsSync(d)) ?? '' : '';
  const tf = versionIn(sitePackages, 'tensorflow_cpu-') || versionIn(sitePackages, 'tensorflow-');
  const keras = fs.existsSync(python) ? versionIn(sitePackages, 'keras-') : '';
  const tfjsPackage = path.join(PEERS_TFJS(), 'node_modules', '@tensorflow', 'tfjs-node');
  const tfjsBuilt = fs.existsSync(path.join(tfjsPackage, 'lib')) && fs.readdirSync(path.join(tfjsPackage, 'lib'))
    .some((d) => fs.existsSync(path.join(tfjsPackage, 'lib', d, 'tfjs_binding.node')));
  const tfjs = tfjsBuilt ? (JSON.parse(fs.readFileSync(path.join(tfjsPackage, 'package.json'), 'utf8')) as { version: string }).version : '';
  return { python, keras, tf, tfjs };
}

/** Keras (model.fit on TensorFlow, .venv-peers) and tfjs-node (.peers/tfjs): the peers of issue 19. */
export function peers(): Contender[] {
  const { python, keras, tf, tfjs } = peerSetup();
  return [
    peer(keras ? `Keras ${keras} (TF ${tf}) model.fit` : 'Keras model.fit', keras ? undefined : PEER_NOT_SET_UP,
      python, [path.join(packageRoot(), 'bench', 'keras_reference.py')]),
    peer(tfjs ? `tfjs-node ${tfjs} model.fit` : 'tfjs-node model.fit', tfjs ? undefined : PEER_NOT_SET_UP,
      process.execPath, [path.join(packageRoot(), 'bench', 'tfjs_reference.js')]),
  ];
}

/**
 * convscope on one build of the addon (bench/convscope-worker.ts in a fresh process), training the
 * tutorial network or a preset's network (`preset`).
 */
/**
 * glibc's malloc told to keep freed memory (its mmap threshold raised to its maximum, trimming off):
 * what a PyTorch user can do from outside the process to get most of what convscope's CPU block cache
 * (native/cpu_block_cache.h) does inside it.
 */
export const GLIBC_KEEPS_MEMORY = { GLIBC_TUNABLES: 'glibc.malloc.mmap_threshold=33554432:glibc.malloc.trim_threshold=1099511627776' };

/** The CPU block cache off: the allocation libtorch has by default, for the rows that show what the cache buys. */
export const WITHOUT_BLOCK_CACHE = { CONVSCOPE_CPU_CACHE_MB: '0' };

/** MKL's own vendor check kept (native/mkl_cpu_check.h): the rows that show what lifting it buys. */
export const WITH_MKL_OWN_CHECK = { CONVSCOPE_MKL_ANY_CPU: '0' };

export function convscope(mode: 'eager' | 'script', precision: 'fp32' | 'bf16', addon: string, libtorch: string, preset?: string, env: Record<string, string> = {},
  synthetic?: string): Contender {
  const name = `convscope ${mode} (libtorch ${libtorch})${env.CONVSCOPE_CPU_CACHE_MB === '0' ? ', no block cache' : ''}${env.CONVSCOPE_MKL_ANY_CPU === '0' ? ", MKL's own check" : ''}`;
  const worker = path.join(packageRoot(), 'dist', 'bench', 'convscope-worker.js');
  return spawnedContender(name, precision, process.execPath,
    (s) => [worker, mode, precision, String(s.batchSize), String(s.warmupSteps), String(s.steps), ...(preset || synthetic ? [preset ?? '-'] : []), ...(synthetic ? [synthetic] : [])],
    { CONVSCOPE_ADDON: addon, ...env });
}

/** The colour rows' network and input: the cifar preset's batch-norm CNN on 32x32x3 images (CIFAR's shape). */
export const COLOUR_PRESET = 'cifar';
export const COLOUR_SHAPE = '3x32x32';
export const COLOUR_REFERENCE = 'PyTorch NCHW (32x32x3, cifar net)';

/**
 * Colour training throughput (`npm run bench -- train-colour`): the cifar preset's network on seeded
 * random 32x32x3 uint8 images (CIFAR-10 is not available offline; speed does not depend on the
 * pictures), PyTorch 2.x's module built from the same plan (bench/plan_net.py) in NCHW and in its
 * channels-last recipe, against convscope's eager and scripted paths on the default build. Same batch,
 * Adam 1e-3, threads; convscope standardises per channel in its gather, PyTorch scales to [0, 1] only,
 * as in the grey rows.
 */
export function benchColourThroughput(s: ThroughputSettings): { rows: ThroughputRow[]; errors: string[] } {
  const { planModel } = require('../src/nn/spec') as typeof import('../src/nn/spec');
  const { presetOptions } = require('../src/train/presets') as typeof import('../src/train/presets');
  const [channels, height, width] = COLOUR_SHAPE.split('x').map(Number);
  const planFile = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'convscope-bench-')), 'plan.json');
  fs.writeFileSync(planFile, JSON.stringify(planModel({ ...presetOptions(COLOUR_PRESET, 'cifar10').spec, inputChannels: channels, inputSize: [height, width], classes: 10 })));
  const build = convscopeBuilds()[0];
  const synthetic = ['--plan', planFile, '--synthetic', COLOUR_SHAPE];
  const list: Contender[] = [
    pytorch(COLOUR_REFERENCE, 'fp32', synthetic),
    pytorch('PyTorch channels-last (32x32x3, cifar net)', 'fp32', [...synthetic, '--channels-last']),
    ...(build ? (['eager', 'script'] as const).map((mode) => {
      const c = convscope(mode, 'fp32', build.addon, build.libtorch, COLOUR_PRESET, {}, COLOUR_SHAPE);
      return { ...c, name: `${c.name} (32x32x3, cifar net)` };
    }) : []),
  ];
  try {
    return interleavedRounds(list, COLOUR_REFERENCE, s);
  } finally {
    fs.rmSync(path.dirname(planFile), { recursive: true, force: true });
  }
}

/** The builds to compare: node-gyp's (the default libtorch) and the libtorch 1.13 fallback, where built. */
export function convscopeBuilds(): { addon: string; libtorch: string }[] {
  const builds: { addon: string; libtorch: string }[] = [];
  for (const dir of ['build', 'build-libtorch1']) {
    const addon = path.join(packageRoot(), dir, 'Release', 'convscope.node');
    if (!fs.existsSync(addon)) continue;
    const probe = spawnSync(process.execPath, ['-e', `process.stdout.write(require(${JSON.stringify(addon)}).torchInfo().version)`], { encoding: 'utf8' });
    if (probe.status === 0) builds.push({ addon, libtorch: probe.stdout });
  }
  return builds;
}

/**
 * PyTorch given from outside the process what convscope does inside its own: MKL's fast kernels on any
 * x86 CPU (LD_PRELOAD, bench/mkl-preload.ts), OpenMP threads that spin before sleeping (every row has
 * that), glibc keeping freed memory (GLIBC_TUNABLES, for the CPU block cache).
 */
export const TUNED_PYTORCH = 'PyTorch eager, MKL any CPU + glibc keeps memory';

function tunedPytorch(name: string, precision: 'fp32' | 'bf16', flags: string[]): Contender {
  const preload = mklAnyCpuPreload();
  if ('unavailable' in preload) return { name, precision, unavailable: preload.unavailable, run: () => preload.unavailable };
  return pytorch(name, precision, flags, { ...GLIBC_KEEPS_MEMORY, ...preload.env });
}

export function contenders(withPeers = false): Contender[] {
  const list: Contender[] = [
    pytorch(REFERENCE, 'fp32', []),
    tunedPytorch(TUNED_PYTORCH, 'fp32', []),
    pytorch('PyTorch channels-last', 'fp32', ['--channels-last']),
    pytorch('PyTorch torch.compile', 'fp32', ['--compile']),
    pytorch('PyTorch graph rewrite', 'fp32', ['--graph-rewrite']),
    pytorch('PyTorch channels-last', 'bf16', ['--channels-last']),
    tunedPytorch('PyTorch channels-last, MKL any CPU + glibc keeps memory', 'bf16', ['--channels-last']),
  ];
  const builds = convscopeBuilds();
  for (const { addon, libtorch } of builds) {
    for (const precision of ['fp32', 'bf16'] as const) {
      for (const mode of ['eager', 'script'] as const) list.push(convscope(mode, precision, addon, libtorch));
    }
  }
  if (builds[0]) {
    for (const mode of ['eager', 'script'] as const) list.push(convscope(mode, 'fp32', builds[0].addon, builds[0].libtorch, undefined, WITHOUT_BLOCK_CACHE));
    for (const mode of ['eager', 'script'] as const) list.push(convscope(mode, 'fp32', builds[0].addon, builds[0].libtorch, undefined, WITH_MKL_OWN_CHECK));
  }
  if (withPeers) list.push(...peers());
  return list;
}

export function benchTrainingThroughput(s: ThroughputSettings = DEFAULT_THROUGHPUT, only?: RegExp, withPeers = false): { rows: ThroughputRow[]; errors: string[] } {
  return interleavedRounds(contenders(withPeers).filter((c) => !only || c.name === REFERENCE || only.test(c.name)), REFERENCE, s);
}

/**
 * Runs every contender once per round, rounds interleaved; each row's pairedRatio is the median over
 * rounds of its images/s divided by the `reference` row's (fp32) in the same round.
 */
export function interleavedRounds(all: Contender[], reference: string, s: ThroughputSettings): { rows: ThroughputRow[]; errors: string[] } {
  const rows: ThroughputRow[] = all.map((c) => ({ name: c.name, precision: c.precision, imagesPerSecond: [], ...(c.unavailable ? { note: c.unavailable } : {}) }));
  const errors = new Set<string>();
  for (let round = 0; round < s.rounds; ++round) {
    all.forEach((c, i) => {
      if (c.unavailable) return;
      const result = c.run(s);
      if (typeof result === 'number') rows[i].imagesPerSecond.push(result);
      else { errors.add(result); rows[i].imagesPerSecond.push(NaN); }
    });
    process.stderr.write(`bench: round ${round + 1}/${s.rounds} done\n`);
  }
  // Each round runs every contender back to back, so the ratio within a round cancels the slow
  // drifts of a shared machine; its median over rounds is the figure the goals are read from.
  const referenceRow = rows.find((r) => r.name === reference && r.precision === 'fp32')!.imagesPerSecond;
  for (const r of rows) {
    r.pairedRatio = median(r.imagesPerSecond.map((v, i) => v / referenceRow[i]).filter(Number.isFinite));
  }
  return { rows, errors: [...errors] };
}
