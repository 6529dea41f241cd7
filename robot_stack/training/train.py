# Over 400 lines: the whole training loop reads top to bottom in one file (one algorithm, not several jobs).
"""Single-process training on the simulation tasks with the simulated operator.

    python -m robot_stack.training.train --method rlif --task reach --obs state --env-steps 5000

Methods (same networks, same operator, same env-step budget):

* ``rlif``: RLPD-style SAC; rewards come only from interventions (the policy step before a
  take-over gets -1, all others 0); operator steps go to the main buffer and the
  intervention buffer, batches mix the two 50/50.
* ``hg_dagger``: the policy acts, the operator intervenes (same rule); BC on all intervention
  data gathered so far, trained as it arrives.
* ``bc``: the operator drives every step (demonstrations); BC on everything gathered so far.

The loop reads top to bottom: act -> operator decides -> env step -> stream a step record
(:class:`~robot_stack.types.records.StepRecord`) to the labeller -> store transitions ->
update -> evaluate/export/checkpoint. Evaluation runs
the deterministic policy alone (no operator) on fixed seeds in a separate env.

Everything a run writes goes under ``--run-dir`` (default ``runs/<run-name>``; ``runs/`` is
not tracked by git): ``checkpoint/`` (agent, trainer state, replay logs; ``--resume`` picks it
up), TensorBoard scalars in ``tb/``, ``metrics.csv`` (one row per evaluation, rewritten after
each) and the exported policies ``policies/latest.pt`` and ``best.pt`` (see
:mod:`robot_stack.rl.policy_io`). The repository's ``policies/`` folder holds only presets and
specs; copy an export there by hand to ship it.
"""
from __future__ import annotations

import argparse
import csv
import dataclasses
import logging
import pathlib
import time
import typing
from dataclasses import dataclass

import numpy as np
import torch

from robot_stack.rl.agent import SACAgent, SACConfig, save_atomic
from robot_stack.rl.baselines import BCAgent, BCConfig
from robot_stack.rl.labelling import LabellingConfig, StreamingLabeller
from robot_stack.rl.networks import NetworkConfig
from robot_stack.rl.policy_io import policy_state_from_bytes, read_policy_file, save_policy_file
from robot_stack.rl.replay_buffer import VisionReplayBuffer, sample_mixed
from robot_stack.types import config as cfgmod
from robot_stack.types.records import StepRecord
from robot_stack.types.spec import PolicySpec

log = logging.getLogger(__name__)

METHODS = ("rlif", "hg_dagger", "bc")
TASK_IDS = {"reach": "robot_stack/Reach-v0", "peg_insertion": "robot_stack/PegInsertion-v0"}
REPO_ROOT = pathlib.Path(__file__).resolve().parents[2]
STATE_NAMES = ("goal_x_m", "goal_y_m", "goal_z_m", "goal_minus_tool_x_m", "goal_minus_tool_y_m", "goal_minus_tool_z_m")


@dataclass
class TrainConfig:
    """One training run."""

    method: str = "rlif"
    """rlif, hg_dagger or bc (see the module docstring)."""
    task: str = "reach"
    """reach or peg_insertion."""
    obs: str = "state"
    """state (proprio + privileged goal state) or pixels (camera images + proprio)."""
    image_size: int = 64
    """Camera image height and width in pixels (pixels mode)."""
    expert_level: int = 50
    """Simulated operator skill preset: 90, 50 or 20 (its success rate acting alone, %)."""
    strategy: str = "value"
    """Operator intervention rule: value (RLIF's), action_distance (HG-DAgger gate), random."""
    env_steps: int = 5000
    """Budget of environment steps (demonstrations and interventions included)."""
    eval_every: int = 500
    """Evaluate (and export latest/best) every this many env steps."""
    eval_episodes: int = 10
    """Episodes per evaluation (policy alone, fixed seeds)."""
    warmup_steps: int = 256
    """Env steps before the first update."""
    preset: str = ""
    """Policy preset YAML (sections network, sac, bc); default policies/<task>_<obs>.yaml."""
    utd_ratio: int = 0
    """Override the preset's SAC update-to-data ratio (0 = keep the preset's)."""
    bc_updates_per_step: int = 1
    """Gradient steps per env step for hg_dagger and bc."""
    demo_episodes: int = 0
    """Operator-only episodes first (they count against env_steps); rlif/hg_dagger add them to
    the intervention buffer."""
    init_policy: str = ""
    """Exported policy file to warm-start encoders and actor from."""
    buffer_capacity: int = 200_000
    """Replay capacity (slots)."""
    seed: int = 0
    """Seed of env, operator and agent."""
    run_name: str = ""
    """Name of the run (default method_task_obs_eNN_sS)."""
    run_dir: str = ""
    """Directory for checkpoint, TensorBoard and metrics (default runs/<run_name>)."""
    policies_dir: str = ""
    """Where latest.pt/best.pt go (default <run_dir>/policies)."""
    checkpoint_every: int = 1000
    """Save a full checkpoint every this many env steps (and at the end)."""
    persist_buffers: bool = True
    """Keep the replay buffers in append-only logs in the checkpoint dir (needed by resume)."""
    resume: bool = False
    """Continue from run_dir/checkpoint if present."""
    device: str = ""
    """Where the networks train: cpu, cuda, cuda:N or auto (empty: the preset's, default cpu)."""
    torch_threads: int = 1
    """torch intra-op threads (this machine has 2 cores shared by several jobs)."""
    progress: bool = True
    """Show a tqdm progress bar."""
    tensorboard: bool = True
    """Write TensorBoard scalars."""

    def validate(self) -> None:
        if self.method not in METHODS:
            raise ValueError(f"method must be one of {METHODS}, got {self.method!r}")
        if self.task not in TASK_IDS:
            raise ValueError(f"task must be one of {sorted(TASK_IDS)}, got {self.task!r}")
        if self.obs not in ("state", "pixels"):
            raise ValueError(f"obs must be 'state' or 'pixels', got {self.obs!r}")
        if self.expert_level not in (90, 50, 20):
            raise ValueError(f"expert_level must be 90, 50 or 20, got {self.expert_level}")

    def resolved(self) -> "TrainConfig":
        name = self.run_name or f"{self.method}_{self.task}_{self.obs}_e{self.expert_level}_s{self.seed}"
        run_dir = self.run_dir or str(REPO_ROOT / "runs" / name)
        return dataclasses.replace(
            self, run_name=name,
            run_dir=run_dir,
            policies_dir=self.policies_dir or str(pathlib.Path(run_dir) / "policies"),
            preset=self.preset or str(REPO_ROOT / "policies" / f"{self.task}_{self.obs}.yaml"),
        )


# ------------------------------------------------------------------------ env adapter
class SimAdapter:
    """The one place that knows the sim's API: env, operator, observation layout.

    State mode feeds the policy ``proprio`` followed by the env's privileged ``state`` vector
    (goal and goal minus tool) as one proprio vector; pixel mode passes cameras + proprio.
    """

    def __init__(self, cfg: TrainConfig, seed_offset: int = 0):
        import gymnasium as gym

        import robot_stack.sim  # noqa: F401  (registers the gym ids)
        from robot_stack.sim.operator import OperatorConfig, SimulatedOperator

        kwargs = {"obs_mode": cfg.obs}
        if cfg.obs == "pixels":
            kwargs["image_size"] = cfg.image_size
        self.env = gym.make(TASK_IDS[cfg.task], **kwargs)
        u = self.env.unwrapped
        sim_spec: PolicySpec = u.policy_spec
        names = sim_spec.proprio_names + (STATE_NAMES if cfg.obs == "state" else ())
        self.spec = dataclasses.replace(sim_spec, proprio_names=names)
        self.state_mode = cfg.obs == "state"
        self.operator = SimulatedOperator(u.task, OperatorConfig(skill=f"expert_{cfg.expert_level}",
                                                                  strategy=cfg.strategy),
                                          seed=cfg.seed + 7919 + seed_offset)

    def policy_obs(self, obs: dict) -> dict:
        if self.state_mode:
            return {"proprio": np.concatenate([obs["proprio"], obs["state"]]).astype(np.float32)}
        return {k: v for k, v in obs.items() if k != "state"}

    def reset(self, seed: int) -> dict:
        obs, _ = self.env.reset(seed=seed)
        self.operator.reset(seed=seed + 1_000_003)
        return self.policy_obs(obs)

    def operator_step(self, policy_action: np.ndarray, drive_alone: bool) -> tuple[bool, np.ndarray]:
        """(operator in control?, executed action) for this step."""
        u = self.env.unwrapped
        if drive_alone:
            return True, self.operator.act_alone(u.model, u.data).astype(np.float32)
        out = self.operator.step(u.model, u.data, policy_action)
        if out.intervening:
            return True, self.operator.env_action(out.reading).astype(np.float32)
        return False, policy_action

    def step(self, action: np.ndarray):
        obs, _, terminated, truncated, info = self.env.step(action)
        return self.policy_obs(obs), terminated, truncated, bool(info["is_success"])

    def close(self) -> None:
        self.env.close()


def evaluate(policy_act, adapter: SimAdapter, episodes: int, seed0: int = 10_000) -> dict:
    """Success rate and mean length of ``policy_act(obs) -> action`` acting alone."""
    succ, lengths = 0, []
    for i in range(episodes):
        obs = adapter.reset(seed0 + i)
        done, n, success = False, 0, False
        while not done:
            obs, term, trunc, success = adapter.step(policy_act(obs))
            n += 1
            done = term or trunc
        succ += int(success)
        lengths.append(n)
    return {"success_rate": succ / max(episodes, 1), "episode_len": float(np.mean(lengths))}


def operator_success(task: str, obs: str, expert_level: int, episodes: int, seed: int = 20_000) -> float:
    """Success rate of the simulated operator driving alone."""
    ad = SimAdapter(TrainConfig(task=task, obs="state", expert_level=expert_level, seed=seed))
    ok = 0
    for i in range(episodes):
        ad.reset(seed + i)
        done, success = False, False
        while not done:
            _, a = ad.operator_step(np.zeros(ad.spec.action.dim, np.float32), drive_alone=True)
            _, term, trunc, success = ad.step(a)
            done = term or trunc
        ok += int(success)
    ad.close()
    return ok / max(episodes, 1)


# ------------------------------------------------------------------------ agents
def load_preset(path: str) -> tuple[NetworkConfig, dict, dict]:
    import yaml

    p = pathlib.Path(path)
    if not p.is_file():
        raise cfgmod.ConfigError(f"policy preset not found: {p} (see policies/*.yaml)")
    data = yaml.safe_load(p.read_text()) or {}
    unknown = set(data) - {"network", "sac", "bc"}
    if unknown:
        raise cfgmod.ConfigError(f"preset {p}: unknown sections {sorted(unknown)}; allowed: network, sac, bc")
    net = cfgmod.from_dict(NetworkConfig, data.get("network", {}), where=f"{p}:network")
    return net, dict(data.get("sac", {})), dict(data.get("bc", {}))


def make_agent(cfg: TrainConfig, spec: PolicySpec):
    net, sac_kw, bc_kw = load_preset(cfg.preset)
    if cfg.device:
        sac_kw["device"] = bc_kw["device"] = cfg.device
    if cfg.method == "rlif":
        sac = cfgmod.from_dict(SACConfig, {**sac_kw, "seed": cfg.seed}, where=f"{cfg.preset}:sac")
        sac = dataclasses.replace(sac, network=net, **({"utd_ratio": cfg.utd_ratio} if cfg.utd_ratio else {}))
        return SACAgent(spec, sac)
    bc = cfgmod.from_dict(BCConfig, {**bc_kw, "seed": cfg.seed}, where=f"{cfg.preset}:bc")
    return BCAgent(spec, dataclasses.replace(bc, network=net))


# ------------------------------------------------------------------------ training loop
def train(cfg: TrainConfig) -> list[dict]:
    """Run one training; returns the evaluation rows (also written to metrics.csv)."""
    cfg = cfg.resolved()
    cfg.validate()
    torch.set_num_threads(cfg.torch_threads)
    run_dir, ckpt_dir = pathlib.Path(cfg.run_dir), pathlib.Path(cfg.run_dir) / "checkpoint"
    env, eval_env = SimAdapter(cfg), SimAdapter(cfg, seed_offset=1)
    spec = env.spec
    agent = make_agent(cfg, spec)
    if cfg.init_policy:
        spec_json, data, _ = read_policy_file(cfg.init_policy)
        agent.load_policy_weights(policy_state_from_bytes(data))
    log_path = (lambda n: ckpt_dir / n) if cfg.persist_buffers else (lambda n: None)
    main_buf = VisionReplayBuffer(spec, cfg.buffer_capacity, log_path("main.log"), sync="flush")
    interv_buf = VisionReplayBuffer(spec, cfg.buffer_capacity, log_path("intervention.log"), sync="flush")
    if not cfg.resume and ckpt_dir.exists():
        for f in ("main.log", "intervention.log", "agent.pt", "trainer.pt"):
            (ckpt_dir / f).unlink(missing_ok=True)
    main_buf.open(), interv_buf.open()
    labeller = StreamingLabeller(LabellingConfig())
    rng = np.random.default_rng(cfg.seed)

    # Trainer state (saved in checkpoints so --resume continues the same run).
    st = {"env_steps": 0, "episodes": 0, "best_success": -1.0, "rows": [], "window_steps": 0,
          "window_interventions": 0, "window_returns": [], "updates": 0}
    if cfg.resume and (ckpt_dir / "trainer.pt").exists():
        agent.load_state_dict(torch.load(ckpt_dir / "agent.pt", map_location="cpu", weights_only=False))
        saved = torch.load(ckpt_dir / "trainer.pt", map_location="cpu", weights_only=False)
        st = saved["state"]
        rng.bit_generator.state = saved["rng"]
        log.info("resumed %s at env step %d (%d + %d buffered)", cfg.run_name, st["env_steps"], len(main_buf), len(interv_buf))

    writer = None
    if cfg.tensorboard:
        from torch.utils.tensorboard import SummaryWriter
        writer = SummaryWriter(str(run_dir / "tb"))
    bar = None
    if cfg.progress:
        from tqdm import tqdm
        bar = tqdm(total=cfg.env_steps, initial=st["env_steps"], desc=cfg.run_name, unit="step")

    demo_steps_left = 0
    obs, ep_index, ep_return, done = None, 0, 0.0, True
    t_upd, n_upd = 0.0, 0
    metrics: dict[str, float] = {}
    while st["env_steps"] < cfg.env_steps:
        # --- episode start: a fresh episode id; demonstrations come first.
        if done:
            ep_seed = int(rng.integers(0, 2**31 - 1))
            obs = env.reset(ep_seed)
            ep_index, ep_return, done = 0, 0.0, False
            drive_alone = cfg.method == "bc" or st["episodes"] < cfg.demo_episodes
            episode_id = st["episodes"]
            st["episodes"] += 1

        # --- act; the operator may take over; the env executes.
        if cfg.method == "rlif" and len(main_buf) < cfg.warmup_steps and not cfg.init_policy:
            policy_action = rng.uniform(-1, 1, spec.action.dim).astype(np.float32)
        else:
            policy_action = np.asarray(agent.act(obs, deterministic=cfg.method != "rlif"), np.float32)
        intervening, action = env.operator_step(policy_action, drive_alone)
        next_obs, terminated, truncated, success = env.step(action)
        done = terminated or truncated

        # --- stream records to the labeller (exactly what the actor node sends the learner).
        records = [StepRecord(episode_id, ep_index, obs, action, policy_action, intervening, is_first=ep_index == 0)]
        if done:
            records.append(StepRecord(episode_id, ep_index + 1, next_obs, intervention=False, is_last=True,
                                is_terminal=terminated, success=success))
        for rec in records:
            for tr in labeller.push(rec):
                main_buf.add(tr)
                if tr.intervention:
                    interv_buf.add(tr)
                ep_return += tr.reward
        obs, ep_index = next_obs, ep_index + 1
        st["env_steps"] += 1
        st["window_steps"] += 1
        st["window_interventions"] += int(intervening)
        if done:
            st["window_returns"].append(ep_return)

        # --- learn.
        if st["env_steps"] >= cfg.warmup_steps:
            t0 = time.perf_counter()
            if cfg.method == "rlif" and len(main_buf):
                n = agent.cfg.utd_ratio * agent.cfg.batch_size
                metrics = agent.update(sample_mixed(main_buf, interv_buf, n, rng, agent.cfg.offline_fraction))
                n_upd += agent.cfg.utd_ratio
            elif cfg.method != "rlif" and len(interv_buf):
                for _ in range(cfg.bc_updates_per_step):
                    metrics = agent.update(interv_buf.sample(agent.cfg.batch_size, rng))
                n_upd += cfg.bc_updates_per_step
            t_upd += time.perf_counter() - t0
        if bar is not None:
            bar.update(1)

        # --- evaluate, export, log.
        if st["env_steps"] % cfg.eval_every == 0 or st["env_steps"] == cfg.env_steps:
            ev = evaluate(lambda o: agent.act(o, deterministic=True), eval_env, cfg.eval_episodes)
            w = max(st["window_steps"], 1)
            row = {"env_steps": st["env_steps"], "success_rate": ev["success_rate"],
                   "intervention_rate": st["window_interventions"] / w,
                   "train_return": float(np.mean(st["window_returns"])) if st["window_returns"] else 0.0,
                   "eval_episode_len": ev["episode_len"], "updates_per_s": n_upd / t_upd if t_upd else 0.0,
                   **{k: float(v) for k, v in metrics.items()}}
            st["rows"].append(row)
            write_metrics_csv(run_dir / "metrics.csv", st["rows"])  # progress survives a killed run
            st["window_steps"] = st["window_interventions"] = 0
            st["window_returns"] = []
            t_upd, n_upd = 0.0, 0
            meta = {"env_steps": st["env_steps"], "success_rate": row["success_rate"], "method": cfg.method,
                    "task": cfg.task, "obs": cfg.obs}
            save_policy_file(agent, pathlib.Path(cfg.policies_dir) / "latest.pt", meta)
            if row["success_rate"] > st["best_success"]:
                st["best_success"] = row["success_rate"]
                save_policy_file(agent, pathlib.Path(cfg.policies_dir) / "best.pt", meta)
            if writer is not None:
                for k, v in row.items():
                    if k != "env_steps":
                        writer.add_scalar(k, v, st["env_steps"])
                writer.flush()
            if bar is not None:
                bar.set_postfix(success=row["success_rate"], interv=round(row["intervention_rate"], 2))
            log.info("%s step %d: %s", cfg.run_name, st["env_steps"], row)

        if st["env_steps"] % cfg.checkpoint_every == 0 or st["env_steps"] == cfg.env_steps:
            save_atomic(agent.state_dict(), ckpt_dir / "agent.pt")
            save_atomic({"state": st, "rng": rng.bit_generator.state, "config": cfgmod.to_dict(cfg)},
                        ckpt_dir / "trainer.pt")

    if bar is not None:
        bar.close()
    if writer is not None:
        writer.close()
    main_buf.close(), interv_buf.close()
    env.close(), eval_env.close()
    write_metrics_csv(run_dir / "metrics.csv", st["rows"])
    return st["rows"]


def write_metrics_csv(path: pathlib.Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    keys = sorted({k for r in rows for k in r}, key=lambda k: (k != "env_steps", k))
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=keys)
        w.writeheader()
        w.writerows(rows)


# ------------------------------------------------------------------------ CLI
def add_dataclass_args(parser: argparse.ArgumentParser, cls) -> None:
    """One --flag per field, help from the field's docstring."""
    docs = cfgmod.field_docs(cls)
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        flag = "--" + f.name.replace("_", "-")
        tp = hints[f.name]
        if tp is bool:
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=f.default, help=(docs.get(f.name) or "").replace("%", "%%"))
        else:
            parser.add_argument(flag, type=tp, default=f.default, help=(docs.get(f.name) or "").replace("%", "%%"))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    add_dataclass_args(parser, TrainConfig)
    args = vars(parser.parse_args(argv))
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s: %(message)s")
    cfg = cfgmod.from_dict(TrainConfig, args)
    rows = train(cfg)
    if rows:
        print(f"final success_rate={rows[-1]['success_rate']:.2f} intervention_rate={rows[-1]['intervention_rate']:.2f}")


if __name__ == "__main__":
    main()
