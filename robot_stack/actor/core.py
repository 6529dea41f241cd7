# Over 400 lines: ActorCore is one state machine under one lock; about 60 lines are its specification.
"""The actor's logic without ROS: observations, arbitration, episodes, step records, stats.

:class:`ActorCore` is driven by its owner (the ROS node, a test, a script) through plain
method calls that carry the current time explicitly, so every behaviour can be tested
without clocks, sleeps or DDS:

* ``on_camera_frame`` / ``on_ee_pose`` / ``on_ee_twist`` / ``on_gripper_width`` store the
  newest sensor values with their capture stamps;
* ``on_operator_command`` handles the operator: while they intervene, their command is
  returned at once as a :class:`RobotCommand` for the robot (it does not wait for the
  next control tick); the tick that ends an intervention returns a hold (zero twist);
* ``on_sim_success`` / ``on_reset_done`` feed the episode logic;
* ``tick(now_s)`` runs one control step at the control rate and returns a
  :class:`TickResult` (command to send, finished step records, episode summary, reset
  request);
* ``set_policy`` swaps in a new policy atomically (only newer versions apply).

Observation assembly
    The observation ``o_t`` is a dict ``{camera_name: uint8 (H, W, 3) RGB, "proprio":
    float32 (P,)}`` in the layout of the :class:`~robot_stack.types.spec.PolicySpec`.
    Frames older than ``max_frame_age_s`` (and robot state older than
    ``max_state_age_s``) are refused: no step is taken, the robot is told to hold still
    (unless the operator is driving it), and the refusal reason is reported.
    Frames of another size are resized (``cv2.INTER_AREA``) to the spec's size.

Arbitration and step records
    The policy is queried on every tick, also while the operator intervenes (so
    ``policy_action`` is always the policy's own proposal). A step ``t`` covers
    ``[tick_t, tick_t+1)``; its record is completed at the next tick, once it is known
    what was executed during the step: ``action`` is the time-weighted mean of the
    normalized actions executed over the step (policy and operator parts), and
    ``intervention`` is true when the operator was in control for at least half of the
    step (so the step that provoked a takeover late in its period stays a policy step,
    which the RLIF labeller then penalizes). Operator commands older than
    ``operator_timeout_s`` count as "not intervening" (a dead SpaceMouse node does not
    keep control forever).

Episodes
    An episode ends at the tick after (a) ``max_episode_steps`` steps (time limit: a
    *truncation*, ``is_terminal`` false), (b) an operator success/failure mark (a
    *terminal*; success true/false), or (c) a positive sim success test (terminal,
    success). The end produces a last record (``is_last``, final observation, no
    action), an :class:`EpisodeSummary` and a reset request for the next episode
    id. With ``wait_for_reset_done`` the actor holds still until ``on_reset_done`` with
    that id arrives (re-sending the request every ``reset_timeout_s``); the first
    episode also starts with a reset.

Thread safety: all public methods may be called from different threads; state is
guarded by one lock, and the policy runs outside it so operator commands pass through
while the network computes.
"""
from __future__ import annotations

import collections
import enum
import logging
import math
import threading
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from robot_stack.rl.progress import EpisodeStats
from robot_stack.types.records import EpisodeSummary, StepRecord
from robot_stack.types.spec import PolicySpec
from robot_stack.types.teleop import GRIPPER_KEEP, MARK_FAILURE, MARK_NONE, MARK_SUCCESS, OperatorCommand

log = logging.getLogger(__name__)

#: Proprioception entries the actor can fill: name -> (source, index, meaning). The names
#: are the sim's (robot_stack.sim.tasks.PROPRIO_NAMES) so one spec serves sim and robot.
#: Sources: "pose" = [x y z qx qy qz qw] of the EE (TCP) in the base frame (m), "twist" =
#: [vx vy vz wx wy wz] in the base frame (m/s, rad/s), "gripper" = [width (m)], "task" = the
#: simulation's privileged task state (robot_stack.sim.tasks.TaskDefinition.task_state).
PROPRIO_FIELDS: dict[str, tuple[str, int, str]] = {
    "tcp_x_m": ("pose", 0, "TCP position x in the robot base frame, m"),
    "tcp_y_m": ("pose", 1, "TCP position y in the robot base frame, m"),
    "tcp_z_m": ("pose", 2, "TCP position z in the robot base frame, m"),
    "tcp_qx": ("pose", 3, "TCP orientation quaternion x (base frame)"),
    "tcp_qy": ("pose", 4, "TCP orientation quaternion y (base frame)"),
    "tcp_qz": ("pose", 5, "TCP orientation quaternion z (base frame)"),
    "tcp_qw": ("pose", 6, "TCP orientation quaternion w (base frame)"),
    "tcp_vx_m_s": ("twist", 0, "TCP linear velocity x in the base frame, m/s"),
    "tcp_vy_m_s": ("twist", 1, "TCP linear velocity y in the base frame, m/s"),
    "tcp_vz_m_s": ("twist", 2, "TCP linear velocity z in the base frame, m/s"),
    "tcp_wx_rad_s": ("twist", 3, "TCP angular velocity x in the base frame, rad/s"),
    "tcp_wy_rad_s": ("twist", 4, "TCP angular velocity y in the base frame, rad/s"),
    "tcp_wz_rad_s": ("twist", 5, "TCP angular velocity z in the base frame, rad/s"),
    "gripper_width_m": ("gripper", 0, "gripper opening width, m"),
    # Privileged task state, fed by on_task_state: only a simulation knows it (the state-based
    # sim policies read it; a robot graph has no source for it, so such a spec cannot run there).
    "goal_x_m": ("task", 0, "goal position x in the base frame, m (sim only)"),
    "goal_y_m": ("task", 1, "goal position y in the base frame, m (sim only)"),
    "goal_z_m": ("task", 2, "goal position z in the base frame, m (sim only)"),
    "goal_minus_tool_x_m": ("task", 3, "goal minus tool point x, m (sim only)"),
    "goal_minus_tool_y_m": ("task", 4, "goal minus tool point y, m (sim only)"),
    "goal_minus_tool_z_m": ("task", 5, "goal minus tool point z, m (sim only)"),
}


class PolicyLike(Protocol):
    """What the actor needs from a policy (the learning core's policies satisfy it)."""

    def act(self, obs: dict, deterministic: bool) -> np.ndarray:
        """Normalized action in [-1, 1], shape (action_dim,)."""
        ...


@dataclass
class ActorConfig:
    """Actor behaviour (the node maps these one-to-one to ROS parameters)."""

    control_rate_hz: float = 10.0
    """Control (policy) rate in Hz; one step record per control step."""
    max_frame_age_s: float = 0.25
    """Camera frames older than this (capture stamp vs. now) are refused, in s."""
    max_state_age_s: float = 0.25
    """Robot state (EE pose/twist, gripper width) older than this is refused, in s."""
    operator_timeout_s: float = 0.5
    """An operator command older than this no longer counts as intervening, in s."""
    max_episode_steps: int = 100
    """Time limit in control steps (100 at 10 Hz = 10 s); reaching it truncates the episode."""
    stats_window: int = 20
    """Episodes in the rolling success/intervention rate window."""
    deterministic: bool = False
    """Query the policy deterministically (the mean action): evaluation mode sets it."""
    wait_for_reset_done: bool = True
    """After a reset request, hold still until the reset-done answer with the same episode
    id arrives; false starts the next episode at once (no reset responder in the graph)."""
    reset_timeout_s: float = 30.0
    """Re-send the reset request when no answer came within this time, in s."""
    require_gripper_width: bool = False
    """Apply the max_state_age_s check to the gripper width too (set when a gripper publishes
    its width at control rate); otherwise a missing width reads as its last value or 0."""

    def validate(self) -> None:
        if not (0.1 <= self.control_rate_hz <= 1000.0):
            raise ValueError(f"control_rate_hz={self.control_rate_hz} must be within [0.1, 1000]")
        for name in ("max_frame_age_s", "max_state_age_s", "operator_timeout_s", "reset_timeout_s"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name}={getattr(self, name)} must be > 0")
        if self.max_episode_steps < 1:
            raise ValueError(f"max_episode_steps={self.max_episode_steps} must be >= 1")
        if self.stats_window < 1:
            raise ValueError(f"stats_window={self.stats_window} must be >= 1")

    @property
    def period_s(self) -> float:
        return 1.0 / self.control_rate_hz


@dataclass
class RobotCommand:
    """An EE velocity command for the robot (base frame)."""

    lin_m_s: np.ndarray
    """Linear velocity, m/s, shape (3,)."""
    ang_rad_s: np.ndarray
    """Angular velocity, rad/s, shape (3,)."""
    gripper: float | None
    """Gripper command (> 0 open, < 0 close) or None when the action has no gripper."""
    source: str
    """'policy', 'operator' or 'hold'."""

    @classmethod
    def hold(cls, gripper: float | None = None) -> "RobotCommand":
        return cls(np.zeros(3), np.zeros(3), gripper, "hold")


@dataclass
class TickResult:
    """What one control tick asks its owner to do."""

    command: RobotCommand | None = None
    """Send to the robot (None: send nothing, e.g. while a reset runs)."""
    steps: list[StepRecord] = field(default_factory=list)
    """Finished step records, oldest first."""
    summary: EpisodeSummary | None = None
    """Set on the tick that ended an episode."""
    reset_request: int | None = None
    """Publish a reset request for this (next) episode id."""
    refused: str | None = None
    """Why no observation could be assembled (stale/missing input), else None."""
    policy_error: str | None = None
    """Why the policy's action was rejected (NaN, wrong shape), else None."""
    policy_action: np.ndarray | None = None
    """The policy's proposal for the step this tick started (None when no step started): what
    a simulated operator judges."""


class Phase(enum.Enum):
    RESETTING = "resetting"
    RUNNING = "running"


@dataclass
class _Stamped:
    value: np.ndarray
    stamp_s: float
    frame_id: str = ""


@dataclass
class _PendingStep:
    """The step started at the last tick; completed at the next one."""

    step: StepRecord
    t_start_s: float
    segments: list = field(default_factory=list)  # [(t_s, normalized action, by_operator)]


def _resize(img: np.ndarray, height: int, width: int) -> np.ndarray:
    if img.shape[0] == height and img.shape[1] == width:
        return img
    import cv2  # only needed when a camera does not deliver the policy's size

    return cv2.resize(img, (width, height), interpolation=cv2.INTER_AREA)


class ActorCore:
    """ROS-free actor: see the module docstring."""

    def __init__(
        self,
        config: ActorConfig,
        spec: PolicySpec,
        policy: PolicyLike,
        policy_version: int = 0,
        first_episode_id: int = 1,
        evaluation: bool = False,
    ):
        config.validate()
        unknown = [n for n in spec.proprio_names if n not in PROPRIO_FIELDS]
        if unknown:
            raise ValueError(
                f"policy spec names proprio entries the actor cannot fill: {unknown}; "
                f"known: {sorted(PROPRIO_FIELDS)}"
            )
        self.config = config
        self.spec = spec
        self.evaluation = evaluation
        self._lock = threading.Lock()
        # (policy, version) in one attribute: replaced in a single assignment, read once per tick.
        self._policy: tuple[PolicyLike, int] = (policy, int(policy_version))
        self._frames: dict[str, _Stamped] = {}
        self._pose: _Stamped | None = None  # [x y z qx qy qz qw]
        self._twist: _Stamped | None = None  # [vx vy vz wx wy wz]
        self._gripper_width: _Stamped | None = None
        self._task_state: _Stamped | None = None
        self._operator: OperatorCommand | None = None
        self._operator_rx_s = -math.inf
        self._last_mark = MARK_NONE
        self._was_intervening = False
        self._gripper_cmd = 1.0 if spec.action.has_gripper else None  # start open
        self.phase = Phase.RESETTING
        self.episode_id = int(first_episode_id)
        self._min_next_episode_id = 0
        self._reset_sent_s: float | None = None
        self._reset_done = False
        self._episode_start_s = -math.inf
        self._step_index = 0
        self._intervention_steps = 0
        self._interventions = 0
        self._prev_step_intervention = False
        self._pending: _PendingStep | None = None
        self._end_request: tuple[bool, str] | None = None  # (success, reason)
        self.stats = EpisodeStats(config.stats_window)
        self.counters = collections.Counter()

    # ------------------------------------------------------------------ inputs
    def on_camera_frame(self, name: str, image: np.ndarray, stamp_s: float, frame_id: str = "") -> None:
        """Store the newest frame of camera ``name`` (uint8 RGB (H, W, 3), capture stamp in s,
        the camera's optical frame)."""
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise ValueError(f"camera '{name}': expected uint8 (H, W, 3) RGB, got {image.dtype} {image.shape}")
        with self._lock:
            cur = self._frames.get(name)
            if cur is None or stamp_s >= cur.stamp_s:  # out-of-order frames never replace newer ones
                self._frames[name] = _Stamped(image, float(stamp_s), frame_id)

    def on_ee_pose(self, pos_m, quat_xyzw, stamp_s: float) -> None:
        """EE pose in the base frame: position (m) and quaternion (x, y, z, w)."""
        v = np.concatenate([np.asarray(pos_m, np.float64), np.asarray(quat_xyzw, np.float64)])
        with self._lock:
            self._pose = _Stamped(v, float(stamp_s))

    def on_ee_twist(self, lin_m_s, ang_rad_s, stamp_s: float) -> None:
        """EE twist in the base frame: linear (m/s) and angular (rad/s)."""
        v = np.concatenate([np.asarray(lin_m_s, np.float64), np.asarray(ang_rad_s, np.float64)])
        with self._lock:
            self._twist = _Stamped(v, float(stamp_s))

    def on_gripper_width(self, width_m: float, stamp_s: float) -> None:
        with self._lock:
            self._gripper_width = _Stamped(np.array([float(width_m)]), float(stamp_s))

    def on_task_state(self, values, stamp_s: float) -> None:
        """The simulation's privileged task state (goal, goal minus tool; see PROPRIO_FIELDS)."""
        with self._lock:
            self._task_state = _Stamped(np.asarray(values, np.float64).reshape(-1), float(stamp_s))

    def on_sim_success(self, success: bool, now_s: float) -> None:
        """The sim's success test; a true value ends the running episode as a success."""
        with self._lock:
            if success and self.phase is Phase.RUNNING and now_s >= self._episode_start_s and self._end_request is None:
                self._end_request = (True, "sim success")

    def on_reset_done(self, episode_id: int, now_s: float) -> None:
        """A reset responder finished the reset requested for ``episode_id``."""
        with self._lock:
            if self.phase is Phase.RESETTING and int(episode_id) == self.episode_id:
                self._reset_done = True
            else:
                log.debug("ignoring reset-done for episode %d (waiting for %d, phase %s)",
                          episode_id, self.episode_id, self.phase.value)

    def on_operator_command(self, cmd: OperatorCommand, now_s: float) -> RobotCommand | None:
        """Handle an operator command; returns what to send to the robot right now, or None.

        While the operator intervenes (and no reset runs) their twist goes out at once; the
        command that ends an intervention returns a hold. Marks end the running episode.
        """
        with self._lock:
            self._operator = cmd
            self._operator_rx_s = float(now_s)
            mark = int(cmd.episode_mark)
            if mark != MARK_NONE and mark != self._last_mark and self.phase is Phase.RUNNING and self._end_request is None:
                if mark in (MARK_SUCCESS, MARK_FAILURE):
                    self._end_request = (mark == MARK_SUCCESS, "operator mark")
                else:
                    log.warning("ignoring unknown episode mark %d (expected 1 success or 2 failure)", mark)
            self._last_mark = mark
            if cmd.gripper != GRIPPER_KEEP and cmd.intervening and self._gripper_cmd is not None:
                self._gripper_cmd = float(np.sign(cmd.gripper))
            if self.phase is Phase.RESETTING:
                self._was_intervening = bool(cmd.intervening)
                return None
            if cmd.intervening:
                self._was_intervening = True
                action = self._operator_action(cmd)
                if self._pending is not None:
                    self._pending.segments.append((float(now_s), action, True))
                return self._command(action, "operator")
            if self._was_intervening:
                self._was_intervening = False
                hold = RobotCommand.hold(self._gripper_cmd)
                if self._pending is not None:
                    self._pending.segments.append((float(now_s), self._hold_action(), False))
                return hold
            return None

    def episode_ids_after(self, episode_id: int) -> None:
        """Give the coming episodes ids above ``episode_id`` (the learner already holds records
        of it: records of a reused id would be dropped as duplicates). An episode whose reset was
        not requested yet is renumbered at once."""
        with self._lock:
            self._min_next_episode_id = max(self._min_next_episode_id, int(episode_id) + 1)
            if self.phase is Phase.RESETTING and self._reset_sent_s is None and self.episode_id <= episode_id:
                self.episode_id = self._min_next_episode_id
            elif self.episode_id <= episode_id:
                log.warning("episode %d: the learner already holds records of this episode id; the next "
                            "episode starts at %d", self.episode_id, self._min_next_episode_id)

    def set_policy(self, policy: PolicyLike, version: int) -> bool:
        """Swap in ``policy`` if ``version`` is newer than the running one; returns whether it applied."""
        with self._lock:
            if int(version) <= self._policy[1]:
                return False
            self._policy = (policy, int(version))
            return True

    @property
    def policy_version(self) -> int:
        return self._policy[1]

    def intervening(self, now_s: float) -> bool:
        """Whether the operator is in control at ``now_s``."""
        with self._lock:
            return self._intervening_locked(now_s)

    # ------------------------------------------------------------------ tick
    def tick(self, now_s: float) -> TickResult:
        """Run one control step at time ``now_s`` (s, same clock as the stamps)."""
        out = TickResult()
        with self._lock:
            if self.phase is Phase.RESETTING:
                if not self._reset_step(now_s, out):
                    return out
            obs, (stamps, frame_ids), reason = self._assemble(now_s)
            intervening = self._intervening_locked(now_s)
            if obs is None:
                out.refused = reason
                self.counters["refused"] += 1
                if not intervening:
                    out.command = RobotCommand.hold(self._gripper_cmd)
                return out
            if self._pending is not None:
                out.steps.append(self._finish_pending(now_s))
            end = self._end_request
            if end is not None and self._step_index == 0:
                # A success flag still set from the previous episode, or a mark pressed
                # before any step: an episode needs at least one step to end.
                log.info("ignoring %s before the first step of episode %d", end[1], self.episode_id)
                self._end_request = end = None
            if end is None and self._step_index >= self.config.max_episode_steps:
                end = (False, "time limit")
            if end is not None:
                self._end_episode(now_s, obs, stamps, frame_ids, end, out)
                return out
            policy, version = self._policy
        # The network runs outside the lock: operator commands keep flowing meanwhile.
        policy_action, err = self._query(policy, obs)
        with self._lock:
            if self.phase is not Phase.RUNNING:  # cannot happen from tick alone; defensive for owners
                return out
            intervening = self._intervening_locked(now_s)
            if err is not None:
                out.policy_error = err
                self.counters["policy_errors"] += 1
            if intervening:
                executed = self._operator_action(self._operator)
                out.command = self._command(executed, "operator")
            elif err is not None:
                executed = self._hold_action()
                out.command = RobotCommand.hold(self._gripper_cmd)
            else:
                executed = policy_action
                if self.spec.action.has_gripper:
                    self._gripper_cmd = float(executed[self.spec.action.names.index("gripper")])
                out.command = self._command(executed, "policy")
            step = self._record(now_s, obs, stamps, frame_ids, version)
            step.policy_action = policy_action if err is None else np.zeros(self.spec.action.dim, np.float32)
            self._pending = _PendingStep(step, float(now_s), [(float(now_s), executed, intervening)])
            self._step_index += 1
            out.policy_action = step.policy_action
            return out

    # ------------------------------------------------------------------ internals
    def _intervening_locked(self, now_s: float) -> bool:
        cmd = self._operator
        if cmd is None or not cmd.intervening:
            return False
        if now_s - self._operator_rx_s > self.config.operator_timeout_s:
            if self.counters["operator_timeouts"] == 0 or self._was_intervening:
                log.warning("operator command is %.2f s old: treating the operator as not intervening",
                            now_s - self._operator_rx_s)
            self.counters["operator_timeouts"] += 1
            self._was_intervening = False
            return False
        return True

    def _command(self, action: np.ndarray, source: str) -> RobotCommand:
        # The robot gets exactly the recorded action's twist: the operator's command is
        # projected onto the policy's action space (clipped, missing dimensions dropped), so
        # what the learner sees is what moved the robot.
        lin, ang, grip = self.spec.action.to_twist(action)
        return RobotCommand(lin, ang, grip, source)

    def _operator_action(self, cmd: OperatorCommand) -> np.ndarray:
        return self.spec.action.from_twist(cmd.lin_m_s, cmd.ang_rad_s, self._gripper_cmd)

    def _hold_action(self) -> np.ndarray:
        return self.spec.action.from_twist(np.zeros(3), np.zeros(3), self._gripper_cmd)

    def _query(self, policy: PolicyLike, obs: dict) -> tuple[np.ndarray, str | None]:
        try:
            a = np.asarray(policy.act(obs, self.config.deterministic), dtype=np.float32).reshape(-1)
        except (RuntimeError, ValueError, TypeError) as e:  # a broken policy must not stop the loop
            return np.zeros(self.spec.action.dim, np.float32), f"policy raised {type(e).__name__}: {e}"
        if a.shape != (self.spec.action.dim,):
            return a, f"policy action has shape {a.shape}, expected ({self.spec.action.dim},)"
        if not np.all(np.isfinite(a)):
            return a, f"policy action is not finite: {a.tolist()}"
        return np.clip(a, -1.0, 1.0), None

    def _assemble(self, now_s: float) -> tuple[dict | None, tuple[list[float], list[str]], str | None]:
        obs: dict = {}
        stamps: list[float] = []
        frame_ids: list[str] = []
        max_age = self.config.max_frame_age_s
        for cam in self.spec.cameras:
            fr = self._frames.get(cam.name)
            if fr is None:
                return None, ([], []), f"no frame from camera '{cam.name}' yet"
            age = now_s - fr.stamp_s
            if age > max_age:
                return None, ([], []), f"camera '{cam.name}' frame is {age:.3f} s old (max_frame_age_s={max_age})"
            obs[cam.name] = _resize(fr.value, cam.height, cam.width)
            stamps.append(fr.stamp_s)
            frame_ids.append(fr.frame_id)
        sources = {PROPRIO_FIELDS[n][0] for n in self.spec.proprio_names}
        if not self.config.require_gripper_width:
            sources.discard("gripper")
        state = {"pose": self._pose, "twist": self._twist, "gripper": self._gripper_width, "task": self._task_state}
        for src in ("pose", "twist", "gripper", "task"):
            if src not in sources:
                continue
            st = state[src]
            what = {"pose": "EE pose", "twist": "EE twist", "gripper": "gripper width", "task": "task state"}[src]
            if st is None:
                return None, ([], []), f"no {what} received yet"
            age = now_s - st.stamp_s
            if age > self.config.max_state_age_s:
                return None, ([], []), f"{what} is {age:.3f} s old (max_state_age_s={self.config.max_state_age_s})"
        proprio = np.zeros(self.spec.proprio_dim, np.float32)
        for i, n in enumerate(self.spec.proprio_names):
            src, k, _ = PROPRIO_FIELDS[n]
            st = state[src]
            if st is not None:  # an optional gripper width not yet received reads 0
                proprio[i] = st.value[k]
        obs["proprio"] = proprio
        return obs, (stamps, frame_ids), None

    def _record(self, now_s: float, obs: dict, stamps: list[float], frame_ids: list[str], version: int) -> StepRecord:
        """The record of the step starting now (action and outcome filled in later)."""
        return StepRecord(
            episode_id=self.episode_id,
            step_index=self._step_index,
            obs=obs,
            is_first=self._step_index == 0,
            policy_version=version,
            stamp_s=float(now_s),
            image_stamps_s=stamps,
            image_frame_ids=frame_ids,
            proprio_names=self.spec.proprio_names,
        )

    def _finish_pending(self, now_s: float) -> StepRecord:
        p = self._pending
        self._pending = None
        segs = p.segments
        dim = self.spec.action.dim
        total = max(now_s - p.t_start_s, 0.0)
        acc = np.zeros(dim, np.float64)
        op_time = 0.0
        if total <= 0.0:
            acc[:] = segs[-1][1]
            op_frac = 1.0 if segs[-1][2] else 0.0
        else:
            for (t0, a, by_op), nxt in zip(segs, segs[1:] + [(now_s, None, None)]):
                dt = max(min(nxt[0], now_s) - max(t0, p.t_start_s), 0.0)
                acc += dt * np.asarray(a, np.float64)
                if by_op:
                    op_time += dt
            acc /= total
            op_frac = op_time / total
        step = p.step
        step.action = np.clip(acc, -1.0, 1.0).astype(np.float32)
        step.intervention = op_frac >= 0.5
        if step.intervention:
            self._intervention_steps += 1
            if not self._prev_step_intervention:
                self._interventions += 1
        self._prev_step_intervention = step.intervention
        return step

    def _end_episode(self, now_s: float, obs: dict, stamps: list[float], frame_ids: list[str],
                     end: tuple[bool, str], out: TickResult) -> None:
        success, reason = end
        truncated = reason == "time limit"
        last = self._record(now_s, obs, stamps, frame_ids, self._policy[1])
        last.intervention = self._intervening_locked(now_s)
        last.is_last = True
        last.is_terminal = not truncated
        last.success = bool(success)
        out.steps.append(last)
        steps = self._step_index
        self.stats.add(success, steps, self._intervention_steps)
        out.summary = EpisodeSummary(
            stamp_s=float(now_s),
            episode_id=self.episode_id,
            steps=steps,
            intervention_steps=self._intervention_steps,
            interventions=self._interventions,
            intervention_rate=self._intervention_steps / steps if steps else 0.0,
            success=bool(success),
            truncated=truncated,
            window=len(self.stats),
            success_rate=self.stats.success_rate,
            intervention_rate_window=self.stats.intervention_rate,
            policy_version=self._policy[1],
            evaluation=self.evaluation,
        )
        log.info("episode %d ended (%s): %d steps, success=%s, intervention rate %.2f; "
                 "window success rate %.2f", self.episode_id, reason, steps, success,
                 out.summary.intervention_rate, self.stats.success_rate)
        out.command = RobotCommand.hold(self._gripper_cmd)
        self.episode_id = max(self.episode_id + 1, self._min_next_episode_id)
        self.phase = Phase.RESETTING
        self._reset_sent_s = None
        self._reset_done = False
        self._reset_step(now_s, out)

    def _reset_step(self, now_s: float, out: TickResult) -> bool:
        """Advance the reset; returns True when the next episode has started."""
        if self._reset_sent_s is None or (
            not self._reset_done and now_s - self._reset_sent_s > self.config.reset_timeout_s
        ):
            if self._reset_sent_s is not None:
                log.warning("no reset-done for episode %d within %.1f s: requesting the reset again",
                            self.episode_id, self.config.reset_timeout_s)
            out.reset_request = self.episode_id
            self._reset_sent_s = float(now_s)
        if self.config.wait_for_reset_done and not self._reset_done:
            return False
        self.phase = Phase.RUNNING
        self._episode_start_s = float(now_s)
        self._step_index = 0
        self._intervention_steps = 0
        self._interventions = 0
        self._prev_step_intervention = False
        self._pending = None
        self._end_request = None
        log.info("episode %d started (policy version %d)", self.episode_id, self._policy[1])
        return True

    def snapshot(self) -> dict:
        """Counters and state for logs/tests."""
        with self._lock:
            return {
                "phase": self.phase.value,
                "episode_id": self.episode_id,
                "step_index": self._step_index,
                "policy_version": self._policy[1],
                "episodes": self.stats.total_episodes,
                "success_rate": self.stats.success_rate,
                "intervention_rate": self.stats.intervention_rate,
                **dict(self.counters),
            }


__all__ = [
    "ActorConfig", "ActorCore", "PROPRIO_FIELDS", "Phase", "PolicyLike", "RobotCommand", "TickResult",
]
