"""Operator (SpaceMouse) data types and the device-to-robot axis mapping (ROS-free).

A :class:`SpaceMouseReading` is what a SpaceMouse produces: six axes in ``[-1, 1]`` and the
button states. The real device (pyspacemouse), the fake HID device used in tests and the
simulated operator all produce readings, so everything downstream (intervention detection,
the OperatorCommand message, the actor) treats them alike.

Device axis convention (pyspacemouse with ``axis_convention`` set, operator's view):
``x`` right, ``y`` forward (away from the operator), ``z`` up; ``roll`` about y, ``pitch``
about x, ``yaw`` about z. :class:`TeleopMapping` rotates those into the robot base frame.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

AXIS_NAMES = ("x", "y", "z", "roll", "pitch", "yaw")


@dataclass(frozen=True)
class SpaceMouseReading:
    """One device report: time, axes in [-1, 1], buttons (1 = pressed)."""

    t: float
    """Host time of the read, in seconds (monotonic clock)."""
    axes: np.ndarray
    """Shape (6,) float: x, y, z, roll, pitch, yaw in [-1, 1]."""
    buttons: tuple[int, ...] = (0, 0)
    """Button states, device order (SpaceMouse Compact: left, right)."""
    report_t: float | None = None
    """Host time of the newest device report behind this reading (same clock as ``t``); None:
    the reading is that fresh (sim sources), i.e. ``t``."""

    @property
    def report_age_s(self) -> float:
        """Seconds between the newest device report and the read (0 without ``report_t``)."""
        return 0.0 if self.report_t is None else max(0.0, self.t - self.report_t)

    @property
    def translation(self) -> np.ndarray:
        return np.asarray(self.axes[:3], dtype=np.float64)

    @property
    def rotation(self) -> np.ndarray:
        """Rotation axes reordered to (about x, about y, about z) = (pitch, roll, yaw)."""
        a = np.asarray(self.axes, dtype=np.float64)
        return np.array([a[4], a[3], a[5]])


@dataclass(frozen=True)
class TeleopMapping:
    """How device axes become an end-effector twist in the robot base frame."""

    R_base_device: tuple[float, ...] = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0)
    """Row-major 3x3 rotation from the device frame to the robot base frame. The default
    (identity) suits an operator standing behind the robot, looking along its +x."""
    max_lin_speed_m_s: float = 0.1
    """EE linear speed at full deflection, in m/s."""
    max_ang_speed_rad_s: float = 0.5
    """EE angular speed at full deflection, in rad/s."""
    rotation_enabled: bool = False
    """Pass device rotation through as EE angular velocity (off for translation-only tasks)."""

    @property
    def R(self) -> np.ndarray:
        return np.asarray(self.R_base_device, dtype=np.float64).reshape(3, 3)

    def to_twist(self, reading: SpaceMouseReading) -> tuple[np.ndarray, np.ndarray]:
        """(linear m/s, angular rad/s) in the base frame for a reading."""
        lin = self.R @ np.clip(reading.translation, -1, 1) * self.max_lin_speed_m_s
        ang = np.zeros(3)
        if self.rotation_enabled:
            ang = self.R @ np.clip(reading.rotation, -1, 1) * self.max_ang_speed_rad_s
        return lin, ang

    def to_axes(self, lin_m_s, ang_rad_s=None) -> np.ndarray:
        """Device axes that produce the given base-frame twist (inverse of to_twist), clipped."""
        axes = np.zeros(6)
        axes[:3] = self.R.T @ np.asarray(lin_m_s, dtype=np.float64) / self.max_lin_speed_m_s
        if self.rotation_enabled and ang_rad_s is not None:
            rot = self.R.T @ np.asarray(ang_rad_s, dtype=np.float64) / self.max_ang_speed_rad_s
            axes[3], axes[4], axes[5] = rot[1], rot[0], rot[2]
        return np.clip(axes, -1.0, 1.0)


GRIPPER_CLOSE = -1
GRIPPER_KEEP = 0
GRIPPER_OPEN = 1

MARK_NONE = 0
MARK_SUCCESS = 1
MARK_FAILURE = 2


@dataclass
class OperatorCommand:
    """ROS-free mirror of ``robot_stack/msg/OperatorCommand``."""

    t: float
    """Time of the device read the command is based on (s)."""
    intervening: bool
    """Operator in control (after deadzone, hysteresis, hold time)."""
    lin_m_s: np.ndarray = field(default_factory=lambda: np.zeros(3))
    """EE linear velocity in the base frame, m/s."""
    ang_rad_s: np.ndarray = field(default_factory=lambda: np.zeros(3))
    """EE angular velocity in the base frame, rad/s."""
    axes: np.ndarray = field(default_factory=lambda: np.zeros(6))
    """Raw device axes in [-1, 1]."""
    gripper: int = GRIPPER_KEEP
    """-1 close, 0 keep, +1 open."""
    episode_mark: int = MARK_NONE
    """0 none, 1 success, 2 failure."""
