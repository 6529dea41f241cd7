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
:meth:`add` appends one record: ``b"RSRB" | u32 payload length | u32 crc32(payload) |
payload``. A step is **acknowledged** when ``add()`` has returned: by then its record has
been written and flushed to the operating system (``sync="flush"``: survives the process
being killed, e.g. ``kill -9``) or also fsync'd (``sync="fsync"``, the default: survives a
power cut). On restart the log is read up to the first incomplete or corrupt record, the
file is truncated there (a half-written step is never loaded, and later appends do not
follow garbage), and all complete records are replayed. The log is the full history; only
the last ``capacity`` slots are kept in memory.

A step record of a named robot (record type 2) holds the robot id after the step head; logs
written before robot ids existed hold type 1 records only and restore as robot ``""``.
"""
from __future__ import annotations

import io
import logging
import os
import pathlib
import struct
import zlib
from dataclasses import dataclass

import numpy as np

from robot_stack.rl.labelling import Transition
from robot_stack.types.spec import PolicySpec

log = logging.getLogger(__name__)

_MAGIC = b"RSRB"
_HEADER = struct.Struct("<4sII")  # magic, payload length, crc32
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

    # ----------------------------------------------------------------- lifecycle
    def open(self) -> "VisionReplayBuffer":
        """Restore from the log at ``path`` (if any) and open it for appending."""
        if self.path is None or self._file is not None:
            return self
        self.path.parent.mkdir(parents=True, exist_ok=True)
        good_end = self._restore() if self.path.exists() else 0
        if self.path.exists() and self.path.stat().st_size != good_end:
            log.warning("replay log %s: dropping %d bytes of an incomplete/corrupt record",
                        self.path, self.path.stat().st_size - good_end)
            os.truncate(self.path, good_end)
        self._file = open(self.path, "ab")
        if good_end == 0:
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
        has_obs = not self._continues(t)
        if self.path is not None:
            if self._file is None:
                raise RuntimeError("replay buffer has a log path but is not open; call open() first")
            self._append(self._encode(t, has_obs))
        self._insert(t.obs if has_obs else None, t.next_obs, np.asarray(t.action, np.float32), t.reward,
                     t.terminal, t.intervention, t.episode_id, t.step_index, t.episode_end, robot)

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
    def _encode(self, t: Transition, has_obs: bool) -> bytes:
        flags = ((_F_HAS_OBS if has_obs else 0) | (_F_TERMINAL if t.terminal else 0)
                 | (_F_INTERVENTION if t.intervention else 0) | (_F_END if t.episode_end else 0))
        kind = _REC_ROBOT_STEP if t.robot_id else _REC_STEP
        parts = [_STEP_HEAD.pack(kind, flags, int(t.episode_id), int(t.step_index), float(t.reward))]
        if t.robot_id:
            rid = t.robot_id.encode()
            parts.append(bytes([len(rid)]) + rid)
        parts.append(np.asarray(t.action, np.float32).tobytes())
        for o in ((t.obs, t.next_obs) if has_obs else (t.next_obs,)):
            parts += [np.ascontiguousarray(o[c.name]).tobytes() for c in self.spec.cameras]
            if self.spec.proprio_dim:
                parts.append(np.asarray(o["proprio"], np.float32).tobytes())
        return b"".join(parts)

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
        self._file.write(_HEADER.pack(_MAGIC, len(payload), zlib.crc32(payload)) + payload)
        self._file.flush()
        if self.sync == "fsync":
            os.fsync(self._file.fileno())

    def _restore(self) -> int:
        """Replay complete records from the log; return the byte offset after the last good one."""
        data = memoryview(self.path.read_bytes())
        off, good = 0, 0
        restored = 0
        while off + _HEADER.size <= len(data):
            magic, length, crc = _HEADER.unpack_from(data, off)
            start, end = off + _HEADER.size, off + _HEADER.size + length
            if magic != _MAGIC or end > len(data) or zlib.crc32(data[start:end]) != crc:
                break
            payload = data[start:end]
            if payload[0] == _REC_SPEC:
                stored = PolicySpec.from_json(bytes(payload[1:]).decode())
                if stored != self.spec:
                    raise ValueError(
                        f"replay log {self.path} was written for a different policy spec "
                        f"({stored}); use another path or the matching spec")
            elif payload[0] in (_REC_STEP, _REC_ROBOT_STEP):
                _, flags, ep, si, rew = _STEP_HEAD.unpack_from(payload, 0)
                p = _STEP_HEAD.size
                robot = ""
                if payload[0] == _REC_ROBOT_STEP:
                    robot = bytes(payload[p + 1:p + 1 + payload[p]]).decode()
                    p += 1 + payload[p]
                a = np.frombuffer(payload, np.float32, self.spec.action.dim, p)
                p += 4 * self.spec.action.dim
                obs = None
                if flags & _F_HAS_OBS:
                    obs, p = self._decode_obs(payload, p)
                nxt, p = self._decode_obs(payload, p)
                if obs is None and not self._continues_at(robot, ep, si):
                    raise ValueError(f"replay log {self.path}: record at byte {off} continues an episode "
                                     "that is not the robot's previous record's; the log is inconsistent")
                self._insert(obs, nxt, a, rew, bool(flags & _F_TERMINAL), bool(flags & _F_INTERVENTION),
                             ep, si, bool(flags & _F_END), robot)
                restored += 1
            off = good = end
        log.info("replay log %s: restored %d transitions", self.path, restored)
        return good


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

