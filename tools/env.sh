# Source this (bash) after tools/bootstrap.sh: activates .venv, the colcon install of
# robot_stack (messages), and puts the source tree first on PYTHONPATH so edits take
# effect without a rebuild (robot_stack/__init__.py extends its path to the built .msg).
_rs_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
if [ ! -f "$_rs_root/install/setup.bash" ] || [ ! -x "$_rs_root/.venv/bin/python" ]; then
  echo "robot_stack: not bootstrapped yet; run 'make bootstrap' first" >&2
  return 1 2>/dev/null || exit 1
fi
# shellcheck disable=SC1091
. "$_rs_root/.venv/bin/activate"
# local_setup.bash adds this workspace to AMENT_PREFIX_PATH; the venv must stay on it too
# (std_msgs etc. are found there).
set +u
# shellcheck disable=SC1091
. "$_rs_root/install/local_setup.bash"
export AMENT_PREFIX_PATH="$AMENT_PREFIX_PATH:$VIRTUAL_ENV"
export PYTHONPATH="$_rs_root${PYTHONPATH:+:$PYTHONPATH}"
export PATH="$_rs_root/scripts:$PATH"
export RMW_IMPLEMENTATION="${RMW_IMPLEMENTATION:-rmw_fastrtps_cpp}"
export MUJOCO_GL="${MUJOCO_GL:-egl}"
export PYOPENGL_PLATFORM="${PYOPENGL_PLATFORM:-egl}"
# glibc malloc settings that cut page-fault time in torch updates (benchmarks/README.md).
export MALLOC_MMAP_THRESHOLD_="${MALLOC_MMAP_THRESHOLD_:-4294967296}"
export MALLOC_TRIM_THRESHOLD_="${MALLOC_TRIM_THRESHOLD_:-100000000000}"
export ROBOT_STACK_ROOT="$_rs_root"
unset _rs_root
