#!/usr/bin/env bash
# Prepares, on this (CPU) machine, everything a GPU-machine run carries (../shared/device/README.md),
# and prints what will travel. Run it from anywhere after `npm ci`, and again after any change to
# src/, test/ or bench/ (it rebuilds dist and the compiled tests).
#
#   carry = [".device", "dist", ".gpu-carry", ".gpu-data"]
#
#   .device     Node 20 for a machine without it (../shared/device/pack-node.sh), its binary
#               re-compressed here stripped and with xz's x86 filter: ~22.5 MB instead of ~25.6 MB
#   dist        `npm run build`, plus test/*.ts transpiled to dist/test/*.js (scripts/compile-tests.js)
#               and bench/*.py copied to dist/bench/ (the compiled tests run Python from dist/)
#   .gpu-carry  node_modules/: the packages that loading and training, `node-gyp rebuild` and jest on
#               the compiled tests open (scripts/gpu-carry-modules.js), ~9.2 MiB
#   .gpu-data   Fashion-MNIST's four files, xz -9e (26.4 MB; the .gz files would be 30.9 MB)
# Expected total with the ~2 MB working tree: about 60 MiB of the 64 MiB limit (printed at the end;
# the script fails above 64 MiB).
#
# On the GPU machine (from the project root):
#   source .device/on-device.sh && source scripts/gpu-unpack.sh      # node on PATH, node_modules, data
#   node node_modules/node-gyp/bin/node-gyp.js rebuild -j 16 --nodedir "$PWD/.device/node"
#   node node_modules/jest/bin/jest.js -c jest.gpu.config.js -i dist/test/cuda.test.js
#   node dist/bench/gpu.js --epochs 3 --out "$OUT/gpu.json"
set -euo pipefail
root=$(git -C "$(dirname "$0")" rev-parse --show-toplevel)
cd "$root"
[ -d node_modules/jest ] || { echo "gpu-pack: run npm ci first (node_modules/jest is missing)" >&2; exit 1; }

# 1. Node for the GPU machine.
if [ -f ../shared/device/pack-node.sh ]; then bash ../shared/device/pack-node.sh >/dev/null; fi
[ -f .device/on-device.sh ] || { echo "gpu-pack: .device is missing and ../shared/device/pack-node.sh was not found" >&2; exit 1; }
node_bin=$(readlink -f "$(command -v node)")
stamp=".device/node/bin/node.xz.packed-from"
want="$(stat -c '%s %Y' "$node_bin") stripped x86-9e"
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "gpu-pack: re-compressing node (stripped, xz --x86 -9e; about a minute)"
  tmp=$(mktemp -d)
  strip -o "$tmp/node" "$node_bin"    # keeps .dynsym: N-API addons still find napi_* in the binary
  xz -T1 --x86 --lzma2=preset=9e -c "$tmp/node" > "$tmp/node.xz"
  mv "$tmp/node.xz" .device/node/bin/node.xz && rm -rf "$tmp"
  echo "$want" > "$stamp"
fi

# 2. dist: the TypeScript build, the tests as JavaScript, and the Python the compiled tests and the
#    GPU benchmark start.
npm run --silent build
rm -rf dist/test
node scripts/compile-tests.js dist/test
mkdir -p dist/bench && cp bench/*.py dist/bench/

# 3. The minimal node_modules.
node scripts/gpu-carry-modules.js .gpu-carry/node_modules

# 4. Fashion-MNIST, recompressed with xz (the loader reads raw files; scripts/gpu-unpack.sh unpacks).
mkdir -p .gpu-data
for gz in /usr/share/datasets/fashion-mnist/*-ubyte.gz; do
  target=.gpu-data/$(basename "$gz" .gz).xz
  if [ ! -s "$target" ] || [ "$gz" -nt "$target" ]; then
    echo "gpu-pack: $target"
    gzip -dc "$gz" | xz -T1 -9e > "$target.tmp" && mv "$target.tmp" "$target"
  fi
done
[ "$(ls .gpu-data/*.xz | wc -l)" = 4 ] || { echo "gpu-pack: need the four Fashion-MNIST files (apt-get install dataset-fashion-mnist)" >&2; exit 1; }

# 5. What travels: the working tree (tracked and untracked files git does not ignore) plus the carry.
for p in .device dist .gpu-carry .gpu-data; do
  git check-ignore -q "$p" || { echo "gpu-pack: $p is not ignored by git; it would travel twice" >&2; exit 1; }
done
bytes() { find "$@" -type f -printf '%s\n' | awk '{s += $1} END {print s + 0}'; }
tree=$(git ls-files -z --cached --others --exclude-standard | xargs -0 -r stat -c '%s' 2>/dev/null | awk '{s += $1} END {print s + 0}')
total=$tree
printf '  %-12s %8.2f MiB\n' 'working tree' "$(echo "$tree / 1048576" | bc -l)"
for p in .device dist .gpu-carry .gpu-data; do
  b=$(bytes "$p")
  total=$((total + b))
  printf '  %-12s %8.2f MiB\n' "$p" "$(echo "$b / 1048576" | bc -l)"
done
printf '  %-12s %8.2f MiB of 64 MiB\n' total "$(echo "$total / 1048576" | bc -l)"
echo 'carry: [".device", "dist", ".gpu-carry", ".gpu-data"]'
if [ "$total" -gt $((64 * 1048576)) ]; then echo "gpu-pack: over the 64 MiB limit" >&2; exit 1; fi
