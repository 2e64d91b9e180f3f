#!/usr/bin/env node
'use strict';
// The one place that decides which libtorch every build uses (node-gyp's binding.gyp, the CMake
// build and the runtime loader's error messages). Resolution order:
//   1. $LIBTORCH: the root of an unpacked libtorch distribution (include/, lib/), or "system";
//   2. $TORCH_PYTHON: a Python whose `import torch` works (torch/include, torch/lib);
//   3. the project's own PyTorch, .venv/bin/python3 (made by scripts/setup.sh; the default);
//   4. python3, then /usr/bin/python3;
//   5. the system install (Debian's libtorch-dev 1.13: /usr/include, /usr/lib/<triplet>).
// It also reads the libtorch's version, which decides the C++ standard (2.x headers need C++20), and
// whether the CUDA-only sources (native/cuda/) can be compiled: a CUDA libtorch and a CUDA toolkit.
// Usage: node scripts/find-libtorch.js [json|include|libs|defines|cflags|cxx-standard|cuda-sources|
//        version|is-system|libdir|cmake-prefix|describe]
// Diagnostics go to stderr so that gyp's command expansion only sees the requested field.

const fs = require('fs');
const path = require('path');
const { execFileSync } = require('child_process');

const TORCH_LIB_NAMES = ['libtorch.so', 'libtorch_cpu.so', 'libc10.so'];
const CUDA_LIB_NAMES = ['libtorch_cuda.so', 'libc10_cuda.so'];

function hasAll(dir, names) {
  return names.every((name) => fs.existsSync(path.join(dir, name)));
}

function fromDistribution(root, origin) {
  const includeDir = path.join(root, 'include');
  const libDir = path.join(root, 'lib');
  const apiInclude = path.join(includeDir, 'torch', 'csrc', 'api', 'include');
  if (!fs.existsSync(apiInclude)) return { ok: false, why: `${origin}: no ${apiInclude}` };
  if (!hasAll(libDir, TORCH_LIB_NAMES)) return { ok: false, why: `${origin}: ${libDir} lacks ${TORCH_LIB_NAMES.join(', ')}` };
  return { ok: true, origin, root, includeDirs: [includeDir, apiInclude], libDir };
}

const PROJECT_ROOT = path.resolve(__dirname, '..');
const PROJECT_PYTHON = path.join(PROJECT_ROOT, '.venv', 'bin', 'python3');

function pythonCandidates() {
  if (process.env.TORCH_PYTHON) return [process.env.TORCH_PYTHON];
  return [PROJECT_PYTHON, 'python3', '/usr/bin/python3'].filter((python) => python !== PROJECT_PYTHON || fs.existsSync(python));
}

function fromPython(python) {
  let out;
  try {
    out = execFileSync(python, ['-c',
      'import torch, os; print(os.path.dirname(torch.__file__)); print(int(torch._C._GLIBCXX_USE_CXX11_ABI)); print(torch.utils.cmake_prefix_path)'],
    { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], timeout: 60000 });
  } catch {
    return { ok: false, why: `python (${python}): no importable torch` };
  }
  const [torchDir, abi, cmakePrefix] = out.trim().split('\n');
  const found = fromDistribution(torchDir, `python (${python})`);
  if (!found.ok) return found;
  return { ...found, cxx11Abi: abi === '1', cmakePrefix };
}

function systemLibDirs() {
  const dirs = [];
  try {
    const triplet = execFileSync('gcc', ['-print-multiarch'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    if (triplet) dirs.push(`/usr/lib/${triplet}`);
  } catch { /* no gcc: fall back to the usual folders */ }
  dirs.push('/usr/lib/x86_64-linux-gnu', '/usr/lib/aarch64-linux-gnu', '/usr/lib64', '/usr/lib', '/usr/local/lib');
  return dirs;
}

function fromSystem() {
  const apiInclude = '/usr/include/torch/csrc/api/include';
  if (!fs.existsSync(apiInclude)) return { ok: false, why: `system: no ${apiInclude} (install libtorch-dev)` };
  const libDir = systemLibDirs().find((dir) => hasAll(dir, TORCH_LIB_NAMES));
  if (!libDir) return { ok: false, why: `system: no ${TORCH_LIB_NAMES.join(', ')} in ${systemLibDirs().join(', ')}` };
  return { ok: true, origin: 'system', root: '/usr', includeDirs: ['/usr/include', apiInclude], libDir, cmakePrefix: path.join(libDir, 'cmake') };
}

// TORCH_VERSION_* from the headers themselves, so a distribution without Python is read the same way.
function readVersion(includeDirs) {
  const candidates = ['torch/headeronly/version.h', 'torch/csrc/api/include/torch/version.h', 'torch/version.h'];
  for (const dir of includeDirs) {
    for (const rel of candidates) {
      const file = path.join(dir, rel);
      if (!fs.existsSync(file)) continue;
      const text = fs.readFileSync(file, 'utf8');
      const part = (name) => Number((text.match(new RegExp(`#define TORCH_VERSION_${name}\\s+(\\d+)`)) || [])[1]);
      const [major, minor, patch] = ['MAJOR', 'MINOR', 'PATCH'].map(part);
      if (Number.isInteger(major) && Number.isInteger(minor)) return { major, minor, patch: patch || 0, text: `${major}.${minor}.${patch || 0}` };
    }
  }
  return null;
}

// A CUDA toolkit whose runtime headers the CUDA-only sources include: nvcc on PATH, and the first of
// $CUDA_HOME, $CUDA_PATH, /usr/local/cuda and nvcc's own prefix that has include/cuda_runtime_api.h.
function findCudaToolkit() {
  let nvcc;
  try {
    nvcc = execFileSync('sh', ['-c', 'command -v nvcc'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    return { ok: false, why: 'no nvcc on PATH' };
  }
  const roots = [process.env.CUDA_HOME, process.env.CUDA_PATH, '/usr/local/cuda', path.dirname(path.dirname(fs.realpathSync(nvcc)))];
  const root = roots.find((dir) => dir && fs.existsSync(path.join(dir, 'include', 'cuda_runtime_api.h')));
  if (!root) return { ok: false, why: `nvcc at ${nvcc} but no include/cuda_runtime_api.h under ${roots.filter(Boolean).join(', ')}` };
  const libDir = ['lib64', 'lib'].map((d) => path.join(root, d)).find((dir) => fs.existsSync(path.join(dir, 'libcudart.so')));
  return { ok: true, root, includeDir: path.join(root, 'include'), libDir };
}

// What c10d's ProcessGroupNCCL.hpp includes beyond the CUDA runtime: nccl.h, and through ATen's
// CUDAContext.h the cuBLAS, cuSPARSE and cuSOLVER headers. A CUDA PyTorch wheel ships none of them;
// the wheels it pins install them beside it (site-packages/nvidia/nccl/include, nvidia/cu13/include;
// scripts/setup-tests.sh installs them into .venv-cuda), a full CUDA toolkit has the latter. Each is
// looked for in $NCCL_INCLUDE_DIR (or $CUDA_LIBS_INCLUDE_DIR), the wheels' folder, the toolkit's.
// null: the NCCL backend is compiled out.
function findNcclIncludes(lt, toolkit) {
  const site = path.join(lt.root, '..', 'nvidia');
  const findWith = (headers, dirs) => dirs.find((dir) => dir && headers.every((h) => fs.existsSync(path.join(dir, h))));
  const nccl = findWith(['nccl.h'], [process.env.NCCL_INCLUDE_DIR, path.join(site, 'nccl', 'include'), toolkit.includeDir]);
  const libs = findWith(['cublas_v2.h', 'cusparse.h', 'cusolverDn.h'], [process.env.CUDA_LIBS_INCLUDE_DIR, path.join(site, 'cu13', 'include'), toolkit.includeDir]);
  return nccl && libs ? [...new Set([nccl, libs])].filter((dir) => dir !== toolkit.includeDir) : null;
}

// libc10 exports std::string in its signatures; the new ABI mangles it with __cxx11.
function detectCxx11Abi(libDir) {
  try {
    const symbols = execFileSync('nm', ['-D', path.join(libDir, 'libc10.so')], { encoding: 'utf8', maxBuffer: 64 << 20, stdio: ['ignore', 'pipe', 'ignore'] });
    return symbols.includes('__cxx11');
  } catch {
    return true;
  }
}

function findLibtorch() {
  const tried = [];
  const attempts = [];
  if (process.env.LIBTORCH === 'system') attempts.push(fromSystem);
  else if (process.env.LIBTORCH) attempts.push(() => fromDistribution(process.env.LIBTORCH, `LIBTORCH=${process.env.LIBTORCH}`));
  else {
    tried.push('LIBTORCH: not set');
    for (const python of pythonCandidates()) attempts.push(() => fromPython(python));
    attempts.push(fromSystem);
  }
  for (const attempt of attempts) {
    const found = attempt();
    if (found.ok) {
      const cuda = hasAll(found.libDir, CUDA_LIB_NAMES);
      const cxx11Abi = found.cxx11Abi ?? detectCxx11Abi(found.libDir);
      const version = readVersion(found.includeDirs);
      // libtorch 2.x's headers use C++20 features; 1.13's build with C++17.
      const cxxStandard = version && version.major < 2 ? 17 : 20;
      const toolkit = cuda ? findCudaToolkit() : { ok: false, why: 'this libtorch has no CUDA' };
      const ncclIncludes = toolkit.ok ? findNcclIncludes(found, toolkit) : null;
      return {
        ...found, cuda, cxx11Abi, version: version ? version.text : 'unknown', cxxStandard,
        cudaSources: toolkit.ok, cudaToolkit: toolkit.ok ? toolkit : null, cudaSourcesWhy: toolkit.ok ? null : toolkit.why, ncclIncludes, tried,
      };
    }
    tried.push(found.why);
  }
  const err = new Error(
    'convscope: no libtorch found. Tried, in order:\n  - ' + tried.join('\n  - ') +
    '\nFix one of: `scripts/setup.sh` (makes .venv with a pip PyTorch), `sudo apt-get install libtorch-dev` (Debian/Ubuntu, CPU), ' +
    '`export LIBTORCH=/path/to/libtorch` (an unpacked libtorch download, CPU or CUDA), ' +
    'or `export TORCH_PYTHON=/path/to/python3` whose `import torch` works (e.g. a pip CUDA PyTorch).');
  err.tried = tried;
  throw err;
}

function linkFlags(lt) {
  const flags = [`-L${lt.libDir}`, `-Wl,-rpath,${lt.libDir}`];
  // libtorch_cuda's own dependencies (libcudart, ...) are found at run time through its rpath; at link
  // time the toolkit's copy keeps ld from warning that it cannot see them.
  if (lt.cudaToolkit && lt.cudaToolkit.libDir) flags.push(`-Wl,-rpath-link,${lt.cudaToolkit.libDir}`);
  // Without --no-as-needed the linker drops libtorch_cuda (nothing references it directly) and
  // CUDA then silently reads as unavailable at run time.
  if (lt.cuda) flags.push('-Wl,--no-as-needed', '-ltorch_cuda', '-lc10_cuda', '-Wl,--as-needed');
  flags.push('-ltorch', '-ltorch_cpu', '-lc10');
  return flags;
}

function defines(lt) {
  const list = [`_GLIBCXX_USE_CXX11_ABI=${lt.cxx11Abi ? 1 : 0}`];
  if (lt.cuda) list.push('CONVSCOPE_WITH_CUDA=1');
  if (lt.cudaSources) list.push('CONVSCOPE_CUDA_SOURCES=1');
  if (lt.cudaSources && lt.ncclIncludes) list.push('CONVSCOPE_NCCL=1');
  return list;
}

function includeDirs(lt) {
  if (!lt.cudaSources) return lt.includeDirs;
  return [...lt.includeDirs, lt.cudaToolkit.includeDir, ...(lt.ncclIncludes || [])];
}

function main() {
  const what = process.argv[2] || 'describe';
  let lt;
  try {
    lt = findLibtorch();
  } catch (err) {
    process.stderr.write(err.message + '\n');
    process.exit(1);
  }
  if (what !== 'json' && what !== 'describe') {
    process.stderr.write(`convscope: using libtorch ${lt.version} from ${lt.origin}: ${lt.libDir}${lt.cuda ? ' (CUDA)' : ' (CPU only)'}\n`);
  }
  switch (what) {
    case 'include': console.log(includeDirs(lt).join(' ')); break;
    case 'cflags': console.log(`-std=c++${lt.cxxStandard}`); break;
    case 'cxx-standard': console.log(lt.cxxStandard); break;
    case 'cuda-sources': console.log(lt.cudaSources ? 1 : 0); break;
    // One line, ';'-separated (a CMake list); empty when the NCCL backend is compiled out.
    case 'nccl-include': console.log(lt.cudaSources && lt.ncclIncludes ? (lt.ncclIncludes.length ? lt.ncclIncludes.join(';') : lt.cudaToolkit.includeDir) : ''); break;
    case 'version': console.log(lt.version); break;
    case 'is-system': console.log(lt.origin === 'system' ? 1 : 0); break;
    case 'libs': console.log(linkFlags(lt).join(' ')); break;
    case 'defines': console.log(defines(lt).join(' ')); break;
    case 'libdir': console.log(lt.libDir); break;
    case 'cmake-prefix': console.log(lt.cmakePrefix || path.join(lt.root, 'share', 'cmake')); break;
    case 'json': console.log(JSON.stringify(lt, null, 2)); break;
    case 'describe':
      console.log(`libtorch ${lt.version}: ${lt.origin}\n  lib: ${lt.libDir}\n  include: ${lt.includeDirs.join(', ')}\n` +
        `  C++ standard: ${lt.cxxStandard}\n  cuda: ${lt.cuda}\n  CUDA-only sources: ${lt.cudaSources ? `built (toolkit ${lt.cudaToolkit.root}; NCCL ${lt.ncclIncludes ? `with ${[lt.cudaToolkit.includeDir, ...lt.ncclIncludes].join(', ')}` : 'compiled out: no nccl.h, or no cuBLAS, cuSPARSE and cuSOLVER headers'})` : `not built (${lt.cudaSourcesWhy})`}\n  cxx11 abi: ${lt.cxx11Abi}`);
      break;
    default:
      process.stderr.write(`find-libtorch: unknown field "${what}"; expected json|include|libs|defines|cflags|cxx-standard|cuda-sources|nccl-include|version|is-system|libdir|cmake-prefix|describe\n`);
      process.exit(2);
  }
}

module.exports = { findLibtorch, linkFlags, defines, includeDirs };
if (require.main === module) main();
