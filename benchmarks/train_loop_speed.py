"""Env steps/s of the single-process training loop (RLIF, reach), state and pixels.

    python benchmarks/train_loop_speed.py                 # today's loop (actor + learner cores)
    python benchmarks/train_loop_speed.py --loop old      # the former loop, robot_stack/rl/train.py as
                                                          # of commit OLD_COMMIT (its tree, git archive)

Each measurement is one fresh run of ``--state-steps`` (``--pixel-steps``) env steps with
updates from ``--state-min`` (``--pixel-min``) transitions on, no evaluation, one torch thread,
replay logs on disk, wall time including start-up. Prints one JSON line per observation mode and
appends them to benchmarks/results/train_loop_speed.json.
"""
from __future__ import annotations

import argparse
import json
import os
import pathlib
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
OLD_COMMIT = "19f7ca6"


OLD_CODE = """
import json, sys, tempfile, time
import torch
torch.set_num_threads(1)
from robot_stack.rl import train as m
obs, steps, mn = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
with tempfile.TemporaryDirectory() as d:
    cfg = m.TrainConfig(method="rlif", task="reach", obs=obs, env_steps=steps, eval_every=10**9, eval_episodes=0,
                        warmup_steps=mn, run_dir=d, policies_dir=d + "/p", progress=False, tensorboard=False,
                        checkpoint_every=10**9, seed=0)
    t0 = time.perf_counter()
    m.train(cfg)
    print(json.dumps({"seconds": time.perf_counter() - t0}))
"""


def measure_old(obs: str, steps: int, min_transitions: int) -> float:
    """Seconds of the former loop: its tree (OLD_COMMIT) extracted and run in a child process."""
    with tempfile.TemporaryDirectory() as tree:
        archive = subprocess.run(["git", "-C", str(ROOT), "archive", OLD_COMMIT, "robot_stack", "policies"],
                                 check=True, capture_output=True).stdout
        subprocess.run(["tar", "-x", "-C", tree], input=archive, check=True)
        env = {**os.environ, "PYTHONPATH": tree}
        out = subprocess.run([sys.executable, "-c", OLD_CODE, obs, str(steps), str(min_transitions)], cwd=tree, env=env,
                             check=True, capture_output=True, text=True).stdout
        return json.loads(out.strip().splitlines()[-1])["seconds"]


def measure(loop: str, obs: str, steps: int, min_transitions: int) -> dict:
    if loop == "old":
        dt = measure_old(obs, steps, min_transitions)
    else:
        from robot_stack.training import train as m

        with tempfile.TemporaryDirectory() as d:
            cfg = m.TrainConfig(method="rlif", task="reach", obs=obs, env_steps=steps, eval_every=10**9,
                                eval_episodes=0, min_transitions=min_transitions, run_dir=d, policies_dir=d + "/p",
                                progress=False, tensorboard=False, seed=0)
            t0 = time.perf_counter()
            m.train(cfg)
            dt = time.perf_counter() - t0
    return {"loop": loop, "obs": obs, "env_steps": steps, "min_transitions": min_transitions,
            "seconds": round(dt, 2), "env_steps_per_s": round(steps / dt, 2)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--loop", choices=["new", "old"], default="new")
    p.add_argument("--obs", nargs="+", default=["state", "pixels"])
    p.add_argument("--state-steps", type=int, default=600)
    p.add_argument("--state-min", type=int, default=256)
    p.add_argument("--pixel-steps", type=int, default=200)
    p.add_argument("--pixel-min", type=int, default=64)
    args = p.parse_args()
    import torch

    torch.set_num_threads(1)
    out = []
    for obs in args.obs:
        steps, mn = (args.state_steps, args.state_min) if obs == "state" else (args.pixel_steps, args.pixel_min)
        r = measure(args.loop, obs, steps, mn)
        print(json.dumps(r), flush=True)
        out.append(r)
    path = ROOT / "benchmarks" / "results" / "train_loop_speed.json"
    old = json.loads(path.read_text()) if path.exists() else []
    path.write_text(json.dumps(old + out, indent=1) + "\n")


if __name__ == "__main__":
    os.environ.setdefault("MUJOCO_GL", "egl")
    main()
