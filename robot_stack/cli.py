"""The ``robot-stack`` command: one entry for sessions, launch files and tools."""
from __future__ import annotations

import argparse
import sys


def _cmd_sim(args: argparse.Namespace) -> int:
    """launch/sim.launch.yaml through our launch runner, stopped cleanly after --duration-s."""
    import os
    import pathlib
    import signal
    import threading

    from robot_stack.launch.description import LaunchError, load_launch, parse_cli_args
    from robot_stack.launch.runner import LaunchRunner

    root = pathlib.Path(os.environ.get("ROBOT_STACK_ROOT") or pathlib.Path(__file__).resolve().parents[1])
    launch_file = root / "launch" / "sim.launch.yaml"
    try:
        plan = load_launch(launch_file, parse_cli_args(args.launch_args))
    except LaunchError as e:
        print(f"robot-stack sim: error: {e}", file=sys.stderr)
        return 2
    if args.duration_s > 0:
        print(f"robot-stack sim: running {launch_file.name} for {args.duration_s:.0f} s (Ctrl-C stops earlier); "
              f"progress: one line per episode from [monitor]", flush=True)
        # The runner treats SIGINT as a stop request and shuts every node down cleanly.
        timer = threading.Timer(args.duration_s, lambda: os.kill(os.getpid(), signal.SIGINT))
        timer.daemon = True
        timer.start()
    # Shutdown timeouts come from the file (sim.launch.yaml's sigterm_timeout) or the command line.
    return LaunchRunner(plan).run()


def _cmd_launch(args: argparse.Namespace) -> int:
    from robot_stack.launch.__main__ import run_from_args

    return run_from_args(args)


def _cmd_spec(args: argparse.Namespace) -> int:
    import pathlib

    from robot_stack.sim import specs

    if args.write_all:
        for path in specs.write_all(pathlib.Path(args.write_all)):
            print(path)
        return 0
    cams = tuple(c for c in args.cameras.replace("_", ",").split(",") if c)
    print(specs.task_policy_spec(args.task, cams, args.image_size).to_json())
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="robot-stack", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("sim", help="run a whole sim session (simulated operator, learner, actor)",
                       description="Run launch/sim.launch.yaml (sim world, franka, SpaceMouse, actor, learner, "
                                   "monitor) for a while, then stop it cleanly. Launch arguments as name:=value; "
                                   "see `robot-stack launch launch/sim.launch.yaml --show-args`.")
    p.add_argument("--duration-s", type=float, default=600.0, help="stop after this long (0: run until Ctrl-C)")
    p.add_argument("launch_args", nargs="*", metavar="name:=value", help="launch arguments, e.g. task:=peg_insertion")
    p.set_defaults(func=_cmd_sim)
    p = sub.add_parser("spec", help="print the policy spec (JSON) of a sim task, or write all spec files")
    p.add_argument("--task", default="reach", help="reach or peg_insertion")
    p.add_argument("--cameras", default="front", help="comma-separated camera names (front, wrist)")
    p.add_argument("--image-size", type=int, default=64, help="square image size in pixels")
    p.add_argument("--write-all", metavar="DIR", help="write every spec the sim launch file offers into DIR")
    p.set_defaults(func=_cmd_spec)
    from robot_stack.launch.__main__ import add_arguments

    p = sub.add_parser("launch", help="run a ROS 2 YAML launch file (launch/*.launch.yaml) without ros2 launch",
                       description="Run a ROS 2 YAML launch file: robot-stack launch FILE [name:=value ...]")
    add_arguments(p)
    p.set_defaults(func=_cmd_launch)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
