// Which libtorch convscope is built on: PyTorch 2.x's by default, Debian's 1.13 as a fallback that
// still passes the native tests, the CUDA sources compiled against a CUDA libtorch, and no libtorch
// chatter on stderr during training.
import * as fs from 'fs';
import * as path from 'path';
import { spawnSync } from 'child_process';
import { native } from '../src/core/native';
import { packageRoot } from '../src/util/package-root';
import { skipBecause, testIfInstalled } from './helpers';

const root = packageRoot();
const venvTorch = fs.existsSync(path.join(root, '.venv', 'bin', 'python3'));

describe('the default build', () => {
  testIfInstalled(venvTorch, 'no .venv: scripts/setup.sh installs the project\'s PyTorch there')('is built on the project\'s PyTorch 2.x (.venv) and says so in torchInfo()', () => {
    const info = native().torchInfo();
    expect(info.version).toMatch(/^2\.\d+\.\d+/);
    expect(info.libtorchPath).toContain(path.join(root, '.venv'));
  });

  // at::parallel_for is a header template: the addon's own loops are OpenMP regions only if the addon is
  // compiled with -fopenmp. Without it the fused Adam and the fused pooling ran on one thread of two.
  test('splits its own kernels over libtorch\'s OpenMP threads', () => {
    expect(native().torchInfo().parallelKernels).toBe(true);
  });

  // A child process, so that stderr holds only what training printed (libtorch warns through stderr).
  // Small convolutions and a batch of one too: libtorch 2.x considers NNPACK for those, which warns on
  // CPUs it cannot use.
  test.each(['eager', 'script'] as const)('training in %s mode, fp32 and bf16, default and small networks, prints nothing on stderr', (mode) => {
    const script = `
      const { trainCnn } = require(${JSON.stringify(path.join(root, 'dist', 'src', 'index.js'))});
      const count = 256;
      const images = new Uint8Array(count * 784).map((_, i) => (i * 7919) % 256);
      const labels = new Uint8Array(count).map((_, i) => i % 10);
      const split = { images, labels, count };
      (async () => {
        const small = { conv: [{ filters: 4, kernelSize: 3, padding: 'same', pool: true }], dense: [16], dropout: 0.25 };
        for (const spec of [undefined, small]) {
          for (const precision of ['fp32', 'bf16']) {
            const r = await trainCnn({ dataset: { name: 'synthetic', train: split, test: split, classNames: [...'0123456789'] }, spec, mode: ${JSON.stringify(mode)}, precision, batchSize: 64, epochs: 1, seed: 3 });
            r.model.predict(images.subarray(0, 784)); // a batch of one takes other convolution paths
            r.model.dispose();
          }
        }
        process.stdout.write('trained');
      })().catch((e) => { process.stdout.write('failed: ' + e.message); process.exitCode = 1; });`;
    const run = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', timeout: 240000 });
    expect(run.stdout).toBe('trained');
    expect(run.stderr).toBe('');
  });
});

describe('the libtorch 1.13 fallback (Debian\'s libtorch-dev, built by CMake)', () => {
  const fallback = path.join(root, 'build-libtorch1', 'Release', 'convscope.node');
  testIfInstalled(fs.existsSync(fallback), `no ${fallback}: scripts/setup-tests.sh builds it with npm run build:libtorch1`)('passes the native test suite', () => {
    const jest = require.resolve('jest/bin/jest', { paths: [root] });
    const run = spawnSync(process.execPath, [jest, '--ci', 'test/native.test.ts'], {
      cwd: root, encoding: 'utf8', timeout: 300000,
      env: { ...process.env, CONVSCOPE_ADDON: fallback, CONVSCOPE_EXPECT_TORCH: '1.' },
    });
    expect(run.stderr).toMatch(/Tests:\s+\d+ passed, \d+ total/);
    expect(run.status).toBe(0);
  });
});

describe('the CUDA compile check', () => {
  const cudaBuild = path.join(root, 'build-cuda', 'build', 'Release', 'convscope.node');
  const built = fs.existsSync(cudaBuild);
  // Set-up can build it only where the CUDA toolkit is installed: elsewhere the skip is no set-up defect.
  const nvcc = spawnSync('sh', ['-c', 'command -v nvcc'], { encoding: 'utf8' }).status === 0;
  const why = `no ${cudaBuild}: scripts/setup-tests.sh builds it where nvcc and the CUDA PyTorch (.venv-cuda) exist`;
  if (!built && !nvcc) skipBecause(why);
  // Only compiled and linked: loading it needs a GPU driver and the nvidia-* runtime libraries.
  (nvcc ? testIfInstalled(built, why) : built ? test : test.skip)('compiled and linked the CUDA-only sources against libtorch_cuda (not loaded: no GPU here)', () => {
    const symbols = spawnSync('nm', ['-DC', '--defined-only', cudaBuild], { encoding: 'utf8', maxBuffer: 64 << 20 }).stdout;
    expect(symbols).toMatch(/convscope::RegisterCuda/);
    // The NCCL backend of data-parallel training (native/cuda/distributed_nccl.cc), nccl.h found.
    expect(symbols).toMatch(/convscope::ConnectNccl/);
    const needed = spawnSync('readelf', ['-d', cudaBuild], { encoding: 'utf8' }).stdout;
    expect(needed).toMatch(/NEEDED.*\[libtorch_cuda\.so\]/);
    expect(needed).toMatch(/NEEDED.*\[libc10_cuda\.so\]/);
  });
});
