"""``python -m robot_stack.launch FILE [name:=value ...]``: run a ROS 2 YAML launch file."""
from __future__ import annotations

import argparse
import pathlib
import sys

from robot_stack.launch.description import LaunchError, declared_args, find_pkg_share, load_launch, parse_cli_args
from robot_stack.launch.runner import LaunchRunner


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("target", nargs="+", metavar="FILE | PKG FILE [name:=value ...]",
                        help="launch file path (or package name and file name in its launch/ folder), then arguments")
    parser.add_argument("-s", "--show-args", action="store_true", help="print the file's launch arguments and exit")
    parser.add_argument("-p", "--print", dest="print_plan", action="store_true",
                        help="print the commands that would run and exit")
    parser.add_argument("--sigint-timeout", type=float, default=5.0, help="seconds from SIGINT to SIGTERM on shutdown")
    parser.add_argument("--sigterm-timeout", type=float, default=5.0, help="seconds from SIGTERM to SIGKILL on shutdown")


def resolve_target(target: list[str]) -> tuple[pathlib.Path, list[str]]:
    """(launch file, name:=value items) from 'FILE args' or 'PKG FILE args'."""
    first, rest = target[0], target[1:]
    if pathlib.Path(first).is_file() or ":=" in first:
        return pathlib.Path(first), rest
    if rest and ":=" not in rest[0]:
        share = find_pkg_share(first)
        for cand in (share / "launch" / rest[0], share / rest[0]):
            if cand.is_file():
                return cand, rest[1:]
        raise LaunchError(f"launch file '{rest[0]}' not found in package '{first}' ({share / 'launch'})")
    raise LaunchError(f"launch file '{first}' does not exist")


def run_from_args(args: argparse.Namespace) -> int:
    try:
        path, items = resolve_target(args.target)
        if args.show_args:
            for a in declared_args(path):
                default = "(required)" if a.default is None else f"(default: '{a.default}')"
                choices = f" one of {a.choices}" if a.choices else ""
                print(f"    '{a.name}':\n        {a.description or 'no description given'}{choices}\n        {default}")
            return 0
        plan = load_launch(path, parse_cli_args(items))
    except LaunchError as e:
        print(f"robot-stack launch: error: {e}", file=sys.stderr)
        return 2
    if args.print_plan:
        for p in plan.processes:
            print(f"[{p.name}] {' '.join(p.cmd)}")
        plan.cleanup()
        return 0
    return LaunchRunner(plan, sigint_timeout_s=args.sigint_timeout, sigterm_timeout_s=args.sigterm_timeout).run()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m robot_stack.launch", description=__doc__)
    add_arguments(parser)
    return run_from_args(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
