"""The FR3's motion limits, in one place, and what the stack commands within them (ROS-free).

Source of every number in :data:`FR3`: Franka Robotics, "Robot and interface specifications"
for the FR3 (the limits table of the FCI documentation), which libfranka 0.21 carries as
``include/franka/rate_limiting.h`` (``kMaxTranslationalVelocity`` ... ``kMaxJointJerk``), the
same specifications for the joint ranges, and the FR3's ``fr3.urdf`` (franka_description, the
model libfranka 0.21 gets from the robot) for the position-based joint velocity limits
(``<position_based_velocity_limits>``: velocity offset and deceleration).
The robot aborts a motion whose *commanded* signal breaks one of them (a reflex such as
``joint_motion_generator_acceleration_discontinuity``; a Cartesian stream is judged on its
Cartesian derivatives and on the robot's inverse kinematics of it).

The stack commands EE twists: the safety filter (:mod:`robot_stack.devices.franka.safety`) at
the node's control rate, franky's motion generator (Ruckig, per joint or per axis) at 1 kHz in
between. What keeps every commanded quantity at or below :data:`LIMIT_FRACTION` of its limit:

* the franky backend maps each twist to joint velocities with the FR3's Jacobian at the
  measured joint angles (:meth:`JointLimiter.joint_velocity`) and streams joint velocity
  motions, and franky's joint limits follow the safety config (``max_joint_accel_rad_s2``,
  ``max_joint_jerk_rad_s3``): the joint signal the robot judges is planned within them, and the
  robot reports the commanded acceleration a pre-empting motion continues from;
* franky's absolute Cartesian limits follow the safety config too (:func:`franky_limits`;
  franky 2.0's own defaults, 13 m/s^2 and 25 rad/s^2, are above the FR3's), for the Cartesian
  interface (``robot.command_interface: cartesian_velocity``);
* :class:`JointLimiter` scales a twist down so that no joint exceeds its share of the
  position-based velocity envelope (so the arm also slows to a stop before a joint limit), and
  gives the factor by which the filter's ramp must shrink where the Jacobian amplifies it;
* :func:`check_config` rejects a safety config above the fraction of the FR3's limits, at
  start-up.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from robot_stack.devices.franka import kinematics as kin

LIMIT_FRACTION = 0.8
"""Target: every commanded quantity at most this fraction of the FR3's limit."""


@dataclass(frozen=True)
class Fr3Limits:
    """The FR3's published limits (see the module docstring for the source)."""

    translational_velocity_m_s: float = 3.0
    translational_acceleration_m_s2: float = 9.0
    translational_jerk_m_s3: float = 4500.0
    rotational_velocity_rad_s: float = 2.5
    rotational_acceleration_rad_s2: float = 17.0
    rotational_jerk_rad_s3: float = 8500.0
    joint_velocity_rad_s: tuple[float, ...] = (2.62, 2.62, 2.62, 2.62, 5.26, 4.18, 5.26)
    joint_acceleration_rad_s2: tuple[float, ...] = (10.0,) * 7
    joint_jerk_rad_s3: tuple[float, ...] = (5000.0,) * 7
    joint_position_rad: tuple[tuple[float, float], ...] = kin.FR3_Q_LIMITS_RAD
    joint_velocity_offset_rad_s: tuple[float, ...] = (0.30, 0.20, 0.20, 0.30, 0.35, 0.35, 0.35)
    """fr3.urdf position_based_velocity_limits: velocity_offset per joint."""
    joint_deceleration_rad_s2: tuple[float, ...] = (6.0, 2.585, 3.5, 4.0, 17.0, 5.5, 17.0)
    """fr3.urdf position_based_velocity_limits: deceleration_limit per joint."""

    def joint_velocity_envelope(self, q_rad) -> tuple[np.ndarray, np.ndarray]:
        """(lower, upper) joint velocity limits at ``q_rad`` (rad/s): the position-based envelope
        libfranka's JointVelocityLimitsConfig computes, which shrinks to zero at a joint limit."""
        q = np.asarray(q_rad, dtype=np.float64)
        lo, hi = np.array(self.joint_position_rad).T
        vmax = np.array(self.joint_velocity_rad_s)
        off = np.array(self.joint_velocity_offset_rad_s)
        dec = np.array(self.joint_deceleration_rad_s2)
        upper = np.minimum(vmax, np.maximum(0.0, -off + np.sqrt(np.maximum(0.0, 2 * dec * (hi - q)))))
        lower = np.maximum(-vmax, np.minimum(0.0, off - np.sqrt(np.maximum(0.0, 2 * dec * (q - lo)))))
        return lower, upper


FR3 = Fr3Limits()
FRANKY_JOINT_VELOCITY_MAX_RAD_S = np.array([2.175] * 4 + [2.61] * 3)
"""franky 2.0 caps its joint velocity limits at the Panda's values, below the FR3's."""


@dataclass(frozen=True)
class CartesianLimits:
    """What the stack commands at most: per-axis Cartesian limits (franky plans each axis)."""

    lin_speed_m_s: float = 0.15
    ang_speed_rad_s: float = 0.6
    lin_accel_m_s2: float = 1.0
    ang_accel_rad_s2: float = 4.0
    lin_jerk_m_s3: float = 500.0
    ang_jerk_rad_s3: float = 2000.0
    joint_accel_rad_s2: float = 2.5
    joint_jerk_rad_s3: float = 800.0
    lossy_link_joint_accel_rad_s2: float = 0.5
    lossy_link_hold_s: float = 10.0

    @property
    def lossy_link_accel_factor(self) -> float:
        """The share of the joint acceleration left while the link loses command cycles."""
        return self.lossy_link_joint_accel_rad_s2 / self.joint_accel_rad_s2


def franky_limits(limits: CartesianLimits) -> dict[str, float]:
    """franky's absolute Cartesian limits (Robot attribute name -> value) for ``limits``.

    franky plans each axis on its own (Ruckig), so a vector's norm may reach sqrt(3) times the
    per-axis value; :func:`check_config` checks that case against the FR3. The velocity limit
    only bounds targets (franky refuses a faster one): the safety filter scaled every twist
    below it already.
    """
    return {
        "translation_velocity_limit": 1.01 * limits.lin_speed_m_s,
        "rotation_velocity_limit": 1.01 * limits.ang_speed_rad_s,
        "translation_acceleration_limit": limits.lin_accel_m_s2,
        "rotation_acceleration_limit": limits.ang_accel_rad_s2,
        "translation_jerk_limit": limits.lin_jerk_m_s3,
        "rotation_jerk_limit": limits.ang_jerk_rad_s3,
    }


def check_config(limits: CartesianLimits, fraction: float = LIMIT_FRACTION) -> None:
    """ValueError naming the quantity when a Cartesian limit (as a norm: sqrt(3) x per axis,
    speeds are norms already) is above ``fraction`` of the FR3's."""
    r3 = math.sqrt(3.0)
    pairs = (
        ("max_lin_speed_m_s", limits.lin_speed_m_s, FR3.translational_velocity_m_s),
        ("max_ang_speed_rad_s", limits.ang_speed_rad_s, FR3.rotational_velocity_rad_s),
        ("sqrt(3) x max_lin_accel_m_s2", r3 * limits.lin_accel_m_s2, FR3.translational_acceleration_m_s2),
        ("sqrt(3) x max_ang_accel_rad_s2", r3 * limits.ang_accel_rad_s2, FR3.rotational_acceleration_rad_s2),
        ("sqrt(3) x max_lin_jerk_m_s3", r3 * limits.lin_jerk_m_s3, FR3.translational_jerk_m_s3),
        ("sqrt(3) x max_ang_jerk_rad_s3", r3 * limits.ang_jerk_rad_s3, FR3.rotational_jerk_rad_s3),
    )
    pairs += (
        ("max_joint_accel_rad_s2", limits.joint_accel_rad_s2, min(FR3.joint_acceleration_rad_s2)),
        ("max_joint_jerk_rad_s3", limits.joint_jerk_rad_s3, min(FR3.joint_jerk_rad_s3)),
    )
    for name, value, limit in pairs:
        if value > fraction * limit:
            raise ValueError(f"{name} = {value:.4g} is above {fraction:.0%} of the FR3's limit {limit:g} "
                             f"(per-axis planning: a norm reaches sqrt(3) x the per-axis limit)")


_JACOBIANS: dict = {}
"""(joint angles, EE offset) -> (J, damped pseudo-inverse): the last few, shared by every limiter."""


@dataclass(frozen=True)
class JointScale:
    """What one joint-space check allows (each in (0, 1])."""

    velocity: float
    """Factor for the twist: keeps every joint within its share of the velocity envelope."""
    acceleration: float
    """Factor for the Cartesian acceleration of the ramp (and franky's, on the Cartesian interface)
    that keeps the joints within the joint acceleration budget."""
    jerk: float
    """Factor for franky's Cartesian jerk limit."""


class JointLimiter:
    """Joint-space view of Cartesian commands, with the FR3 Jacobian at measured joint angles.

    ``joint_*_fraction``: the share of each joint limit a command may use. Acceleration and jerk
    keep a larger reserve than velocity: the robot differentiates its IK of the 1 kHz stream,
    where the Jacobian's own change and the motion switches add to the planned profile.
    """

    def __init__(self, limits: CartesianLimits, ee_offset_m: float = kin.HAND_TCP_OFFSET_M,
                 joint_velocity_fraction: float = 0.4, joint_acceleration_fraction: float = 0.5,
                 joint_jerk_fraction: float = 0.4):
        self.ee_offset_m = ee_offset_m
        # Per-axis worst case of franky's plan: every axis at its limit at once.
        self._accel = np.array([limits.lin_accel_m_s2] * 3 + [limits.ang_accel_rad_s2] * 3)
        self._jerk = np.array([limits.lin_jerk_m_s3] * 3 + [limits.ang_jerk_rad_s3] * 3)
        self._ddq_budget = np.minimum(joint_acceleration_fraction * np.array(FR3.joint_acceleration_rad_s2),
                                      limits.joint_accel_rad_s2)
        self._dddq_budget = joint_jerk_fraction * np.array(FR3.joint_jerk_rad_s3)
        self._dq_fraction = joint_velocity_fraction

    def jacobians(self, q_rad) -> tuple[np.ndarray, np.ndarray]:
        """(J, damped pseudo-inverse) at ``q_rad``; the last pair is kept (the safety filter and the
        robot backend ask for the same joint angles within one control tick)."""
        q = np.asarray(q_rad, dtype=np.float64)
        key = (q.tobytes(), self.ee_offset_m)
        hit = _JACOBIANS.get(key)
        if hit is None:
            J = kin.jacobian(q, self.ee_offset_m)
            hit = (J, kin.damped_pinv(J, 1e-3))
            if len(_JACOBIANS) > 8:
                _JACOBIANS.clear()
            _JACOBIANS[key] = hit
        return hit

    def pinv(self, q_rad) -> np.ndarray:
        return self.jacobians(q_rad)[1]

    def joint_velocity(self, q_rad, lin_m_s, ang_rad_s, null_gain_1_s: float = 0.5,
                       max_null_rad_s: float = 0.1) -> np.ndarray:
        """Joint velocity (rad/s) realising the twist at ``q_rad``, plus a gentle null-space pull of
        the elbow towards the ready pose while the EE moves (without it the redundancy drifts
        with every motion until a joint reaches its limit); scaled as a whole so that no joint
        exceeds its share of the velocity envelope at ``q_rad`` (what the robot judges the
        commanded joint velocity against) nor :data:`LIMIT_FRACTION` of franky's cap."""
        q = np.asarray(q_rad, dtype=np.float64)
        J, Jp = self.jacobians(q)
        twist = np.concatenate([np.asarray(lin_m_s, float), np.asarray(ang_rad_s, float)])
        dq = Jp @ twist
        moving = min(1.0, float(np.linalg.norm(twist[:3])) / 0.02 + float(np.linalg.norm(twist[3:])) / 0.1)
        if moving > 0.0:
            pull = null_gain_1_s * (np.array(kin.FR3_READY_Q_RAD) - q)
            pull *= min(1.0, max_null_rad_s / max(float(np.max(np.abs(pull))), 1e-12))
            dq = dq + moving * (np.eye(7) - Jp @ J) @ pull
        lower, upper = FR3.joint_velocity_envelope(q)
        bound = np.minimum(np.where(dq >= 0, upper, -lower) * self._dq_fraction,
                           LIMIT_FRACTION * np.minimum(np.array(FR3.joint_velocity_rad_s), FRANKY_JOINT_VELOCITY_MAX_RAD_S))
        with np.errstate(divide="ignore", invalid="ignore"):
            worst = float(np.max(np.where(np.abs(dq) > 1e-12, np.abs(dq) / bound, 0.0)))
        return dq / worst if worst > 1.0 else dq

    def scale(self, q_rad, lin_m_s, ang_rad_s) -> JointScale:
        q = np.asarray(q_rad, dtype=np.float64)
        if q.shape != (7,) or not np.all(np.isfinite(q)):
            return JointScale(1.0, 1.0, 1.0)
        Jp = self.pinv(q)
        dq = Jp @ np.concatenate([np.asarray(lin_m_s, float), np.asarray(ang_rad_s, float)])
        lower, upper = FR3.joint_velocity_envelope(q)
        bound = np.where(dq >= 0, upper, -lower) * self._dq_fraction
        with np.errstate(divide="ignore", invalid="ignore"):
            ratios = np.where(np.abs(dq) > 1e-12, bound / np.abs(dq), np.inf)
        s_v = float(min(1.0, np.min(ratios)))
        # The ramp bounds the norms of the linear and angular acceleration: per joint at most
        # a_lin |row of Jp's linear block| + a_ang |row of its angular block| (Cauchy-Schwarz).
        ddq_worst = (self._accel[0] * np.linalg.norm(Jp[:, :3], axis=1)
                     + self._accel[3] * np.linalg.norm(Jp[:, 3:], axis=1))
        s_a = float(min(1.0, np.min(self._ddq_budget / np.maximum(ddq_worst, 1e-12))))
        gain = np.abs(Jp)  # franky plans each Cartesian axis on its own: all at their jerk limit at once
        s_j = float(min(1.0, np.min(self._dddq_budget / np.maximum(gain @ self._jerk, 1e-12))))
        return JointScale(max(s_v, 0.0), max(s_a, 1e-3), max(s_j, 1e-3))
