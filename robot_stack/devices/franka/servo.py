"""Home moves as a velocity servo to a pose (one law for every backend and the direct sim world)."""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from robot_stack.devices.franka import limits as fr3_limits
from robot_stack.devices.franka.base import FrankaConfig, FrankaRobot, RobotError
from robot_stack.types.geometry import rotation_error_rotvec

logger = logging.getLogger(__name__)


@dataclass
class PoseServo:
    """Velocity servo to a pose: P control on the pose error, speed and acceleration limited.

    One :meth:`step` per ``period_s``. Used by :func:`servo_to_pose` (streamed to a robot) and
    by the direct sim world (run inside the world), so home moves follow one law."""

    T_target: np.ndarray
    """4x4 target pose in the base frame."""
    period_s: float
    """Time between steps, s."""
    max_lin_speed_m_s: float
    max_ang_speed_rad_s: float
    max_lin_accel_m_s2: float
    gain_1_s: float
    tolerance_m: float
    tolerance_rad: float
    rest_speed_m_s: float = 0.01
    """The pose counts as reached only below this EE speed, m/s."""
    joints: fr3_limits.JointLimiter | None = None
    """Joint-limit stage (as in the safety filter), applied when step() is given joint angles."""
    v: np.ndarray = field(default_factory=lambda: np.zeros(3))
    w: np.ndarray = field(default_factory=lambda: np.zeros(3))

    @classmethod
    def from_config(cls, T_target: np.ndarray, config: "FrankaConfig") -> "PoseServo":
        limits = fr3_limits.CartesianLimits(config.home_max_lin_speed_m_s, config.home_max_ang_speed_rad_s,
                                            config.home_max_lin_accel_m_s2,
                                            config.home_max_lin_accel_m_s2 * config.home_max_ang_speed_rad_s
                                            / config.home_max_lin_speed_m_s)
        return cls(np.asarray(T_target, dtype=np.float64), 1.0 / config.home_rate_hz, config.home_max_lin_speed_m_s,
                   config.home_max_ang_speed_rad_s, config.home_max_lin_accel_m_s2, config.home_gain_1_s,
                   config.home_tolerance_m, config.home_tolerance_rad, joints=fr3_limits.JointLimiter(limits))

    def step(self, T_base_ee: np.ndarray, ee_lin_m_s: np.ndarray, q_rad=None) -> tuple[bool, np.ndarray, np.ndarray]:
        """(reached, v m/s, w rad/s) for the measured pose and EE velocity."""
        T = self.T_target
        e_p = T[:3, 3] - T_base_ee[:3, 3]
        e_r = rotation_error_rotvec(T[:3, :3], T_base_ee[:3, :3])
        if (np.linalg.norm(e_p) < self.tolerance_m and np.linalg.norm(e_r) < self.tolerance_rad
                and np.linalg.norm(ee_lin_m_s) < self.rest_speed_m_s):
            return True, np.zeros(3), np.zeros(3)
        dv_max = self.max_lin_accel_m_s2 * self.period_s
        dw_max = dv_max * self.max_ang_speed_rad_s / self.max_lin_speed_m_s
        v_t = _clip_norm(self.gain_1_s * e_p, self.max_lin_speed_m_s)
        w_t = _clip_norm(self.gain_1_s * e_r, self.max_ang_speed_rad_s)
        if q_rad is not None and self.joints is not None:
            js = self.joints.scale(q_rad, v_t, w_t)
            v_t, w_t = v_t * js.velocity, w_t * js.velocity
            dv_max, dw_max = dv_max * js.acceleration, dw_max * js.acceleration
        self.v = self.v + _clip_norm(v_t - self.v, dv_max)
        self.w = self.w + _clip_norm(w_t - self.w, dw_max)
        return False, self.v, self.w


def servo_to_pose(robot: "FrankaRobot", T_base_ee: np.ndarray, timeout_s: float, config: FrankaConfig,
                  clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep) -> bool:
    """Drive the EE to a pose with streamed velocities (:class:`PoseServo`); True when within
    tolerance and at rest before ``timeout_s``. Blocks."""
    T = np.asarray(T_base_ee, dtype=np.float64)
    servo = PoseServo.from_config(T, config)
    period = servo.period_s
    t_end = clock() + timeout_s
    next_t = clock()
    while clock() < t_end:
        s = robot.read_state()
        if s.has_error:
            raise RobotError("robot in reflex/error state during the home move")
        reached, v, w = servo.step(s.T_base_ee, s.ee_lin_m_s, s.q_rad)
        if reached:
            robot.stop()
            return True
        robot.send_twist(v, w)
        next_t += period
        sleep(max(0.0, next_t - clock()))  # loop pacing
    robot.stop()
    s = robot.read_state()
    logger.error("home move not finished within %.1f s: EE at %s, target %s", timeout_s,
                 np.round(s.p_base_ee, 4).tolist(), np.round(T[:3, 3], 4).tolist())
    return False


def _clip_norm(x: np.ndarray, max_norm: float) -> np.ndarray:
    n = float(np.linalg.norm(x))
    return x if n <= max_norm or n == 0.0 else x * (max_norm / n)
