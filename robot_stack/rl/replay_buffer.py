# Over 400 lines: one ring of shared frames with its crash-safe log (append, resync after damage, quarantine, reload) and sampling; about 40 lines of layout specification.
"""Vision replay buffer: uint8 frames stored once, aligned sampling, crash-safe persistence.

Memory layout
-------------
Observations live in *slots* of a ring of ``capacity`` entries (one uint8 ``(H, W, 3)`` array
per camera plus a float32 proprio vector). A transition stored at slot ``s`` has its
observation in slot ``s`` and its next observation in slot ``next[s]`` (the slot written
right after it unless another robot's transition came in between); the action, reward and
flags of the transition sit in per-slot arrays at ``s``. Consecutive transitions of one
robot's episode therefore share frames: ``next_obs`` of step t *is* ``obs`` of step t+1,
stored once, also while several robots' streams interleave. An episode of T transitions uses
T+1 slots (the final observation has no transition of its own: ``valid[s]`` is False there),
so images cost (T+1)/T of the raw image bytes per step (1.02x for 50-step episodes).

Each transition keeps the id of the robot it came from (``Transition.robot_id``; ``""`` for
a single-robot learner): frames are shared only within one robot's stream, and batches carry
a ``robot`` array. Sampling draws uniformly among valid slots, or (``balance_robots``) first a
robot uniformly and then one of its transitions, so a robot with little data is not drowned
by one with much. A slot is invalidated the moment it is overwritten (a slot is always
overwritten before the slot of its next observation, which was written later), so a sampled
``next_obs`` always belongs to the same robot and episode as ``obs``.

Persistence
-----------
With ``path`` set, :meth:`open` restores the buffer from an append-only log and every
:meth:`add` appends one record (framing: :mod:`robot_stack.types.record_log`,
``b"RSRB" | u32 payload length | u32 crc32(payload) | payload``). The first record holds the
policy spec; each later one is one transition and holds both its observations, so every record
can be restored on its own (in memory the shared frame is still stored once; on disk a step's
images take twice their raw size). A step is **acknowledged** when ``add()`` has returned: by
then its record has been written and flushed to the operating system (``sync="flush"``:
survives the process being killed, e.g. ``kill -9``) or also fsync'd (``sync="fsync"``, the
default: survives a power cut).

A step record of a named robot (record type 2) holds the robot id after the step head; logs
written before robot ids existed hold type 1 records only and restore as robot ``""``. Logs
written before records were self-contained hold records that continue the previous one without
its observation; they restore while their predecessor is intact.

On restart every intact record is replayed, also those after a damaged one: the reader
resynchronises on the next record marker with a matching CRC, so damage to k records loses
those k only. Damaged bytes (a record cut short by a crash, flipped bytes, a damaged spec
record) are moved to ``<log>.quarantine``, never deleted, and the log keeps the intact records
(a lost spec record is written anew); :attr:`VisionReplayBuffer.restore_report` and a log line
say how many records and bytes were lost. The log is the full history; only the last
``capacity`` slots are kept in memory.
"""
from __future__ import annotations

import io
import logging
import os
import pathlib
import struct
from dataclasses import dataclass

import numpy as np

from robot_stack.rl.labelling import Transition
from robot_stack.types import record_log
from robot_stack.types.spec import PolicySpec

log = logging.getLogger(__name__)

_REC_SPEC = 0
_REC_STEP = 1
_REC_ROBOT_STEP = 2  # a named robot's step: _STEP_HEAD, u8 id length, the id (UTF-8), then as _REC_STEP
_STEP_HEAD = struct.Struct("<BBqqf")  # record type, flags, episode_id, step_index, reward
_F_HAS_OBS, _F_TERMINAL, _F_INTERVENTION, _F_END = 1, 2, 4, 8


@dataclass(frozen=True)
class ReplayBufferConfig:
    """Replay buffer size and persistence."""

    capacity: int = 100_000
    """Observation slots kept in memory (about one per stored step)."""
    sync: str = "fsync"
    """When add() returns: 'flush' (record handed to the OS: survives kill -9) or 'fsync'
    (also on disk: survives power loss)."""

    def validate(self) -> None:
        if self.capacity < 2:
            raise ValueError(f"capacity must be >= 2, got {self.capacity}")
        if self.sync not in ("flush", "fsync"):
            raise ValueError(f"sync must be 'flush' or 'fsync', got {self.sync!r}")


class VisionReplayBuffer:
    """Ring buffer of labelled transitions with deduplicated uint8 frames."""

    def __init__(self, spec: PolicySpec, capacity: int = 100_000, path: str | os.PathLike | None = None,
                 sync: str = "fsync"):
        ReplayBufferConfig(capacity=capacity, sync=sync).validate()
        self.spec = spec
        self.capacity = int(capacity)
        self.path = pathlib.Path(path) if path is not None else None
        self.sync = sync
        cap = self.capacity
        # np.zeros maps pages lazily: untouched capacity costs no resident memory.
        self._images = {c.name: np.zeros((cap, *c.shape), np.uint8) for c in spec.cameras}
        self._proprio = np.zeros((cap, spec.proprio_dim), np.float32)
        self._action = np.zeros((cap, spec.action.dim), np.float32)
        self._reward = np.zeros(cap, np.float32)
        self._terminal = np.zeros(cap, bool)
        self._intervention = np.zeros(cap, bool)
        self._valid = np.zeros(cap, bool)
        self._episode = np.full(cap, -1, np.int64)
        self._next = np.zeros(cap, np.int32)  # slot of each transition's next_obs
        self._robot = np.zeros(cap, np.int16)  # index into self.robots
        self._written = np.zeros(cap, np.int64)  # slot writes so far when each slot was last written
        self._writes = 0
        self._cursor = 0  # next slot to write
        self.robots: list[str] = []
        """Robot ids in order of first appearance (``_robot`` indexes this list)."""
        self._robot_index: dict[str, int] = {}
        # Per robot: (episode, step index, slot, slot's write count) of its last next_obs.
        self._last: dict[str, tuple[int, int, int, int]] = {}
        self._file: io.BufferedWriter | None = None
        self.num_added = 0
        """Transitions added since creation (including restored ones)."""
        self.max_episode_id = -1
        """Largest episode id added so far (including restored ones); -1 when empty."""
        self.last_stored: dict[str, tuple[int, int, bool]] = {}
        """Per robot id, (episode id, step index of its next observation's record, episode
        ended) of the robot's newest transition: the newest of its step records the log covers."""
        self.stored_steps: dict[str, dict[int, int]] = {}
        """Per robot id and episode id, the highest step index whose record is covered by a
        stored transition (its ``obs`` and action; the final record of an ended episode too)."""
        self.restore_report = record_log.RepairReport()
        """What :meth:`open` found damaged in the log (empty when nothing was)."""

    # ----------------------------------------------------------------- lifecycle
    def open(self) -> "VisionReplayBuffer":
        """Restore from the log at ``path`` (if any; damaged records are quarantined, see the
        module docstring) and open it for appending."""
        if self.path is None or self._file is not None:
            return self
        self.path.parent.mkdir(parents=True, exist_ok=True)
        has_spec = self._restore() if self.path.exists() else False
        self._file = open(self.path, "ab")
        if not has_spec:
            self._append(bytes([_REC_SPEC]) + self.spec.to_json().encode())
        return self

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def __enter__(self) -> "VisionReplayBuffer":
        return self.open()

    def __exit__(self, *exc) -> None:
        self.close()

    # ----------------------------------------------------------------- writing
    def __len__(self) -> int:
        return int(self._valid.sum())

    def add(self, t: Transition) -> None:
        """Store one transition; with a log, returns only once it is acknowledged."""
        robot = _check_robot_id(t.robot_id)
        if self.path is not None:
            if self._file is None:
                raise RuntimeError("replay buffer has a log path but is not open; call open() first")
            self._append(self._encode(t))
        # In memory a transition that continues the robot's previous one shares its frame.
        self._insert(None if self._continues(t) else t.obs, t.next_obs, np.asarray(t.action, np.float32),
                     t.reward, t.terminal, t.intervention, t.episode_id, t.step_index, t.episode_end, robot)

    def _continues(self, t: Transition) -> bool:
        return self._continues_at(t.robot_id, t.episode_id, t.step_index)

    def _continues_at(self, robot: str, episode: int, step_index: int) -> bool:
        """This robot's previous transition ended at (episode, step_index) and its frame is
        still in memory (not overwritten since)."""
        last = self._last.get(robot)
        # The cursor back on that slot (a full ring of other writes since) would put the next
        # observation over it.
        return (last is not None and last[:2] == (episode, step_index)
                and self._written[last[2]] == last[3] and last[2] != self._cursor)

    def _write_obs(self, slot: int, obs: dict) -> None:
        self._valid[slot] = False  # the transition that lived here is gone
        self._writes += 1
        self._written[slot] = self._writes
        for name, arr in self._images.items():
            img = obs[name]
            if img.dtype != np.uint8 or img.shape != arr.shape[1:]:
                raise ValueError(f"camera '{name}': expected uint8 {arr.shape[1:]}, got {img.dtype} {img.shape}")
            arr[slot] = img
        if self.spec.proprio_dim:
            self._proprio[slot] = obs["proprio"]

    def _insert(self, obs, next_obs, action, reward, terminal, intervention, episode, step_index, end,
                robot: str = "") -> None:
        if obs is None:
            s = self._last[robot][2]
        else:
            s = self._cursor
            self._write_obs(s, obs)
            self._cursor = (s + 1) % self.capacity
        n = self._cursor
        self._write_obs(n, next_obs)
        self._cursor = (n + 1) % self.capacity
        self._action[s] = action
        self._reward[s] = reward
        self._terminal[s] = terminal
        self._intervention[s] = intervention
        self._episode[s] = self._episode[n] = episode
        self._next[s] = n
        self._robot[s] = self._robot[n] = self._index_of(robot)
        self._valid[s] = True
        if end:
            self._last.pop(robot, None)
        else:
            self._last[robot] = (int(episode), int(step_index) + 1, n, int(self._written[n]))
        self.num_added += 1
        self.max_episode_id = max(self.max_episode_id, int(episode))
        covered = int(step_index) + (1 if end else 0)
        self.last_stored[robot] = (int(episode), covered, bool(end))
        steps = self.stored_steps.setdefault(robot, {})
        if covered > steps.get(int(episode), -1):
            steps[int(episode)] = covered

    def _index_of(self, robot: str) -> int:
        i = self._robot_index.get(robot)
        if i is None:
            if len(self.robots) >= np.iinfo(np.int16).max:
                raise ValueError(f"more than {np.iinfo(np.int16).max} robot ids in one replay buffer")
            i = self._robot_index[robot] = len(self.robots)
            self.robots.append(robot)
        return i

    # ----------------------------------------------------------------- sampling
    def sample(self, batch_size: int, rng: np.random.Generator, balance_robots: bool = False) -> dict:
        """Batch: ``obs``/``next_obs`` dicts, ``action``, ``reward``, ``terminal``,
        ``intervention`` (numpy; images stay uint8) and ``robot`` (robot ids, str). Uniform over
        transitions, or with ``balance_robots`` uniform over the robots that have transitions
        and then uniform within the drawn robot's."""
        idx = np.flatnonzero(self._valid)
        if idx.size == 0:
            raise ValueError("cannot sample from an empty replay buffer")
        if balance_robots and len(self.robots) > 1:
            idx = self._balanced(idx, batch_size, rng)
        else:
            idx = idx[rng.integers(0, idx.size, batch_size)]
        nxt = self._next[idx]
        return {
            "obs": self._gather(idx),
            "action": self._action[idx],
            "reward": self._reward[idx],
            "next_obs": self._gather(nxt),
            "terminal": self._terminal[idx].astype(np.float32),
            "intervention": self._intervention[idx].astype(np.float32),
            "robot": np.array(self.robots or [""])[self._robot[idx]],
        }

    def _balanced(self, idx: np.ndarray, batch_size: int, rng: np.random.Generator) -> np.ndarray:
        robots = self._robot[idx]
        order = np.argsort(robots, kind="stable")
        present, starts, counts = np.unique(robots[order], return_index=True, return_counts=True)
        pick = rng.integers(0, present.size, batch_size)
        within = (rng.random(batch_size) * counts[pick]).astype(np.int64)
        return idx[order[starts[pick] + np.minimum(within, counts[pick] - 1)]]

    def robot_counts(self) -> dict[str, int]:
        """Valid transitions in memory per robot id."""
        counts = np.bincount(self._robot[self._valid], minlength=len(self.robots))
        return {r: int(c) for r, c in zip(self.robots, counts)}

    def _gather(self, idx: np.ndarray) -> dict:
        out = {name: arr[idx] for name, arr in self._images.items()}
        out["proprio"] = self._proprio[idx]
        return out

    # ----------------------------------------------------------------- accounting
    def nbytes(self) -> int:
        """Bytes held by the buffer's arrays (all slots)."""
        arrays = [*self._images.values(), self._proprio, self._action, self._reward, self._terminal,
                  self._intervention, self._valid, self._episode, self._next, self._robot, self._written]
        return int(sum(a.nbytes for a in arrays))

    def raw_image_bytes_per_step(self) -> int:
        return int(sum(int(np.prod(c.shape)) for c in self.spec.cameras))

    # ----------------------------------------------------------------- persistence
    def _encode(self, t: Transition) -> bytes:
        """A transition record: both observations, so the record restores on its own."""
        flags = (_F_HAS_OBS | (_F_TERMINAL if t.terminal else 0)
                 | (_F_INTERVENTION if t.intervention else 0) | (_F_END if t.episode_end else 0))
        kind = _REC_ROBOT_STEP if t.robot_id else _REC_STEP
        parts = [_STEP_HEAD.pack(kind, flags, int(t.episode_id), int(t.step_index), float(t.reward))]
        if t.robot_id:
            rid = t.robot_id.encode()
            parts.append(bytes([len(rid)]) + rid)
        parts.append(np.asarray(t.action, np.float32).tobytes())
        for o in (t.obs, t.next_obs):
            parts += [np.ascontiguousarray(o[c.name]).tobytes() for c in self.spec.cameras]
            if self.spec.proprio_dim:
                parts.append(np.asarray(o["proprio"], np.float32).tobytes())
        return b"".join(parts)

    def _obs_bytes(self) -> int:
        return sum(int(np.prod(c.shape)) for c in self.spec.cameras) + 4 * self.spec.proprio_dim

    def _decode_obs(self, buf: memoryview, off: int) -> tuple[dict, int]:
        obs = {}
        for c in self.spec.cameras:
            n = int(np.prod(c.shape))
            obs[c.name] = np.frombuffer(buf, np.uint8, n, off).reshape(c.shape)
            off += n
        d = self.spec.proprio_dim
        obs["proprio"] = np.frombuffer(buf, np.float32, d, off) if d else np.zeros(0, np.float32)
        return obs, off + 4 * d

    def _append(self, payload: bytes) -> None:
        self._file.write(record_log.frame(payload))
        self._file.flush()
        if self.sync == "fsync":
            os.fsync(self._file.fileno())

    def _restore(self) -> bool:
        """Replay every intact record of the log; quarantine the rest. Returns whether the log
        (as left on disk) starts with a spec record."""
        data = self.path.read_bytes()
        keep: list[record_log.Chunk] = []
        drop: list[record_log.Chunk] = []
        restored, spec_ok = 0, False
        for chunk in record_log.scan(data):
            if not chunk.intact:
                drop.append(chunk)
                continue
            payload = chunk.payload
            if len(payload) and payload[0] == _REC_SPEC and not keep:
                try:
                    stored = PolicySpec.from_json(bytes(payload[1:]).decode())
                except ValueError as e:  # intact framing, unreadable content: not ours to trust
                    log.warning("replay log %s: unreadable spec record (%s)", self.path, e)
                    drop.append(chunk)
                    continue
                if stored != self.spec:
                    raise ValueError(
                        f"replay log {self.path} was written for a different policy spec "
                        f"({stored}); use another path or the matching spec")
                spec_ok = True
                keep.append(chunk)
            elif len(payload) and payload[0] in (_REC_STEP, _REC_ROBOT_STEP) and self._restore_step(payload):
                restored += 1
                keep.append(chunk)
            else:
                drop.append(chunk)
        head = b""
        if not spec_ok and keep:  # the spec record was lost: the kept records follow a new one
            head = record_log.frame(bytes([_REC_SPEC]) + self.spec.to_json().encode())
        self.restore_report = record_log.repair(self.path, data, keep, drop, head, sync=self.sync == "fsync")
        if self.restore_report:
            r = self.restore_report
            log.warning("replay log %s: %d damaged or unusable record(s) (%d bytes in %d region(s), at bytes %s) "
                        "moved to %s; restored the %d intact transition(s) around them", self.path,
                        r.damaged_records, r.damaged_bytes, len(r.regions), r.regions[:5], r.quarantine, restored)
        else:
            log.info("replay log %s: restored %d transitions", self.path, restored)
        return spec_ok or bool(keep)

    def _restore_step(self, payload: memoryview) -> bool:
        """Insert one intact step record; False when it cannot be used (wrong size for the
        spec, an unreadable robot id, or an older log's record that continues a transition
        which is lost)."""
        if len(payload) < _STEP_HEAD.size:
            return False
        kind, flags, ep, si, rew = _STEP_HEAD.unpack_from(payload, 0)
        p = _STEP_HEAD.size
        robot = ""
        if kind == _REC_ROBOT_STEP:
            n = payload[p] if len(payload) > p else 0
            try:
                robot = bytes(payload[p + 1:p + 1 + n]).decode()
            except UnicodeDecodeError:
                return False
            p += 1 + n
        dim, ob = self.spec.action.dim, self._obs_bytes()
        has_obs = bool(flags & _F_HAS_OBS)
        if len(payload) != p + 4 * dim + ob * (2 if has_obs else 1):
            log.warning("replay log %s: a record of episode %d step %d has %d bytes, not what the spec gives",
                        self.path, ep, si, len(payload))
            return False
        a = np.frombuffer(payload, np.float32, dim, p)
        p += 4 * dim
        obs = None
        if has_obs:
            obs, p = self._decode_obs(payload, p)
        nxt, p = self._decode_obs(payload, p)
        continues = self._continues_at(robot, ep, si)
        if obs is None and not continues:
            return False  # an older log's record without its own observation, whose predecessor is lost
        self._insert(None if continues else obs, nxt, a, rew, bool(flags & _F_TERMINAL),
                     bool(flags & _F_INTERVENTION), ep, si, bool(flags & _F_END), robot)
        return True


def _check_robot_id(robot_id: str) -> str:
    if len(robot_id.encode()) > 255:
        raise ValueError(f"robot id {robot_id[:40]!r}... is longer than 255 bytes")
    return robot_id


def sample_mixed(online: VisionReplayBuffer, offline: VisionReplayBuffer | None, batch_size: int,
                 rng: np.random.Generator, offline_fraction: float = 0.5, balance_robots: bool = False) -> dict:
    """RLPD symmetric sampling: ``offline_fraction`` of the batch from ``offline`` (intervention
    data and demonstrations), the rest from ``online``. Falls back to one buffer when the other
    is empty. ``balance_robots``: see :meth:`VisionReplayBuffer.sample`."""
    n_off = int(round(batch_size * offline_fraction)) if offline is not None and len(offline) else 0
    if len(online) == 0:
        n_off = batch_size
    if n_off == 0:
        return online.sample(batch_size, rng, balance_robots)
    if n_off == batch_size:
        return offline.sample(batch_size, rng, balance_robots)
    return concat_batches(online.sample(batch_size - n_off, rng, balance_robots),
                          offline.sample(n_off, rng, balance_robots))


def concat_batches(a: dict, b: dict) -> dict:
    """Concatenate two batches (nested dicts of arrays) along the first axis; pure."""
    return {k: concat_batches(a[k], b[k]) if isinstance(a[k], dict) else np.concatenate([a[k], b[k]])
            for k in a}

