#!/usr/bin/env bash
# One-command set-up for a Debian/Ubuntu machine, idempotent: installs what is missing (apt as root
# or via sudo, else prints the command), then npm packages, the native addon (node-gyp and CMake
# builds) and the TypeScript build. A second run finds everything in place and takes seconds.
set -euo pipefail
cd "$(dirname "$0")/.."

# libtorch (CPU), OpenBLAS (Debian's reference BLAS makes dense layers ~45x slower), Fashion-MNIST,
# what node-canvas builds from, and Debian's PyTorch (comparison tests and benchmarks).
APT_PACKAGES=(libtorch-dev libopenblas0-pthread dataset-fashion-mnist python3-torch python3-numpy
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

# npm packages: reinstalled only when package-lock.json changed since the last install.
stamp=node_modules/.convscope-lock.sha256
lock_sum=$(sha256sum package-lock.json | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$lock_sum" ]; then
  echo "setup: npm ci (builds node-canvas and the addon)"
  npm ci --no-audit --no-fund
  echo "$lock_sum" > "$stamp"
else
  echo "setup: npm packages up to date"
fi

# The addon: rebuilt when a native source, binding.gyp or the libtorch finder is newer than it.
newer_than() { [ -n "$(find native binding.gyp scripts/find-libtorch.js -newer "$1" -print -quit 2>/dev/null)" ]; }
addon=build/Release/convscope.node
if [ ! -f "$addon" ] || newer_than "$addon"; then
  echo "setup: building the addon with node-gyp"
  npm run --silent build:addon
else
  echo "setup: addon (node-gyp) up to date"
fi
cmake_addon=build-cmake/Release/convscope.node
if [ ! -f "$cmake_addon" ] || newer_than "$cmake_addon"; then
  echo "setup: building the addon with CMake (cmake-js)"
  npm run --silent build:cmake >/dev/null
else
  echo "setup: addon (CMake) up to date"
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
