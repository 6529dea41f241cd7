"""Evaluate an exported policy alone (no operator, no critic) on a simulation task.

    python -m robot_stack.training.evaluate --policy runs/<run>/policies/best.pt --task reach --episodes 20

The observation mode and image size come from the policy's own spec (cameras -> pixels).
"""
from __future__ import annotations

import argparse
import json
import logging

import torch

from robot_stack.rl.policy_io import load_policy_file, read_policy_file
from robot_stack.training.session import STATE_NAMES, SimRobot
from robot_stack.training.train import evaluate


def evaluate_policy_file(path: str, task: str, episodes: int = 20, seed0: int = 10_000) -> dict:
    """Success rate of the exported policy at ``path`` acting alone on ``task``."""
    policy = load_policy_file(path)
    spec = policy.spec
    obs_mode = "pixels" if spec.cameras else "state"
    if obs_mode == "state" and spec.proprio_names[-len(STATE_NAMES):] != STATE_NAMES:
        raise ValueError(f"policy {path} was not trained on the sim's state observations")
    size = spec.cameras[0].height if spec.cameras else 64
    robot = SimRobot(task, obs_mode, size, tuple(c.name for c in spec.cameras) or None)
    if robot.spec.to_json() != spec.to_json():
        raise ValueError(f"policy {path} expects {spec}, task '{task}' gives {robot.spec}")
    try:
        return evaluate(policy, robot, episodes, seed0)
    finally:
        robot.close()


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--policy", required=True, help="exported policy file (latest.pt / best.pt)")
    p.add_argument("--task", default="reach", choices=["reach", "peg_insertion"])
    p.add_argument("--episodes", type=int, default=20)
    p.add_argument("--seed", type=int, default=10_000, help="seed of the first evaluation episode")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    torch.set_num_threads(1)
    _, _, meta = read_policy_file(args.policy)
    result = evaluate_policy_file(args.policy, args.task, args.episodes, args.seed)
    print(json.dumps({"policy": args.policy, "meta": meta, **result}))


if __name__ == "__main__":
    main()
