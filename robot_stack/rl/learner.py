# Over 400 lines: the learner core is one thread-safe object (intake, labelling, replay, training thread, checkpoints, stats); about 50 lines are its specification.
"""The learner's logic without ROS: labelling, replay, a training thread, checkpoints, stats.

:class:`LearnerCore` owns the learning objects of :mod:`robot_stack.rl` and wires them for a
learner fed one step record at a time (the learner node calls it from its callbacks):

* ``add_step(step, robot_id)``: each robot's records are taken in its actor's order, each once
  (one :class:`~robot_stack.rl.intake.StepIntake` per robot stream: duplicates and early records
  are dropped and counted; ``watermark(robot_id)`` is what the learner acknowledges to that
  robot); the streaming RLIF labeller (:class:`~robot_stack.rl.labelling.StreamingLabeller`)
  turns records into labelled transitions, one labeller per robot (:class:`~robot_stack.rl.fleet.Fleet`:
  several robots feed one learner; their records are never paired, each transition keeps its
  robot id, ``robot_sampling`` says how batches draw from the robots); every transition goes to the *online* replay
  buffer, operator transitions also to the *intervention* buffer (RLPD samples the two
  50/50, ``sac.offline_fraction``). Both buffers are persistent append-only logs in
  ``run_dir``, and each robot's record still waiting for its successor (whose intervention flag
  decides its reward) is kept in its state file (``run_dir/learner_state.bin``, or
  ``run_dir/learner_state/<robot_id>.bin``) with its watermark and the counters: a step is on
  disk when ``add_step`` returns (crash-safe).
* A training thread (``start()``/``close()``) calls ``agent.update`` (``sac.utd_ratio``
  critic steps each) once per received transition after ``min_transitions`` -- the
  update-to-data ratio -- waiting on a condition variable when it is ahead of the data.
  When the CPU cannot keep up it trains continuously and reports the backlog.
  Synchronous mode (``start(thread=False)``, for a single-process loop on a simulated clock):
  no thread; the owner calls :meth:`LearnerCore.train_available` after each step and the
  updates the same budget allows run inline, so a run is deterministic for its seed.
* ``algorithm``: ``rlif`` (RLPD-SAC on both buffers, the default) or ``bc`` (behaviour cloning
  on the intervention buffer with :class:`~robot_stack.rl.baselines.BCAgent`, one gradient
  step per transition: HG-DAgger when the operator intervenes, plain BC when the operator
  drives every step). Both use ``sac.network``; the rest is the same object.
* Every ``publish_every_updates`` updates (and once at start) it exports the actor
  networks and hands a :class:`~robot_stack.types.records.PolicyWeights` to ``on_weights``
  (the node publishes it). Versions increase strictly, across restarts too: each version is
  written to ``run_dir/policy_version`` before it is handed out.
* Every ``checkpoint_every_s`` (and at ``close()``) it writes ``run_dir/checkpoint.pt``
  (agent state + learner counters, atomically) and ``policies_dir/latest.pt`` (plus
  ``best.pt`` when the rolling success rate is a new best; ``policies_dir`` defaults to
  ``run_dir/policies``). A new LearnerCore on the same
  ``run_dir`` resumes from the checkpoint and the replay logs.
* ``stats()``: env steps, transitions, updates, updates/s, backlog, losses, rolling success
  rate and intervention rate (from the records' flags), policy version; ``robots``: the same
  stream figures per robot id.

Thread safety: the buffers are guarded by one lock (``add_step`` from a callback thread,
sampling in the training thread); the agent is touched only by the training thread after
``start()``.
"""
from __future__ import annotations

import collections
import dataclasses
import logging
import os
import pathlib
import threading
import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from robot_stack.rl.agent import SACConfig
from robot_stack.rl.baselines import BCConfig
from robot_stack.rl.fleet import Fleet
from robot_stack.rl.intake import ACCEPT, StepIntake, state_path, stored_robots
from robot_stack.rl.labelling import LabellingConfig
from robot_stack.types.records import PolicyWeights, StepRecord
from robot_stack.types.spec import PolicySpec, parse_spec_json

log = logging.getLogger(__name__)

ALGORITHMS = ("rlif", "bc")


@dataclass(frozen=True)
class ImitationConfig:
    """What algorithm bc adds to the shared network settings."""

    lr: float = 3e-4
    """Adam learning rate."""
    batch_size: int = 128
    """Minibatch size of one gradient step."""
    seed: int = 0
    """Seed of initialization, augmentation and batch sampling."""


@dataclass
class LearnerConfig:
    """Learner behaviour (the learner node maps these one-to-one to ROS parameters)."""

    run_dir: str = "runs/learner"
    """Directory of the checkpoint, replay logs, exported policies (policies/latest.pt,
    best.pt) and TensorBoard scalars (tb/); an existing checkpoint there is resumed."""
    policies_dir: str = ""
    """Where the exported policies latest.pt and best.pt go ('' = run_dir/policies)."""
    spec_json: str = ""
    """Policy spec JSON (a PolicySpec, or an export's spec_json whose network replaces
    sac.network); required unless run_dir holds a checkpoint."""
    spec_file: str = ""
    """File holding the spec JSON (same content as spec_json)."""
    algorithm: str = "rlif"
    """rlif (RLPD-SAC with intervention rewards) or bc (behaviour cloning on the intervention
    buffer: HG-DAgger / BC; uses bc.* and sac.network)."""
    sac: SACConfig = field(default_factory=SACConfig)
    """RLPD SAC hyperparameters (sac.utd_ratio, sac.batch_size, sac.network.*, ...)."""
    bc: ImitationConfig = field(default_factory=lambda: ImitationConfig())
    """Behaviour cloning settings for algorithm bc (the network is sac.network, the device
    sac.device)."""
    labelling: LabellingConfig = field(default_factory=LabellingConfig)
    """RLIF reward labelling (labelling.intervention_penalty, ...)."""
    buffer_capacity: int = 100_000
    """Slots of each replay buffer kept in memory (the logs keep the full history)."""
    buffer_sync: str = "flush"
    """When a step counts as stored: 'flush' (survives a killed process) or 'fsync' (survives power loss)."""
    min_transitions: int = 64
    """Transitions in the replay buffer before training starts."""
    publish_every_updates: int = 20
    """Publish the policy weights every this many updates."""
    checkpoint_every_s: float = 60.0
    """Write checkpoint and exported policy every this many seconds (and at shutdown), s."""
    warm_start_policy_file: str = ""
    """Exported policy to initialize encoders and actor from (fresh runs only)."""
    torch_threads: int = 1
    """torch intra-op threads for training."""
    tensorboard: bool = True
    """Write TensorBoard scalars to run_dir/tb."""
    stats_window: int = 20
    """Episodes in the rolling success/intervention rate."""
    robot_sampling: str = "uniform"
    """How batches draw from several robots' data: 'uniform' (every stored transition equally
    likely: robots in proportion to their data) or 'balanced' (every robot with data an equal
    share of each batch)."""
    robot_active_s: float = 10.0
    """A robot counts as active in the stats while its last record is at most this old, s."""
    gap_timeout_s: float = 5.0
    """A gap before an arriving step record (records missing in between) is waited out this
    long for the actor to resend them, then accepted, s."""

    def validate(self) -> None:
        if self.spec_json and self.spec_file:
            raise ValueError("give spec_json or spec_file, not both")
        if self.algorithm not in ALGORITHMS:
            raise ValueError(f"algorithm must be one of {ALGORITHMS}, got '{self.algorithm}'")
        if self.robot_sampling not in ("uniform", "balanced"):
            raise ValueError(f"robot_sampling must be 'uniform' or 'balanced', got '{self.robot_sampling}'")
        if not self.robot_active_s > 0:
            raise ValueError(f"robot_active_s={self.robot_active_s} must be > 0")
        if self.buffer_sync not in ("flush", "fsync"):
            raise ValueError(f"buffer_sync must be 'flush' or 'fsync', got '{self.buffer_sync}'")
        for name in ("buffer_capacity", "min_transitions", "publish_every_updates", "torch_threads", "stats_window"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}={getattr(self, name)} must be >= 1")
        if not self.checkpoint_every_s > 0:
            raise ValueError(f"checkpoint_every_s={self.checkpoint_every_s} must be > 0")
        if not self.gap_timeout_s > 0:
            raise ValueError(f"gap_timeout_s={self.gap_timeout_s} must be > 0")
        self.sac.validate()
        self.labelling.validate()


def load_spec_text(spec_json: str, spec_file: str) -> str:
    if spec_file:
        return pathlib.Path(spec_file).expanduser().read_text()
    return spec_json


class LearnerCore:
    """ROS-free learner: see the module docstring."""

    CHECKPOINT = "checkpoint.pt"
    ONLINE_LOG = "replay_online.log"
    INTERVENTION_LOG = "replay_intervention.log"
    VERSION_FILE = "policy_version"

    def __init__(self, config: LearnerConfig, on_weights: Callable[[PolicyWeights], None] | None = None):
        config.validate()
        self.config = config
        self.on_weights = on_weights or (lambda w: None)
        self.run_dir = pathlib.Path(config.run_dir).expanduser()
        self.policies_dir = pathlib.Path(config.policies_dir).expanduser() if config.policies_dir else self.run_dir / "policies"
        self.agent = None
        self.spec: PolicySpec | None = None
        self.online = self.intervention = None
        self.fleet = Fleet(config.labelling, config.stats_window)
        self._buf_lock = threading.Lock()
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.counters: collections.Counter = collections.Counter()
        self.version = 0
        self.updates = 0
        self.transitions = 0
        self.env_steps = 0
        self.intervention_steps = 0
        self.last_episode_id = -1
        self.best_success_rate = -1.0
        self.episode_stats = self.fleet.episode_stats  # rolling over every robot's episodes
        self.last_metrics: dict[str, float] = {}
        self._rate_mark = (time.monotonic(), 0)
        self.updates_per_s = 0.0
        self._tb = None
        self._last_ckpt = time.monotonic()
        self._rng: np.random.Generator | None = None
        self._threaded = False
        self.intakes: dict[str, StepIntake] = {}
        """One per robot stream (``""``: the single robot), made on its first record or at resume."""
        self.intake_clock = time.monotonic
        """Clock of the intakes' gap timeouts (tests replace it)."""

    def intake(self, robot_id: str = "") -> StepIntake:
        """The intake of ``robot_id``'s stream (made on first use)."""
        intake = self.intakes.get(robot_id)
        if intake is None:
            self.fleet.robot(robot_id)  # checks the id
            intake = self.intakes[robot_id] = StepIntake(state_path(self.run_dir, robot_id), self.config.buffer_sync,
                                                         self.config.gap_timeout_s, clock=lambda: self.intake_clock())
        return intake

    def watermark(self, robot_id: str = "") -> tuple[int, int] | None:
        """(episode_id, step_index) of ``robot_id``'s newest record stored: every record of its
        stream up to it is on disk (None: none yet)."""
        intake = self.intakes.get(robot_id)
        return None if intake is None else intake.watermark

    # ------------------------------------------------------------------ lifecycle
    def open(self) -> "LearnerCore":
        """Build or resume the agent and open the replay logs (I/O happens here, not in __init__)."""
        import torch

        from robot_stack.rl.replay_buffer import VisionReplayBuffer
        from robot_stack.types import config as cfgmod

        cfg = self.config
        torch.set_num_threads(cfg.torch_threads)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        ckpt_path = self.run_dir / self.CHECKPOINT
        text = load_spec_text(cfg.spec_json, cfg.spec_file)
        given = parse_spec_json(text) if text else None
        if ckpt_path.exists():
            try:
                blob = torch.load(ckpt_path, map_location="cpu", weights_only=False)
                state, meta = blob["agent"], blob["learner"]
                spec = PolicySpec.from_json(state["spec_json"])
            except Exception as e:  # noqa: BLE001 -- a damaged file fails in many ways; all mean "unreadable"
                raise ValueError(f"checkpoint {ckpt_path} is unreadable ({type(e).__name__}: {str(e)[:200]}); "
                                 f"restore a backup, or move it away to start a new agent (the replay logs in "
                                 f"{self.run_dir} are kept and reloaded)") from None
            if given is not None and given[0] != spec:
                raise ValueError(f"{ckpt_path} was trained for another policy spec than the one given; "
                                 "use another run_dir or drop spec_json/spec_file")
            algorithm = meta.get("algorithm", "rlif")
            if algorithm != cfg.algorithm:
                raise ValueError(f"{ckpt_path} holds a '{algorithm}' run, this learner is configured for "
                                 f"'{cfg.algorithm}'; use another run_dir or algorithm")
            # The checkpoint's hyperparameters, on this machine's device (a run may move from a
            # GPU machine to a CPU one and back).
            try:
                self.agent = self._make_agent(spec, state["config"])
                self.agent.load_state_dict(state)
                self.version = int(meta["version"])
                self.updates = int(meta["updates"])
                self.transitions = int(meta["transitions"])
                self.env_steps = int(meta["env_steps"])
                self.intervention_steps = int(meta.get("intervention_steps", 0))
                self.last_episode_id = int(meta.get("last_episode_id", -1))
                self.best_success_rate = float(meta.get("best_success_rate", -1.0))
                self.fleet.load_state_dict(meta.get("robots", {}))
            except (KeyError, TypeError, ValueError, RuntimeError, AttributeError) as e:
                raise ValueError(f"checkpoint {ckpt_path} is damaged ({type(e).__name__}: {str(e)[:200]}); restore a "
                                 "backup, or move it away to start a new agent") from None
            log.info("resumed %s: policy version %d, %d updates, %d transitions", ckpt_path, self.version,
                     self.updates, self.transitions)
        else:
            if given is None:
                raise ValueError("no policy spec: set spec_json or spec_file (or point run_dir at a checkpoint)")
            spec, network = given
            net = cfg.sac.network
            if network is not None:
                from robot_stack.rl.networks import NetworkConfig

                net = cfgmod.from_dict(NetworkConfig, network, where="network")
            self.agent = self._make_agent(spec, None, net)
            if cfg.warm_start_policy_file:
                from robot_stack.rl.policy_io import policy_state_from_bytes, read_policy_file

                _, data, _ = read_policy_file(cfg.warm_start_policy_file)
                self.agent.load_policy_weights(policy_state_from_bytes(data))
                log.info("warm start from %s", cfg.warm_start_policy_file)
        self.spec = spec
        self.resumed_updates = self.updates  # what the checkpoint held (0 for a fresh run)
        self.online = VisionReplayBuffer(spec, cfg.buffer_capacity, self.run_dir / self.ONLINE_LOG, cfg.buffer_sync).open()
        self.intervention = VisionReplayBuffer(spec, cfg.buffer_capacity, self.run_dir / self.INTERVENTION_LOG,
                                               cfg.buffer_sync).open()
        # Transitions restored from the logs count as received data (the resumed update budget).
        self.transitions = max(self.transitions, self.online.num_added)
        self.last_episode_id = max(self.last_episode_id, self.online.max_episode_id)
        self._resume_intake()
        self.version = max(self.version, self._read_version())
        self._rate_mark = (time.monotonic(), self.updates)
        seed = cfg.sac.seed if cfg.algorithm == "rlif" else cfg.bc.seed
        self._rng = np.random.default_rng(seed + self.updates)
        if cfg.tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            self._tb = SummaryWriter(str(self.run_dir / "tb"))
        return self

    def _make_agent(self, spec: PolicySpec, saved_config: dict | None, network=None):
        """The configured algorithm's agent: from a checkpoint's config (``saved_config``, on this
        machine's device) or from this config with ``network``."""
        from robot_stack.types import config as cfgmod

        cfg = self.config
        if cfg.algorithm == "rlif":
            from robot_stack.rl.agent import SACAgent

            sac = (cfgmod.from_dict(SACConfig, {**saved_config, "device": cfg.sac.device}) if saved_config is not None
                   else dataclasses.replace(cfg.sac, network=network))
            return SACAgent(spec, sac)
        from robot_stack.rl.baselines import BCAgent

        bc = (cfgmod.from_dict(BCConfig, {**saved_config, "device": cfg.sac.device}) if saved_config is not None
              else BCConfig(network=network, lr=cfg.bc.lr, batch_size=cfg.bc.batch_size, seed=cfg.bc.seed,
                            device=cfg.sac.device))
        return BCAgent(spec, bc)

    def start(self, thread: bool = True) -> None:
        """Publish the current weights and start the training thread (``thread=False``:
        synchronous mode, the owner calls :meth:`train_available`)."""
        self._publish()
        self._threaded = thread
        if thread:
            self._thread = threading.Thread(target=self._train_loop, name="learner-train", daemon=True)
            self._thread.start()

    def train_available(self) -> int:
        """Synchronous mode: run, in the caller's thread, every update the data allows now (the
        training thread's budget: one update call per transition after ``min_transitions``);
        returns how many ran."""
        if self._threaded:
            raise RuntimeError("train_available() is for synchronous mode (start(thread=False))")
        n = 0
        while self._ready():
            self._train_once(self._rng)
            n += 1
        return n

    def close(self) -> None:
        """Stop training, write the final checkpoint, close the logs. In synchronous mode the
        owner's loop is the only producer of records, so its streams end here: an episode it
        cut is over, and the next run's first episode follows at once."""
        if not self._threaded and self.online is not None:
            for rid, intake in self.intakes.items():
                if intake.watermark is not None and not intake.ended:
                    self.fleet.forget_pending(rid)
                    intake.commit(intake.watermark, True, None, self._durable_counters(), self._robot_counters(rid))
        self._stop.set()
        with self._cond:
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout=60.0)
            self._thread = None
        if self.agent is not None:
            self.checkpoint()
        for b in (self.online, self.intervention):
            if b is not None:
                b.close()
        if self._tb is not None:
            self._tb.close()
            self._tb = None

    def _resume_intake(self) -> None:
        """Per robot stream: watermark, counters and the pending step of the previous run (its
        state file, and the replay log for what was stored after the file was last written)."""
        robots = set(stored_robots(self.run_dir)) | set(self.online.last_stored)
        for rid in sorted(robots):
            intake = self.intake(rid)
            state = intake.load()
            newest = self.online.last_stored.get(rid)  # the log may be ahead of the state file (a crash in between)
            if newest is not None and (state.watermark is None or newest[:2] > state.watermark):
                intake.watermark, intake.ended = newest[:2], newest[2]
            wm = intake.watermark
            c = state.counters
            self.env_steps = max(self.env_steps, c.get("env_steps", 0))
            self.intervention_steps = max(self.intervention_steps, c.get("intervention_steps", 0))
            self.last_episode_id = max(self.last_episode_id, c.get("last_episode_id", -1))
            self.counters["episodes"] = max(self.counters["episodes"], c.get("episodes", 0))
            book = self.fleet.robot(rid)
            for k, v in state.robot_counters.items():
                if k in book.counters():
                    setattr(book, k, max(getattr(book, k), int(v)))
            p = state.pending
            stored = self.online.stored_steps.get(rid, {})
            who = f"robot '{rid}': " if rid else ""
            if p is not None and stored.get(p.episode_id, -1) < p.step_index and p.key == wm:
                book.labeller.restore_pending(p)
                log.info("%sresumed at episode %d step %d, whose record waits for its successor", who, *p.key)
            elif wm is not None:
                log.info("%sresumed after episode %d step %d", who, *wm)

    def _read_version(self) -> int:
        path = self.run_dir / self.VERSION_FILE
        try:
            return int(path.read_text().strip())
        except FileNotFoundError:
            return 0
        except (OSError, ValueError) as e:
            log.warning("%s is unreadable (%s); policy versions continue from the checkpoint's", path, e)
            return 0

    def _write_version(self, version: int) -> None:
        path = self.run_dir / self.VERSION_FILE
        tmp = path.with_name(path.name + ".tmp")
        with open(tmp, "w") as f:
            f.write(f"{version}\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)

    # ------------------------------------------------------------------ data
    def add_step(self, step: StepRecord, robot_id: str = "") -> int:
        """Take one step record of robot ``robot_id``'s stream (``""``: the only robot): in its
        actor's order, once (see :class:`~robot_stack.rl.intake.StepIntake`); label it and store
        the transitions it completes; returns how many were stored. When it returns, the record
        is on disk (in a stored transition or as the robot's pending step)."""
        intake = self.intake(robot_id)
        if intake.admit(step) != ACCEPT:
            return 0
        self.env_steps += 0 if step.is_last else 1
        self.intervention_steps += int(step.intervention and not step.is_last)
        self.last_episode_id = max(self.last_episode_id, int(step.episode_id))
        transitions = self.fleet.push(robot_id, step)
        if step.is_last:
            self.counters["episodes"] += 1
        with self._buf_lock:
            for t in transitions:
                self.online.add(t)
                if t.intervention:
                    self.intervention.add(t)
        intake.commit(step.key, step.is_last, self.fleet.robot(robot_id).labeller.pending, self._durable_counters(),
                      self._robot_counters(robot_id))
        if transitions:
            with self._cond:
                self.transitions += len(transitions)
                self._cond.notify_all()
        return len(transitions)

    def skip_step(self, key: tuple[int, int], robot_id: str = "") -> None:
        """A record of ``robot_id`` that failed validation (its key readable): when it is the
        next step of the robot's current episode the stream moves past it, so the records after
        it are not held back as early (no transition pairs across it). Nothing else moves: a
        stray message must not."""
        intake = self.intakes.get(robot_id)
        if intake is None:
            return
        wm = intake.watermark
        if wm is not None and key == (wm[0], wm[1] + 1) and not intake.ended:
            book = self.fleet.robot(robot_id)
            if book.labeller.pending is not None:
                book.labeller.dropped_steps += 1
            book.labeller.reset()
            intake.commit(key, False, None, self._durable_counters(), self._robot_counters(robot_id))

    def _durable_counters(self) -> dict[str, int]:
        """The learner's counters kept with each watermark (they never go backwards across a restart)."""
        return {"env_steps": self.env_steps, "episodes": self.counters["episodes"],
                "intervention_steps": self.intervention_steps, "last_episode_id": self.last_episode_id}

    def _robot_counters(self, robot_id: str) -> dict[str, int]:
        return self.fleet.robot(robot_id).counters()

    def intake_counters(self) -> collections.Counter:
        """accepted/duplicate/early steps and gaps summed over the robot streams."""
        total: collections.Counter = collections.Counter()
        for intake in list(self.intakes.values()):  # a copy: the steps callback may add a robot meanwhile
            total.update(intake.counters)
        return total

    # ------------------------------------------------------------------ training
    def _budget(self) -> int:
        """Updates allowed by the data so far (one update call per transition)."""
        return max(0, self.transitions - self.config.min_transitions + 1) if len(self.online) >= self.config.min_transitions else 0

    def _ready(self) -> bool:
        """An update is due and there is data for it (bc learns from the intervention buffer only)."""
        if self.updates >= self._budget():
            return False
        return self.config.algorithm == "rlif" or len(self.intervention) > 0

    def _train_loop(self) -> None:
        rng = self._rng
        try:
            while not self._stop.is_set():
                with self._cond:
                    ready = self._cond.wait_for(lambda: self._stop.is_set() or self._ready(), timeout=1.0)
                if self._stop.is_set():
                    break
                if ready:
                    self._train_once(rng)
                if time.monotonic() - self._last_ckpt >= self.config.checkpoint_every_s:
                    self.checkpoint()
        except Exception:  # noqa: BLE001 -- log the cause; the node keeps serving the last policy
            log.exception("training thread stopped by an error")
            self.counters["train_errors"] += 1

    def _train_once(self, rng: np.random.Generator) -> None:
        from robot_stack.rl.replay_buffer import sample_mixed

        agent_cfg = self.agent.cfg
        with self._buf_lock:
            balance = self.config.robot_sampling == "balanced"
            if self.config.algorithm == "bc":
                batch = self.intervention.sample(agent_cfg.batch_size, rng, balance)
            else:
                batch = sample_mixed(self.online, self.intervention, agent_cfg.batch_size * agent_cfg.utd_ratio, rng,
                                     agent_cfg.offline_fraction, balance)
        self.last_metrics = self.agent.update(batch)
        self.updates += 1
        if self.updates % self.config.publish_every_updates == 0:
            self._publish()

    def _publish(self) -> None:
        from robot_stack.rl.policy_io import export_policy_bytes

        spec_json, data = export_policy_bytes(self.agent)
        self.version += 1
        self._write_version(self.version)  # before anyone sees it: a restart continues above it
        self.on_weights(PolicyWeights(self.version, int(self.agent.step), self.env_steps, spec_json, data))

    def checkpoint(self, success_rate: float | None = None) -> None:
        """Write the checkpoint (agent + counters) and policies/latest.pt (best.pt on a new best
        success rate: ``success_rate`` when the owner measured one, e.g. an evaluation, else the
        rolling success rate of the training episodes)."""
        from robot_stack.rl.agent import save_atomic
        from robot_stack.rl.policy_io import save_policy_file

        self._last_ckpt = time.monotonic()
        sr = self.episode_stats.success_rate if success_rate is None else float(success_rate)
        if (len(self.episode_stats) or success_rate is not None) and sr > self.best_success_rate:
            new_best = True
            self.best_success_rate = sr
        else:
            new_best = False
        meta = {"version": self.version, "updates": self.updates, "transitions": self.transitions,
                "env_steps": self.env_steps, "best_success_rate": self.best_success_rate,
                "algorithm": self.config.algorithm, "intervention_steps": self.intervention_steps,
                "last_episode_id": self.last_episode_id, "robots": self.fleet.state_dict()}
        save_atomic({"agent": self.agent.state_dict(), "learner": meta}, self.run_dir / self.CHECKPOINT)
        save_policy_file(self.agent, self.policies_dir / "latest.pt", meta)
        if new_best:
            save_policy_file(self.agent, self.policies_dir / "best.pt", {**meta, "success_rate": sr})
        self.counters["checkpoints"] += 1

    # ------------------------------------------------------------------ stats
    def stats(self) -> dict:
        """Progress for logs and the stats topic (also written to TensorBoard)."""
        now = time.monotonic()
        t0, u0 = self._rate_mark
        if now - t0 > 0.5:
            self.updates_per_s = (self.updates - u0) / (now - t0)
            self._rate_mark = (now, self.updates)
        out = {
            "env_steps": self.env_steps,
            "transitions": self.transitions,
            "buffer": len(self.online) if self.online is not None else 0,
            "intervention_buffer": len(self.intervention) if self.intervention is not None else 0,
            "updates": self.updates,
            "updates_per_s": round(self.updates_per_s, 3),
            "update_backlog": max(0, self._budget() - self.updates),
            "policy_version": self.version,
            "episodes": self.counters["episodes"],
            "success_rate": self.episode_stats.success_rate,
            "intervention_rate": self.episode_stats.intervention_rate,
            "intervention_steps": self.intervention_steps,
            "dropped_steps": self.fleet.dropped_steps,
            **{k: self.intake_counters()[k] for k in ("accepted_steps", "duplicate_steps", "early_steps", "gaps")},
            **{k: v for k, v in self.counters.items() if k != "episodes"},
            **{k: float(v) for k, v in self.last_metrics.items()},
        }
        robots = self.fleet.stats(self.config.robot_active_s)
        out["robots_active"] = sum(r["active"] for r in robots.values())
        out["robots"] = robots
        if self._tb is not None:
            for k, v in out.items():
                if isinstance(v, (int, float)):
                    self._tb.add_scalar(f"learner/{k}", v, self.updates)
            for rid, row in robots.items():
                for k in ("env_steps", "transitions", "episodes", "success_rate", "intervention_rate"):
                    self._tb.add_scalar(f"robots/{rid or 'default'}/{k}", row[k], self.updates)
        return out


__all__ = ["LearnerConfig", "LearnerCore"]
