#!/usr/bin/env bash
# One-command set-up for a Debian/Ubuntu machine, idempotent: installs what is missing (apt as root
# or via sudo, else prints the command), the project's own PyTorch (.venv, pip), npm packages, the
# native addon (node-gyp against .venv's libtorch 2.x; CMake against Debian's libtorch 1.13, the
# fallback; the CUDA compile check where nvcc exists) and the TypeScript build. A second run finds
# everything in place and takes seconds.
set -euo pipefail
cd "$(dirname "$0")/.."

# libtorch 1.13 (the fallback build), OpenBLAS (Debian's reference BLAS makes 1.13's dense layers ~45x
# slower), Fashion-MNIST, python3-venv for .venv, what node-canvas builds from.
APT_PACKAGES=(libtorch-dev libopenblas0-pthread dataset-fashion-mnist python3-venv
  build-essential pkg-config cmake libcairo2-dev libpango1.0-dev libjpeg-dev libgif-dev librsvg2-dev)

missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  if [ "$(id -u)" = 0 ]; then SUDO=""; elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then SUDO="sudo"; else
    echo "setup: these Debian packages are missing and I cannot install them without root:" >&2
    echo "  sudo apt-get update && sudo apt-get install -y ${missing[*]}" >&2
    exit 1
  fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
else
  echo "setup: Debian packages present"
fi

# The project's PyTorch: the libtorch the addon builds against by default, and the PyTorch that tests
# and benchmarks compare with. The requirement and index come from the environment; the defaults are
# the pinned, tested CPU build and pip's own configuration (elsewhere, PyTorch's CPU wheels come from
# CONVSCOPE_PIP_INDEX=https://download.pytorch.org/whl/cpu). pip fails fast instead of retrying an
# unreachable index.
TORCH_REQUIREMENT=${CONVSCOPE_TORCH_REQUIREMENT:-torch==2.13.0+cpu}
PY_PACKAGES=(numpy onnx onnxruntime tensorboard)
PIP_OPTIONS=(--disable-pip-version-check --retries 0 --timeout 5)
[ -n "${CONVSCOPE_PIP_INDEX:-}" ] && PIP_OPTIONS+=(--extra-index-url "$CONVSCOPE_PIP_INDEX")

# Makes venv $1 hold requirements $3... (pip options $2), unless its stamp says it already does.
ensure_venv() {
  local venv=$1 extra=$2; shift 2
  local want="$* $extra"
  if [ -f "$venv/.convscope-requirements" ] && [ "$(cat "$venv/.convscope-requirements")" = "$want" ]; then
    echo "setup: $venv up to date ($*)"
    return
  fi
  echo "setup: installing $* into $venv"
  [ -x "$venv/bin/python3" ] || python3 -m venv "$venv"
  # shellcheck disable=SC2086
  "$venv/bin/pip" install -q "${PIP_OPTIONS[@]}" $extra "$@"
  echo "$want" > "$venv/.convscope-requirements"
}
ensure_venv .venv "" "$TORCH_REQUIREMENT" "${PY_PACKAGES[@]}"

# The CUDA compile check: a CUDA PyTorch's headers and libraries (no GPU needed, --no-deps: the toolkit
# supplies the CUDA runtime headers) so that every CUDA-only source is compiled and linked here.
CUDA_TORCH_REQUIREMENT=${CONVSCOPE_CUDA_TORCH_REQUIREMENT:-torch==2.14.1}
if command -v nvcc >/dev/null; then
  ensure_venv .venv-cuda --no-deps "$CUDA_TORCH_REQUIREMENT"
else
  echo "setup: no nvcc on PATH, so the CUDA compile check is skipped (install the CUDA toolkit to run it)"
fi

# npm packages: reinstalled only when package-lock.json changed since the last install.
stamp=node_modules/.convscope-lock.sha256
lock_sum=$(sha256sum package-lock.json | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$lock_sum" ]; then
  echo "setup: npm ci (builds node-canvas and the addon)"
  # onnxruntime-node (a dev dependency: the ONNX export tests) would download CUDA provider binaries
  # at install time; its CPU runtime is inside the npm package.
  ONNXRUNTIME_NODE_INSTALL=skip npm ci --no-audit --no-fund
  echo "$lock_sum" > "$stamp"
else
  echo "setup: npm packages up to date"
fi

# The addon builds, each redone when a native source, a build file or the libtorch finder is newer.
newer_than() { [ -n "$(find native binding.gyp scripts/find-libtorch.js -newer "$1" -print -quit 2>/dev/null)" ]; }
addon=build/Release/convscope.node
if [ ! -f "$addon" ] || newer_than "$addon"; then
  echo "setup: building the addon with node-gyp ($(node scripts/find-libtorch.js version 2>/dev/null))"
  npm run --silent build:addon
else
  echo "setup: addon (node-gyp) up to date"
fi
fallback_addon=build-libtorch1/Release/convscope.node
if [ ! -f "$fallback_addon" ] || newer_than "$fallback_addon"; then
  echo "setup: building the fallback addon with CMake against Debian's libtorch 1.13"
  npm run --silent build:libtorch1 >/dev/null
else
  echo "setup: addon (CMake, libtorch 1.13) up to date"
fi
cuda_torch=$(ls -d .venv-cuda/lib/python3*/site-packages/torch 2>/dev/null | head -1 || true)
cuda_addon=build-cuda/build/Release/convscope.node
if [ -n "$cuda_torch" ] && command -v nvcc >/dev/null; then
  if [ ! -f "$cuda_addon" ] || newer_than "$cuda_addon"; then
    echo "setup: CUDA compile check: building the addon against $cuda_torch"
    npm run --silent build:cuda-check >/dev/null
  else
    echo "setup: CUDA compile check up to date"
  fi
fi

# TypeScript: rebuilt when a source is newer than the build.
if [ ! -f dist/src/index.js ] || [ -n "$(find src scripts bench tsconfig.json -name '*.ts' -newer dist/src/index.js -print -quit)" ]; then
  echo "setup: compiling TypeScript"
  npx tsc -p tsconfig.json
else
  echo "setup: TypeScript build up to date"
fi
node scripts/find-libtorch.js describe
echo "setup: done"
