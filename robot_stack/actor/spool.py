"""The actor's outbox of step records: on disk until the learner acknowledges them (ROS-free).

Every step record the actor produces goes through a :class:`StepSpool`:

* ``append(step)`` writes it to the spool directory (framed, CRC-checked records in segment
  files of ``segment_records`` records; flushed, or fsync'd with ``sync='fsync'``) before it is
  ever published, so a record nobody has stored yet survives a learner crash, a missing learner
  and an actor crash (a restarted actor loads what is left and sends it first). Without a
  directory the records wait in memory (same protocol; lost if the actor itself dies).
* ``take(now, learner_present, listeners)`` hands out the next records to publish, in order:
  to a learner (one that acknowledges) at most ``window`` beyond its newest acknowledgement
  (well under the step topic's queue depth, so DDS never overwrites an unacknowledged sample);
  without one, each record once to whoever listens (a recorder, a probe), and nothing when
  nobody does. Either way the records stay spooled until a learner acknowledges them.
* ``on_ack(ack, now)``: the learner's :class:`~robot_stack.types.records.StepAck`. Records up
  to its watermark are deleted (*acked*). A new ``learner_id`` (a restarted or another
  learner) rewinds: every record after its watermark is sent again (*resent*), in order; the
  learner drops what it already has.
* When records are out but no acknowledgement has moved for ``resend_after_s`` (the learner
  died, or lost them), they are sent again from the oldest unacknowledged one.
* The spool holds at most ``max_records``; beyond that the oldest are dropped (*dropped*,
  counted and logged): the bound on disk use while no learner runs.

Keys ``(episode_id, step_index)`` increase in the order records are appended (episode ids
only grow, also across actor restarts; steps count up within an episode).
"""
from __future__ import annotations

import collections
import logging
import os
import pathlib
import re
from dataclasses import dataclass
from typing import Callable

from robot_stack.types import record_log
from robot_stack.types.records import StepAck, StepRecord

log = logging.getLogger(__name__)

_SEGMENT = re.compile(r"^steps-(\d{10})\.spool$")


@dataclass
class _Entry:
    key: tuple[int, int]
    segment: int = -1
    offset: int = 0
    length: int = 0
    record: StepRecord | None = None
    """The record itself when the spool has no directory (kept in memory)."""


class StepSpool:
    """Disk-backed outbox of step records (see the module docstring). Not thread-safe: one
    owner (the actor's control loop) calls it, or the caller serializes."""

    def __init__(self, directory: str | os.PathLike | None, max_records: int = 20_000, window: int = 200,
                 resend_after_s: float = 3.0, sync: str = "flush", segment_records: int = 256,
                 on_event: Callable[[str], None] | None = None) -> None:
        if max_records < 1 or window < 1 or segment_records < 1 or not resend_after_s > 0:
            raise ValueError("max_records, window and segment_records must be >= 1, resend_after_s > 0")
        if sync not in ("flush", "fsync"):
            raise ValueError(f"sync must be 'flush' or 'fsync', got {sync!r}")
        self.dir = pathlib.Path(directory).expanduser() if directory else None
        self.max_records = max_records
        self.window = window
        self.resend_after_s = resend_after_s
        self.sync = sync
        self.segment_records = segment_records
        self._say = on_event or log.info
        self._entries: collections.deque[_Entry] = collections.deque()
        self._cursor = 0  # index into _entries of the next record to send
        self._segment = -1  # segment being appended to
        self._in_segment = 0
        self._file = None
        self._learner_id: int | None = None
        self._progress_t: float | None = None  # last time an ack moved (or the first send after none was out)
        self.counters: collections.Counter = collections.Counter()
        """``spooled``, ``sent``, ``resent``, ``acked``, ``dropped`` (spool full), ``damaged``
        (unreadable back), ``in_memory`` (could not be written: kept in memory)."""

    # ------------------------------------------------------------------ lifecycle
    def open(self) -> "StepSpool":
        """Load the records a previous actor process left (they are sent first)."""
        if self.dir is None:
            return self
        self.dir.mkdir(parents=True, exist_ok=True)
        segments = sorted(int(m.group(1)) for p in self.dir.iterdir() if (m := _SEGMENT.match(p.name)))
        for seg in segments:
            data = self._path(seg).read_bytes()
            for chunk in record_log.scan(data):
                if not chunk.intact:
                    self.counters["damaged"] += record_log.records_in(data, chunk.start, chunk.end)
                    continue
                try:
                    step = record_log.decode_step(chunk.payload)
                except ValueError:
                    self.counters["damaged"] += 1
                    continue
                self._entries.append(_Entry(step.key, seg, chunk.start, chunk.end - chunk.start))
        self._segment = segments[-1] if segments else -1
        self._in_segment = self.segment_records  # never append to a file written by another process
        if self._entries:
            self._say(f"step spool {self.dir}: {len(self._entries)} step record(s) from an earlier run wait "
                      f"for the learner" + (f" ({self.counters['damaged']} damaged, skipped)" if self.counters["damaged"] else ""))
        self._delete_unused_segments()
        return self

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def _path(self, segment: int) -> pathlib.Path:
        assert self.dir is not None
        return self.dir / f"steps-{segment:010d}.spool"

    # ------------------------------------------------------------------ writing
    def append(self, step: StepRecord) -> None:
        """Put a record on disk (returns once it is flushed, or fsync'd; in memory without a directory)."""
        if self.dir is None:
            self._entries.append(_Entry(step.key, record=step))
            self.counters["spooled"] += 1
            self._bound()
            return
        try:
            if self._file is None or self._in_segment >= self.segment_records:
                if self._file is not None:
                    self._file.close()
                    self._file = None
                self._segment += 1
                self._in_segment = 0
                self._file = open(self._path(self._segment), "ab")
            data = record_log.frame(record_log.encode_step(step))
            offset = self._file.tell()
            self._file.write(data)
            self._file.flush()
            if self.sync == "fsync":
                os.fsync(self._file.fileno())
        except OSError as e:  # e.g. disk full: keep it in memory rather than lose it
            self.counters["in_memory"] += 1
            if self.counters["in_memory"] == 1 or self.counters["in_memory"] % 100 == 0:
                self._say(f"step spool {self.dir}: cannot write ({e}); {self.counters['in_memory']} record(s) "
                          "kept in memory only")
            self._entries.append(_Entry(step.key, record=step))
            self.counters["spooled"] += 1
            self._bound()
            return
        self._in_segment += 1
        self._entries.append(_Entry(step.key, self._segment, offset, len(data)))
        self.counters["spooled"] += 1
        self._bound()

    def _bound(self) -> None:
        if len(self._entries) > self.max_records:
            n = len(self._entries) - self.max_records
            for _ in range(n):
                self._entries.popleft()
            self._cursor = max(0, self._cursor - n)
            self.counters["dropped"] += n
            if self.counters["dropped"] == n or self.counters["dropped"] % 100 < n:
                self._say(f"step spool full ({self.max_records} records, no learner acknowledges): dropped the "
                          f"oldest; {self.counters['dropped']} record(s) dropped so far")
            self._delete_unused_segments()

    # ------------------------------------------------------------------ acknowledgements
    def on_ack(self, ack: StepAck, now: float) -> None:
        """The learner's acknowledgement: delete what it covers; rewind for a new learner."""
        new_learner = ack.learner_id != self._learner_id
        removed = 0
        if ack.watermark is not None:
            while self._entries and self._entries[0].key <= ack.watermark:
                self._entries.popleft()
                removed += 1
        self._cursor = max(0, self._cursor - removed)
        self.counters["acked"] += removed
        if removed:
            self._delete_unused_segments()
            self._progress_t = now
        if new_learner:
            self._learner_id = ack.learner_id
            resend = self._cursor
            self._cursor = 0
            self.counters["resent"] += resend
            where = "nothing yet" if ack.watermark is None else f"up to episode {ack.watermark[0]} step {ack.watermark[1]}"
            self._say(f"learner {ack.learner_id:016x} acknowledges {where}: {len(self._entries)} spooled step "
                      f"record(s) go to it in order" + (f" ({resend} of them again)" if resend else ""))
            self._progress_t = now

    # ------------------------------------------------------------------ sending
    @property
    def max_episode_id(self) -> int:
        """Largest episode id in the spool (0 when empty)."""
        return max((e.key[0] for e in self._entries), default=0)

    @property
    def pending(self) -> int:
        """Records on disk that no learner has acknowledged."""
        return len(self._entries)

    @property
    def in_flight(self) -> int:
        """Records sent but not acknowledged yet."""
        return self._cursor

    def take(self, now: float, learner_present: bool, listeners: int = 0) -> list[StepRecord]:
        """The next records to publish now, in order. ``learner_present``: a learner that
        acknowledges is matched; ``listeners``: subscribers of the step records."""
        if not learner_present or self._learner_id is None:
            if listeners <= 0:
                return []
            n = min(self.window, len(self._entries) - self._cursor)  # each once, nobody acknowledges
            return self._hand_out(n) if n > 0 else []
        if self._cursor and self._progress_t is not None and now - self._progress_t >= self.resend_after_s:
            self._say(f"no acknowledgement for {now - self._progress_t:.1f} s: sending the {self._cursor} "
                      "unacknowledged step record(s) again")
            self.counters["resent"] += self._cursor
            self._cursor = 0
            self._progress_t = now
        n = min(self.window - self._cursor, len(self._entries) - self._cursor)
        if n <= 0:
            return []
        if self._cursor == 0:
            self._progress_t = now  # the clock for a resend starts with the first record out
        return self._hand_out(n)

    def _hand_out(self, n: int) -> list[StepRecord]:
        out = []
        while len(out) < n and self._cursor < len(self._entries):
            e = self._entries[self._cursor]
            try:
                out.append(self._read(e))
            except (OSError, ValueError) as err:  # the disk lost it: say so, go on with the next
                del self._entries[self._cursor]
                self.counters["damaged"] += 1
                self._say(f"step spool: cannot read back episode {e.key[0]} step {e.key[1]} ({err}): lost")
                continue
            self._cursor += 1
        self.counters["sent"] += len(out)
        return out

    def _read(self, e: _Entry) -> StepRecord:
        if e.record is not None:
            return e.record
        with open(self._path(e.segment), "rb") as f:
            f.seek(e.offset)
            data = f.read(e.length)
        chunk = next(record_log.scan(data), None)
        if chunk is None or not chunk.intact or chunk.end != len(data):
            raise ValueError(f"the record at byte {e.offset} of {self._path(e.segment).name} is damaged")
        return record_log.decode_step(chunk.payload)

    def _delete_unused_segments(self) -> None:
        if self.dir is None:
            return
        live = {e.segment for e in self._entries} | {self._segment}
        for p in self.dir.iterdir():
            m = _SEGMENT.match(p.name)
            if m and int(m.group(1)) not in live:
                try:
                    p.unlink()
                except OSError as e:
                    log.warning("cannot delete spool segment %s: %s", p, e)


__all__ = ["StepSpool"]
