"""Crash-safe record files: framing, reads that resynchronise after damage, quarantine, and a
binary StepRecord codec (ROS-free; the replay logs, the actor's step spool and the learner's
pending step use it).

Framing
-------
Every record is ``b"RSRB" | u32 payload length | u32 crc32(payload) | payload`` (little
endian). A record is *intact* when its marker, length and CRC agree.

Reading damaged files
---------------------
:func:`scan` walks a file's bytes record by record. Where a record is not intact (a flipped
byte, a record cut short by a crash, garbage), it searches forward for the next offset at which
an intact record starts (the marker plus a matching CRC: a false match needs the 4-byte marker
and a 32-bit CRC to agree by chance) and reports the bytes in between as one damaged range. So
damage costs the damaged records only: every intact record after it is still read.

:func:`repair` then moves what the caller could not use into ``<file>.quarantine`` (appended,
each chunk as ``b"RSRQ" | u64 offset in the damaged file | u64 length | the bytes``, so nothing
is deleted) and rewrites the file with the kept records only (atomically: a temporary file
renamed into place; a file whose only damage is its tail is truncated instead).
"""
from __future__ import annotations

import json
import os
import pathlib
import struct
import zlib
from dataclasses import dataclass, field
from typing import Iterator

import numpy as np

from robot_stack.types.records import StepRecord

MAGIC = b"RSRB"
HEADER = struct.Struct("<4sII")  # marker, payload length, crc32(payload)
QUARANTINE_MAGIC = b"RSRQ"
QUARANTINE_HEADER = struct.Struct("<4sQQ")  # marker, offset in the damaged file, length
MAX_PAYLOAD = 1 << 31
"""Largest payload a record may announce (a length beyond it is damage, not a record)."""


def frame(payload: bytes) -> bytes:
    """One framed record."""
    if len(payload) >= MAX_PAYLOAD:
        raise ValueError(f"record payload of {len(payload)} bytes is too large")
    return HEADER.pack(MAGIC, len(payload), zlib.crc32(payload)) + payload


def _intact_end(data, off: int) -> int | None:
    """End offset of the intact record starting at ``off``, or None."""
    if off + HEADER.size > len(data):
        return None
    magic, length, crc = HEADER.unpack_from(data, off)
    end = off + HEADER.size + length
    if magic != MAGIC or length >= MAX_PAYLOAD or end > len(data):
        return None
    if zlib.crc32(data[off + HEADER.size:end]) != crc:
        return None
    return end


def _next_intact(data: bytes, start: int) -> int | None:
    """Offset of the next intact record at or after ``start``; None when there is none."""
    pos = start
    while True:
        pos = data.find(MAGIC, pos)
        if pos < 0:
            return None
        if _intact_end(data, pos) is not None:
            return pos
        pos += 1


@dataclass
class Chunk:
    """A stretch of a record file: an intact record (``payload`` set) or a damaged range."""

    start: int
    end: int
    payload: memoryview | None = None

    @property
    def intact(self) -> bool:
        return self.payload is not None


def scan(data: bytes) -> Iterator[Chunk]:
    """The file's chunks in order: each intact record, and each damaged range in between."""
    view = memoryview(data)
    off, n = 0, len(data)
    while off < n:
        end = _intact_end(data, off)
        if end is not None:
            yield Chunk(off, end, view[off + HEADER.size:end])
            off = end
            continue
        nxt = _next_intact(data, off + 1)
        stop = n if nxt is None else nxt
        yield Chunk(off, stop)
        off = stop


def records_in(data: bytes, start: int, end: int) -> int:
    """About how many records a damaged range held: the record markers in it (at least 1)."""
    return max(1, bytes(data[start:end]).count(MAGIC))


@dataclass
class RepairReport:
    """What :func:`repair` did."""

    damaged_records: int = 0
    """Records lost to damage (estimated from the record markers in the damaged ranges)."""
    damaged_bytes: int = 0
    quarantine: pathlib.Path | None = None
    """Where the damaged bytes went (None: nothing was damaged)."""
    regions: list[tuple[int, int]] = field(default_factory=list)
    """Damaged byte ranges of the original file."""

    def __bool__(self) -> bool:
        return self.damaged_bytes > 0


def quarantine_path(path: str | os.PathLike) -> pathlib.Path:
    path = pathlib.Path(path)
    return path.with_name(path.name + ".quarantine")


def repair(path: str | os.PathLike, data: bytes, keep: list[Chunk], drop: list[Chunk], head: bytes = b"",
           sync: bool = False) -> RepairReport:
    """Move the ``drop`` chunks of ``path`` (whose content is ``data``) to its quarantine file
    and leave ``head`` (framed records to put first, e.g. a replacement for a lost header
    record) followed by the ``keep`` chunks in ``path``. ``sync``: fsync both files."""
    path = pathlib.Path(path)
    report = RepairReport()
    if not drop and not head:
        return report
    qpath = quarantine_path(path)
    with open(qpath, "ab") as q:
        for c in drop:
            q.write(QUARANTINE_HEADER.pack(QUARANTINE_MAGIC, c.start, c.end - c.start))
            q.write(data[c.start:c.end])
            report.damaged_bytes += c.end - c.start
            report.damaged_records += records_in(data, c.start, c.end) if not c.intact else 1
            report.regions.append((c.start, c.end))
        q.flush()
        if sync:
            os.fsync(q.fileno())
    report.quarantine = qpath if drop else None
    tail_only = not head and all(c.start >= max((k.end for k in keep), default=0) for c in drop)
    if tail_only:
        os.truncate(path, max((k.end for k in keep), default=0))
        return report
    tmp = path.with_name(path.name + ".repair")
    with open(tmp, "wb") as f:
        f.write(head)
        for c in keep:
            f.write(data[c.start:c.end])
        f.flush()
        if sync:
            os.fsync(f.fileno())
    os.replace(tmp, path)
    return report


# ----------------------------------------------------------------------------- StepRecord codec
_CODEC_HEAD = struct.Struct("<I")  # length of the JSON header


def encode_step(step: StepRecord) -> bytes:
    """A StepRecord as bytes: u32 header length, a JSON header, then the arrays' raw bytes."""
    names = step.camera_names
    images = [np.ascontiguousarray(step.obs[n], np.uint8) for n in names]
    proprio = np.ascontiguousarray(step.obs.get("proprio", np.zeros(0, np.float32)), np.float32)
    action = np.ascontiguousarray(step.action, np.float32).ravel()
    policy_action = np.ascontiguousarray(step.policy_action, np.float32).ravel()
    head = json.dumps({
        "episode_id": int(step.episode_id), "step_index": int(step.step_index),
        "cameras": [[n, *img.shape] for n, img in zip(names, images)],
        "proprio": int(proprio.size), "action": int(action.size), "policy_action": int(policy_action.size),
        "intervention": bool(step.intervention), "is_first": bool(step.is_first), "is_last": bool(step.is_last),
        "is_terminal": bool(step.is_terminal), "success": bool(step.success),
        "policy_version": int(step.policy_version), "stamp_s": float(step.stamp_s),
        "image_stamps_s": [float(s) for s in step.image_stamps_s],
        "image_frame_ids": [str(f) for f in step.image_frame_ids],
        "proprio_names": list(step.proprio_names),
    }).encode()
    return b"".join([_CODEC_HEAD.pack(len(head)), head, *(i.tobytes() for i in images), proprio.tobytes(),
                     action.tobytes(), policy_action.tobytes()])


def decode_step(payload: bytes | memoryview) -> StepRecord:
    """Inverse of :func:`encode_step`; ValueError when the bytes do not hold one."""
    buf = bytes(payload)
    try:
        (n,) = _CODEC_HEAD.unpack_from(buf, 0)
        h = json.loads(buf[_CODEC_HEAD.size:_CODEC_HEAD.size + n])
        off = _CODEC_HEAD.size + n
        obs = {}
        for name, height, width, ch in h["cameras"]:
            size = int(height) * int(width) * int(ch)
            obs[str(name)] = np.frombuffer(buf, np.uint8, size, off).reshape(int(height), int(width), int(ch))
            off += size
        arrays = []
        for key in ("proprio", "action", "policy_action"):
            count = int(h[key])
            arrays.append(np.frombuffer(buf, np.float32, count, off).copy())
            off += 4 * count
        if off != len(buf):
            raise ValueError(f"{len(buf) - off} bytes left over")
        obs["proprio"] = arrays[0]
        return StepRecord(
            episode_id=int(h["episode_id"]), step_index=int(h["step_index"]), obs=obs, action=arrays[1],
            policy_action=arrays[2], intervention=bool(h["intervention"]), is_first=bool(h["is_first"]),
            is_last=bool(h["is_last"]), is_terminal=bool(h["is_terminal"]), success=bool(h["success"]),
            policy_version=int(h["policy_version"]), stamp_s=float(h["stamp_s"]),
            image_stamps_s=[float(s) for s in h["image_stamps_s"]],
            image_frame_ids=[str(f) for f in h["image_frame_ids"]], proprio_names=tuple(h["proprio_names"]),
        )
    except (struct.error, ValueError, KeyError, TypeError, UnicodeDecodeError) as e:
        raise ValueError(f"not an encoded step record: {e}") from None


__all__ = ["Chunk", "MAGIC", "RepairReport", "decode_step", "encode_step", "frame", "quarantine_path",
           "records_in", "repair", "scan"]
