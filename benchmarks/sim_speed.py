"""Env steps per second of the fast sim driver, per task and observation mode.

Run: ``bash tools/in_env.sh python benchmarks/sim_speed.py [--steps 1000]``
Actions are uniform random; resets are included in the timing (as in training).
Prints wall-clock steps/s and steps per CPU-second of this process (all its threads,
llvmpipe's included): on a shared machine the second is the steadier figure.
"""
from __future__ import annotations

import argparse
import time

import gymnasium as gym
import numpy as np

import robot_stack.sim  # noqa: F401  (registers the env ids)

CASES = (
    ("robot_stack/Reach-v0", dict(obs_mode="state")),
    ("robot_stack/Reach-v0", dict(obs_mode="pixels", image_size=64)),
    ("robot_stack/Reach-v0", dict(obs_mode="pixels", image_size=128)),
    ("robot_stack/Reach-v0", dict(obs_mode="pixels", image_size=64, cameras=("front", "wrist"))),
    ("robot_stack/PegInsertion-v0", dict(obs_mode="state")),
    ("robot_stack/PegInsertion-v0", dict(obs_mode="pixels", image_size=64)),
    ("robot_stack/PegInsertion-v0", dict(obs_mode="pixels", image_size=128)),
    ("robot_stack/PegInsertion-v0", dict(obs_mode="pixels", image_size=64, cameras=("front", "wrist"))),
)


def measure(env_id: str, kwargs: dict, steps: int) -> tuple[float, float]:
    env = gym.make(env_id, **kwargs)
    rng = np.random.default_rng(0)
    env.reset(seed=0)
    for _ in range(20):  # warm-up: renderer context, caches
        env.step(rng.uniform(-1, 1, env.action_space.shape).astype(np.float32))
    t0, c0 = time.perf_counter(), time.process_time()
    for _ in range(steps):
        _, _, term, trunc, _ = env.step(rng.uniform(-1, 1, env.action_space.shape).astype(np.float32))
        if term or trunc:
            env.reset()
    dt, dc = time.perf_counter() - t0, time.process_time() - c0
    env.close()
    return steps / dt, steps / dc


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--steps", type=int, default=1000)
    args = ap.parse_args()
    print(f"{'env':28s} {'kwargs':72s} {'steps/s':>8s} {'steps/cpu-s':>12s}")
    for env_id, kwargs in CASES:
        sps, spc = measure(env_id, kwargs, args.steps)
        print(f"{env_id:28s} {str(kwargs):72s} {sps:8.0f} {spc:12.0f}", flush=True)


if __name__ == "__main__":
    main()
