"""The ``fake`` Franka backend: a pure-Python kinematic integrator of the EE twist, for unit
tests and for running nodes without any simulator."""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from robot_stack.devices.franka.base import (
    FR3_READY_Q_RAD,
    GRIPPER_MAX_WIDTH_M,
    FrankaConfig,
    RobotConnectionError,
    RobotError,
    RobotState,
)
from robot_stack.types.geometry import T_from_xyz_quat, rotvec_to_R


@dataclass
class _FakeCommand:
    lin: np.ndarray = field(default_factory=lambda: np.zeros(3))
    ang: np.ndarray = field(default_factory=lambda: np.zeros(3))
    t: float = -math.inf


class FakeRobot:
    """Kinematic EE integrator: the actual twist follows the commanded one with a first-order
    lag, each command is held for ``segment_hold_s`` like the franky backend, joints do not move
    (no kinematics). ``inject_error()`` makes the next commands raise :class:`RobotError`."""

    def __init__(self, config: FrankaConfig | None = None, clock: Callable[[], float] | None = None,
                 T_base_ee: np.ndarray | None = None):
        self.config = config or FrankaConfig()
        self._clock = clock or time.monotonic
        self._T0 = T_from_xyz_quat((0.5, 0.0, 0.4), (1.0, 0.0, 0.0, 0.0)) if T_base_ee is None else np.array(T_base_ee, float)
        self.connected = False
        self.T_base_ee = self._T0.copy()
        self.lin = np.zeros(3)
        self.ang = np.zeros(3)
        self.gripper_width_m = GRIPPER_MAX_WIDTH_M
        self.cmd = _FakeCommand()
        self.errors_pending = 0
        self.in_error = False
        self.recover_calls = 0
        self.recover_succeeds = True
        self.sent: list[tuple[float, np.ndarray, np.ndarray]] = []
        """Every twist received by send_twist, with the fake clock time (for tests)."""
        self._t = None

    def connect(self) -> None:
        self.connected = True
        self._t = self._clock()

    def close(self) -> None:
        if self.connected:
            self.stop()
        self.connected = False

    def __enter__(self):
        self.connect()
        return self

    def __exit__(self, *exc):
        self.close()

    def _advance(self) -> None:
        if not self.connected:
            raise RobotConnectionError("fake robot not connected: call connect() first")
        now = self._clock()
        dt = max(0.0, now - self._t)
        self._t = now
        if dt == 0.0:
            return
        held = now - self.cmd.t <= self.config.segment_hold_s and not self.in_error
        tgt_lin = self.cmd.lin if held else np.zeros(3)
        tgt_ang = self.cmd.ang if held else np.zeros(3)
        # Exact first-order step, then integrate with the mean of old and new velocity.
        a = 1.0 - math.exp(-dt / self.config.fake_lag_s)
        new_lin = self.lin + a * (tgt_lin - self.lin)
        new_ang = self.ang + a * (tgt_ang - self.ang)
        self.T_base_ee[:3, 3] += 0.5 * (self.lin + new_lin) * dt
        self.T_base_ee[:3, :3] = rotvec_to_R(0.5 * (self.ang + new_ang) * dt) @ self.T_base_ee[:3, :3]
        self.lin, self.ang = new_lin, new_ang

    def read_state(self) -> RobotState:
        self._advance()
        return RobotState(
            t_s=self._t, T_base_ee=self.T_base_ee.copy(), ee_lin_m_s=self.lin.copy(), ee_ang_rad_s=self.ang.copy(),
            q_rad=np.array(FR3_READY_Q_RAD), dq_rad_s=np.zeros(7), gripper_width_m=self.gripper_width_m,
            has_error=self.in_error,
        )

    def inject_error(self, count: int = 1) -> None:
        """The next ``count`` send_twist calls raise RobotError (like a reflex)."""
        self.errors_pending += count

    def send_twist(self, lin_m_s, ang_rad_s) -> None:
        self._advance()
        if self.errors_pending > 0:
            self.errors_pending -= 1
            self.in_error = True
            self.lin, self.ang = np.zeros(3), np.zeros(3)  # a reflex stops the arm
            raise RobotError("fake reflex: cartesian_reflex (injected)")
        if self.in_error:
            raise RobotError("fake robot is in reflex mode: call recover()")
        lin, ang = np.asarray(lin_m_s, float).copy(), np.asarray(ang_rad_s, float).copy()
        if not (np.all(np.isfinite(lin)) and np.all(np.isfinite(ang))):
            raise RobotError("fake robot: non-finite velocity (a real robot would reflex)")
        self.cmd = _FakeCommand(lin, ang, self._t)
        self.sent.append((self._t, lin, ang))

    def stop(self) -> None:
        self._advance()
        self.cmd = _FakeCommand(t=self._t)

    def move_home(self, T_base_ee: np.ndarray, timeout_s: float) -> bool:
        self._advance()
        if self.in_error:
            raise RobotError("fake robot is in reflex mode: call recover()")
        self.T_base_ee = np.array(T_base_ee, dtype=np.float64, copy=True)
        self.lin, self.ang = np.zeros(3), np.zeros(3)
        self.cmd = _FakeCommand(t=self._t)
        return True

    def gripper_move(self, width_m: float) -> None:
        self.gripper_width_m = float(np.clip(width_m, 0.0, GRIPPER_MAX_WIDTH_M))

    def gripper_grasp(self) -> None:
        self.gripper_width_m = 0.0

    def recover(self) -> bool:
        self.recover_calls += 1
        if self.recover_succeeds:
            self.in_error = False
        return self.recover_succeeds
