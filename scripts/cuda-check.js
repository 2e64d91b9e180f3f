#!/usr/bin/env node
'use strict';
// The CUDA compile check: builds the addon, CUDA-only sources included, with the same binding.gyp as
// the default build, against the CUDA PyTorch that scripts/setup.sh installs into .venv-cuda (headers
// and libraries only, --no-deps), into build-cuda/. Without a GPU (and the nvidia-* runtime wheels)
// that build cannot be loaded: it proves that every source compiles and links against a CUDA
// libtorch 2.x, nothing more.
// Usage: node scripts/cuda-check.js [build|describe]
const fs = require('fs');
const path = require('path');
const { spawnSync } = require('child_process');

const root = path.resolve(__dirname, '..');
const out = path.join(root, 'build-cuda');

/** The torch package folder inside .venv-cuda (the Python version in its path varies), or null. */
function cudaTorchDir() {
  const lib = path.join(root, '.venv-cuda', 'lib');
  if (!fs.existsSync(lib)) return null;
  for (const python of fs.readdirSync(lib)) {
    const dir = path.join(lib, python, 'site-packages', 'torch');
    if (fs.existsSync(path.join(dir, 'lib', 'libtorch_cuda.so'))) return dir;
  }
  return null;
}

// node-gyp always builds into ./build beside binding.gyp, so the check gets a binding.gyp of its own
// in build-cuda/: the project's, with its paths made relative to that folder.
/** Writes build-cuda/binding.gyp; returns whether it changed (a changed one needs a full rebuild). */
function writeBindingGyp() {
  const text = fs.readFileSync(path.join(root, 'binding.gyp'), 'utf8')
    .replace(/"native\//g, '"../native/')
    .replace(/node scripts\//g, 'node ../scripts/');
  fs.mkdirSync(out, { recursive: true });
  const file = path.join(out, 'binding.gyp');
  const changed = !fs.existsSync(file) || fs.readFileSync(file, 'utf8') !== text;
  if (changed) fs.writeFileSync(file, text);
  return changed;
}

function main() {
  const what = process.argv[2] || 'describe';
  const torchDir = cudaTorchDir();
  if (!torchDir) {
    console.log('cuda-check: no CUDA PyTorch in .venv-cuda (scripts/setup.sh installs one where nvcc exists)');
    process.exit(what === 'build' ? 1 : 0);
  }
  const env = { ...process.env, LIBTORCH: torchDir };
  delete env.TORCH_PYTHON;
  const finder = path.join(__dirname, 'find-libtorch.js');
  if (what === 'describe') {
    spawnSync(process.execPath, [finder, 'describe'], { env, stdio: 'inherit' });
    return;
  }
  const sources = spawnSync(process.execPath, [finder, 'cuda-sources'], { env, encoding: 'utf8' }).stdout.trim();
  if (sources !== '1') {
    console.log('cuda-check: no CUDA toolkit (nvcc on PATH and its include/cuda_runtime_api.h) to compile the CUDA sources with');
    process.exit(1);
  }
  const changed = writeBindingGyp();
  const nodeGyp = require.resolve('node-gyp/bin/node-gyp.js', { paths: [root] });
  // Unchanged project: make recompiles only the sources that changed since the last check.
  const verb = changed || !fs.existsSync(path.join(out, 'build', 'Makefile')) ? 'rebuild' : 'build';
  const run = spawnSync(process.execPath, [nodeGyp, verb, '-j', 'max'], { cwd: out, env, stdio: 'inherit' });
  process.exit(run.status ?? 1);
}

module.exports = { cudaTorchDir };
if (require.main === module) main();
