"""ROS-free types of the status messages: Franka node events, learner progress, the simulated
operator's decisions and the Franka node's latency probe (one type per message; see
``robot_stack.types.records`` for the data-path messages).

=========================  ======================  ==========================================
message                    type here               made by / read by
=========================  ======================  ==========================================
msg/FrankaStatus           :class:`FrankaStatus`   franka node / monitor, tests, tools
msg/LearnerStats           :class:`LearnerStats`   learner node (LearnerCore.stats) / monitor
msg/OperatorDecision       :class:`OperatorDecision`  sim world / people inspecting the rule
msg/CommandSent            :class:`CommandSent`    franka node (debug_latency) / latency benchmark
diagnostic_msgs/DiagnosticStatus  :class:`Health`  franka and learner nodes / /diagnostics tools
=========================  ======================  ==========================================

``robot_stack.nodes.convert`` is the only code that turns these into messages and back.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, fields


@dataclass(frozen=True)
class FrankaStatus:
    """One Franka node event (``msg/FrankaStatus``; its EVENT_* and MODE_* constants name
    the values of ``event`` and ``mode``)."""

    event: str
    """What happened: ready, watchdog_stop, home_done, ... (msg/FrankaStatus EVENT_*)."""
    detail: str = ""
    """For people: target pose, limit exceeded, error text."""
    mode: str = "streaming"
    """What the node was doing: streaming, homing or gave_up (msg/FrankaStatus MODE_*)."""
    counters: dict[str, int] = field(default_factory=dict)
    """The safety filter's counters (event name -> occurrences since start)."""
    stamp_s: float = 0.0
    """When the event happened (the node's clock), s."""


@dataclass(frozen=True)
class RobotStats:
    """One robot's share of a fleet learner's data (``msg/RobotStats``); the rows of
    ``LearnerCore.stats()["robots"]``."""

    robot_id: str = ""
    records: int = 0
    env_steps: int = 0
    transitions: int = 0
    intervention_transitions: int = 0
    episodes: int = 0
    success_rate: float = 0.0
    intervention_rate: float = 0.0
    dropped_steps: int = 0
    last_record_age_s: float | None = None
    """Seconds since the robot's last record (None before any)."""
    active: bool = False

    def as_dict(self) -> dict:
        """The row as ``LearnerCore.stats()["robots"][robot_id]`` has it (without the id)."""
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name != "robot_id"}


@dataclass(frozen=True)
class LearnerStats:
    """The learner's progress (``msg/LearnerStats``); :meth:`from_dict` reads
    ``LearnerCore.stats()``."""

    env_steps: int = 0
    transitions: int = 0
    buffer: int = 0
    intervention_buffer: int = 0
    updates: int = 0
    updates_per_s: float = 0.0
    update_backlog: int = 0
    policy_version: int = 0
    episodes: int = 0
    success_rate: float = 0.0
    intervention_rate: float = 0.0
    dropped_steps: int = 0
    rejected_steps: int = 0
    metrics: dict[str, float] = field(default_factory=dict)
    """Every other figure: counters and the latest losses (critic_loss, actor_loss, alpha, ...)."""
    robots: tuple[RobotStats, ...] = ()
    """Fleet learner: one entry per robot, sorted by robot id."""
    stamp_s: float = 0.0
    """When the figures were taken, s."""

    @classmethod
    def from_dict(cls, stats: dict, stamp_s: float = 0.0) -> "LearnerStats":
        """From ``LearnerCore.stats()``: its named figures fill the fields, the rest go to
        ``metrics`` (numbers only)."""
        named = {f.name: f.type for f in fields(cls) if f.name not in ("metrics", "robots", "stamp_s")}
        kwargs = {}
        for name in named:
            if name in stats:
                value = stats[name]
                kwargs[name] = float(value) if isinstance(getattr(cls, name), float) else int(value)
        metrics = {k: float(v) for k, v in stats.items()
                   if k not in named and isinstance(v, (int, float)) and not isinstance(v, bool)}
        robot_fields = {f.name for f in fields(RobotStats)}
        robots = tuple(RobotStats(robot_id=rid, **{k: v for k, v in row.items() if k in robot_fields})
                       for rid, row in sorted(stats.get("robots", {}).items()))
        return cls(**kwargs, metrics=metrics, robots=robots, stamp_s=stamp_s)

    def as_dict(self) -> dict[str, float]:
        """Every figure by name (the fields, then the metrics), as ``LearnerCore.stats()`` has them."""
        out = {f.name: getattr(self, f.name) for f in fields(self) if f.name not in ("metrics", "robots", "stamp_s")}
        out.update(self.metrics)
        return out

    def robots_dict(self) -> dict[str, dict]:
        """The fleet rows by robot id, as ``LearnerCore.stats()["robots"]`` has them."""
        return {r.robot_id: r.as_dict() for r in self.robots}


@dataclass(frozen=True)
class OperatorDecision:
    """The simulated operator's decision at one control step (``msg/OperatorDecision``)."""

    intervening: bool
    started: bool
    probability: float = math.nan
    """Probability with which the rule intervened (NaN: the rule has none)."""
    q_policy: float = math.nan
    q_expert: float = math.nan
    stamp_s: float = 0.0


@dataclass(frozen=True)
class CommandSent:
    """When one velocity command was received and sent by the Franka node
    (``msg/CommandSent``); node clock, s."""

    command_stamp_s: float
    received_s: float
    sent_s: float
    trigger: str
    """``command`` (sent from the subscription) or ``tick`` (by the control loop)."""


@dataclass(frozen=True)
class Health:
    """One component's health for /diagnostics (``diagnostic_msgs/DiagnosticStatus``)."""

    OK = 0
    WARN = 1
    ERROR = 2
    STALE = 3

    name: str
    """Unique in the ROS graph: the node's fully qualified name (``/arm1/franka``)."""
    level: int
    """OK, WARN, ERROR or STALE."""
    message: str
    hardware_id: str = ""
    values: dict[str, str] = field(default_factory=dict)
    """Named figures (counters, mode, rates) as text."""


__all__ = ["CommandSent", "FrankaStatus", "Health", "LearnerStats", "OperatorDecision"]
