# Over 400 lines: both learners set up on identical data and networks, their timing and the report, in one script.
"""Learner speed side by side: robot_stack's SAC update against LeRobot 0.4.4's SAC, on this CPU.

Each side runs in its own long-lived worker process that owns its own replay buffer (filled with
random transitions) and agent; the parent asks the workers in turn, round after round, for a few
timed updates (one update = sample a batch of 256 from the side's buffer + one critic, actor and
temperature step, UTD 1), so slow drifts of a shared machine hit every side alike. Sides:

* ``robot_stack``: ``SACAgent.update`` on batches from ``VisionReplayBuffer`` (uint8 images), as
  configured by default (float32 on the CPU); ``robot_stack_bf16`` the same with
  ``encoder_dtype: bfloat16`` (bf16 convolutions, AVX512-BF16 here); with ``--baseline-src DIR``
  also ``robot_stack_baseline``: the update of the robot_stack source tree in DIR (e.g. a
  ``git worktree`` of an older commit), with its defaults.
* ``lerobot_eager`` / ``lerobot_compiled``: ``SACPolicy`` with ``use_torch_compile`` off / on
  (its default), driven by the steps of LeRobot's learner loop (``lerobot/rl/learner.py``:
  critic, actor and temperature losses, gradient clipping, Adam, target update) on batches
  from LeRobot's ``ReplayBuffer`` (float images, ``optimize_memory=True``, its default DrQ
  random shift, which it always runs through ``torch.compile``).

Matched: torch build and threads (2), glibc ``MALLOC_*`` settings, batch 256, 7-d actions,
10 proprio values, one or two RGB cameras, hidden (256, 256) for actor and critics, number of
critics, TD target over the minimum of 2 (sub-sampled) target critics, UTD 1, random shift of 4
px on obs and next obs, Adam 3e-4, discount 0.99, tau 0.005, image latent 50 per camera, encoders
trained by the critic loss (LeRobot: ``freeze_vision_encoder=False``, its default small conv net).
Not matched (each side as its authors ship it; ``DIFFERENCES`` below is written into the results).

LeRobot lives in ``.venv-lerobot`` (ignored by git; never a dependency of robot_stack), made by
``--setup``: a venv whose ``.pth`` adds this project's ``.venv`` site-packages (so both sides run
the same torch), ``lerobot==0.4.4 --no-deps`` and the pinned packages its SAC imports need.
``torchvision`` is the exception: PyPI has no CPU build for this torch, so the LeRobot worker
imports it as a stub that raises if anything calls into it (nothing on the SAC path does).

    python benchmarks/learner_vs_lerobot.py --setup
    flock /work/.locks/heavy.lock bash tools/in_env.sh python benchmarks/learner_vs_lerobot.py \\
        --configs 1x64_c10 --rounds 8 --updates 4 --baseline-src ../old   # one configuration per run; results merge
    bash tools/in_env.sh python benchmarks/learner_vs_lerobot.py --profile 1x64_c10 --updates 6  # where the time goes
    python benchmarks/learner_vs_lerobot.py --device cuda --rounds 5 --updates 20   # on a GPU machine (writes *_cuda.json)
"""
from __future__ import annotations

import argparse
import json
import os
import pathlib
import platform
import statistics
import subprocess
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
LEROBOT_VENV = ROOT / ".venv-lerobot"
OUT = ROOT / "benchmarks" / "results" / "learner_vs_lerobot.json"
OUT_CUDA = ROOT / "benchmarks" / "results" / "learner_vs_lerobot_cuda.json"
MALLOC = {"MALLOC_MMAP_THRESHOLD_": "4294967296", "MALLOC_TRIM_THRESHOLD_": "100000000000"}
THREADS = 2
BATCH = 256
ACTION_DIM = 7
PROPRIO_DIM = 10
HIDDEN = (256, 256)
LATENT = 50
PAD_PX = 4
CAPACITY = 1000
EPISODE_LEN = 50

CONFIGS = {
    "1x64_c10": dict(cameras=1, size=64, critics=10),
    "1x64_c2": dict(cameras=1, size=64, critics=2),
    "2x128_c10": dict(cameras=2, size=128, critics=10),
}
SIDES = ("robot_stack", "robot_stack_bf16", "lerobot_eager", "lerobot_compiled")

LEROBOT_VERSION = "0.4.4"
# What `lerobot.policies.sac` and `lerobot.rl.buffer` import (versions pinned; their own
# dependencies resolve against these and this project's .venv).
LEROBOT_DEPS = ["draccus==0.10.0", "einops==0.8.2", "huggingface-hub==0.35.3", "safetensors==0.8.0",
                "accelerate==1.16.0", "deepdiff==8.6.2", "pyserial==3.5", "termcolor==3.3.0", "imageio==2.38.2",
                "jsonlines==4.0.0", "diffusers==0.35.2", "datasets==4.8.5", "av==15.1.0"]
STUBBED = ("torchvision",)

DIFFERENCES = [
    "image encoder: robot_stack 4 convs 3x3 (strides 2,2,2,1, 32 ch) + flatten + linear/LayerNorm/tanh; "
    "LeRobot's default 4 convs 7x7/5x5/3x3/3x3 (stride 2, 32 ch) + learned spatial embeddings + dropout + "
    "linear/LayerNorm/tanh (more FLOPs per image: see gflop_per_update)",
    "proprio: robot_stack feeds the 10 values to the MLPs as they are; LeRobot encodes them "
    "(linear/LayerNorm/tanh to the latent size)",
    "MLPs: robot_stack ReLU, LayerNorm in the critics, the ensemble batched into one matmul per layer; "
    "LeRobot SiLU + LayerNorm in actor and critics, one module per critic",
    "encoder passes per update: robot_stack 2 forward + 1 backward (obs by the online encoder, next obs by "
    "the target encoder, the actor reuses the detached obs features); LeRobot 5 forward + 2 backward "
    "(next obs twice, obs for the critic, the actor loss and the temperature loss; the target critic "
    "shares the online encoder)",
    "LeRobot clips gradient norms at 40 (its default); robot_stack does not clip",
    "replay buffer: robot_stack stores uint8 frames once per step and shifts uint8 images inside the "
    "update; LeRobot stores float32 frames (optimize_memory: next obs = following slot) and shifts "
    "float images when sampling",
    "LeRobot's observation normalisation (its processor pipeline) is not run: images enter as floats in "
    "[0, 1] (this saves LeRobot time)",
]


# ----------------------------------------------------------------------------- workers
def _robot_stack_worker(cfg: dict, src: str, encoder_dtype: str | None) -> tuple[dict, callable]:
    import numpy as np
    import torch

    sys.path.insert(0, src)
    try:
        from robot_stack.types.spec import ActionSpec, CameraSpec, PolicySpec
    except ImportError:  # a --baseline-src tree from before robot_stack/types
        from robot_stack.core.spec import ActionSpec, CameraSpec, PolicySpec
    from robot_stack.rl.agent import SACAgent, SACConfig
    from robot_stack.rl.labelling import Transition
    from robot_stack.rl.networks import NetworkConfig
    from robot_stack.rl.replay_buffer import VisionReplayBuffer

    size = cfg["size"]
    spec = PolicySpec(cameras=tuple(CameraSpec(n, size, size) for n in ("front", "wrist")[:cfg["cameras"]]),
                      proprio_names=tuple(f"p{i}" for i in range(PROPRIO_DIM)),
                      action=ActionSpec(names=tuple(f"a{i}" for i in range(ACTION_DIM))))
    net = NetworkConfig(hidden_dims=HIDDEN, latent_dim=LATENT, encoder_channels=32, augment_pad_px=PAD_PX)
    dtype = {} if encoder_dtype is None else {"encoder_dtype": encoder_dtype}
    agent = SACAgent(spec, SACConfig(network=net, num_critics=cfg["critics"], num_min_critics=2,
                                     batch_size=BATCH, utd_ratio=1, device=cfg.get("device", "cpu"), **dtype))
    rng = np.random.default_rng(0)
    buf = VisionReplayBuffer(spec, CAPACITY)
    obs = lambda: {**{c.name: rng.integers(0, 256, c.shape, dtype=np.uint8) for c in spec.cameras},
                   "proprio": rng.normal(size=PROPRIO_DIM).astype(np.float32)}
    o = obs()
    for i in range(2 * CAPACITY):  # wraps the ring: len(buf) is then its steady-state transition count
        nxt = obs()
        end = i % EPISODE_LEN == EPISODE_LEN - 1
        buf.add(Transition(o, rng.uniform(-1, 1, ACTION_DIM).astype(np.float32), float(rng.normal()), nxt,
                           False, False, i // EPISODE_LEN, i % EPISODE_LEN, episode_end=end))
        o = obs() if end else nxt

    def step() -> None:
        agent.update(buf.sample(BATCH, rng))

    info = {"buffer_bytes_per_transition": buf.nbytes() / len(buf), "torch": torch.__version__,
            "encoder_dtype": str(getattr(agent, "encoder_dtype", torch.float32)), "source": src}
    return info, step


def _stub_unimportable() -> None:
    """Import-only stand-ins for STUBBED packages: attribute access gives more stubs (classes can
    derive from them); calling one after start-up raises, so a stub on the timed path would fail."""
    import importlib.abc
    import importlib.machinery

    strict = {"on": False}

    class Stub(type):
        def __getattr__(cls, name):
            if name.startswith("__"):
                raise AttributeError(name)
            return make(f"{cls.__name__}.{name}")

        def __call__(cls, *args, **kwargs):
            if strict["on"]:
                raise RuntimeError(f"{cls.__name__} is an import-only stub and was called")
            return make(f"{cls.__name__}()")

    def make(name: str):
        if name not in sys.modules:
            sys.modules[name] = Stub(name, (), {"__path__": [], "__module__": name,
                                                "__spec__": importlib.machinery.ModuleSpec(name, None, is_package=True)})
        return sys.modules[name]

    class Finder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
        def find_spec(self, name, path, target=None):
            if name.split(".")[0] in STUBBED:
                return importlib.machinery.ModuleSpec(name, self, is_package=True)
            return None

        def create_module(self, spec):
            return make(spec.name)

        def exec_module(self, module) -> None:
            pass

    sys.meta_path.insert(0, Finder())
    _stub_unimportable.strict = strict


def _lerobot_worker(cfg: dict, compiled: bool) -> tuple[dict, callable]:
    _stub_unimportable()
    import lerobot
    import torch
    from lerobot.configs.types import FeatureType, PolicyFeature
    from lerobot.policies.sac.configuration_sac import SACConfig
    from lerobot.policies.sac.modeling_sac import SACPolicy
    from lerobot.rl.buffer import ReplayBuffer

    size = cfg["size"]
    image_keys = [f"observation.images.{n}" for n in ("front", "wrist")[:cfg["cameras"]]]
    inputs = {k: PolicyFeature(type=FeatureType.VISUAL, shape=(3, size, size)) for k in image_keys}
    inputs["observation.state"] = PolicyFeature(type=FeatureType.STATE, shape=(PROPRIO_DIM,))
    config = SACConfig(input_features=inputs,
                       output_features={"action": PolicyFeature(type=FeatureType.ACTION, shape=(ACTION_DIM,))},
                       device=cfg.get("device", "cpu"), storage_device="cpu", num_critics=cfg["critics"],
                       num_subsample_critics=2 if cfg["critics"] > 2 else None, latent_dim=LATENT,
                       freeze_vision_encoder=False, use_torch_compile=compiled)
    config.critic_network_kwargs.hidden_dims = list(HIDDEN)
    config.actor_network_kwargs.hidden_dims = list(HIDDEN)
    torch.manual_seed(0)
    policy = SACPolicy(config)
    policy.train()
    # As lerobot/rl/learner.py's make_optimizers_and_scheduler.
    optimizers = {
        "actor": torch.optim.Adam([p for n, p in policy.actor.named_parameters()
                                   if not config.shared_encoder or not n.startswith("encoder")], lr=config.actor_lr),
        "critic": torch.optim.Adam(policy.critic_ensemble.parameters(), lr=config.critic_lr),
        "temperature": torch.optim.Adam([policy.log_alpha], lr=config.critic_lr),
    }
    buf = ReplayBuffer(CAPACITY, device=cfg.get("device", "cpu"), state_keys=[*image_keys, "observation.state"], storage_device="cpu",
                       optimize_memory=True, use_drq=True)
    g = torch.Generator().manual_seed(0)
    state = lambda: {**{k: torch.rand(1, 3, size, size, generator=g) for k in image_keys},
                     "observation.state": torch.randn(1, PROPRIO_DIM, generator=g)}
    s = state()
    for i in range(CAPACITY):
        nxt = state()
        end = i % EPISODE_LEN == EPISODE_LEN - 1
        buf.add(s, torch.rand(1, ACTION_DIM, generator=g) * 2 - 1, float(torch.randn(1, generator=g)), nxt, end, False)
        s = state() if end else nxt
    clip = config.grad_clip_norm

    def step() -> None:
        # The steps of one optimization step of lerobot/rl/learner.py (UTD 1, policy_update_freq 1).
        batch = buf.sample(BATCH)
        fb = {"action": batch["action"], "reward": batch["reward"], "state": batch["state"],
              "next_state": batch["next_state"], "done": batch["done"], "observation_feature": None,
              "next_observation_feature": None}
        loss = policy.forward(fb, model="critic")["loss_critic"]
        optimizers["critic"].zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(policy.critic_ensemble.parameters(), max_norm=clip).item()
        optimizers["critic"].step()
        loss.item()
        loss = policy.forward(fb, model="actor")["loss_actor"]
        optimizers["actor"].zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(policy.actor.parameters(), max_norm=clip).item()
        optimizers["actor"].step()
        loss.item()
        loss = policy.forward(fb, model="temperature")["loss_temperature"]
        optimizers["temperature"].zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_([policy.log_alpha], max_norm=clip).item()
        optimizers["temperature"].step()
        loss.item()
        policy.temperature  # noqa: B018  (the learner logs it: one more host read)
        policy.update_target_networks()

    per_slot = sum(t[0].nbytes for t in (*buf.states.values(), buf.actions, buf.rewards, buf.dones, buf.truncateds))
    info = {"buffer_bytes_per_transition": per_slot, "torch": torch.__version__,
            "lerobot": getattr(lerobot, "__version__", LEROBOT_VERSION), "torch_file": torch.__file__}
    return info, step


def _count_gflop(step) -> float:
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        step()
    return counter.get_total_flops() / 1e9


def worker(side: str, cfg: dict, warmup: int, baseline_src: str | None) -> None:
    import torch

    torch.set_num_threads(THREADS)
    if side == "robot_stack":
        info, step = _robot_stack_worker(cfg, str(ROOT), None)
    elif side == "robot_stack_bf16":
        info, step = _robot_stack_worker(cfg, str(ROOT), "bfloat16")
    elif side == "robot_stack_baseline":
        info, step = _robot_stack_worker(cfg, baseline_src, None)
    else:
        info, step = _lerobot_worker(cfg, compiled=side == "lerobot_compiled")
    t0 = time.perf_counter()
    for _ in range(warmup):  # includes torch.compile's compilation on the compiled side
        step()
    info["warmup_s"] = time.perf_counter() - t0
    if side != "lerobot_compiled":  # compiled: the same work as eager
        info["gflop_per_update"] = _count_gflop(step)
    strict = getattr(_stub_unimportable, "strict", None)
    if strict is not None:
        strict["on"] = True
    print("READY " + json.dumps(info), flush=True)
    for line in sys.stdin:
        cmd = line.split()
        if cmd[0] == "run":
            times = []
            cpu0 = time.process_time()
            for _ in range(int(cmd[1])):
                t = time.perf_counter()
                step()
                times.append(time.perf_counter() - t)
            print("DONE " + json.dumps({"wall_s": times, "cpu_s": time.process_time() - cpu0}), flush=True)
        elif cmd[0] == "quit":
            return


def profile(name: str, src: str, encoder_dtype: str | None, updates: int) -> None:
    """torch.profiler table of robot_stack's update (sampling included) in configuration ``name``."""
    import torch
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as torch_profile

    torch.set_num_threads(THREADS)
    _, step = _robot_stack_worker(CONFIGS[name], src, encoder_dtype)
    for _ in range(3):
        step()
    t0 = time.perf_counter()
    with torch_profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(updates):
            step()
    wall_ms = 1e3 * (time.perf_counter() - t0) / updates
    events = prof.key_averages()
    total_ms = sum(e.self_cpu_time_total for e in events) / 1e3 / updates
    print(f"{name}, {src}, encoder_dtype {encoder_dtype or 'default'}: {wall_ms:.0f} ms per update (profiled), "
          f"{total_ms:.0f} ms CPU time of {THREADS} threads per update")
    for e in sorted(events, key=lambda e: -e.self_cpu_time_total)[:15]:
        ms = e.self_cpu_time_total / 1e3 / updates
        print(f"  {e.key:40s} {ms:7.1f} ms {100 * ms / total_ms:5.1f}%  ({e.count // updates} calls)")


# ----------------------------------------------------------------------------- parent
def setup() -> None:
    """Create .venv-lerobot: sees this project's .venv (same torch), holds lerobot and what it imports."""
    py = LEROBOT_VENV / "bin" / "python"
    if not py.exists():
        subprocess.run([sys.executable, "-m", "venv", str(LEROBOT_VENV)], check=True)
    ours = subprocess.run([str(ROOT / ".venv" / "bin" / "python"), "-c",
                           "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          check=True, capture_output=True, text=True).stdout.strip()
    theirs = subprocess.run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                            check=True, capture_output=True, text=True).stdout.strip()
    (pathlib.Path(theirs) / "robot_stack_venv.pth").write_text(ours + "\n")
    pip = [str(py), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    subprocess.run([*pip, "--no-deps", f"lerobot=={LEROBOT_VERSION}"], check=True)
    subprocess.run([*pip, *LEROBOT_DEPS], check=True)
    out = subprocess.run([str(py), __file__, "--check", ours], check=True, capture_output=True, text=True)
    print(f"{LEROBOT_VENV}: lerobot {LEROBOT_VERSION} ready, {out.stdout.strip()} shared with .venv")


def check(ours_site: str) -> None:
    """In .venv-lerobot: LeRobot's SAC and buffer import, and torch is this project's."""
    _stub_unimportable()
    import lerobot.policies.sac.modeling_sac  # noqa: F401
    import lerobot.rl.buffer  # noqa: F401
    import torch

    if not torch.__file__.startswith(ours_site):
        raise SystemExit(f"torch comes from {torch.__file__}, not from {ours_site}")
    print("torch", torch.__version__)


class Worker:
    def __init__(self, side: str, cfg: dict, warmup: int, baseline_src: str | None = None):
        py = str(LEROBOT_VENV / "bin" / "python") if side.startswith("lerobot") else sys.executable
        if side.startswith("lerobot") and not pathlib.Path(py).exists():
            raise SystemExit(f"{LEROBOT_VENV} missing: run `python {__file__} --setup` first")
        env = {**os.environ, **MALLOC, "OMP_NUM_THREADS": str(THREADS)}
        self.side = side
        job = {"side": side, "cfg": cfg, "warmup": warmup, "baseline_src": baseline_src}
        self.proc = subprocess.Popen([py, __file__, "--worker", json.dumps(job)],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)
        self.info = json.loads(self._expect("READY"))

    def _expect(self, tag: str) -> str:
        for line in self.proc.stdout:
            if line.startswith(tag + " "):
                return line[len(tag) + 1:]
        raise RuntimeError(f"{self.side} worker exited with {self.proc.wait()}")

    def run(self, n: int) -> list[float]:
        self.proc.stdin.write(f"run {n}\n")
        self.proc.stdin.flush()
        return json.loads(self._expect("DONE"))

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.stdin.write("quit\n")
            self.proc.stdin.flush()
            self.proc.wait(timeout=60)


def bench(name: str, rounds: int, updates: int, warmup: int, baseline_src: str | None, device: str = "cpu") -> dict:
    cfg = {**CONFIGS[name], "device": device}
    sides = [*SIDES, "robot_stack_baseline"] if baseline_src else list(SIDES)
    workers = []
    try:
        for side in sides:
            workers.append(Worker(side, cfg, warmup, baseline_src))
            print(f"{name}: {side} ready ({workers[-1].info['warmup_s']:.0f} s warm-up)", flush=True)
        series = {w.side: [] for w in workers}
        cpu = {w.side: [] for w in workers}  # CPU seconds (all threads) per update
        for r in range(rounds):
            order = workers[r % len(workers):] + workers[:r % len(workers)]  # rotate who goes first
            for w in order:
                timed = w.run(updates)
                series[w.side].append(updates / sum(timed["wall_s"]))
                cpu[w.side].append(timed["cpu_s"] / updates)
            print(f"{name} round {r + 1}/{rounds}: " + ", ".join(f"{s} {v[-1]:.2f}" for s, v in series.items()),
                  flush=True)
    finally:
        for w in workers:
            w.close()
    def ratio(ours: str, theirs: str) -> float:  # median over rounds of the per-round ratio
        return statistics.median(a / b for a, b in zip(series[ours], series[theirs]))

    info = {w.side: w.info for w in workers}
    res = {**cfg, "batch": BATCH, "updates_per_round": updates, "updates_per_s": series,
           "ratio_eager": ratio("robot_stack", "lerobot_eager"),
           "ratio_compiled": ratio("robot_stack", "lerobot_compiled"),
           "ratio_bf16_eager": ratio("robot_stack_bf16", "lerobot_eager"),
           "ratio_bf16_compiled": ratio("robot_stack_bf16", "lerobot_compiled"),
           "encoder_dtype": info["robot_stack"]["encoder_dtype"],
           # Less sensitive to other jobs on a shared machine than wall time (but idle OpenMP
           # threads spinning count as CPU time): LeRobot's CPU seconds per update over ours.
           "cpu_s_per_update": cpu,
           "cpu_ratio_eager": statistics.median(b / a for a, b in zip(cpu["robot_stack"], cpu["lerobot_eager"])),
           "cpu_ratio_compiled": statistics.median(b / a for a, b in zip(cpu["robot_stack"], cpu["lerobot_compiled"])),
           "gflop_per_update": {s: info[s]["gflop_per_update"] for s in ("robot_stack", "lerobot_eager")},
           "buffer_bytes_per_transition": {s: info[s]["buffer_bytes_per_transition"] for s in ("robot_stack", "lerobot_eager")},
           "warmup_s": {s: round(info[s]["warmup_s"], 1) for s in sides}}
    if baseline_src:
        res["speedup_over_baseline"] = ratio("robot_stack", "robot_stack_baseline")
        res["gflop_per_update"]["robot_stack_baseline"] = info["robot_stack_baseline"]["gflop_per_update"]
    return res


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--setup", action="store_true", help=f"create {LEROBOT_VENV.name} and exit")
    p.add_argument("--configs", nargs="+", default=list(CONFIGS), choices=list(CONFIGS))
    p.add_argument("--rounds", type=int, default=6)
    p.add_argument("--updates", type=int, default=4, help="timed updates per side and round")
    p.add_argument("--warmup", type=int, default=3, help="untimed updates first (torch.compile compiles here)")
    p.add_argument("--out", help=f"results file (default {OUT.name}; with --device cuda {OUT_CUDA.name})")
    p.add_argument("--device", default="cpu", choices=("cpu", "cuda"),
                   help="where both sides train (cuda: both sides' networks and batches on the GPU, "
                        "replay buffers on the host as each side ships them)")
    p.add_argument("--baseline-src", help="also time the robot_stack update of this source tree (e.g. an older commit)")
    p.add_argument("--worker", help=argparse.SUPPRESS)
    p.add_argument("--check", help=argparse.SUPPRESS)
    p.add_argument("--profile", choices=list(CONFIGS),
                   help="print a torch.profiler table of robot_stack's update in this configuration and exit "
                        "(of the --baseline-src tree if given)")
    p.add_argument("--encoder-dtype", help="with --profile: robot_stack's encoder_dtype (default: its default)")
    args = p.parse_args()
    if args.device == "cuda" and not (args.worker or args.check or args.setup):
        import torch

        if not torch.cuda.is_available():
            raise SystemExit(f"--device cuda: this torch ({torch.__version__}) sees no CUDA GPU; run on a GPU "
                             "machine with a CUDA build of torch, or leave --device out")
    if args.profile:
        profile(args.profile, args.baseline_src or str(ROOT), args.encoder_dtype, args.updates)
        return
    if args.check:
        check(args.check)
        return
    if args.worker:
        w = json.loads(args.worker)
        worker(w["side"], w["cfg"], w["warmup"], w["baseline_src"])
        return
    if args.setup:
        setup()
        return
    out = pathlib.Path(args.out or (OUT_CUDA if args.device == "cuda" else OUT))
    doc = json.loads(out.read_text()) if out.exists() else {}
    machine = f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs (shared)"
    if args.device == "cuda":
        import torch

        machine += f", {torch.cuda.get_device_name(0)}"
    doc.update({"machine": machine, "device": args.device,
                "threads": THREADS, "malloc": MALLOC, "lerobot": LEROBOT_VERSION, "differences": DIFFERENCES,
                "command": "python benchmarks/learner_vs_lerobot.py " + " ".join(sys.argv[1:])})
    doc.setdefault("configs", {})
    for name in args.configs:
        load = os.getloadavg()[0]
        res = bench(name, args.rounds, args.updates, args.warmup, args.baseline_src, args.device)
        res["load_avg_1min_at_start"] = round(load, 1)
        doc["configs"][name] = res
        print(f"{name}: ratio eager {res['ratio_eager']:.2f}, compiled {res['ratio_compiled']:.2f} "
              f"(bf16 encoder: {res['ratio_bf16_eager']:.2f}, {res['ratio_bf16_compiled']:.2f})", flush=True)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(doc, indent=1) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
