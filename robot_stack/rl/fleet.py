"""Several robots, one learner: per-robot labelling and bookkeeping (ROS-free).

Each robot's actor streams its own step records (``<robot_id>/steps``); its episode ids and
step indices count independently of the other robots'. :class:`Fleet` keeps one
:class:`~robot_stack.rl.labelling.StreamingLabeller` per robot, so records of different
robots are never paired into a transition even when their streams interleave or their
episode ids coincide, and stamps each transition with its robot id (the replay buffer stores
it). It also keeps, per robot and for the whole fleet, the figures a person follows: records,
env steps, transitions, episodes, rolling success and intervention rates, dropped steps, and
when the robot was last heard from.

A robot id is the robot's ROS namespace without the leading slash (``arm1``, ``lab/arm2``);
``""`` is the single robot of a learner that is not part of a fleet.
"""
from __future__ import annotations

import re
import time
from dataclasses import dataclass, field

from robot_stack.rl.labelling import LabellingConfig, StreamingLabeller, Transition
from robot_stack.rl.progress import EpisodeStats
from robot_stack.types.records import StepRecord

_TOKEN = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def check_robot_id(robot_id: str) -> str:
    """``robot_id`` with surrounding slashes removed; ValueError unless it is ``""`` or a
    valid ROS namespace (tokens of letters, digits and underscores, not starting with a digit,
    separated by ``/``)."""
    rid = robot_id.strip("/")
    if rid and not all(_TOKEN.fullmatch(tok) for tok in rid.split("/")):
        raise ValueError(f"robot id '{robot_id}' is not a ROS namespace (letters, digits, '_', '/'; "
                         "a token may not start with a digit), e.g. arm1 or lab/arm2")
    return rid


def robot_id_from_topic(topic: str, leaf: str = "steps") -> str | None:
    """The robot id of a fully qualified topic name ``/<robot_id>/<leaf>`` (``/steps``: ``""``);
    None when the name does not end in ``leaf``."""
    parts = topic.strip("/").split("/")
    if parts[-1] != leaf:
        return None
    try:
        return check_robot_id("/".join(parts[:-1]))
    except ValueError:
        return None


def robot_topic(robot_id: str, leaf: str = "steps") -> str:
    """The fully qualified name of a topic in a robot's namespace (``arm1`` -> ``/arm1/steps``)."""
    rid = check_robot_id(robot_id)
    return f"/{rid}/{leaf}" if rid else f"/{leaf}"


@dataclass
class RobotBook:
    """What the learner knows about one robot's stream."""

    robot_id: str
    labeller: StreamingLabeller
    episode_stats: EpisodeStats
    records: int = 0
    """Step records received (including is_last records)."""
    env_steps: int = 0
    """Records with an action (control steps)."""
    transitions: int = 0
    intervention_transitions: int = 0
    episodes: int = 0
    last_record_s: float = 0.0
    """time.monotonic() of the last record (0: none yet)."""
    _ep_steps: int = field(default=0, repr=False)
    _ep_interventions: int = field(default=0, repr=False)

    def counters(self) -> dict:
        """The counters a checkpoint keeps (see :meth:`Fleet.state_dict`)."""
        return {"records": self.records, "env_steps": self.env_steps, "transitions": self.transitions,
                "intervention_transitions": self.intervention_transitions, "episodes": self.episodes}


class Fleet:
    """Per-robot labellers and bookkeeping; see the module docstring. Not thread-safe: one
    caller (the learner's step callback) pushes records."""

    def __init__(self, labelling: LabellingConfig | None = None, stats_window: int = 20,
                 clock=time.monotonic):
        self.labelling = labelling or LabellingConfig()
        self.stats_window = int(stats_window)
        self.clock = clock
        self.robots: dict[str, RobotBook] = {}
        self.episode_stats = EpisodeStats(self.stats_window)
        """Rolling rates over the last episodes of any robot, in the order they ended."""

    def robot(self, robot_id: str) -> RobotBook:
        """The book of ``robot_id`` (created on its first record)."""
        book = self.robots.get(robot_id)
        if book is None:
            check_robot_id(robot_id)
            book = self.robots[robot_id] = RobotBook(robot_id, StreamingLabeller(self.labelling),
                                                     EpisodeStats(self.stats_window))
        return book

    def push(self, robot_id: str, step: StepRecord) -> list[Transition]:
        """Label one record of ``robot_id``'s stream; returns the transitions it completes,
        each stamped with the robot id."""
        book = self.robot(robot_id)
        book.records += 1
        book.last_record_s = self.clock()
        if not step.is_last:
            book.env_steps += 1
        self._track_episode(book, step)
        out = book.labeller.push(step)
        for t in out:
            t.robot_id = robot_id
            book.transitions += 1
            book.intervention_transitions += int(t.intervention)
        return out

    def _track_episode(self, book: RobotBook, step: StepRecord) -> None:
        if step.is_first:
            book._ep_steps = book._ep_interventions = 0
        if step.is_last:
            for stats in (book.episode_stats, self.episode_stats):
                stats.add(step.success, book._ep_steps, book._ep_interventions)
            book.episodes += 1
            book._ep_steps = book._ep_interventions = 0
            return
        book._ep_steps += 1
        book._ep_interventions += int(step.intervention)

    def forget_pending(self, robot_id: str) -> None:
        """Drop a robot's unpaired step (its actor restarted or left)."""
        if robot_id in self.robots:
            self.robots[robot_id].labeller.reset()

    @property
    def dropped_steps(self) -> int:
        return sum(b.labeller.dropped_steps for b in self.robots.values())

    @property
    def episodes(self) -> int:
        return sum(b.episodes for b in self.robots.values())

    def stats(self, active_within_s: float | None = None) -> dict[str, dict]:
        """Per robot id: records, env_steps, transitions, intervention_transitions, episodes,
        success_rate and intervention_rate (rolling), dropped_steps, last_record_age_s and, with
        ``active_within_s``, whether a record came within that many seconds (``active``)."""
        now = self.clock()
        out = {}
        for rid, b in sorted(self.robots.items()):
            age = round(now - b.last_record_s, 3) if b.last_record_s else None
            row = {**b.counters(), "success_rate": b.episode_stats.success_rate,
                   "intervention_rate": b.episode_stats.intervention_rate,
                   "dropped_steps": b.labeller.dropped_steps, "last_record_age_s": age}
            if active_within_s is not None:
                row["active"] = age is not None and age <= active_within_s
            out[rid] = row
        return out

    def state_dict(self) -> dict:
        """Per-robot counters for a checkpoint (rolling rates and pending steps are not kept)."""
        return {rid: b.counters() for rid, b in self.robots.items()}

    def load_state_dict(self, state: dict) -> None:
        for rid, counters in state.items():
            book = self.robot(rid)
            for k, v in counters.items():
                if hasattr(book, k):
                    setattr(book, k, int(v))


__all__ = ["Fleet", "RobotBook", "check_robot_id", "robot_id_from_topic", "robot_topic"]
