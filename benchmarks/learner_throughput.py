"""Learner throughput: SAC updates/s at batch 256 on this CPU, 1 and 2 cameras, 64x64 and 128x128.

Each configuration runs in its own subprocess (glibc reads MALLOC_* at start-up), with the
pixel preset's networks (policies/reach_pixels.yaml: 10 critics, 32-channel conv encoder per
camera, hidden 128x128), UTD 1, images uint8 until the network boundary. Variants:

* ``baseline``: 1 thread, NCHW, default allocator
* ``tuned``: 2 threads, channels_last, MALLOC_MMAP_THRESHOLD_/MALLOC_TRIM_THRESHOLD_ as tools/env.sh sets them (fewer page faults)
* every variant trains with the default ``encoder_dtype: auto`` (float32 on the CPU, bf16
  convolutions on a GPU with bf16 units) unless it names a dtype
* ablations at 64x64/1 camera: tuned minus one setting each, ``tuned_bf16`` bf16 convolutions
  (the untuned baseline runs at 64x64 only: at 128x128 one update takes seconds here)
* ``--device cuda``: the tuned settings with the networks on the GPU (batches leave the host
  replay buffer as uint8 images), every size, plus the UTD 4 update of the RLIF presets and
  float32 convolutions at 2 cameras 128x128

    python benchmarks/learner_throughput.py            # writes benchmarks/results/learner_throughput.json
    python benchmarks/learner_throughput.py --device cuda --updates 50 --warmup 5 \
        --out benchmarks/results/learner_throughput_cuda.json
"""
from __future__ import annotations

import argparse
import json
import os
import pathlib
import subprocess
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
MALLOC = {"MALLOC_MMAP_THRESHOLD_": "4294967296", "MALLOC_TRIM_THRESHOLD_": "100000000000"}


def measure(cams: int, size: int, threads: int, channels_last: bool, batch: int, updates: int, warmup: int,
            device: str = "cpu", utd: int = 1, encoder_dtype: str = "auto") -> dict:
    import dataclasses

    import numpy as np
    import torch

    sys.path.insert(0, str(ROOT))
    from robot_stack.types.spec import ActionSpec, CameraSpec, PolicySpec
    from robot_stack.rl.agent import SACAgent, SACConfig
    from robot_stack.rl.replay_buffer import VisionReplayBuffer
    from robot_stack.rl.labelling import Transition
    from robot_stack.training.train import load_preset

    torch.set_num_threads(threads)
    net, sac_kw, _ = load_preset(str(ROOT / "policies" / "reach_pixels.yaml"))
    net = dataclasses.replace(net, channels_last=channels_last)
    spec = PolicySpec(cameras=tuple(CameraSpec(n, size, size) for n in ("front", "wrist")[:cams]),
                      proprio_names=tuple(f"p{i}" for i in range(11)), action=ActionSpec())
    cfg = SACConfig(**{**{k: v for k, v in sac_kw.items() if k not in ("batch_size", "utd_ratio")},
                       "network": net, "batch_size": batch, "utd_ratio": utd, "device": device,
                       "encoder_dtype": encoder_dtype})
    agent = SACAgent(spec, cfg)
    rng = np.random.default_rng(0)
    buf = VisionReplayBuffer(spec, 4096)
    obs = lambda: {**{c.name: rng.integers(0, 256, c.shape, dtype=np.uint8) for c in spec.cameras},
                   "proprio": rng.normal(size=11).astype(np.float32)}
    o = obs()
    for i in range(2000):  # 40 episodes of 50 steps: sampling goes through the real buffer
        n = obs()
        buf.add(Transition(o, rng.uniform(-1, 1, 3).astype(np.float32), 0.0, n, False, False, i // 50, i % 50,
                           episode_end=i % 50 == 49))
        o = obs() if i % 50 == 49 else n
    for _ in range(warmup):
        agent.update(buf.sample(batch * utd, rng))
    t_sample = t_update = 0.0
    for _ in range(updates):
        t0 = time.perf_counter()
        b = buf.sample(batch * utd, rng)
        t1 = time.perf_counter()
        agent.update(b)  # ends in a device-to-host copy of the metrics: the GPU has finished
        t_sample += t1 - t0
        t_update += time.perf_counter() - t1
    # one "update" = one critic step at the batch size (a UTD-4 call makes four)
    return {"updates_per_s": updates * utd / (t_sample + t_update), "sample_ms": 1e3 * t_sample / updates,
            "update_ms": 1e3 * t_update / updates,
            "device_name": torch.cuda.get_device_name() if agent.device.type == "cuda" else "cpu"}


VARIANTS = {
    "baseline": dict(threads=1, channels_last=False, malloc=False),
    "tuned": dict(threads=2, channels_last=True, malloc=True),
    "tuned_1_thread": dict(threads=1, channels_last=True, malloc=True),
    "tuned_no_channels_last": dict(threads=2, channels_last=False, malloc=True),
    "tuned_default_malloc": dict(threads=2, channels_last=True, malloc=False),
    "tuned_bf16": dict(threads=2, channels_last=True, malloc=True, encoder_dtype="bfloat16"),
    "cuda": dict(threads=2, channels_last=True, malloc=True, device="cuda"),
    "cuda_utd4": dict(threads=2, channels_last=True, malloc=True, device="cuda", utd=4),
    "cuda_float32": dict(threads=2, channels_last=True, malloc=True, device="cuda", encoder_dtype="float32"),
}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--updates", type=int, default=8, help="timed updates per configuration")
    p.add_argument("--warmup", type=int, default=2, help="untimed updates first")
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "learner_throughput.json"))
    p.add_argument("--device", default="cpu", choices=("cpu", "cuda"),
                   help="cpu: the CPU variants above; cuda: the networks on the GPU")
    p.add_argument("--child", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        print(json.dumps(measure(**json.loads(args.child))))
        return
    # Tuned at every size; the untuned baseline and the ablations at 64x64 only (a 128x128
    # baseline update takes tens of seconds on this shared machine).
    if args.device == "cuda":
        jobs = [(v, cams, size) for v in ("cuda", "cuda_utd4") for cams in (1, 2) for size in (64, 128)]
        jobs += [("cuda_float32", 2, 128)]
    else:
        jobs = [("tuned", cams, size) for cams in (1, 2) for size in (64, 128)]
        jobs += [("baseline", cams, 64) for cams in (1, 2)]
        jobs += [(v, 1, 64) for v in VARIANTS if v not in ("baseline", "tuned") and not v.startswith("cuda")]
    results = []
    load_start = os.getloadavg()[0]
    for variant, cams, size in jobs:
        var = VARIANTS[variant]
        env = {k: v for k, v in os.environ.items() if k not in MALLOC}
        if var["malloc"]:
            env.update(MALLOC)
        child = json.dumps(dict(cams=cams, size=size, threads=var["threads"], channels_last=var["channels_last"],
                                batch=args.batch, updates=args.updates, warmup=args.warmup,
                                device=var.get("device", "cpu"), utd=var.get("utd", 1),
                                encoder_dtype=var.get("encoder_dtype", "auto")))
        out = subprocess.run([sys.executable, __file__, "--child", child], env=env, capture_output=True, text=True,
                             check=True)
        r = {"variant": variant, "cameras": cams, "image_size": size, "batch": args.batch, **var,
             **json.loads(out.stdout.strip().splitlines()[-1])}
        results.append(r)
        print(f"{variant:24s} cams={cams} {size}x{size}: {r['updates_per_s']:.2f} updates/s "
              f"(sample {r['sample_ms']:.0f} ms, update {r['update_ms']:.0f} ms)", flush=True)
    load = os.getloadavg()
    doc = {"machine": f"{os.cpu_count()} CPUs, shared with other jobs; 1-min load average "
                      f"{load_start:.1f} at start, {load[0]:.1f} at end (figures scale down with load)",
           "network": "policies/reach_pixels.yaml (10 critics, conv 32ch per camera, MLP 128x128), UTD 1 "
                      "unless the variant says utd",
           "command": " ".join(["python", "benchmarks/learner_throughput.py", *sys.argv[1:]]), "results": results}
    pathlib.Path(args.out).write_text(json.dumps(doc, indent=1) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
