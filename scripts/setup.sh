#!/usr/bin/env bash
# The main job's set-up (`scripts/setup.sh && npm run train`) on a Debian/Ubuntu machine, idempotent:
# only what training, the CLI and the library need. It installs the Debian packages that node-canvas
# builds from and the data, the project's PyTorch (.venv, pip: the libtorch the addon builds on) and
# Optuna (tune's search), the npm packages, then builds node-canvas, the addon (once: the CUDA build
# where a GPU and its driver are present, else the CPU build) and the TypeScript. What only the tests
# use (the libtorch 1.13 fallback build, the CUDA compile check, Chromium, PostgreSQL, ONNX and
# TensorBoard for the comparisons) is scripts/setup-tests.sh's. A second run finds everything in place
# and takes seconds.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup-lib.sh

# Fashion-MNIST (the default data), python3-venv for .venv, and what node-canvas builds from
# (its npm package has no binary for this platform offline: it compiles against cairo and pango).
# libgloo-dev: gloo's headers, which c10d's ProcessGroupGloo.hpp includes and the PyTorch wheel does
# not ship; the addon compiles native/distributed_gloo.cc against them (gloo itself is inside
# libtorch), so every build of the addon needs them, not only the tests (data-parallel training).
MAIN_DEBS=(dataset-fashion-mnist python3-venv build-essential pkg-config
  libcairo2-dev libpango1.0-dev libjpeg-dev libgif-dev librsvg2-dev libgloo-dev)
step "Debian packages (data, python3-venv, node-canvas's libraries, gloo's headers)" ensure_debs "${MAIN_DEBS[@]}"

# The project's PyTorch: the CPU wheel, or where a GPU and its driver are present the CUDA wheel with
# its nvidia-* runtime libraries, so that the one addon build is the build this machine can use.
if has_gpu; then
  TORCH_REQUIREMENT=${CONVSCOPE_TORCH_REQUIREMENT:-${CONVSCOPE_CUDA_TORCH_REQUIREMENT:-torch==2.14.1}}
  torch_kind="CUDA (a GPU is present)"
else
  TORCH_REQUIREMENT=${CONVSCOPE_TORCH_REQUIREMENT:-torch==2.13.0+cpu}
  torch_kind="CPU"
fi
step "PyTorch, $torch_kind: $TORCH_REQUIREMENT into .venv" ensure_venv .venv "" "$TORCH_REQUIREMENT"

# Optuna, which `convscope tune` runs its searches on (python/tune_helper.py), pinned with SQLAlchemy
# (its storage) and the PostgreSQL drivers for a study shared between machines: psycopg for
# postgresql:// (SQLAlchemy 2's default), psycopg2 for postgresql+psycopg2://. SQLite is Python's own.
OPTUNA_REQUIREMENTS=(optuna==5.0.0 sqlalchemy==2.1.1 "psycopg[binary]==3.3.6" psycopg2-binary==2.9.13)
step "Optuna for tune: ${OPTUNA_REQUIREMENTS[*]} into .venv" ensure_venv .venv "" "${OPTUNA_REQUIREMENTS[@]}"

# npm packages, reinstalled only when package-lock.json changed since the last install. Their install
# scripts run in the next step, and the addon's own build (the package's install script) in the one
# after, so that each is timed on its own.
npm_packages() {
  local stamp=node_modules/.convscope-lock.sha256 lock_sum
  lock_sum=$(sha256sum package-lock.json | cut -d' ' -f1)
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$lock_sum" ]; then
    echo "setup:   up to date"
    return 0
  fi
  npm ci --ignore-scripts --no-audit --no-fund --loglevel=error
  # Only the packages package.json's allowScripts lets run scripts (node-canvas compiles, protobufjs
  # checks its version): a bare `npm rebuild` would run the project's own install script too and build
  # the addon a second time. onnxruntime-node's script is not among them: it would download CUDA
  # provider binaries, and its CPU runtime is inside the npm package.
  local allowed
  allowed=$(node -p "Object.entries(require('./package.json').allowScripts ?? {}).filter(([, ok]) => ok).map(([name]) => name).join(' ')")
  # shellcheck disable=SC2086
  npm rebuild $allowed --no-audit --no-fund --loglevel=error >/dev/null
  echo "$lock_sum" > "$stamp"
}
step "npm packages (npm ci, then the install scripts package.json allows: node-canvas compiles)" npm_packages

# The addon: a full node-gyp rebuild when there is no build, the build files changed or the libtorch
# is another; else `node-gyp build`, whose make recompiles only the units whose sources or headers
# changed (make's dependency files; native/unity/ groups the sources into two units).
build_addon() {
  local addon=build/Release/convscope.node stamp=build/.convscope-libtorch want
  want="$(node scripts/find-libtorch.js libdir 2>/dev/null) $(node scripts/find-libtorch.js version 2>/dev/null)"
  if [ ! -f "$addon" ] || [ ! -f build/config.gypi ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ] ||
     [ -n "$(find binding.gyp scripts/find-libtorch.js -newer "$addon" -print -quit)" ]; then
    echo "setup:   node-gyp rebuild against libtorch $want"
    npx --no-install node-gyp rebuild -j max --loglevel=warn
    echo "$want" > "$stamp"
  elif native_newer_than "$addon"; then
    echo "setup:   node-gyp build (sources changed since the last build)"
    npx --no-install node-gyp build -j max --loglevel=warn
  else
    echo "setup:   up to date"
  fi
}
step "the addon (node-gyp)" build_addon

# TypeScript: rebuilt when a source is newer than the build.
build_typescript() {
  if [ -f dist/src/index.js ] && [ -z "$(find src scripts bench tsconfig.json -name '*.ts' -newer dist/src/index.js -print -quit)" ]; then
    echo "setup:   up to date"
    return 0
  fi
  npx --no-install tsc -p tsconfig.json
}
step "TypeScript (tsc)" build_typescript

node scripts/find-libtorch.js describe
setup_done "main job's set-up done"
