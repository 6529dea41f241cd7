"""Runs our ROS 2 YAML launch files without ros2launch.

``robot-stack launch FILE [name:=value ...]`` or ``python -m robot_stack.launch FILE ...``.
:mod:`~robot_stack.launch.description` parses a file into a plan (what it reads is listed
there); :mod:`~robot_stack.launch.runner` runs it (process, respawn, signal and exit-status
rules are listed there). The same files run unmodified under ``ros2 launch robot_stack <file>``
on a full ROS 2 install.
"""
from robot_stack.launch.description import LaunchError, LaunchPlan, ProcessSpec, declared_args, load_launch, parse_cli_args
from robot_stack.launch.runner import LaunchRunner

__all__ = ["LaunchError", "LaunchPlan", "LaunchRunner", "ProcessSpec", "declared_args", "load_launch", "main", "parse_cli_args"]


def main(argv: list[str] | None = None) -> int:
    from robot_stack.launch.__main__ import main as _main

    return _main(argv)
