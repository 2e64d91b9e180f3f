# Shared by scripts/setup.sh (the main job's set-up) and scripts/setup-tests.sh (the test command's):
# timed steps, Debian packages, Python environments and stamps. Sourced, not run.
# Every step prints what it does and how long it took, so a slow set-up says where its time went.

SETUP_STARTED=$(date +%s.%N)

# Seconds since $1 (a `date +%s.%N` reading), one decimal.
seconds_since() { awk -v a="$1" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }'; }

# Runs "$@" as one named step: `step "what it does" command args...`. Prints the step, then its time;
# a failing step names itself and the script stops (set -e in the caller).
step() {
  local what=$1; shift
  local started
  started=$(date +%s.%N)
  echo "setup: $what ..."
  if "$@"; then
    echo "setup: $what: done in $(seconds_since "$started") s"
  else
    local status=$?
    echo "setup: $what: FAILED after $(seconds_since "$started") s (exit $status)" >&2
    return "$status"
  fi
}

# Runs "$@" with its output in log file $1 (`quietly LOG command args...`); on failure prints the
# log's last lines (the compiler's error is there) and where the whole log is.
quietly() {
  local log=$1; shift
  mkdir -p "$(dirname "$log")"
  if "$@" > "$log" 2>&1; then return 0; fi
  local status=$?
  echo "setup: '$*' failed (exit $status); the end of its log, $log:" >&2
  grep -v "^convscope: using libtorch" "$log" | tail -n 40 >&2
  return "$status"
}

# The Debian packages of $@ that are not installed.
missing_debs() {
  local pkg
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || echo "$pkg"
  done
}

# Installs the Debian packages of $@ that are missing (as root or through sudo, else prints the command
# and fails). apt-get update runs once per set-up, and only when something is missing.
ensure_debs() {
  local missing
  mapfile -t missing < <(missing_debs "$@")
  if [ ${#missing[@]} -eq 0 ]; then
    echo "setup:   present: $*"
    return 0
  fi
  local sudo=""
  if [ "$(id -u)" != 0 ]; then
    if command -v sudo >/dev/null && sudo -n true 2>/dev/null; then sudo="sudo"; else
      echo "setup: these Debian packages are missing and I cannot install them without root:" >&2
      echo "  sudo apt-get update && sudo apt-get install -y ${missing[*]}" >&2
      return 1
    fi
  fi
  echo "setup:   installing ${missing[*]}"
  if [ -z "${SETUP_APT_UPDATED:-}" ]; then
    $sudo apt-get update -qq
    SETUP_APT_UPDATED=1
  fi
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# pip fails fast instead of retrying an unreachable index. The requirement and index of PyTorch come
# from the environment; the defaults are the pinned, tested CPU build and pip's own configuration
# (elsewhere, PyTorch's CPU wheels come from CONVSCOPE_PIP_INDEX=https://download.pytorch.org/whl/cpu).
PIP_OPTIONS=(--disable-pip-version-check --retries 0 --timeout 5)
[ -n "${CONVSCOPE_PIP_INDEX:-}" ] && PIP_OPTIONS+=(--extra-index-url "$CONVSCOPE_PIP_INDEX")

# Makes venv $1 hold requirements $3... (pip options $2), unless its stamp says it already does.
# Requirements are added, never removed: the test set-up adds its packages to the main job's .venv.
ensure_venv() {
  local venv=$1 extra=$2; shift 2
  local stamp="$venv/.convscope-requirements" want
  want="$* $extra"
  if [ -f "$stamp" ] && grep -qxF -- "$want" "$stamp"; then
    echo "setup:   $venv up to date ($*)"
    return 0
  fi
  [ -x "$venv/bin/python3" ] || python3 -m venv "$venv"
  echo "setup:   pip install $* into $venv"
  # shellcheck disable=SC2086
  "$venv/bin/pip" install -q "${PIP_OPTIONS[@]}" $extra "$@"
  echo "$want" >> "$stamp"
}

# Whether this machine has an NVIDIA GPU with a working driver (what a CUDA build can use).
has_gpu() { command -v nvidia-smi >/dev/null && nvidia-smi -L >/dev/null 2>&1; }

# Whether any of the native sources, build files or the libtorch finder is newer than file $1.
native_newer_than() {
  [ -n "$(find native binding.gyp scripts/find-libtorch.js -newer "$1" -print -quit 2>/dev/null)" ]
}

# Prints the whole set-up's time; called last.
setup_done() { echo "setup: $1 in $(seconds_since "$SETUP_STARTED") s"; }
