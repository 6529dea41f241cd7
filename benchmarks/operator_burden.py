"""Where the simulated operator's intervention rate comes from (no learning involved).

The training loop's pieces (actor core, simulated SpaceMouse through the detector, value rule)
run with fixed policies, and the share of steps under operator control is counted:

* ``perfect``: the task's noise-free expert towards the TRUE goal (better than any operator
  level), acting deterministically, and with Gaussian noise of std ``sigma`` per action
  dimension added (clipped to [-1, 1]) -- what a SAC policy's sampling adds around its mean;
  each with the value rule's baseline probability ``p_otherwise`` 0.05 (default) and 0;
* ``--policies``: exported policies (e.g. the benchmark's final RLIF and HG-DAgger policies),
  each acting with its mean action and with sampled actions.

    python benchmarks/operator_burden.py --episodes 40
    python benchmarks/operator_burden.py --policies runs/rlif_vs_dagger/reach_state_rlif_e50_s0/policies/latest.pt

Writes benchmarks/results/operator_burden.json (appends the policy rows to what is there).
"""
from __future__ import annotations

import argparse
import json
import os
import pathlib
import sys

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
OUT = ROOT / "benchmarks" / "results" / "operator_burden.json"


def rate(task: str, level: int, policy_fn, episodes: int, deterministic: bool, p_otherwise: float = 0.05,
         seed0: int = 30_000) -> dict:
    """Intervention rate (operator steps / steps) and success of ``policy_fn(robot, obs, det)``."""
    from robot_stack.actor.core import ActorConfig, ActorCore
    from robot_stack.sim.operator import OperatorConfig, SimulatedOperator
    from robot_stack.training.session import SimRobot, SimSpaceMouse, run_control_step

    robot = SimRobot(task, "state")
    op = SimSpaceMouse(SimulatedOperator(robot.task, OperatorConfig(skill=f"expert_{level}", min_axis=0.25,
                                                                    p_otherwise=p_otherwise)))

    class P:
        def act(self, obs, det):
            return policy_fn(robot, obs, det)

    actor = ActorCore(ActorConfig(max_episode_steps=robot.horizon_steps, deterministic=deterministic), robot.spec, P(),
                      first_episode_id=0)

    def reset(ep, t):
        robot.reset(seed0 + ep)
        actor.on_operator_command(op.start_episode(seed0 + 500_000 + ep, t), t)

    steps = interv = succ = n = k = 0
    while n < episodes:
        res = run_control_step(actor, robot, k * robot.period_s, op, reset)
        k += 1
        if res.summary is not None:
            s = res.summary
            steps, interv, succ, n = steps + s.steps, interv + s.intervention_steps, succ + int(s.success), n + 1
    robot.close()
    return {"intervention_rate": interv / max(steps, 1), "success_rate": succ / episodes, "steps": steps}


def perfect(sigma: float, seed: int = 0):
    rng = np.random.default_rng(seed)

    def fn(robot, obs, det):
        a = robot.task.expert_action(robot.model, robot.data, None)
        if not det and sigma > 0:
            a = a + rng.normal(0.0, sigma, a.shape)
        return np.clip(a, -1.0, 1.0).astype(np.float32)
    return fn


def exported(path: str):
    from robot_stack.rl.policy_io import load_policy_file

    pol = load_policy_file(path)
    return lambda robot, obs, det: pol.act(obs, det)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--tasks", nargs="+", default=["reach", "peg_insertion"])
    p.add_argument("--level", type=int, default=50)
    p.add_argument("--episodes", type=int, default=40)
    p.add_argument("--sigmas", nargs="+", type=float, default=[0.0, 0.1, 0.15, 0.2, 0.3])
    p.add_argument("--policies", nargs="*", default=None, help="exported policies to measure instead")
    args = p.parse_args()
    import torch

    torch.set_num_threads(1)
    rows = json.loads(OUT.read_text()) if OUT.exists() else []
    if args.policies:
        for path in args.policies:
            task = "peg_insertion" if "peg_insertion" in path else "reach"
            for det in (True, False):
                r = {"policy": str(path), "task": task, "level": args.level, "deterministic": det,
                     **rate(task, args.level, exported(path), args.episodes, det)}
                print(json.dumps(r), flush=True)
                rows = [x for x in rows if (x.get("policy"), x["task"], x["level"], x["deterministic"]) !=
                        (r["policy"], task, args.level, det)] + [r]
    else:
        for task in args.tasks:
            for p_otherwise in (0.05, 0.0):
                for sigma in args.sigmas:
                    r = {"policy": "perfect", "task": task, "level": args.level, "sigma": sigma,
                         "p_otherwise": p_otherwise, "deterministic": sigma == 0,
                         **rate(task, args.level, perfect(sigma), args.episodes, sigma == 0, p_otherwise)}
                    print(json.dumps(r), flush=True)
                    rows = [x for x in rows if (x.get("policy"), x["task"], x.get("sigma"), x.get("p_otherwise")) !=
                            ("perfect", task, sigma, p_otherwise)] + [r]
    OUT.write_text(json.dumps(rows, indent=1) + "\n")


if __name__ == "__main__":
    os.environ.setdefault("MUJOCO_GL", "egl")
    main()
