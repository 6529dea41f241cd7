"""Where the learner stands in each robot's stream of step records, kept on disk (ROS-free).

Each robot's actor sends its step records in the order it records them, keyed
``(episode_id, step_index)`` (increasing), and keeps each on its own disk until the learner
acknowledges it (``robot_stack.actor.spool``). The keys of different robots are unrelated (each
actor counts its own episodes), so a learner keeps one :class:`StepIntake` per robot stream
(a single-robot learner: one, for robot ``""``). A :class:`StepIntake` decides what the learner
does with each arriving record of its stream and remembers, crash-safely, how far it got:

* **In order only.** A record is accepted when it is the successor of the last accepted one
  (same episode, next step; or step 0 of a later episode once the last one's ``is_last``
  record is in), or when nothing was accepted yet. Its key is then the *watermark*: the
  learner acknowledges every record up to it (to that robot).
* **Duplicates** (key at or below the watermark: the actor resent what the learner already
  had, e.g. after a learner restart) are dropped and counted (``duplicate_steps``).
* **Early records** (a gap before them) are dropped and counted (``early_steps``) without
  moving the watermark: the actor resends from the watermark on (it does when its records stay
  unacknowledged). A gap that persists for ``gap_timeout_s`` (records the actor no longer has)
  is accepted (``gaps``) so the stream never stalls.
* **On disk**: after each accepted record the learner calls :meth:`commit`, which writes the
  watermark, the learner's counters and the record still waiting for its successor (the robot's
  labeller's *pending* step, whose reward that successor decides) to the stream's state file
  (:func:`state_path`: ``run_dir/learner_state.bin`` for robot ``""``,
  ``run_dir/learner_state/<robot_id>.bin`` for a named robot), atomically (a temporary file
  renamed into place; fsync'd with ``sync='fsync'``). So a step is on disk when the learner's
  ``add_step`` returns, the pending one included, and a restarted learner resumes each stream
  exactly where it stopped (:meth:`load`). One file per robot: a record costs one small write
  however many robots share the learner.
"""
from __future__ import annotations

import collections
import json
import logging
import os
import pathlib
import struct
import time
from dataclasses import dataclass, field
from typing import Callable

from robot_stack.types import record_log
from robot_stack.types.records import StepRecord

log = logging.getLogger(__name__)

ACCEPT, DUPLICATE, EARLY = "accept", "duplicate", "early"

MAX_EPISODE_JUMP = 1000
"""A new episode id more than this far above the last one is not taken as the next record at
once (ids grow by one per episode): a single stray record cannot move the watermark far ahead
and make the real records look like duplicates; a lasting jump is accepted after the gap wait."""

STATE_FILE = "learner_state.bin"
"""The single robot's (robot id ``""``) state file in the run folder."""
STATE_DIR = "learner_state"
"""Folder in the run folder holding each named robot's state file (``<robot_id>.bin``)."""

_HEAD = struct.Struct("<I")


def state_path(run_dir: str | os.PathLike, robot_id: str = "") -> pathlib.Path:
    """The state file of ``robot_id``'s stream (robot ids are ROS namespaces: ``lab/arm2`` is
    ``learner_state/lab/arm2.bin``)."""
    run_dir = pathlib.Path(run_dir)
    return run_dir / STATE_FILE if not robot_id else run_dir / STATE_DIR / f"{robot_id}.bin"


def stored_robots(run_dir: str | os.PathLike) -> list[str]:
    """Robot ids that have a state file in ``run_dir`` (``""`` for the single robot's)."""
    run_dir = pathlib.Path(run_dir)
    out = [""] if (run_dir / STATE_FILE).exists() else []
    folder = run_dir / STATE_DIR
    if folder.is_dir():
        out += sorted(str(p.relative_to(folder).with_suffix("")) for p in folder.rglob("*.bin"))
    return out


@dataclass
class IntakeState:
    """What :meth:`StepIntake.load` restores."""

    watermark: tuple[int, int] | None = None
    ended: bool = False
    """The watermark record was its episode's ``is_last``."""
    counters: dict[str, int] = field(default_factory=dict)
    """The learner's counters as last committed (env_steps, episodes, ...)."""
    robot_counters: dict[str, int] = field(default_factory=dict)
    """The robot's own counters as last committed (its records, env_steps, transitions, ...)."""
    pending: StepRecord | None = None


class StepIntake:
    """In-order, deduplicated intake of one robot's step records with its state on disk
    (module docstring)."""

    def __init__(self, path: str | os.PathLike, sync: str = "flush", gap_timeout_s: float = 5.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.path = pathlib.Path(path)
        self.sync = sync
        self.gap_timeout_s = gap_timeout_s
        self._clock = clock
        self.watermark: tuple[int, int] | None = None
        """Key of the newest accepted record: every record up to it is stored."""
        self.ended = False
        """The watermark record ended its episode (is_last)."""
        self.counters: collections.Counter = collections.Counter()
        """``accepted_steps``; ``duplicate_steps``, ``early_steps`` (dropped); ``gaps`` (accepted)."""
        self._gap_since: float | None = None

    # ------------------------------------------------------------------ deciding
    @staticmethod
    def follows(key: tuple[int, int], last: tuple[int, int] | None, ended: bool) -> bool:
        """Whether ``key`` is the successor of ``last`` (``ended``: it was its episode's last record)."""
        if last is None:
            return True
        return ((key[0] == last[0] and key[1] == last[1] + 1 and not ended)
                or (0 < key[0] - last[0] <= MAX_EPISODE_JUMP and key[1] == 0 and ended))

    def admit(self, step: StepRecord) -> str:
        """ACCEPT, DUPLICATE or EARLY for an arriving record (counted; nothing is stored)."""
        key = step.key
        if self.watermark is not None and key <= self.watermark:
            self.counters["duplicate_steps"] += 1
            return DUPLICATE
        if self.follows(key, self.watermark, self.ended):
            self._gap_since = None
            self.counters["accepted_steps"] += 1
            return ACCEPT
        now = self._clock()
        if self._gap_since is None:
            self._gap_since = now
        if now - self._gap_since < self.gap_timeout_s:
            self.counters["early_steps"] += 1
            return EARLY
        log.warning("%s: records after episode %d step %d did not arrive within %.1f s: accepting the gap up to "
                    "episode %d step %d (the actor no longer has them)", self.path.name, *self.watermark,
                    self.gap_timeout_s, *key)
        self.counters["gaps"] += 1
        self.counters["accepted_steps"] += 1
        self._gap_since = None
        return ACCEPT

    # ------------------------------------------------------------------ persistence
    def commit(self, key: tuple[int, int], ended: bool, pending: StepRecord | None, counters: dict[str, int],
               robot_counters: dict[str, int] | None = None) -> None:
        """Record that ``key`` (its episode's last record when ``ended``) was accepted and stored;
        write the state file (with the learner's ``counters`` and the robot's own
        ``robot_counters``, so they never go backwards)."""
        self.watermark = (int(key[0]), int(key[1]))
        self.ended = bool(ended)
        head = json.dumps({"watermark": list(self.watermark), "ended": self.ended,
                           "counters": {k: int(v) for k, v in counters.items()},
                           "robot_counters": {k: int(v) for k, v in (robot_counters or {}).items()},
                           "pending": pending is not None}).encode()
        body = _HEAD.pack(len(head)) + head + (record_log.encode_step(pending) if pending is not None else b"")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(self.path.name + ".tmp")
        with open(tmp, "wb") as f:
            f.write(record_log.frame(body))
            f.flush()
            if self.sync == "fsync":
                os.fsync(f.fileno())
        os.replace(tmp, self.path)

    def load(self) -> IntakeState:
        """The state the last :meth:`commit` wrote (empty without a readable file: logged)."""
        if not self.path.exists():
            return IntakeState()
        data = self.path.read_bytes()
        chunks = list(record_log.scan(data))
        try:
            if len(chunks) != 1 or not chunks[0].intact:
                raise ValueError("damaged")
            body = bytes(chunks[0].payload)
            (n,) = _HEAD.unpack_from(body, 0)
            head = json.loads(body[_HEAD.size:_HEAD.size + n])
            pending = record_log.decode_step(body[_HEAD.size + n:]) if head["pending"] else None
            wm = head["watermark"]
            state = IntakeState((int(wm[0]), int(wm[1])), bool(head["ended"]),
                                {str(k): int(v) for k, v in head["counters"].items()},
                                {str(k): int(v) for k, v in head.get("robot_counters", {}).items()}, pending)
        except (ValueError, KeyError, TypeError, IndexError, AttributeError, struct.error) as e:
            bad = self.path.with_name(self.path.name + ".damaged")
            os.replace(self.path, bad)
            log.warning("learner state %s is unreadable (%s): moved to %s; the watermark and the pending step "
                        "come from the replay log instead", self.path, e, bad)
            return IntakeState()
        self.watermark, self.ended = state.watermark, state.ended
        return state


__all__ = ["ACCEPT", "DUPLICATE", "EARLY", "STATE_DIR", "STATE_FILE", "IntakeState", "StepIntake", "state_path",
           "stored_robots"]
