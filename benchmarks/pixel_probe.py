"""How much of the goal can a pixel policy see? A supervised probe of each camera set-up.

Collects observations of a task along noisy expert trajectories (the states a learning policy
and its operator visit: from the start pose to the goal), then trains the policy's own
observation encoder (:class:`robot_stack.rl.networks.ObsEncoder`, the network the agent uses,
random-shift augmentation included) with a small MLP head to regress the vector from the tool
point to the goal, which is what a policy must know to act. Held-out error says how well that
vector can be read from the observation at all, before any reinforcement learning:

* ``rmse_m``: root mean square error per axis of the base frame (x, y, z);
* ``rmse_view_m``: the error split into the component along the first camera's optical axis
  (depth, which one image shows only through apparent size) and the two across it;
* ``within_radius``: fraction of held-out states whose error is below the task's success
  tolerance (3 cm for reach; the peg's hole clearance is smaller), over all states and over the
  states where the tool is within 10 cm of the goal (where success is decided).

Run (each set-up a few minutes on 2 CPU cores)::

    python benchmarks/pixel_probe.py --task reach --cameras front
    python benchmarks/pixel_probe.py --task reach --cameras front wrist
    python benchmarks/pixel_probe.py --task peg_insertion --cameras wrist

Results are appended to ``benchmarks/results/pixel_probe.json`` (one entry per set-up).
"""
from __future__ import annotations

import argparse
import json
import pathlib
import time

import gymnasium as gym
import numpy as np
import torch
from torch import nn

import robot_stack.sim  # noqa: F401  (registers the Gymnasium ids)
from robot_stack.rl.networks import NetworkConfig, ObsEncoder, augment, mlp
from robot_stack.training.session import TASK_IDS

RESULTS = pathlib.Path(__file__).resolve().parent / "results" / "pixel_probe.json"


def collect(task: str, cameras: list[str], image_size: int, n: int, seed: int) -> dict:
    """Observations and tool-to-goal vectors along noisy expert episodes (every 3rd step)."""
    env = gym.make(TASK_IDS[task], obs_mode="pixels", cameras=tuple(cameras), image_size=image_size)
    u = env.unwrapped
    rng = np.random.default_rng(seed)
    cam_id = u.model.camera(cameras[0]).id
    obs_list, rel, cam_rot = [], [], []
    episode = 0
    while len(rel) < n:
        obs, _ = env.reset(seed=seed * 100_000 + episode)
        episode += 1
        noise = rng.uniform(0.0, 0.6)
        for t in range(u.max_episode_steps):
            goal = u.task.goal_position(u.model, u.data)
            tool = u.task.tool_pos(u.model, u.data)
            if t % 3 == 0:
                obs_list.append(obs)
                rel.append(goal - tool)
                cam_rot.append(u.data.cam_xmat[cam_id].reshape(3, 3).copy())
            v = u.task.expert_velocity(u.model, u.data) / u.task.action_spec.max_lin_speed_m_s
            a = np.clip(v + rng.normal(0.0, noise, 3), -1.0, 1.0)
            obs, _, term, trunc, _ = env.step(a)
            if term or trunc or len(rel) >= n:
                break
    spec = u.policy_spec
    env.close()
    batch = {k: np.stack([o[k] for o in obs_list]) for k in obs_list[0]}
    return {"obs": batch, "rel": np.asarray(rel, np.float32), "cam_rot": np.asarray(cam_rot), "spec": spec,
            "episodes": episode}


def train_probe(data: dict, epochs: int, seed: int, test_frac: float = 0.2) -> dict:
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    cfg = NetworkConfig()
    spec = data["spec"]
    n = len(data["rel"])
    # Split by position in the collection (whole episodes apart, up to the boundary one).
    n_test = int(n * test_frac)
    idx_train, idx_test = np.arange(n - n_test), np.arange(n - n_test, n)
    obs = {k: torch.from_numpy(v) for k, v in data["obs"].items()}
    y = torch.from_numpy(data["rel"]) * 10.0  # decimetres: targets of order 1
    enc = ObsEncoder(spec, cfg)
    head = mlp(enc.out_dim, cfg.hidden_dims, 3)
    params = list(enc.parameters()) + list(head.parameters())
    opt = torch.optim.Adam(params, lr=3e-4)
    batch = 128
    t0 = time.perf_counter()
    for _ in range(epochs):
        perm = idx_train[torch.randperm(len(idx_train), generator=gen).numpy()]
        for i in range(0, len(perm), batch):
            b = perm[i:i + batch]
            ob = augment({k: v[b] for k, v in obs.items()}, spec, cfg.augment_pad_px, gen)
            loss = nn.functional.mse_loss(head(enc(ob)), y[b])
            opt.zero_grad()
            loss.backward()
            opt.step()
    train_s = time.perf_counter() - t0
    with torch.no_grad():
        pred = torch.cat([head(enc({k: v[idx_test[i:i + 256]] for k, v in obs.items()}))
                          for i in range(0, len(idx_test), 256)]).numpy() / 10.0
    err = pred - data["rel"][idx_test]
    rel = data["rel"][idx_test]
    # Line of sight: MuJoCo cameras look along their -z axis; cam_xmat's columns are the axes.
    rot = data["cam_rot"][idx_test]
    err_cam = np.einsum("nji,nj->ni", rot, err)  # error in camera axes (x right, y up, -z forward)
    return {"err": err, "err_cam": err_cam, "rel": rel, "train_s": train_s, "n_train": len(idx_train),
            "n_test": len(idx_test)}


def summarize(res: dict, radius_m: float) -> dict:
    err, rel = res["err"], res["rel"]
    norm = np.linalg.norm(err, axis=1)
    near = np.linalg.norm(rel, axis=1) < 0.10
    return {
        "rmse_m": [round(float(v), 4) for v in np.sqrt((err ** 2).mean(0))],
        "rmse_view_m": {
            "across_x": round(float(np.sqrt((res["err_cam"][:, 0] ** 2).mean())), 4),
            "across_y": round(float(np.sqrt((res["err_cam"][:, 1] ** 2).mean())), 4),
            "along_axis": round(float(np.sqrt((res["err_cam"][:, 2] ** 2).mean())), 4),
        },
        "median_error_m": round(float(np.median(norm)), 4),
        "within_radius": round(float((norm < radius_m).mean()), 3),
        "within_radius_near_goal": round(float((norm[near] < radius_m).mean()), 3) if near.any() else None,
        "near_goal_states": int(near.sum()),
        "goal_distance_rms_m": round(float(np.sqrt((rel ** 2).sum(1).mean())), 4),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--task", default="reach", choices=sorted(TASK_IDS))
    p.add_argument("--cameras", nargs="+", default=["front"])
    p.add_argument("--image-size", type=int, default=64)
    p.add_argument("--samples", type=int, default=6000, help="observations collected (80%% train)")
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--radius-m", type=float, default=0.03, help="tolerance counted in within_radius")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--torch-threads", type=int, default=1)
    p.add_argument("--out", type=pathlib.Path, default=RESULTS)
    args = p.parse_args()
    torch.set_num_threads(args.torch_threads)
    t0 = time.perf_counter()
    data = collect(args.task, args.cameras, args.image_size, args.samples, args.seed)
    collect_s = time.perf_counter() - t0
    res = train_probe(data, args.epochs, args.seed)
    entry = {
        "task": args.task, "cameras": args.cameras, "image_size": args.image_size, "samples": args.samples,
        "episodes": data["episodes"], "epochs": args.epochs, "seed": args.seed, "radius_m": args.radius_m,
        **summarize(res, args.radius_m),
        "collect_s": round(collect_s, 1), "train_s": round(res["train_s"], 1),
    }
    print(json.dumps(entry, indent=1))
    entries = json.loads(args.out.read_text()) if args.out.exists() else []
    entries.append(entry)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(entries, indent=1) + "\n")


if __name__ == "__main__":
    main()
