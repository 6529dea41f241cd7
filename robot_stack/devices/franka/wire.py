"""Wire protocol of the ``direct`` Franka backend's UDP link (both ends' packing).

:class:`DirectRobot` implements :class:`robot_stack.devices.franka.base.FrankaRobot` against
:class:`robot_stack.sim.direct_world.DirectWorld`, which runs the same task scene in MuJoCo at
a modest control rate (no 1 kHz libfranka loop on either side). The Franka node uses it
unchanged (``robot.backend: direct``): safety filter, watchdog, home moves and gripper are the
node's code path for every backend. Pick it with :func:`robot_stack.devices.franka.base.make_robot`.

Wire protocol (this module owns both ends' packing; little-endian, one datagram each way):

* request  = header + payload; reply = header + :data:`STATE` + UTF-8 message (may be empty).
* header   = ``magic "RSDW", version u16, kind u8, status u8, seq u32``; a reply repeats the
  request's kind and seq and carries the server's version.
* kinds and payloads: ``HELLO`` / ``STATE`` / ``STOP`` / ``RECOVER`` (none); ``TWIST``
  (lin xyz m/s, ang xyz rad/s, hold s: the world holds the twist that long, then brings the
  arm to rest by itself, like franky's segment hold); ``GRIPPER_MOVE`` (width m, speed m/s);
  ``GRIPPER_GRASP`` (speed m/s, force N); ``MOVE_HOME`` (T_base_ee row-major 16, then the
  servo limits of :class:`robot_stack.devices.franka.base.PoseServo`: max lin m/s, max ang rad/s,
  max lin accel m/s^2, gain 1/s, tolerance m, tolerance rad, rest speed m/s).
* status: ``OK``; ``REJECTED`` (a robot error: reflex state, command refused, message says
  why); ``BAD_REQUEST`` (malformed); ``BAD_VERSION`` (the peer speaks another version).
* state: robot time s, q (7) rad, dq (7) rad/s, T_base_ee (16, row-major), EE linear (3) m/s,
  EE angular (3) rad/s, gripper width m, flags (:data:`FLAG_ERROR`, :data:`FLAG_HOMING`,
  :data:`FLAG_HOME_REACHED`, :data:`FLAG_HOME_FAILED`).

A different version on either side is refused with a message naming both versions; a
datagram without the magic is ignored by the server (not a robot_stack peer).
"""
from __future__ import annotations

import enum
import struct
from dataclasses import dataclass

import numpy as np

MAGIC = b"RSDW"
PROTOCOL_VERSION = 1
"""Bump on any change of the packing below; both ends then refuse the other's datagrams."""
HEADER = struct.Struct("<4sHBBI")
STATE = struct.Struct("<d7d7d16d3d3ddB")
MAX_DATAGRAM = 2048

FLAG_ERROR = 1
"""The world is in a reflex/error state: commands are refused until RECOVER."""
FLAG_HOMING = 2
"""A MOVE_HOME is running."""
FLAG_HOME_REACHED = 4
"""The last MOVE_HOME reached its pose (cleared by the next motion command)."""
FLAG_HOME_FAILED = 8
"""The last MOVE_HOME was aborted (error, or pre-empted by another command)."""


class Kind(enum.IntEnum):
    HELLO = 1
    STATE = 2
    TWIST = 3
    STOP = 4
    GRIPPER_MOVE = 5
    GRIPPER_GRASP = 6
    MOVE_HOME = 7
    RECOVER = 8


class Status(enum.IntEnum):
    OK = 0
    REJECTED = 1
    BAD_REQUEST = 2
    BAD_VERSION = 3


PAYLOADS: dict[Kind, struct.Struct] = {
    Kind.HELLO: struct.Struct("<"),
    Kind.STATE: struct.Struct("<"),
    Kind.TWIST: struct.Struct("<7d"),
    Kind.STOP: struct.Struct("<"),
    Kind.GRIPPER_MOVE: struct.Struct("<2d"),
    Kind.GRIPPER_GRASP: struct.Struct("<2d"),
    Kind.MOVE_HOME: struct.Struct("<16d7d"),
    Kind.RECOVER: struct.Struct("<"),
}


class ProtocolError(ValueError):
    """A datagram that does not follow this protocol (wrong magic, kind, size)."""


class VersionMismatch(ProtocolError):
    """The peer speaks another protocol version."""

    def __init__(self, ours: int, theirs: int):
        super().__init__(f"protocol version mismatch: this side speaks v{ours}, the peer v{theirs}")
        self.ours, self.theirs = ours, theirs


@dataclass(frozen=True)
class WireState:
    """The state part of a reply (what DirectWorld measures each control step)."""

    t_s: float
    q_rad: np.ndarray
    dq_rad_s: np.ndarray
    T_base_ee: np.ndarray
    ee_lin_m_s: np.ndarray
    ee_ang_rad_s: np.ndarray
    gripper_width_m: float
    flags: int

    def pack(self) -> bytes:
        return STATE.pack(self.t_s, *np.asarray(self.q_rad, float), *np.asarray(self.dq_rad_s, float),
                          *np.asarray(self.T_base_ee, float).reshape(16), *np.asarray(self.ee_lin_m_s, float),
                          *np.asarray(self.ee_ang_rad_s, float), self.gripper_width_m, self.flags)

    @classmethod
    def unpack(cls, buf: bytes) -> "WireState":
        v = STATE.unpack(buf)
        return cls(t_s=v[0], q_rad=np.array(v[1:8]), dq_rad_s=np.array(v[8:15]),
                   T_base_ee=np.array(v[15:31]).reshape(4, 4), ee_lin_m_s=np.array(v[31:34]),
                   ee_ang_rad_s=np.array(v[34:37]), gripper_width_m=v[37], flags=v[38])

    @classmethod
    def empty(cls) -> "WireState":
        return cls(0.0, np.zeros(7), np.zeros(7), np.eye(4), np.zeros(3), np.zeros(3), float("nan"), 0)


def pack_request(kind: Kind, seq: int, values=(), version: int = PROTOCOL_VERSION) -> bytes:
    return HEADER.pack(MAGIC, version, int(kind), 0, seq & 0xFFFFFFFF) + PAYLOADS[kind].pack(*values)


def unpack_request(data: bytes) -> tuple[Kind, int, tuple]:
    """(kind, seq, payload values); ProtocolError / VersionMismatch on a bad datagram."""
    magic, version, kind, _, seq = _header(data)
    if version != PROTOCOL_VERSION:
        raise VersionMismatch(PROTOCOL_VERSION, version)
    try:
        k = Kind(kind)
    except ValueError:
        raise ProtocolError(f"unknown request kind {kind}") from None
    body = data[HEADER.size:]
    if len(body) != PAYLOADS[k].size:
        raise ProtocolError(f"{k.name} payload of {len(body)} bytes, expected {PAYLOADS[k].size}")
    return k, seq, PAYLOADS[k].unpack(body)


def pack_reply(kind: int, seq: int, status: Status, state: WireState, message: str = "") -> bytes:
    return (HEADER.pack(MAGIC, PROTOCOL_VERSION, int(kind), int(status), seq & 0xFFFFFFFF) + state.pack()
            + message.encode("utf-8")[:MAX_DATAGRAM - HEADER.size - STATE.size])


def unpack_reply(data: bytes) -> tuple[int, int, Status, WireState, str]:
    """(kind, seq, status, state, message); VersionMismatch before anything else is read."""
    _, version, kind, status, seq = _header(data)
    if version != PROTOCOL_VERSION:
        raise VersionMismatch(PROTOCOL_VERSION, version)
    if len(data) < HEADER.size + STATE.size:
        raise ProtocolError(f"reply of {len(data)} bytes is too short for a state")
    state = WireState.unpack(data[HEADER.size:HEADER.size + STATE.size])
    return kind, seq, Status(status), state, data[HEADER.size + STATE.size:].decode("utf-8", "replace")


def _header(data: bytes) -> tuple:
    if len(data) < HEADER.size or data[:4] != MAGIC:
        raise ProtocolError("not a robot_stack direct-link datagram (bad magic or too short)")
    return HEADER.unpack_from(data)


# -- client --------------------------------------------------------------------------------------
