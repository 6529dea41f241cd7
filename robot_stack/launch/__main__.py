"""``python -m robot_stack.launch FILE [name:=value ...]``: run a ROS 2 YAML launch file.

The options are ``ros2 launch``'s, where they make sense without ros2launch: ``-s`` (show the
arguments), ``-p`` (print what would run), ``-d`` (debug output), ``-a`` (show every
process's output), ``--launch-prefix``/``--launch-prefix-filter``, and ``-n`` (accepted; the
runner always forwards signals itself). Shutdown timeouts are launch configurations, as in
ros2 launch: ``sigterm_timeout:=30 sigkill_timeout:=5``.
"""
from __future__ import annotations

import argparse
import os
import pathlib
import shlex
import sys

import yaml

from robot_stack.launch.description import LaunchError, declared_args, find_pkg_share, load_launch, parse_cli_args
from robot_stack.launch.runner import LaunchRunner


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("target", nargs="+", metavar="FILE | PKG FILE [name:=value ...]",
                        help="launch file path (or package name and file name in its launch/ folder), then arguments")
    parser.add_argument("-n", "--noninteractive", action="store_true",
                        help="accepted as in ros2 launch (the runner always forwards signals to its processes)")
    parser.add_argument("-d", "--debug", action="store_true",
                        help="verbose output: each process's full command line, timeouts and respawn setting")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("-p", "--print", "--print-description", dest="print_plan", action="store_true",
                      help="print each process's command and parameters without launching")
    mode.add_argument("-s", "--show-args", "--show-arguments", action="store_true",
                      help="show the arguments that may be given to the launch file")
    parser.add_argument("-a", "--show-all-subprocesses-output", action="store_true",
                        help="show every process's output (sets OVERRIDE_LAUNCH_PROCESS_OUTPUT=both)")
    parser.add_argument("--launch-prefix", help="prefix command for every node without a launch-prefix of its own, "
                                                "e.g. 'nice -n 5' (the launch-prefix launch configuration)")
    parser.add_argument("--launch-prefix-filter", help="regular expression: apply --launch-prefix only to executables "
                                                       "whose name it matches (e.g. 'franka_node|actor_node')")


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


def show_args(path: pathlib.Path) -> None:
    """The arguments as ros2 launch -s lists them (included files' too, * if conditional)."""
    args = declared_args(path)
    print("Arguments (pass arguments as '<name>:=<value>'):")
    for a in args:
        text = f"\n    '{a.name}':{'*' if a.conditional else ''}\n        {a.description or 'no description given'}"
        if a.choices:
            text += f"\n        Valid choices are: {a.choices}"
        if a.default is not None:
            text += f"\n        (default: '{a.default}')"
        print(text)
    if not args:
        print("\n  No arguments.")
    elif any(a.conditional for a in args):
        print("\n* argument(s) which are only used if specific conditions occur")


def run_from_args(args: argparse.Namespace) -> int:
    if args.launch_prefix_filter is not None and args.launch_prefix is None:
        print("robot-stack launch: error: --launch-prefix must be specified if --launch-prefix-filter is provided",
              file=sys.stderr)
        return 2
    if args.show_all_subprocesses_output:
        os.environ["OVERRIDE_LAUNCH_PROCESS_OUTPUT"] = "both"
    try:
        path, items = resolve_target(args.target)
        if args.show_args:
            show_args(path)
            return 0
        # ros2 launch passes the options as launch configurations after the file's arguments.
        if args.launch_prefix is not None:
            items = [*items, f"launch-prefix:={args.launch_prefix}"]
        if args.launch_prefix_filter is not None:
            items = [*items, f"launch-prefix-filter:={args.launch_prefix_filter}"]
        plan = load_launch(path, parse_cli_args(items))
    except LaunchError as e:
        print(f"robot-stack launch: error: {e}", file=sys.stderr)
        return 2
    if args.print_plan:
        for p in plan.processes:
            print(f"[{p.name}] {shlex.join(p.cmd)}")
            print(f"    output: {p.output}, respawn: {p.respawn}"
                  + (f" (delay {p.respawn_delay_s:g} s)" if p.respawn else "")
                  + f", sigterm_timeout: {p.sigterm_timeout_s:g} s, sigkill_timeout: {p.sigkill_timeout_s:g} s")
            for i, word in enumerate(p.cmd[:-1]):
                if word == "--params-file" and p.cmd[i + 1] in plan.temp_files:  # an inline value: show it
                    with open(p.cmd[i + 1]) as f:
                        values = yaml.safe_load(f)["/**"]["ros__parameters"]
                    print("".join(f"    param {k}: {v!r}\n" for k, v in values.items()), end="")
                elif word == "--params-file":
                    print(f"    params from {p.cmd[i + 1]}")
        plan.cleanup()
        return 0
    return LaunchRunner(plan, debug=args.debug).run()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m robot_stack.launch", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(parser)
    return run_from_args(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
