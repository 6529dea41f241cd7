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


def _root():
    import os
    import pathlib

    return pathlib.Path(os.environ.get("ROBOT_STACK_ROOT") or pathlib.Path(__file__).resolve().parents[1])


def _cmd_bag_info(args: argparse.Namespace) -> int:
    from robot_stack.recording.bag import bag_info

    try:
        print(bag_info(args.bag).describe())
    except FileNotFoundError as e:
        print(f"robot-stack bag info: error: {e}", file=sys.stderr)
        return 2
    return 0


def _cmd_bag_replay(args: argparse.Namespace) -> int:
    """Feed a recorded session's step records into a fresh learner."""
    import logging

    from robot_stack.recording.bag import find_bag
    from robot_stack.recording.replay import STEP_RECORD, fresh_run_dir, learner_config, replay_bag, topic_of_type

    logging.basicConfig(level=logging.INFO, format="%(message)s")

    def err(msg) -> int:
        print(f"robot-stack bag replay: error: {msg}", file=sys.stderr)
        return 2

    try:
        bag = find_bag(args.bag)
        cfg, left_out = learner_config(args.params_file or _root() / "config" / "learner.yaml", args.param,
                                       run_dir=args.run_dir, spec_file=args.spec_file or "")
        fresh_run_dir(cfg.run_dir)
        topic = args.steps_topic or topic_of_type(bag, STEP_RECORD)
    except (FileNotFoundError, ValueError, LookupError) as e:
        return err(e)
    if left_out:
        print(f"replay: learner node settings not used here: {', '.join(left_out)}", flush=True)
    print(f"replay: {bag} ({topic}) into a fresh learner in {cfg.run_dir}"
          + ("" if args.train else " (no training: label and store only)"), flush=True)

    def progress(r) -> None:
        print(f"replay: {r.steps} steps, {r.transitions} transitions, {r.updates} updates, "
              f"{r.steps / max(r.seconds, 1e-9):.0f} steps/s", flush=True)

    try:
        result = replay_bag(bag, cfg, train=args.train, topic=topic, progress=progress)
    except LookupError as e:
        return err(f"{e}; pass --spec-file")
    print(f"replay: done: {result.steps + len(result.rejected)} step records ({len(result.rejected)} rejected), "
          f"{result.episodes} episodes, {result.transitions} transitions, {result.updates} updates in "
          f"{result.seconds:.1f} s; learner state in {result.run_dir}", flush=True)
    for msg in result.rejected[:5]:
        print(f"replay: rejected: {msg}", file=sys.stderr)
    if result.steps + len(result.rejected) == 0:
        return err(f"no step records on {topic} in {bag}")
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

    p = sub.add_parser("bag", help="recorded sessions: summary, replay into a learner",
                       description="Work with the rosbag2 bags (MCAP) a session records under <run_dir>/bags.")
    bag_sub = p.add_subparsers(dest="bag_command", required=True)
    q = bag_sub.add_parser("info", help="topics, message counts and duration of a bag",
                           description="Summarise a bag (like ros2 bag info). BAG: a bag folder, its metadata.yaml "
                                       "or .mcap, or a folder of bags (the newest is taken).")
    q.add_argument("bag")
    q.set_defaults(func=_cmd_bag_info)
    q = bag_sub.add_parser(
        "replay", help="feed a recorded session's step records into a fresh learner",
        description="Feed the step records of a recorded session into a fresh learner in --run-dir: the same "
                    "labelling, replay buffers and update-to-data schedule as the learner node, run as fast as the "
                    "CPU allows. Retrain with another penalty or network with -p, e.g. "
                    "-p labelling.intervention_penalty=-2.0 -p sac.network.encoder_channels=64.")
    q.add_argument("bag", help="bag folder (or its metadata.yaml/.mcap, or a folder of bags: the newest)")
    q.add_argument("--run-dir", required=True, help="new learner run dir (checkpoint, replay logs, policies, tb/)")
    q.add_argument("--params-file", help="learner parameters (ROS 2 params file or plain YAML; default config/learner.yaml)")
    q.add_argument("-p", "--param", action="append", default=[], metavar="NAME=VALUE",
                   help="override one learner parameter, e.g. sac.utd_ratio=4 (repeatable)")
    q.add_argument("--spec-file", help="policy spec JSON (default: the spec of the bag's first policy version)")
    q.add_argument("--no-train", dest="train", action="store_false",
                   help="only label and store the transitions (no gradient updates)")
    q.add_argument("--steps-topic", default="",
                   help="topic of the step records in the bag (default: its one robot_stack/StepRecord topic, "
                        "<namespace>/steps)")
    q.set_defaults(func=_cmd_bag_replay)
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
