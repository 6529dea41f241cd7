"""The ``direct`` Franka backend: a small UDP link to the sim world, without libfranka.

:class:`DirectRobot` implements :class:`robot_stack.core.franka.FrankaRobot` against
:class:`robot_stack.sim.direct_world.DirectWorld`, which runs the same task scene in MuJoCo at
a modest control rate (no 1 kHz libfranka loop on either side). The Franka node uses it
unchanged (``robot.backend: direct``): safety filter, watchdog, home moves and gripper are the
node's code path for every backend. Pick it with :func:`robot_stack.core.franka.make_robot`.

Wire protocol (this module owns both ends' packing; little-endian, one datagram each way):

* request  = header + payload; reply = header + :data:`STATE` + UTF-8 message (may be empty).
* header   = ``magic "RSDW", version u16, kind u8, status u8, seq u32``; a reply repeats the
  request's kind and seq and carries the server's version.
* kinds and payloads: ``HELLO`` / ``STATE`` / ``STOP`` / ``RECOVER`` (none); ``TWIST``
  (lin xyz m/s, ang xyz rad/s, hold s: the world holds the twist that long, then brings the
  arm to rest by itself, like franky's segment hold); ``GRIPPER_MOVE`` (width m, speed m/s);
  ``GRIPPER_GRASP`` (speed m/s, force N); ``MOVE_HOME`` (T_base_ee row-major 16, then the
  servo limits of :class:`robot_stack.core.franka.PoseServo`: max lin m/s, max ang rad/s,
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

import dataclasses
import enum
import logging
import math
import socket
import struct
import threading
import time
from dataclasses import dataclass

import numpy as np

from robot_stack.core.franka import (
    GRIPPER_MAX_WIDTH_M,
    FrankaConfig,
    RobotConnectionError,
    RobotError,
    RobotState,
)

logger = logging.getLogger(__name__)

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
class DirectRobot:
    """FrankaRobot over the direct link to a :class:`~robot_stack.sim.direct_world.DirectWorld`.

    Thread-safe: one request is in flight at a time (the node reads state from its control
    tick and its home worker, and commands the gripper from a callback). Each call is one
    datagram and its reply; no reply within ``direct_timeout_s`` raises RobotConnectionError.
    """

    def __init__(self, config: FrankaConfig, clock=time.monotonic, sleep=time.sleep):
        self.config = config
        self._clock = clock
        self._sleep = sleep
        self._sock: socket.socket | None = None
        self._lock = threading.Lock()
        self._seq = 0

    @property
    def address(self) -> tuple[str, int]:
        return self.config.robot_ip, self.config.direct_port

    # connection
    def connect(self) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            # A connected UDP socket gets ICMP "port unreachable" as ConnectionRefusedError:
            # nobody listening is reported at once instead of after the timeout.
            sock.connect(self.address)
        except OSError as e:
            sock.close()
            raise self._unreachable(e) from e
        sock.settimeout(self.config.direct_timeout_s)
        with self._lock:
            self._sock = sock
        try:
            state = self._call(Kind.HELLO)
        except RobotConnectionError:
            self.close()
            raise
        if state.flags & FLAG_ERROR:
            logger.warning("direct sim world reports an error state at connect: recovering")
            self.recover()
        logger.info("connected to the direct sim world at %s:%d", *self.address)

    def _unreachable(self, e: Exception) -> RobotConnectionError:
        host, port = self.address
        return RobotConnectionError(
            f"no direct sim world answers on {host}:{port} ({e}): is sim_world_node running with "
            f"physics: direct, hostname {host} and direct_port {port}? (robot.robot_ip / robot.direct_port "
            f"must match them)")

    def close(self) -> None:
        if self._sock is None:
            return
        try:
            self.stop()
        except (RobotError, RobotConnectionError) as e:
            logger.error("could not stop the arm cleanly on close: %s", e)
        finally:
            with self._lock:
                if self._sock is not None:
                    self._sock.close()
                self._sock = None

    def __enter__(self):
        self.connect()
        return self

    def __exit__(self, *exc):
        self.close()

    def _call(self, kind: Kind, values=(), what: str | None = None) -> WireState:
        """One request/reply; RobotError on REJECTED, RobotConnectionError on no/bad answer."""
        what = what or kind.name.lower()
        with self._lock:
            if self._sock is None:
                raise RobotConnectionError("robot not connected: call connect() first")
            self._seq = (self._seq + 1) & 0xFFFFFFFF
            seq = self._seq
            try:
                self._sock.send(pack_request(kind, seq, values))
                while True:
                    data = self._sock.recv(MAX_DATAGRAM)
                    try:
                        r_kind, r_seq, status, state, message = unpack_reply(data)
                    except VersionMismatch as e:
                        raise RobotConnectionError(
                            f"{what}: the sim world at {self.address[0]}:{self.address[1]} speaks direct-link "
                            f"protocol v{e.theirs}, this robot_stack v{e.ours}: run the sim world and the franka "
                            f"node from the same robot_stack version") from e
                    except ProtocolError as e:
                        raise RobotConnectionError(f"{what}: {e} from {self.address[0]}:{self.address[1]}: "
                                                   f"is something else listening on that port?") from e
                    if r_seq == seq and r_kind == kind:
                        break
                    # A late reply to an earlier, timed-out request: skip it.
            except socket.timeout as e:
                raise RobotConnectionError(f"{what}: no reply from the direct sim world within "
                                           f"{self.config.direct_timeout_s} s (stopped or stalled?)") from e
            except OSError as e:
                raise self._unreachable(e) from e
        if status == Status.BAD_VERSION:
            raise RobotConnectionError(f"{what}: the sim world refused protocol v{PROTOCOL_VERSION}: {message}")
        if status == Status.BAD_REQUEST:
            raise RobotConnectionError(f"{what}: the sim world called the request malformed: {message}")
        if status == Status.REJECTED:
            raise RobotError(f"{what}: {message}")
        return state

    # state
    def read_state(self) -> RobotState:
        state = _to_robot_state(self._call(Kind.STATE, what="read state"))
        if not self.config.gripper_enabled:  # as with franky: no hand, no width
            state = dataclasses.replace(state, gripper_width_m=float("nan"))
        return state

    # motion
    def send_twist(self, lin_m_s, ang_rad_s) -> None:
        lin = np.asarray(lin_m_s, dtype=np.float64).reshape(3)
        ang = np.asarray(ang_rad_s, dtype=np.float64).reshape(3)
        self._call(Kind.TWIST, (*lin, *ang, self.config.segment_hold_s), "velocity command")

    def stop(self) -> None:
        try:
            self._call(Kind.STOP)
        except RobotError as e:
            logger.warning("stop refused (%s): the world holds the arm in its error state", e)
        deadline = self._clock() + self.config.stop_timeout_s
        while True:
            s = self._call(Kind.STATE, what="stop")
            if np.linalg.norm(s.ee_lin_m_s) < 1e-3 and np.linalg.norm(s.ee_ang_rad_s) < 1e-2:
                return
            if self._clock() >= deadline:
                logger.error("arm still moving %.1f s after stop", self.config.stop_timeout_s)
                return
            self._sleep(0.01)  # polling pace while the world ramps the arm down

    def move_home(self, T_base_ee: np.ndarray, timeout_s: float) -> bool:
        """The world servos the EE to the pose with the config's home limits (the same law as
        :func:`robot_stack.core.franka.servo_to_pose`, run at the world's control rate); this
        call polls until it reports the pose reached, failed, or ``timeout_s`` passes."""
        c = self.config
        T = np.asarray(T_base_ee, dtype=np.float64).reshape(4, 4)
        self._call(Kind.MOVE_HOME, (*T.reshape(16), c.home_max_lin_speed_m_s, c.home_max_ang_speed_rad_s,
                                    c.home_max_lin_accel_m_s2, c.home_gain_1_s, c.home_tolerance_m,
                                    c.home_tolerance_rad, 0.01), "home move")
        deadline = self._clock() + timeout_s
        while self._clock() < deadline:
            s = self._call(Kind.STATE, what="home move")
            if s.flags & FLAG_HOME_REACHED:
                return True
            if s.flags & FLAG_ERROR:
                raise RobotError("robot in reflex/error state during the home move")
            if s.flags & FLAG_HOME_FAILED:
                logger.error("home move aborted by the sim world")
                return False
            self._sleep(1.0 / c.home_rate_hz)  # polling pace; the world runs the servo
        self.stop()
        s = self.read_state()
        logger.error("home move not finished within %.1f s: EE at %s, target %s", timeout_s,
                     np.round(s.p_base_ee, 4).tolist(), np.round(T[:3, 3], 4).tolist())
        return False

    def gripper_move(self, width_m: float) -> None:
        if not self.config.gripper_enabled:
            raise RobotError("no gripper connected (gripper_enabled is false)")
        width = float(np.clip(width_m, 0.0, GRIPPER_MAX_WIDTH_M))
        self._call(Kind.GRIPPER_MOVE, (width, self.config.gripper_speed_m_s), "gripper move")

    def gripper_grasp(self) -> None:
        if not self.config.gripper_enabled:
            raise RobotError("no gripper connected (gripper_enabled is false)")
        self._call(Kind.GRIPPER_GRASP, (self.config.gripper_speed_m_s, self.config.gripper_force_n), "gripper grasp")

    def recover(self) -> bool:
        s = self._call(Kind.RECOVER, what="error recovery")
        return not s.flags & FLAG_ERROR


def _to_robot_state(s: WireState) -> RobotState:
    return RobotState(t_s=s.t_s, T_base_ee=s.T_base_ee, ee_lin_m_s=s.ee_lin_m_s, ee_ang_rad_s=s.ee_ang_rad_s,
                      q_rad=s.q_rad, dq_rad_s=s.dq_rad_s,
                      gripper_width_m=s.gripper_width_m if math.isfinite(s.gripper_width_m) else float("nan"),
                      has_error=bool(s.flags & FLAG_ERROR))
