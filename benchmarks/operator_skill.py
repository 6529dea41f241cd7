"""Simulated operator: success rate acting alone, and intervention rates it produces.

For each task and skill preset this prints
* the operator's success rate driving alone (strategy ``always``), with a 95 % Wilson interval
  (this calibrates the presets in robot_stack/sim/operator.py: only the bias norm differs);
* for each intervention strategy (value, action_distance, random) against a uniform random
  policy and a scripted-bad policy (drives to a point 8 cm beside the goal, a plausible
  systematic policy error; the value rule judges it with the true reference value): the
  fraction of steps under operator control, take-overs per episode and the success rate of
  the mixed episode.

Run: ``bash tools/in_env.sh python benchmarks/operator_skill.py [--episodes 200] [--mixed-episodes 30]``
"""
from __future__ import annotations

import argparse
import math

import gymnasium as gym
import numpy as np

import robot_stack.sim  # noqa: F401  (registers the env ids)
from robot_stack.sim.operator import OperatorConfig, SimulatedOperator, rollout

TASKS = {"reach": "robot_stack/Reach-v0", "peg_insertion": "robot_stack/PegInsertion-v0"}
PRESETS = ("expert_90", "expert_50", "expert_20")
STRATEGIES = ("value", "action_distance", "random")


def wilson(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    p = k / n
    d = 1 + z * z / n
    c = (p + z * z / (2 * n)) / d
    h = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / d
    return c - h, c + h


def random_policy(rng: np.random.Generator):
    return lambda obs: rng.uniform(-1, 1, 3)


def scripted_bad_policy(obs) -> np.ndarray:
    # obs["state"][3:6] is goal minus tool point; aim 8 cm off to the side (+y) of the goal.
    err = obs["state"][3:6] + np.array([0.0, 0.08, 0.0])
    return np.clip(20.0 * err, -1.0, 1.0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--episodes", type=int, default=200, help="episodes per preset, operator alone")
    ap.add_argument("--mixed-episodes", type=int, default=30, help="episodes per policy x strategy")
    ap.add_argument("--tasks", nargs="*", default=list(TASKS))
    ap.add_argument("--alone-only", action="store_true", help="skip the intervention-rate part")
    args = ap.parse_args()
    for task in args.tasks:
        env = gym.make(TASKS[task], obs_mode="state")
        t = env.unwrapped.task
        for preset in PRESETS:
            op = SimulatedOperator(t, OperatorConfig(skill=preset, strategy="always"))
            res = [rollout(env, op, None, seed=s) for s in range(args.episodes)]
            k = sum(r.success for r in res)
            lo, hi = wilson(k, len(res))
            print(f"{task:14s} {preset:10s} alone: success {k / len(res):.2f} "
                  f"[{lo:.2f}, {hi:.2f}] over {len(res)} episodes, mean length {np.mean([r.steps for r in res]):.1f}",
                  flush=True)
            for strategy in () if args.alone_only else STRATEGIES:
                for pname in ("random", "scripted_bad"):
                    rng = np.random.default_rng(0)
                    policy = random_policy(rng) if pname == "random" else scripted_bad_policy
                    op = SimulatedOperator(t, OperatorConfig(skill=preset, strategy=strategy), seed=1)
                    mixed = [rollout(env, op, policy, seed=10_000 + s) for s in range(args.mixed_episodes)]
                    steps = sum(r.steps for r in mixed)
                    print(f"{'':14s} {'':10s} {strategy:15s} vs {pname:12s}: "
                          f"intervention rate {sum(r.intervention_steps for r in mixed) / steps:.2f} of steps, "
                          f"{np.mean([r.interventions for r in mixed]):.1f} take-overs/episode, "
                          f"success {np.mean([r.success for r in mixed]):.2f}", flush=True)
        env.close()


if __name__ == "__main__":
    main()
