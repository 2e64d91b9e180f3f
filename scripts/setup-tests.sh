#!/usr/bin/env bash
# The test command's set-up (`scripts/setup-tests.sh && npm test`, what CI runs): the main job's
# set-up (scripts/setup.sh), then everything the test suite checks beyond it, so that no test is
# skipped on a fresh machine for want of something set-up can install:
#   - Chromium: the browser checks of `report` and of the demo (playwright-core drives it);
#   - ONNX, onnxruntime, NumPy and TensorBoard in .venv: the files PyTorch, ONNX runtimes and
#     TensorBoard must read;
#   - the libtorch 1.13 fallback build (Debian's libtorch-dev, CMake) and its native test suite;
#   - PostgreSQL (Debian's postgresql): the tune tests start a throwaway cluster of their own and share
#     one Optuna study between worker processes through it (no server is left running);
#   - the CUDA compile check where nvcc exists: the CUDA wheel of PyTorch (headers and libraries only)
#     in .venv-cuda, and the addon with its CUDA-only sources compiled and linked against it.
# Idempotent like setup.sh: a second run takes seconds.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
source scripts/setup-lib.sh

# libtorch 1.13 and CMake for the fallback build; OpenBLAS (with Debian's reference BLAS 1.13's dense
# layers are ~45x slower); Chromium for the browser checks; PostgreSQL for the shared-study tests.
TEST_DEBS=(libtorch-dev libopenblas0-pthread cmake chromium postgresql)
step "Debian packages for the tests (libtorch 1.13, CMake, OpenBLAS, Chromium, PostgreSQL)" ensure_debs "${TEST_DEBS[@]}"

TEST_PY_PACKAGES=(numpy onnx onnxruntime tensorboard)
step "Python packages the comparison tests use, into .venv" ensure_venv .venv "" "${TEST_PY_PACKAGES[@]}"

# The fallback build, redone when a native source, a build file or the libtorch finder is newer.
build_fallback() {
  local addon=build-libtorch1/Release/convscope.node
  if [ -f "$addon" ] && ! native_newer_than "$addon"; then
    echo "setup:   up to date"
    return 0
  fi
  quietly build-libtorch1/build.log npm run --silent build:libtorch1
}
step "the libtorch 1.13 fallback addon (CMake, Debian's libtorch-dev)" build_fallback

# The CUDA compile check: a CUDA PyTorch's headers and libraries (no GPU needed, --no-deps: the toolkit
# supplies the CUDA runtime headers) so that every CUDA-only source is compiled and linked here.
CUDA_TORCH_REQUIREMENT=${CONVSCOPE_CUDA_TORCH_REQUIREMENT:-torch==2.14.1}
# What the NCCL backend of data-parallel training (native/cuda/distributed_nccl.cc) compiles against:
# nccl.h, and the cuBLAS, cuSPARSE and cuSOLVER headers ATen's CUDAContext.h includes, from the wheels
# torch 2.14.1 pins (its METADATA: nvidia-nccl-cu13==2.30.7; cuda-toolkit 13.0.3's cublas, cusparse and
# cusolver). About 1 GB with their libraries, which the check does not load.
CUDA_NCCL_REQUIREMENTS=(${CONVSCOPE_CUDA_NCCL_REQUIREMENTS:-nvidia-nccl-cu13==2.30.7 nvidia-cublas==13.1.1.3 nvidia-cusparse==12.6.3.3 nvidia-cusolver==12.0.4.66})
cuda_check() {
  ensure_venv .venv-cuda --no-deps "$CUDA_TORCH_REQUIREMENT" "${CUDA_NCCL_REQUIREMENTS[@]}"
  local addon=build-cuda/build/Release/convscope.node
  if [ -f "$addon" ] && ! native_newer_than "$addon"; then
    echo "setup:   up to date"
    return 0
  fi
  quietly build-cuda/build.log npm run --silent build:cuda-check
}
if command -v nvcc >/dev/null; then
  step "the CUDA compile check ($CUDA_TORCH_REQUIREMENT in .venv-cuda, the addon against it)" cuda_check
else
  echo "setup: no nvcc on PATH, so the CUDA compile check is skipped (install the CUDA toolkit to run it)"
fi

setup_done "test set-up done"
