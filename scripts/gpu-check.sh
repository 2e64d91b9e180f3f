#!/usr/bin/env bash
# The one command for a GPU machine (../shared/device/README.md): builds the addon against the
# machine's CUDA PyTorch, runs the CUDA tests, and runs the GPU benchmark, leaving logs and a JSON of
# figures in $OUT (or ./gpu-out). Each phase has its own time limit and a failing phase does not stop
# the next, so one call brings back everything that could be learnt.
#
# Prepare here (a CPU machine) with `bash scripts/gpu-pack.sh` after the last change, then:
#   run(command="bash scripts/gpu-check.sh", carry=[".device", "dist", ".gpu-carry", ".gpu-data"], timeout_s=560)
# Phases after the build: tests, bench, train (the CLI as users run it); all but train by default,
# or name them: `bash scripts/gpu-check.sh train`.
# The GPU machine has no npm, so tools are started through node directly.
set -uo pipefail
phases_wanted=${*:-tests bench}
wants() { [[ " $phases_wanted " == *" $1 "* ]]; }
out=${OUT:-gpu-out}
mkdir -p "$out"
phases="$out/phases.txt"
started=$SECONDS
phase() { echo "$(date -u +%H:%M:%S) +$((SECONDS - started))s $*" | tee -a "$phases"; }

source .device/on-device.sh
source scripts/gpu-unpack.sh
export TORCH_PYTHON=$(command -v python3)
# The CUDA-only sources need nvcc's toolkit headers (scripts/find-libtorch.js cuda-sources).
command -v nvcc >/dev/null || export PATH=$PATH:/usr/local/cuda/bin
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader >> "$phases"
node scripts/find-libtorch.js describe >> "$phases" 2>&1

phase "build: node-gyp rebuild -j 16 against $TORCH_DIR"
if timeout 300 node node_modules/node-gyp/bin/node-gyp.js rebuild -j 16 --nodedir "$PWD/.device/node" > "$out/build.log" 2>&1; then
  phase "build: ok"
else
  phase "build: FAILED (see build.log)"
  tail -40 "$out/build.log"
  exit 1
fi
node -e "console.log(JSON.stringify(require('./dist/src/index').torchInfo()))" >> "$phases" 2>&1

if wants tests; then
  phase "tests: dist/test/cuda.test.js dist/test/cuda-distributed.test.js"
  timeout 200 node node_modules/jest/bin/jest.js -c jest.gpu.config.js -i dist/test/cuda.test.js dist/test/cuda-distributed.test.js > "$out/tests.log" 2>&1
  phase "tests: exit $?"
  grep -E "✓|✕|○|Tests:" "$out/tests.log" | tail -40
fi

if wants bench; then
  phase "bench: node dist/bench/gpu.js --epochs 3"
  timeout 260 node dist/bench/gpu.js --epochs 3 --timeout 120 --out "$out/gpu.json" > "$out/bench.log" 2>&1
  phase "bench: exit $?"
  tail -30 "$out/bench.log"
fi

if wants train; then
  # `npm run train:cuda` as package.json spells it (no npm there), then the other paths, each with
  # its summary in train.log and its history.json beside it.
  train() {
    local name=$1; shift
    phase "train $name: $*"
    timeout 120 node dist/src/cli/main.js train --runs /tmp/runs --name "$name" "$@" >> "$out/train.log" 2>&1
    phase "train $name: exit $?"
    tail -4 "$out/train.log"
  }
  train cuda-script-5-epochs --device cuda --mode script --epochs 5
  train cuda-eager-1-epoch --device cuda
  train cuda-script-bf16-5-epochs --device cuda --mode script --epochs 5 --precision bf16 --no-pictures
  # Issue 18's GPU goal: the fast preset (batch norm, augmentation, one-cycle AdamW) >= 94.0% in 60 s.
  train cuda-fast-preset --device cuda --preset fast --no-pictures
  tar -czf "$out/train-runs.tgz" -C /tmp/runs . --wildcards "*/history.json" "*/config.json" || true
fi
