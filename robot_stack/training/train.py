# Over 400 lines: the whole comparison script (methods, evaluation, resume, metrics) in one place; about 40 lines are its usage.
"""Single-process training on the simulation tasks with the simulated operator.

    python -m robot_stack.training.train --method rlif --task reach --obs state --env-steps 5000

The loop is the robot's: :class:`~robot_stack.actor.core.ActorCore` runs the episodes and
arbitrates between policy and operator, :class:`~robot_stack.rl.learner.LearnerCore` labels,
stores, trains and exports, and the simulated operator's SpaceMouse readings pass the device's
intervention detector (:mod:`robot_stack.training.session`); only the clock is simulated and
the learner trains inline (its synchronous mode) instead of in its thread. Per control step:
sensors -> actor tick -> operator -> robot; the finished step records go to the learner, which
runs the updates they allow (one update call per transition, ``utd_ratio`` critic steps each)
and hands every ``publish_every_updates``-th export to the actor, as over the policy topic.

Methods (same networks, same operator, same env-step budget):

* ``rlif``: RLPD-style SAC; rewards come only from interventions (the policy step before a
  take-over gets -1, all others 0); operator steps go to the main buffer and the
  intervention buffer, batches mix the two 50/50. The actor samples actions (stochastic).
* ``hg_dagger``: the policy acts (deterministically), the operator intervenes (same rule);
  BC on all intervention data gathered so far, one gradient step per transition.
* ``bc``: the operator drives every step (demonstrations); BC on everything gathered so far.

Evaluation runs the exported policy deterministically through an actor of its own, with no
operator, on fixed seeds in a separate env.

Files: ``--run-dir`` (default ``runs/<run-name>``) is a learner run directory, the same layout
the learner node writes (``checkpoint.pt``, ``replay_online.log``, ``replay_intervention.log``,
``tb/``), plus ``metrics.csv`` (one row per evaluation), ``train_config.json`` and the exported
policies ``policies/latest.pt`` and ``best.pt`` (best evaluation). ``--resume`` continues a run
started by this script or by the learner node; the learner node resumes either. ``runs/`` is
not tracked by git; the repository's ``policies/`` folder holds only presets and specs.
"""
from __future__ import annotations

import argparse
import csv
import dataclasses
import json
import logging
import os
import pathlib
import shutil
import time
import typing
from dataclasses import dataclass

import numpy as np

from robot_stack.actor.core import ActorConfig, ActorCore
from robot_stack.rl.agent import SACConfig
from robot_stack.rl.baselines import BCConfig
from robot_stack.rl.intake import STATE_DIR, STATE_FILE
from robot_stack.rl.learner import ImitationConfig, LearnerConfig, LearnerCore
from robot_stack.rl.networks import NetworkConfig
from robot_stack.types import config as cfgmod
from robot_stack.types.records import PolicyWeights
from robot_stack.training.session import (STATE_NAMES, TASK_IDS, SimRobot, SimSpaceMouse, episode_seed,
                                          run_control_step)

log = logging.getLogger(__name__)

METHODS = ("rlif", "hg_dagger", "bc")
REPO_ROOT = pathlib.Path(__file__).resolve().parents[2]
EVAL_SEED0 = 10_000
"""Seed of the first evaluation episode (evaluation episode i resets the env with EVAL_SEED0 + i)."""
RUN_KEYS = ("method", "task", "obs", "image_size", "cameras", "expert_level", "strategy", "seed")
"""Fields a resumed run must share with the run it continues."""


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
    cameras: str = ""
    """Cameras in pixels mode, space-separated (front, wrist); empty: the task's own (front for
    reach, wrist for the peg)."""
    expert_level: int = 50
    """Simulated operator skill preset: 90, 50 or 20 (its success rate acting alone, %)."""
    strategy: str = "value"
    """Operator intervention rule: value (RLIF's), action_distance (HG-DAgger gate), random."""
    operator_min_axis: float = 0.25
    """Smallest deflection of the operator's hand while in control (above the detector's
    engage threshold, 0.15; the sim graph's value)."""
    env_steps: int = 5000
    """Budget of environment steps (demonstrations and interventions included)."""
    eval_every: int = 500
    """Evaluate (and checkpoint, export latest/best) every this many env steps."""
    eval_episodes: int = 10
    """Episodes per evaluation (policy alone, fixed seeds)."""
    final_eval_episodes: int = 0
    """Episodes of the evaluation at the end of the budget (0: eval_episodes)."""
    min_transitions: int = 256
    """Transitions before the first update (the learner's min_transitions)."""
    publish_every_updates: int = 20
    """The actor gets new policy weights every this many updates (the learner node's default)."""
    preset: str = ""
    """Policy preset YAML (sections network, sac, bc); default policies/<task>_<obs>.yaml."""
    utd_ratio: int = 0
    """Override the preset's SAC update-to-data ratio (0 = keep the preset's)."""
    init_policy: str = ""
    """Exported policy file to warm-start encoders and actor from (fresh runs)."""
    buffer_capacity: int = 200_000
    """Replay capacity (slots)."""
    seed: int = 0
    """Seed of env episodes, operator and learner."""
    run_name: str = ""
    """Name of the run (default method_task_obs_eNN_sS)."""
    run_dir: str = ""
    """Learner run directory (default runs/<run_name>)."""
    policies_dir: str = ""
    """Where latest.pt/best.pt go (default <run_dir>/policies)."""
    resume: bool = False
    """Continue the run in run_dir (started by this script or the learner node); without it an
    existing run there is an error."""
    device: str = ""
    """Where the networks train: cpu, cuda, cuda:N or auto (empty: the preset's, default cpu)."""
    torch_threads: int = 1
    """torch intra-op threads (this machine has 2 cores shared by several jobs)."""
    progress: bool = True
    """Show a tqdm progress bar."""
    tensorboard: bool = True
    """Write the learner's TensorBoard scalars (run_dir/tb)."""

    def validate(self) -> None:
        if self.method not in METHODS:
            raise ValueError(f"method must be one of {METHODS}, got {self.method!r}")
        if self.task not in TASK_IDS:
            raise ValueError(f"task must be one of {sorted(TASK_IDS)}, got {self.task!r}")
        if self.obs not in ("state", "pixels"):
            raise ValueError(f"obs must be 'state' or 'pixels', got {self.obs!r}")
        if self.cameras.strip() and self.obs != "pixels":
            raise ValueError(f"cameras={self.cameras!r} needs obs='pixels' (state observations have no images)")
        if self.expert_level not in (90, 50, 20):
            raise ValueError(f"expert_level must be 90, 50 or 20, got {self.expert_level}")
        for name in ("env_steps", "eval_every", "min_transitions", "publish_every_updates"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}={getattr(self, name)} must be >= 1")

    @property
    def camera_names(self) -> tuple[str, ...] | None:
        """The cameras to render (None: the task's own)."""
        return tuple(self.cameras.split()) or None

    def resolved(self) -> "TrainConfig":
        name = self.run_name or f"{self.method}_{self.task}_{self.obs}_e{self.expert_level}_s{self.seed}"
        run_dir = self.run_dir or str(REPO_ROOT / "runs" / name)
        return dataclasses.replace(
            self, run_name=name, run_dir=run_dir, cameras=" ".join(self.cameras.split()),
            policies_dir=self.policies_dir or str(pathlib.Path(run_dir) / "policies"),
            preset=self.preset or str(REPO_ROOT / "policies" / f"{self.task}_{self.obs}.yaml"),
            final_eval_episodes=self.final_eval_episodes or self.eval_episodes,
        )


# ------------------------------------------------------------------------ configuration
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


def learner_config(cfg: TrainConfig, spec) -> LearnerConfig:
    """The learner node's configuration for this run (preset networks and hyperparameters)."""
    net, sac_kw, bc_kw = load_preset(cfg.preset)
    if cfg.device:
        sac_kw["device"] = cfg.device
    sac = cfgmod.from_dict(SACConfig, {**sac_kw, "seed": cfg.seed}, where=f"{cfg.preset}:sac")
    sac = dataclasses.replace(sac, network=net, **({"utd_ratio": cfg.utd_ratio} if cfg.utd_ratio else {}))
    bc = cfgmod.from_dict(BCConfig, {**bc_kw, "seed": cfg.seed}, where=f"{cfg.preset}:bc")
    return LearnerConfig(
        run_dir=cfg.run_dir, policies_dir=cfg.policies_dir, spec_json=spec.to_json(),
        algorithm="rlif" if cfg.method == "rlif" else "bc", sac=sac,
        bc=ImitationConfig(lr=bc.lr, batch_size=bc.batch_size, seed=bc.seed),
        buffer_capacity=cfg.buffer_capacity, min_transitions=cfg.min_transitions,
        publish_every_updates=cfg.publish_every_updates, warm_start_policy_file=cfg.init_policy,
        torch_threads=cfg.torch_threads, tensorboard=cfg.tensorboard)


def make_operator(cfg: TrainConfig, task) -> SimSpaceMouse:
    from robot_stack.sim.operator import OperatorConfig, SimulatedOperator

    strategy = "always" if cfg.method == "bc" else cfg.strategy
    op = SimulatedOperator(task, OperatorConfig(skill=f"expert_{cfg.expert_level}", strategy=strategy,
                                                min_axis=cfg.operator_min_axis))
    return SimSpaceMouse(op)


# ------------------------------------------------------------------------ evaluation
def evaluate(policy, robot: SimRobot, episodes: int, seed0: int = EVAL_SEED0) -> dict:
    """Success rate and mean length of ``policy`` acting alone (deterministic), through an actor."""
    actor = ActorCore(ActorConfig(control_rate_hz=1.0 / robot.period_s, max_episode_steps=robot.horizon_steps,
                                  deterministic=True), robot.spec, policy, first_episode_id=0, evaluation=True)
    summaries = []
    t, k = 0.0, 0
    while len(summaries) < episodes:
        res = run_control_step(actor, robot, t, None, lambda ep, _t: robot.reset(seed0 + ep))
        if res.summary is not None:
            summaries.append(res.summary)
        k += 1
        t = k * robot.period_s
    return {"success_rate": float(np.mean([s.success for s in summaries])) if summaries else 0.0,
            "episode_len": float(np.mean([s.steps for s in summaries])) if summaries else 0.0}


def operator_success(task: str, expert_level: int, episodes: int, seed: int = 20_000,
                     min_axis: float = TrainConfig.operator_min_axis) -> float:
    """Success rate of the simulated operator driving alone, through the same detector and actor."""
    robot = SimRobot(task, "state")
    cfg = TrainConfig(method="bc", task=task, expert_level=expert_level, operator_min_axis=min_axis)
    op = make_operator(cfg, robot.task)

    class Idle:  # the operator drives every step; the policy's proposal is never executed
        def act(self, obs, deterministic):
            return np.zeros(robot.spec.action.dim, np.float32)

    actor = ActorCore(ActorConfig(control_rate_hz=1.0 / robot.period_s, max_episode_steps=robot.horizon_steps),
                      robot.spec, Idle(), first_episode_id=0)

    def reset(ep: int, t: float) -> None:
        robot.reset(seed + ep)
        actor.on_operator_command(op.start_episode(seed + ep + 1_000_003, t), t)

    ok, n, k = 0, 0, 0
    while n < episodes:
        res = run_control_step(actor, robot, k * robot.period_s, op, reset)
        if res.summary is not None:
            ok, n = ok + int(res.summary.success), n + 1
        k += 1
    robot.close()
    return ok / max(episodes, 1)


# ------------------------------------------------------------------------ training loop
def train(cfg: TrainConfig) -> list[dict]:
    """Run (or continue) one training; returns the evaluation rows (also in metrics.csv)."""
    import torch

    from robot_stack.rl.policy_io import load_policy_from_bytes

    cfg = cfg.resolved()
    cfg.validate()
    torch.set_num_threads(cfg.torch_threads)
    run_dir = pathlib.Path(cfg.run_dir)
    _prepare_run_dir(cfg, run_dir)

    robot = SimRobot(cfg.task, cfg.obs, cfg.image_size, cfg.camera_names)
    spec = robot.spec
    operator = make_operator(cfg, robot.task)
    latest: list[PolicyWeights] = []  # the policy topic: only the newest export matters
    learner = LearnerCore(learner_config(cfg, spec), on_weights=latest.append).open()
    rows = [r for r in read_metrics_csv(run_dir / "metrics.csv") if r["env_steps"] <= learner.env_steps]
    learner.start(thread=False)
    w = latest.pop()
    actor = ActorCore(ActorConfig(control_rate_hz=1.0 / robot.period_s, max_episode_steps=robot.horizon_steps,
                                  deterministic=cfg.method != "rlif"),
                      spec, load_policy_from_bytes(w.spec_json, w.data, cfg.seed), w.version,
                      first_episode_id=learner.last_episode_id + 1)
    eval_robot: SimRobot | None = None

    def reset(episode_id: int, t: float) -> None:  # the sim world's reset responder
        robot.reset(episode_seed(cfg.seed, episode_id))
        actor.on_operator_command(operator.start_episode(episode_seed(cfg.seed, episode_id, 1), t), t)

    bar = None
    if cfg.progress:
        from tqdm import tqdm
        bar = tqdm(total=cfg.env_steps, initial=learner.env_steps, desc=cfg.run_name, unit="step")
    window = {"steps": 0, "interventions": 0, "episodes": 0, "successes": 0, "updates": 0, "t0": time.perf_counter()}
    next_eval = (learner.env_steps // cfg.eval_every + 1) * cfg.eval_every
    k = 0  # control periods since start; the simulated clock is k * period
    try:
        while learner.env_steps < cfg.env_steps:
            # --- one control period: sensors -> actor tick -> operator -> robot
            res = run_control_step(actor, robot, k * robot.period_s, operator, reset)
            k += 1
            # --- the finished step records go to the learner, which trains inline
            for rec in res.steps:
                learner.add_step(rec)
                window["updates"] += learner.train_available()
                if not rec.is_last:
                    window["steps"] += 1
                    window["interventions"] += int(rec.intervention)
                    if bar is not None:
                        bar.update(1)
            if res.summary is not None:
                window["episodes"] += 1
                window["successes"] += int(res.summary.success)
            # --- the newest export reaches the actor (the policy topic)
            if latest:
                w = latest.pop()
                latest.clear()
                actor.set_policy(load_policy_from_bytes(w.spec_json, w.data, cfg.seed), w.version)
            # --- evaluate, checkpoint, export
            if learner.env_steps >= min(next_eval, cfg.env_steps):
                final = learner.env_steps >= cfg.env_steps
                if eval_robot is None:
                    eval_robot = SimRobot(cfg.task, cfg.obs, cfg.image_size, cfg.camera_names)
                episodes = cfg.final_eval_episodes if final else cfg.eval_episodes
                spec_json, data = _export(learner)
                ev = evaluate(load_policy_from_bytes(spec_json, data, cfg.seed), eval_robot, episodes)
                row = _row(learner, ev, window, episodes)
                rows.append(row)
                learner.checkpoint(success_rate=row["success_rate"])
                write_metrics_csv(run_dir / "metrics.csv", rows)  # after the checkpoint: never ahead of it
                window = {k_: 0 for k_ in window} | {"t0": time.perf_counter()}
                next_eval += cfg.eval_every
                if bar is not None:
                    bar.set_postfix(success=row["success_rate"], interv=round(row["intervention_rate"], 2))
                log.info("%s step %d: %s", cfg.run_name, row["env_steps"], row)
    finally:
        if bar is not None:
            bar.close()
        learner.close()
        robot.close()
        if eval_robot is not None:
            eval_robot.close()
    return rows


def _export(learner: LearnerCore) -> tuple[str, bytes]:
    from robot_stack.rl.policy_io import export_policy_bytes

    return export_policy_bytes(learner.agent)


def _row(learner: LearnerCore, ev: dict, window: dict, eval_episodes: int) -> dict:
    steps = max(window["steps"], 1)
    wall = time.perf_counter() - window["t0"]
    return {"env_steps": learner.env_steps, "success_rate": ev["success_rate"], "eval_episodes": eval_episodes,
            "eval_episode_len": ev["episode_len"],
            "intervention_rate": window["interventions"] / steps,
            "operator_steps": learner.intervention_steps,
            "train_success_rate": window["successes"] / window["episodes"] if window["episodes"] else 0.0,
            "updates": learner.updates, "env_steps_per_s": window["steps"] / wall if wall > 0 else 0.0,
            **{k: float(v) for k, v in learner.last_metrics.items()}}


LEARNER_FILES = (LearnerCore.CHECKPOINT, LearnerCore.ONLINE_LOG, LearnerCore.INTERVENTION_LOG, "metrics.csv",
                 "train_config.json", LearnerCore.VERSION_FILE, STATE_FILE)
"""A fresh run removes these (and STATE_DIR): a previous run's watermark or counters must not
carry over."""


def _prepare_run_dir(cfg: TrainConfig, run_dir: pathlib.Path) -> None:
    """Fresh run: clear a previous run's files. Resume: check the run is the same experiment."""
    run_dir.mkdir(parents=True, exist_ok=True)
    saved = run_dir / "train_config.json"
    if not cfg.resume:
        for name in LEARNER_FILES:
            (run_dir / name).unlink(missing_ok=True)
        shutil.rmtree(run_dir / STATE_DIR, ignore_errors=True)
    elif saved.exists():
        old = json.loads(saved.read_text())
        fields = {f.name: f.default for f in dataclasses.fields(TrainConfig)}
        # A key an older run did not save had its default then.
        diff = {k: (old.get(k, fields[k]), getattr(cfg, k)) for k in RUN_KEYS if old.get(k, fields[k]) != getattr(cfg, k)}
        if diff:
            raise ValueError(f"{run_dir} holds another run ({', '.join(f'{k}: {a} vs {b}' for k, (a, b) in diff.items())}); "
                             "use another run_dir or drop --resume")
    saved.write_text(json.dumps(cfgmod.to_dict(cfg), indent=1, sort_keys=True))


def read_metrics_csv(path: pathlib.Path) -> list[dict]:
    if not path.exists():
        return []
    with open(path) as f:
        rows = list(csv.DictReader(f))
    out = []
    for r in rows:
        out.append({k: (int(float(v)) if k in ("env_steps", "eval_episodes", "operator_steps", "updates") else float(v))
                    for k, v in r.items() if v != ""})
    return out


def write_metrics_csv(path: pathlib.Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    keys = sorted({k for r in rows for k in r}, key=lambda k: (k != "env_steps", k))
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=keys)
        w.writeheader()
        w.writerows(rows)
    os.replace(tmp, path)  # readers (the benchmark) never see half a file


# ------------------------------------------------------------------------ CLI
def add_dataclass_args(parser: argparse.ArgumentParser, cls) -> None:
    """One --flag per field, help from the field's docstring."""
    docs = cfgmod.field_docs(cls)
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        flag = "--" + f.name.replace("_", "-")
        tp = hints[f.name]
        help_text = (docs.get(f.name) or "").replace("%", "%%")
        if tp is bool:
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=f.default, help=help_text)
        else:
            parser.add_argument(flag, type=tp, default=f.default, help=help_text)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    add_dataclass_args(parser, TrainConfig)
    args = vars(parser.parse_args(argv))
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s: %(message)s")
    rows = train(cfgmod.from_dict(TrainConfig, args))
    if rows:
        print(f"final success_rate={rows[-1]['success_rate']:.2f} intervention_rate={rows[-1]['intervention_rate']:.2f}")


if __name__ == "__main__":
    main()
