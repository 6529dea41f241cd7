"""Franka robot interface (ROS-free): one small protocol, a franky backend and a fake.

* ``franky``: the real robot through franky-control (libfranka 0.21), or franky-sim over
  loopback -- the same code path, only ``robot_ip`` differs.
* ``direct``: the sim world's direct link (:mod:`robot_stack.devices.franka.direct`): the same
  task in MuJoCo without the libfranka protocol, for machines where franky-sim cannot keep
  real time next to the whole graph (``sim_world_node`` with ``physics: direct``).
* ``fake``: a pure-Python kinematic integrator of the EE twist, for unit tests and for
  running nodes without any simulator.

Pick one with :func:`make_robot` (``FrankaConfig.backend``). Constructors do no I/O;
:meth:`FrankaRobot.connect` opens the connection, :meth:`FrankaRobot.close` stops the robot
and releases it (also as a context manager).

Streaming velocity: :meth:`FrankaRobot.send_twist` is called at the node's control rate
with the (already safety-filtered) twist. The franky backend maps it to joint velocities with
the FR3's Jacobian at the last measured joint angles (``command_interface: joint_velocity``) and
turns every call into an asynchronous ``JointVelocityMotion`` that pre-empts the previous one
and is held for ``segment_hold_s``; if no new call arrives in that time the robot brings itself
to rest. franky's 1 kHz generator plans each step within joint acceleration and jerk limits
that follow the safety config (:mod:`robot_stack.devices.franka.limits`): the robot judges every
commanded joint signal against the FR3's limits and aborts a motion that breaks one.
That is a second watchdog on the robot side: even a hung or killed process cannot leave
the arm moving.

Frames and units: the base frame is the robot base; ``T_base_ee`` is the 4x4 pose of the
end effector (franky's configured EE/TCP frame) in the base frame; linear velocities in m/s,
angular in rad/s (both in the base frame), joint angles in rad, gripper width in m.
Quaternions are ``(x, y, z, w)``.
"""
from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Callable, Protocol, runtime_checkable

import numpy as np

from robot_stack.types.geometry import R_to_quat_xyzw

logger = logging.getLogger(__name__)

BACKENDS = ("franky", "direct", "fake")
FR3_JOINT_NAMES = tuple(f"fr3_joint{i}" for i in range(1, 8))
FR3_READY_Q_RAD = (0.0, -math.pi / 4, 0.0, -3 * math.pi / 4, 0.0, math.pi / 2, math.pi / 4)
GRIPPER_MAX_WIDTH_M = 0.08


class RobotError(RuntimeError):
    """A recoverable robot error (reflex, control or command error): call recover()."""


class RobotConnectionError(RuntimeError):
    """The connection to the robot failed or was lost; recovery will not help."""


def sample_home_pose(T_base_home: np.ndarray, randomize_xyz_m, rng: np.random.Generator) -> np.ndarray:
    """The home pose with its position offset uniformly in ``[-r, r]`` per axis (orientation kept)."""
    T = np.array(T_base_home, dtype=np.float64, copy=True)
    r = np.abs(np.asarray(randomize_xyz_m, dtype=np.float64))
    T[:3, 3] += rng.uniform(-r, r)
    return T


# -- data and interface ------------------------------------------------------------------------
@dataclass(frozen=True)
class RobotState:
    """One snapshot of the robot."""

    t_s: float
    """Robot time in s (franky: robot state time; fake: its clock). Monotonic per connection."""
    T_base_ee: np.ndarray
    """4x4 EE pose in the base frame."""
    ee_lin_m_s: np.ndarray
    """EE linear velocity, base frame, m/s."""
    ee_ang_rad_s: np.ndarray
    """EE angular velocity, base frame, rad/s."""
    q_rad: np.ndarray
    """Joint positions (7,), rad."""
    dq_rad_s: np.ndarray
    """Joint velocities (7,), rad/s."""
    gripper_width_m: float
    """Gripper opening, m (nan without a gripper)."""
    has_error: bool = False
    """The robot is in a reflex/error state and needs recover()."""
    lossy_link: bool = False
    """franky: the robot reported lost command cycles within safety.lossy_link_hold_s, so motions
    are planned with safety.lossy_link_joint_accel_rad_s2 (always False for the other backends)."""

    @property
    def p_base_ee(self) -> np.ndarray:
        return self.T_base_ee[:3, 3].copy()

    @property
    def quat_base_ee_xyzw(self) -> np.ndarray:
        return R_to_quat_xyzw(self.T_base_ee[:3, :3])


@runtime_checkable
class FrankaRobot(Protocol):
    """What the Franka node (and tests) need from a robot."""

    def connect(self) -> None: ...
    def close(self) -> None: ...
    def read_state(self) -> RobotState: ...
    def send_twist(self, lin_m_s, ang_rad_s) -> None:
        """Stream one EE velocity (base frame); raises RobotError / RobotConnectionError."""
    def stop(self) -> None:
        """Bring the arm to rest (zero velocity within the robot's own limits)."""
    def move_home(self, T_base_ee: np.ndarray, timeout_s: float) -> bool:
        """Blocking Cartesian move to a pose; True when reached within the timeout."""
    def gripper_move(self, width_m: float) -> None:
        """Start moving the fingers to a width (m); does not block."""
    def gripper_grasp(self) -> None:
        """Start closing with the configured force; does not block."""
    def recover(self) -> bool:
        """Automatic error recovery; True when the robot accepts commands again."""

    def __enter__(self): ...
    def __exit__(self, *exc): ...


@dataclass(frozen=True)
class FrankaConfig:
    """Robot connection and backend settings."""

    backend: str = "fake"
    """Robot backend: 'franky' (real robot, or franky-sim on a loopback address), 'direct' (the sim
    world's direct link, no libfranka: sim_world_node with physics: direct) or 'fake' (tests)."""
    robot_ip: str = "127.0.0.1"
    """Robot (FCI) address; for franky-sim the loopback address its server is bound to; for the
    direct backend the address the sim world's direct link is bound to."""
    direct_port: int = 17337
    """Direct backend: UDP port of the sim world's direct link (sim_world_node's direct_port)."""
    direct_timeout_s: float = 1.0
    """Direct backend: a request without a reply for this long means the link is lost, s."""
    realtime_config: str = "ignore"
    """libfranka real-time policy: 'ignore' (no RT kernel, sim) or 'enforce' (real robot on an RT kernel)."""
    relative_dynamics_factor: float = 1.0
    """Scales franky's limits (0..1] for every motion, home moves included. Those limits follow the
    safety config (max_*_accel_*, max_*_jerk_*; robot_stack.devices.franka.limits), not franky's
    defaults, which are above the FR3's: 1.0 gives exactly the configured limits."""
    command_interface: str = "joint_velocity"
    """franky backend: how a twist is streamed. 'joint_velocity': mapped to joint velocities with the
    FR3's Jacobian at the measured joint angles and streamed as JointVelocityMotion, so franky's
    1 kHz generator keeps each joint within safety.max_joint_accel_rad_s2 / max_joint_jerk_rad_s3;
    'cartesian_velocity': streamed as CartesianVelocityMotion within the safety config's Cartesian
    limits (the joint side then depends on the Jacobian; see robot_stack.devices.franka.limits)."""
    segment_hold_s: float = 0.1
    """Each streamed velocity is held this long by the robot; without a newer command it then ramps
    to rest by itself (robot-side watchdog, independent of this process). Keep > 2 control periods."""
    gripper_enabled: bool = True
    """Connect to the Franka Hand (franky.Gripper)."""
    gripper_speed_m_s: float = 0.05
    """Finger speed for gripper moves, m/s."""
    gripper_force_n: float = 20.0
    """Grasp force, N."""
    gripper_poll_period_s: float = 0.1
    """Gripper width is read at most this often (each read is a network round trip), s."""
    stop_timeout_s: float = 2.0
    """How long stop()/close() wait for the arm to come to rest, s."""
    home_max_lin_speed_m_s: float = 0.1
    """Home moves: largest EE speed, m/s."""
    home_max_ang_speed_rad_s: float = 0.5
    """Home moves: largest EE rotation speed, rad/s."""
    home_max_lin_accel_m_s2: float = 0.5
    """Home moves: largest change of EE velocity, m/s^2 (smooth start and arrival)."""
    home_gain_1_s: float = 2.0
    """Home moves: velocity = gain * remaining error (1/s), then the limits above."""
    home_tolerance_m: float = 0.003
    """Home moves: position error (m) at which the pose counts as reached."""
    home_tolerance_rad: float = 0.03
    """Home moves: orientation error (rad) at which the pose counts as reached."""
    home_rate_hz: float = 100.0
    """Home moves: rate of the velocity servo loop, Hz."""
    fake_lag_s: float = 0.03
    """Fake backend: time constant (s) of the first-order lag between commanded and actual twist."""

    def validate(self) -> None:
        if self.backend not in BACKENDS:
            raise ValueError(f"backend must be one of {BACKENDS}, got {self.backend!r}")
        if self.command_interface not in ("joint_velocity", "cartesian_velocity"):
            raise ValueError(f"command_interface must be 'joint_velocity' or 'cartesian_velocity', "
                             f"got {self.command_interface!r}")
        if self.realtime_config not in ("ignore", "enforce"):
            raise ValueError(f"realtime_config must be 'ignore' or 'enforce', got {self.realtime_config!r}")
        if not 0.0 < self.relative_dynamics_factor <= 1.0:
            raise ValueError(f"relative_dynamics_factor must be in (0, 1], got {self.relative_dynamics_factor}")
        for name in ("segment_hold_s", "gripper_speed_m_s", "gripper_force_n", "gripper_poll_period_s",
                     "stop_timeout_s", "fake_lag_s", "home_max_lin_speed_m_s", "home_max_ang_speed_rad_s",
                     "home_max_lin_accel_m_s2", "home_gain_1_s", "home_tolerance_m", "home_tolerance_rad",
                     "home_rate_hz", "direct_timeout_s"):
            v = getattr(self, name)
            if not (math.isfinite(v) and v > 0):
                raise ValueError(f"{name} must be > 0, got {v!r}")
        if not 1 <= self.direct_port <= 65535:
            raise ValueError(f"direct_port must be a UDP port in 1..65535, got {self.direct_port}")
        if not self.robot_ip:
            raise ValueError("robot_ip is empty: set the robot's FCI address (or franky-sim's loopback address)")


def make_robot(config: FrankaConfig, collision_torque_threshold_nm: float = 20.0,
               collision_force_threshold_n: float = 30.0, clock: Callable[[], float] | None = None,
               limits=None, ee_offset_m: float = 0.1034) -> FrankaRobot:
    """The one factory: a robot for ``config.backend`` (not connected yet). ``limits``: what franky's
    motion generator may plan (a limits.CartesianLimits; the safety config's cartesian_limits)."""
    config.validate()
    if config.backend == "franky":
        from robot_stack.devices.franka.franky import FrankyRobot

        return FrankyRobot(config, collision_torque_threshold_nm, collision_force_threshold_n, limits, ee_offset_m)
    if config.backend == "direct":
        from robot_stack.devices.franka.direct import DirectRobot

        return DirectRobot(config)
    from robot_stack.devices.franka.fake import FakeRobot

    return FakeRobot(config, clock=clock)


