#!/usr/bin/env bash
# The one command for a GPU machine (see ../shared/device/README.md): builds the addon against the
# machine's CUDA PyTorch, runs the CUDA tests and the GPU benchmark, and leaves logs in $OUT (or ./gpu-out).
#
# Prepare here (a CPU machine), then carry: .device (bash ../shared/device/pack-node.sh), dist,
# node_modules (node-addon-api, node-gyp, jest, ts-jest and their dependencies), and .gpu-data with
# Fashion-MNIST's four .gz files (cp /usr/share/datasets/fashion-mnist/*.gz .gpu-data/):
#   run(command="bash scripts/gpu-check.sh", carry=[".device", "dist", "node_modules", ".gpu-data"])
# The GPU machine has no npm, so tools are started through node directly.
set -euo pipefail
source .device/on-device.sh
out=${OUT:-gpu-out}; mkdir -p "$out"
export TORCH_PYTHON=$(command -v python3) CONVSCOPE_PYTHON=$(command -v python3) CONVSCOPE_DATA=$PWD/.gpu-data
node scripts/find-libtorch.js describe | tee "$out/libtorch.txt"
node node_modules/node-gyp/bin/node-gyp.js rebuild -j 16 --nodedir "$PWD/.device/node" > "$out/build.log" 2>&1 || { tail -50 "$out/build.log"; exit 1; }
node -e "console.log(require('./dist/src/index').torchInfo())" | tee "$out/info.txt"
node node_modules/jest/bin/jest.js test/cuda.test.ts test/script.test.ts test/train.test.ts 2>&1 | tee "$out/tests.log"
node dist/bench/run.js train 2>&1 | tee "$out/bench.log"
