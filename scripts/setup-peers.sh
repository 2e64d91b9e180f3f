#!/usr/bin/env bash
# Optional peers for `npm run bench -- train --peers` (issue 19), idempotent like scripts/setup.sh:
#   .venv-peers   Keras on TensorFlow (pip's tensorflow-cpu) with numpy: bench/keras_reference.py
#   .peers/tfjs   tfjs-node (an npm project of its own, never a dependency of convscope):
#                 bench/tfjs_reference.js
# tfjs-node's install script downloads libtensorflow from the internet. Here it is built offline on
# the TensorFlow C API inside the tensorflow-cpu wheel instead: the package is installed with
# --ignore-scripts, deps/include points at the wheel's tensorflow/include, deps/lib's libtensorflow.so*
# at the wheel's libtensorflow_cc.so.2 (which exports the C and eager C APIs) and
# libtensorflow_framework.so* at libtensorflow_framework.so.2, scripts/custom-binary.json names a
# tf-lib URL that cannot be reached (so the installer builds the addon from source rather than fetch
# a prebuilt one), and `npm rebuild @tensorflow/tfjs-node` compiles the addon against Node's own
# headers. A second run finds everything in place (stamp files) and takes seconds.
set -euo pipefail
cd "$(dirname "$0")/.."

# The requirements come from the environment; the defaults are the versions tested here, from pip's
# own configuration (CONVSCOPE_PIP_INDEX adds an index, as in scripts/setup.sh).
TF_REQUIREMENT=${CONVSCOPE_TF_REQUIREMENT:-tensorflow-cpu==2.21.0}
TFJS_REQUIREMENT=${CONVSCOPE_TFJS_REQUIREMENT:-@tensorflow/tfjs-node@4.22.0}
PY_PACKAGES=(numpy)
PIP_OPTIONS=(--disable-pip-version-check --retries 0 --timeout 5)
[ -n "${CONVSCOPE_PIP_INDEX:-}" ] && PIP_OPTIONS+=(--extra-index-url "$CONVSCOPE_PIP_INDEX")

VENV=.venv-peers
TFJS_DIR=.peers/tfjs

# Keras: $VENV holds the requirements unless its stamp says it already does.
want="$TF_REQUIREMENT ${PY_PACKAGES[*]}"
if [ -f "$VENV/.convscope-requirements" ] && [ "$(cat "$VENV/.convscope-requirements")" = "$want" ]; then
  echo "setup-peers: $VENV up to date ($want)"
else
  echo "setup-peers: installing $want into $VENV"
  [ -x "$VENV/bin/python3" ] || python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q "${PIP_OPTIONS[@]}" "$TF_REQUIREMENT" "${PY_PACKAGES[@]}"
  echo "$want" > "$VENV/.convscope-requirements"
fi
tf_dir=$("$VENV/bin/python3" -c 'import os, tensorflow; print(os.path.dirname(tensorflow.__file__))' 2>/dev/null | tail -1)
for f in libtensorflow_cc.so.2 libtensorflow_framework.so.2 include/tensorflow/c/eager/c_api.h; do
  [ -e "$tf_dir/$f" ] || { echo "setup-peers: $tf_dir/$f is missing: this TensorFlow wheel cannot host tfjs-node" >&2; exit 1; }
done

# tfjs-node on the wheel's libraries, rebuilt when the requirement or the wheel changed.
tfjs_want="$TFJS_REQUIREMENT on $tf_dir ($(stat -c %s "$tf_dir/libtensorflow_cc.so.2") bytes) node $(node -v)"
pkg=$TFJS_DIR/node_modules/@tensorflow/tfjs-node
if [ -f "$TFJS_DIR/.convscope-requirements" ] && [ "$(cat "$TFJS_DIR/.convscope-requirements")" = "$tfjs_want" ] \
  && [ -n "$(ls "$pkg"/lib/napi-v*/tfjs_binding.node 2>/dev/null)" ]; then
  echo "setup-peers: $TFJS_DIR up to date ($TFJS_REQUIREMENT)"
else
  echo "setup-peers: installing $TFJS_REQUIREMENT into $TFJS_DIR (scripts ignored)"
  mkdir -p "$TFJS_DIR"
  rm -f "$TFJS_DIR/.convscope-requirements"
  [ -f "$TFJS_DIR/package.json" ] || echo '{ "private": true, "description": "bench peer for convscope, made by scripts/setup-peers.sh" }' > "$TFJS_DIR/package.json"
  (cd "$TFJS_DIR" && npm install --ignore-scripts --no-audit --no-fund --loglevel=error "$TFJS_REQUIREMENT")

  echo "setup-peers: pointing tfjs-node's deps at $tf_dir"
  rm -rf "$pkg/deps" "$pkg/lib"
  mkdir -p "$pkg/deps/lib"
  ln -s "$tf_dir/include" "$pkg/deps/include"
  # The name install.js looks for (libtensorflow.so.<its LIBTENSORFLOW_VERSION>), the link-time names
  # (-ltensorflow, -ltensorflow_framework) and the sonames the addon records (found at run time
  # through its rpath, $ORIGIN/../../deps/lib).
  tfjs_libtf=$(cd "$pkg" && node -p "require('./scripts/deps-constants.js').depsLibTensorFlowName")
  tfjs_libfw=$(cd "$pkg" && node -p "require('./scripts/deps-constants.js').depsLibTensorFlowFrameworkName")
  for name in "$tfjs_libtf" libtensorflow.so libtensorflow.so.2 libtensorflow_cc.so.2; do
    ln -s "$tf_dir/libtensorflow_cc.so.2" "$pkg/deps/lib/$name"
  done
  for name in "$tfjs_libfw" libtensorflow_framework.so libtensorflow_framework.so.2; do
    ln -sf "$tf_dir/libtensorflow_framework.so.2" "$pkg/deps/lib/$name"
  done
  # A custom tf-lib makes install.js build the addon from source; the URL is never fetched (the
  # library above is already in place), and could not be.
  echo '{ "tf-lib": "http://127.0.0.1:9/libtensorflow-is-the-tensorflow-wheel.tar.gz" }' > "$pkg/scripts/custom-binary.json"

  echo "setup-peers: building tfjs-node's addon from source against Node's headers (under a minute)"
  nodedir=$(dirname "$(dirname "$(command -v node)")")
  [ -f "$nodedir/include/node/node_api.h" ] && export npm_config_nodedir="$nodedir"
  (cd "$TFJS_DIR" && npm rebuild --foreground-scripts @tensorflow/tfjs-node)
  [ -n "$(ls "$pkg"/lib/napi-v*/tfjs_binding.node 2>/dev/null)" ] || { echo "setup-peers: tfjs-node's addon was not built" >&2; exit 1; }
  echo "$tfjs_want" > "$TFJS_DIR/.convscope-requirements"
fi

keras=$("$VENV/bin/python3" -c 'import os; os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"; import tensorflow as tf, keras; print(f"TensorFlow {tf.__version__}, Keras {keras.__version__}")' 2>/dev/null | tail -1)
tfjs=$(cd "$TFJS_DIR" && TF_CPP_MIN_LOG_LEVEL=3 node -e 'const tf = require("@tensorflow/tfjs-node"); process.stdout.write(`tfjs-node ${tf.version["tfjs-node"]} on libtensorflow ${tf.backend().binding.TF_Version}`)' 2>/dev/null || true)
echo "setup-peers: $VENV: $keras ($(du -sh "$VENV" | cut -f1))"
echo "setup-peers: $TFJS_DIR: ${tfjs:-tfjs-node does not load} ($(du -sh "$TFJS_DIR" | cut -f1), the libraries are the wheel's)"
echo "setup-peers: done; run them with: npm run bench -- train --peers"
