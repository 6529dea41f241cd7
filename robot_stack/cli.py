"""The ``robot-stack`` command: one entry for sessions, launch files and tools."""
from __future__ import annotations

import argparse
import sys


def _cmd_sim(args: argparse.Namespace) -> int:
    print(
        "robot-stack sim: the sim session (launch/sim.launch.yaml) is not built yet; "
        "this checkout can only build the package and run its tests (make test).",
        file=sys.stderr,
    )
    return 0


def _cmd_launch(args: argparse.Namespace) -> int:
    from robot_stack.launch.__main__ import run_from_args

    return run_from_args(args)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="robot-stack", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("sim", help="run a whole sim session (simulated operator, learner, actor)")
    p.set_defaults(func=_cmd_sim)
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
