#!/usr/bin/env bash
# Every Python dependency of robot_stack as wheel files, made on this machine with its network:
# the image build installs from them with pip --no-index (nothing is downloaded inside a build),
# and a robot PC without internet installs from a copy of them (docker/README.md).
#   wheelhouse/common/      requirements.txt with the pins of constraints.txt, torch left out
#   wheelhouse/torch-cpu/   the torch CPU wheel of constraints.txt (default)
#   wheelhouse/torch-cuda/  PyPI's torch build of the same version (CUDA 13) and its NVIDIA libraries
#   wheelhouse/franka-sim/  tools/requirements-franka-sim.txt (the bootstrap's test simulator venv)
# Usage: tools/wheelhouse.sh [cpu|cuda]. Idempotent: a stamp keyed by the requirement files.
# Wheels are resolved for the Python that runs pip ($PYTHON, default python3.11): CPython 3.11
# on x86_64 Linux, as in the image (Debian bookworm).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
OUT="${WHEELHOUSE:-$ROOT/wheelhouse}"
TORCH="${1:-cpu}"
PYTHON="${PYTHON:-python3.11}"
say() { echo "wheelhouse: $*"; }
fail() { echo "wheelhouse: $*" >&2; exit 1; }

case "$TORCH" in cpu|cuda) ;; *) fail "unknown torch build '$TORCH' (cpu or cuda)";; esac
command -v "$PYTHON" >/dev/null || fail "$PYTHON not found: the wheels must be resolved for CPython 3.11 (the image's Python); set PYTHON=/path/to/python3.11"
"$PYTHON" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' || fail "$PYTHON is not Python 3.11"
# (pip's warnings about configured index folders that lack a package are dropped)
pip() { "$PYTHON" -m pip --disable-pip-version-check "$@" 2> >(grep -v "is ignored: it is neither" >&2); }

torch_pin=$(sed -n 's/^torch==\([^ ]*\)$/\1/p' constraints.txt)   # e.g. 2.13.0+cpu
[ -n "$torch_pin" ] || fail "constraints.txt pins no torch"
torch_version=${torch_pin%%+*}
req_hash=$(cat requirements.txt constraints.txt tools/requirements-franka-sim.txt "${BASH_SOURCE[0]}" | sha256sum | cut -d' ' -f1)
mkdir -p "$OUT"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# --- torch CPU: needed by every wheelhouse (common/ is resolved against it) ------------------
if [ "$(cat "$OUT/torch-cpu/.stamp" 2>/dev/null)" != "$req_hash" ]; then
  rm -rf "$OUT/torch-cpu" && mkdir -p "$OUT/torch-cpu"
  say "torch $torch_pin"
  # From the configured indexes; the CPU builds live on PyTorch's own index, not on PyPI.
  pip download -q --no-deps -d "$OUT/torch-cpu" "torch==$torch_pin" 2>/dev/null \
    || pip download -q --no-deps -d "$OUT/torch-cpu" --index-url https://download.pytorch.org/whl/cpu "torch==$torch_pin" \
    || fail "could not download torch==$torch_pin"
  echo "$req_hash" >"$OUT/torch-cpu/.stamp"
fi

# --- common: everything else, sdists built into wheels here -----------------------------------
if [ "$(cat "$OUT/common/.stamp" 2>/dev/null)" != "$req_hash" ]; then
  rm -rf "$OUT/common" && mkdir -p "$OUT/common"
  say "requirements.txt -> $OUT/common (a minute or two)"
  pip wheel -q -w "$tmp/all" --find-links "$OUT/torch-cpu" -r requirements.txt -c constraints.txt \
    || fail "pip wheel failed (see above)"
  find "$tmp/all" -name 'torch-*.whl' -delete
  mv "$tmp/all"/* "$OUT/common/"
  echo "$req_hash" >"$OUT/common/.stamp"
fi

# --- franka-sim: the bootstrap's second venv, so that an offline bootstrap completes ---------
if [ "$(cat "$OUT/franka-sim/.stamp" 2>/dev/null)" != "$req_hash" ]; then
  rm -rf "$OUT/franka-sim" && mkdir -p "$OUT/franka-sim"
  say "tools/requirements-franka-sim.txt -> $OUT/franka-sim"
  pip wheel -q -w "$OUT/franka-sim" -r tools/requirements-franka-sim.txt || fail "pip wheel failed (see above)"
  echo "$req_hash" >"$OUT/franka-sim/.stamp"
fi

# --- torch CUDA: PyPI's build of the pinned version ------------------------------------------
if [ "$TORCH" = cuda ] && [ "$(cat "$OUT/torch-cuda/.stamp" 2>/dev/null)" != "$req_hash" ]; then
  rm -rf "$OUT/torch-cuda" && mkdir -p "$OUT/torch-cuda"
  say "torch $torch_version from PyPI with its CUDA libraries (several GB)"
  grep -v '^torch==' constraints.txt >"$tmp/constraints.txt"
  # '===' matches the version string exactly: never the +cpu build a find-links folder may hold.
  pip download -q --only-binary=:all: -d "$tmp/cuda" -c "$tmp/constraints.txt" "torch===$torch_version" \
    || fail "could not download torch===$torch_version and its CUDA libraries"
  for f in "$tmp/cuda"/*; do   # keep only what common/ does not hold already
    [ -e "$OUT/common/$(basename "$f")" ] || mv "$f" "$OUT/torch-cuda/"
  done
  echo "$req_hash" >"$OUT/torch-cuda/.stamp"
fi
say "$OUT: common $(du -sh "$OUT/common" | cut -f1), torch-$TORCH $(du -sh "$OUT/torch-$TORCH" | cut -f1)"
