#!/usr/bin/env bash
# Run right after scripts/setup.sh on a fresh clone (CI does): fails if the main job's set-up built or
# installed what only the tests need, so that `scripts/setup.sh && npm run train` stays minutes, not
# a quarter of an hour (issue 32). Each of these is the test set-up's (scripts/setup-tests.sh).
set -euo pipefail
cd "$(dirname "$0")/.."

failed=0
refuse() { echo "check-main-setup: scripts/setup.sh $1 (scripts/setup-tests.sh's job)" >&2; failed=1; }
lacks() { echo "check-main-setup: scripts/setup.sh did not make $1" >&2; failed=1; }
[ ! -e build-libtorch1 ] || refuse "built the libtorch 1.13 fallback addon (build-libtorch1/)"
[ ! -e build-cuda ] || refuse "ran the CUDA compile check (build-cuda/)"
[ ! -e .venv-cuda ] || refuse "installed the CUDA wheel for the compile check (.venv-cuda/)"
for module in onnx onnxruntime tensorboard; do
  if .venv/bin/python3 -c "import $module" 2>/dev/null; then
    refuse "installed the Python package $module, which only tests use"
  fi
done
[ -f build/Release/convscope.node ] || lacks "the addon (build/Release/convscope.node)"
[ -f dist/src/cli/main.js ] || lacks "the TypeScript build (dist/src/cli/main.js)"
if [ "$failed" = 0 ]; then echo "check-main-setup: the main job's set-up built only what the main job needs"; fi
exit "$failed"
