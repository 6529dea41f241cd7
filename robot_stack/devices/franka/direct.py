"""The ``direct`` Franka backend: a small UDP link to the sim world, without libfranka.

:class:`DirectRobot` implements :class:`robot_stack.devices.franka.base.FrankaRobot` against
:class:`robot_stack.sim.direct_world.DirectWorld`, which runs the same task scene in MuJoCo at
a modest control rate (no 1 kHz libfranka loop on either side). The Franka node uses it
unchanged (``robot.backend: direct``): safety filter, watchdog, home moves and gripper are the
node's code path for every backend. Pick it with :func:`robot_stack.devices.franka.base.make_robot`.
The datagrams are those of :mod:`robot_stack.devices.franka.wire`.
"""
from __future__ import annotations

import dataclasses
import logging
import math
import socket
import threading
import time

import numpy as np

from robot_stack.devices.franka.base import (
    GRIPPER_MAX_WIDTH_M,
    FrankaConfig,
    RobotConnectionError,
    RobotError,
    RobotState,
)
from robot_stack.devices.franka.wire import (
    FLAG_ERROR, FLAG_HOME_FAILED, FLAG_HOME_REACHED, MAX_DATAGRAM, PROTOCOL_VERSION, Kind,
    ProtocolError, Status, VersionMismatch, WireState, pack_request, unpack_reply,
)

logger = logging.getLogger(__name__)


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
        :func:`robot_stack.devices.franka.base.servo_to_pose`, run at the world's control rate); this
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
