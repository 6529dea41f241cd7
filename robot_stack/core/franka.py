"""Franka robot interface (ROS-free): one small protocol, a franky backend and a fake.

* ``franky``: the real robot through franky-control (libfranka 0.21), or franky-sim over
  loopback -- the same code path, only ``robot_ip`` differs.
* ``direct``: the sim world's direct link (:mod:`robot_stack.core.franka_direct`): the same
  task in MuJoCo without the libfranka protocol, for machines where franky-sim cannot keep
  real time next to the whole graph (``sim_world_node`` with ``physics: direct``).
* ``fake``: a pure-Python kinematic integrator of the EE twist, for unit tests and for
  running nodes without any simulator.

Pick one with :func:`make_robot` (``FrankaConfig.backend``). Constructors do no I/O;
:meth:`FrankaRobot.connect` opens the connection, :meth:`FrankaRobot.close` stops the robot
and releases it (also as a context manager).

Streaming velocity: :meth:`FrankaRobot.send_twist` is called at the node's control rate
with the (already safety-filtered) twist. The franky backend turns every call into an
asynchronous ``CartesianVelocityMotion`` that pre-empts the previous one and is held for
``segment_hold_s``; if no new call arrives in that time the robot brings itself to rest.
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
import time
from dataclasses import dataclass, field
from typing import Callable, Protocol, runtime_checkable

import numpy as np

from robot_stack.core.realtime import RealtimeError, current_thread_scheduling, set_current_thread_scheduling

logger = logging.getLogger(__name__)

BACKENDS = ("franky", "direct", "fake")
FR3_JOINT_NAMES = tuple(f"fr3_joint{i}" for i in range(1, 8))
FR3_READY_Q_RAD = (0.0, -math.pi / 4, 0.0, -3 * math.pi / 4, 0.0, math.pi / 2, math.pi / 4)
GRIPPER_MAX_WIDTH_M = 0.08


class RobotError(RuntimeError):
    """A recoverable robot error (reflex, control or command error): call recover()."""


class RobotConnectionError(RuntimeError):
    """The connection to the robot failed or was lost; recovery will not help."""


# -- small rotation helpers (no external dependency) -------------------------------------------
def quat_xyzw_to_matrix(q_xyzw) -> np.ndarray:
    """3x3 rotation matrix of a (x, y, z, w) quaternion (normalized here)."""
    x, y, z, w = np.asarray(q_xyzw, dtype=np.float64) / np.linalg.norm(q_xyzw)
    return np.array([
        [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
        [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
        [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
    ])


def matrix_to_quat_xyzw(R) -> np.ndarray:
    """(x, y, z, w) quaternion with w >= 0 of a 3x3 rotation matrix."""
    R = np.asarray(R, dtype=np.float64)
    tr = R[0, 0] + R[1, 1] + R[2, 2]
    if tr > 0:
        s = math.sqrt(tr + 1.0) * 2
        q = np.array([(R[2, 1] - R[1, 2]) / s, (R[0, 2] - R[2, 0]) / s, (R[1, 0] - R[0, 1]) / s, 0.25 * s])
    elif R[0, 0] > R[1, 1] and R[0, 0] > R[2, 2]:
        s = math.sqrt(1.0 + R[0, 0] - R[1, 1] - R[2, 2]) * 2
        q = np.array([0.25 * s, (R[0, 1] + R[1, 0]) / s, (R[0, 2] + R[2, 0]) / s, (R[2, 1] - R[1, 2]) / s])
    elif R[1, 1] > R[2, 2]:
        s = math.sqrt(1.0 + R[1, 1] - R[0, 0] - R[2, 2]) * 2
        q = np.array([(R[0, 1] + R[1, 0]) / s, 0.25 * s, (R[1, 2] + R[2, 1]) / s, (R[0, 2] - R[2, 0]) / s])
    else:
        s = math.sqrt(1.0 + R[2, 2] - R[0, 0] - R[1, 1]) * 2
        q = np.array([(R[0, 2] + R[2, 0]) / s, (R[1, 2] + R[2, 1]) / s, 0.25 * s, (R[1, 0] - R[0, 1]) / s])
    q /= np.linalg.norm(q)
    return -q if q[3] < 0 else q


def pose_matrix(xyz_m, quat_xyzw) -> np.ndarray:
    """4x4 homogeneous transform from a position (m) and a (x, y, z, w) quaternion."""
    T = np.eye(4)
    T[:3, :3] = quat_xyzw_to_matrix(quat_xyzw)
    T[:3, 3] = np.asarray(xyz_m, dtype=np.float64)
    return T


def _rotvec_to_matrix(rv) -> np.ndarray:
    rv = np.asarray(rv, dtype=np.float64)
    th = float(np.linalg.norm(rv))
    if th < 1e-12:
        return np.eye(3)
    k = rv / th
    K = np.array([[0, -k[2], k[1]], [k[2], 0, -k[0]], [-k[1], k[0], 0]])
    return np.eye(3) + math.sin(th) * K + (1 - math.cos(th)) * (K @ K)


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

    @property
    def p_base_ee(self) -> np.ndarray:
        return self.T_base_ee[:3, 3].copy()

    @property
    def quat_base_ee_xyzw(self) -> np.ndarray:
        return matrix_to_quat_xyzw(self.T_base_ee[:3, :3])


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
    relative_dynamics_factor: float = 0.15
    """Scales franky's own velocity/acceleration/jerk limits (0..1] for every motion, home moves included."""
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
               collision_force_threshold_n: float = 30.0, clock: Callable[[], float] | None = None) -> FrankaRobot:
    """The one factory: a robot for ``config.backend`` (not connected yet)."""
    config.validate()
    if config.backend == "franky":
        return FrankyRobot(config, collision_torque_threshold_nm, collision_force_threshold_n)
    if config.backend == "direct":
        from robot_stack.core.franka_direct import DirectRobot  # imports this module: not at the top

        return DirectRobot(config)
    return FakeRobot(config, clock=clock)


def rotation_error_rotvec(R_target, R_current) -> np.ndarray:
    """Rotation vector (rad, base frame) that turns ``R_current`` into ``R_target``."""
    R = np.asarray(R_target, float) @ np.asarray(R_current, float).T
    cos = float(np.clip((np.trace(R) - 1.0) / 2.0, -1.0, 1.0))
    angle = math.acos(cos)
    if angle < 1e-9:
        return np.zeros(3)
    axis = np.array([R[2, 1] - R[1, 2], R[0, 2] - R[2, 0], R[1, 0] - R[0, 1]])
    n = np.linalg.norm(axis)
    if n < 1e-9:  # 180 degrees: axis from the symmetric part
        w, v = np.linalg.eigh((R + np.eye(3)) / 2.0)
        axis = v[:, int(np.argmax(w))]
        n = 1.0
    return axis / n * angle


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
    v: np.ndarray = field(default_factory=lambda: np.zeros(3))
    w: np.ndarray = field(default_factory=lambda: np.zeros(3))

    @classmethod
    def from_config(cls, T_target: np.ndarray, config: "FrankaConfig") -> "PoseServo":
        return cls(np.asarray(T_target, dtype=np.float64), 1.0 / config.home_rate_hz, config.home_max_lin_speed_m_s,
                   config.home_max_ang_speed_rad_s, config.home_max_lin_accel_m_s2, config.home_gain_1_s,
                   config.home_tolerance_m, config.home_tolerance_rad)

    def step(self, T_base_ee: np.ndarray, ee_lin_m_s: np.ndarray) -> tuple[bool, np.ndarray, np.ndarray]:
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
        reached, v, w = servo.step(s.T_base_ee, s.ee_lin_m_s)
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


# -- franky backend ------------------------------------------------------------------------------
def _restore_thread_scheduling(saved: tuple[int, int] | None) -> None:
    """Put the calling thread back to ``saved`` (policy, priority) after franky raised it.

    Through pthreads (robot_stack.core.realtime): with the bare syscall the caller ran normally
    but pthreads still reported SCHED_FIFO 99, and every Fast DDS thread it started later was
    born with that priority.
    """
    if saved is None:
        return
    try:
        set_current_thread_scheduling(*saved)
    except RealtimeError as e:
        logger.warning("could not restore the thread's scheduling policy after connecting: %s", e)


class FrankyRobot:
    """Franka arm (and hand) through franky; also drives franky-sim unchanged."""

    def __init__(self, config: FrankaConfig, collision_torque_threshold_nm: float = 20.0,
                 collision_force_threshold_n: float = 30.0):
        self.config = config
        self.collision_torque_threshold_nm = collision_torque_threshold_nm
        self.collision_force_threshold_n = collision_force_threshold_n
        self._franky = None
        self._robot = None
        self._gripper = None
        self._gripper_width_m = float("nan")
        self._gripper_read_t = -math.inf

    # connection
    def connect(self) -> None:
        import franky  # imported here: the fake backend and the core need no franky

        self._franky = franky
        rt = {"ignore": franky.RealtimeConfig.Ignore, "enforce": franky.RealtimeConfig.Enforce}[self.config.realtime_config]
        sched = current_thread_scheduling()
        try:
            self._robot = franky.Robot(self.config.robot_ip, relative_dynamics_factor=self.config.relative_dynamics_factor,
                                       realtime_config=rt)
        except (franky.NetworkException, franky.IncompatibleVersionException, franky.RealtimeException) as e:
            raise RobotConnectionError(
                f"cannot connect to the robot at {self.config.robot_ip}: {e} (is the robot/franky-sim "
                f"running on that address, FCI enabled, and the brakes open?)") from e
        finally:
            # franky.Robot() raises the *calling* thread to SCHED_FIFO 99 when permitted (even with
            # RealtimeConfig.Ignore). That thread is Python (a ROS executor, and every thread it
            # starts later inherits it): a busy Python thread at that priority starves the whole
            # machine, the simulator included. libfranka's control loop thread sets its own
            # real-time priority, so the caller goes back to what it had.
            _restore_thread_scheduling(sched)
        try:
            if self._robot.has_errors:
                logger.warning("robot reports errors at connect: running automatic error recovery")
                self._robot.recover_from_errors()
            # Contact/force thresholds: the robot's own collision reflex stops it above these.
            self._robot.set_collision_behavior(self.collision_torque_threshold_nm, self.collision_force_threshold_n)
        except (RuntimeError, franky.Exception) as e:  # a half-started server: "Net Exception"
            self._robot = None
            raise RobotConnectionError(f"robot at {self.config.robot_ip} accepted the connection but failed "
                                       f"right after it: {e} (still starting up? retry)") from e
        if self.config.gripper_enabled:
            try:
                self._gripper = franky.Gripper(self.config.robot_ip)
            except (RuntimeError, franky.Exception, franky.GripperException) as e:  # incl. a bare "Net Exception"
                self._robot = None
                raise RobotConnectionError(f"cannot connect to the gripper at {self.config.robot_ip}: {e} "
                                           f"(set gripper_enabled: false if there is no Franka Hand)") from e
        logger.info("connected to robot at %s", self.config.robot_ip)

    def close(self) -> None:
        if self._robot is None:
            return
        try:
            self.stop()
        except (RobotError, RobotConnectionError) as e:
            logger.error("could not stop the robot cleanly on close: %s", e)
        finally:
            self._robot = None
            self._gripper = None

    def __enter__(self):
        self.connect()
        return self

    def __exit__(self, *exc):
        self.close()

    def _require(self):
        if self._robot is None:
            raise RobotConnectionError("robot not connected: call connect() first")
        return self._robot

    def _wrap(self, fn, what: str):
        f = self._franky
        try:
            return fn()
        except (f.ControlException, f.CommandException, f.InvalidOperationException,
                f.InvalidMotionTypeException) as e:
            raise RobotError(f"{what}: {e}") from e
        except (f.NetworkException, f.ProtocolException, RuntimeError) as e:
            # franky also raises a bare RuntimeError("Net Exception") when the link drops.
            raise RobotConnectionError(f"{what}: {e}") from e

    # state
    def read_state(self) -> RobotState:
        robot = self._require()
        s = self._wrap(lambda: robot.state, "read state")
        # franky's Kalman estimate is the measured EE twist; older states lack it.
        twist = s.O_dP_EE_est if s.O_dP_EE_est is not None else s.O_dP_EE_d
        mode = s.robot_mode
        has_error = mode == self._franky.RobotMode.Reflex or mode == self._franky.RobotMode.UserStopped
        return RobotState(
            t_s=s.time.to_sec(),
            T_base_ee=np.array(s.O_T_EE.matrix, dtype=np.float64),
            ee_lin_m_s=np.array(twist.linear, dtype=np.float64).reshape(3),
            ee_ang_rad_s=np.array(twist.angular, dtype=np.float64).reshape(3),
            q_rad=np.array(s.q, dtype=np.float64).reshape(7),
            dq_rad_s=np.array(s.dq, dtype=np.float64).reshape(7),
            gripper_width_m=self._read_gripper_width(),
            has_error=bool(has_error),
        )

    def _read_gripper_width(self) -> float:
        if self._gripper is None:
            return float("nan")
        now = time.monotonic()
        if now - self._gripper_read_t >= self.config.gripper_poll_period_s:
            try:
                self._gripper_width_m = float(self._gripper.width)
            except (self._franky.GripperException, self._franky.NetworkException, RuntimeError) as e:
                logger.warning("gripper width read failed: %s", e)  # keeps the last width
            self._gripper_read_t = now
        return self._gripper_width_m

    # motion
    def send_twist(self, lin_m_s, ang_rad_s) -> None:
        robot, f = self._require(), self._franky
        hold = f.Duration(max(1, int(round(self.config.segment_hold_s * 1000))))
        motion = f.CartesianVelocityMotion(
            f.Twist(np.asarray(lin_m_s, dtype=np.float64), np.asarray(ang_rad_s, dtype=np.float64)), duration=hold)
        self._wrap(lambda: robot.move(motion, asynchronous=True), "velocity command")

    def stop(self) -> None:
        robot, f = self._require(), self._franky
        motion = f.CartesianVelocityMotion(f.Twist([0.0, 0.0, 0.0], [0.0, 0.0, 0.0]), duration=f.Duration(10))
        try:
            self._wrap(lambda: robot.move(motion, asynchronous=True), "stop")
        except RobotError as e:
            # A velocity motion may be refused (e.g. a pose motion is running): let it finish.
            logger.warning("zero-velocity stop refused (%s): waiting for the current motion", e)
        if not self._wrap(lambda: robot.join_motion(self.config.stop_timeout_s), "stop"):
            logger.error("robot still moving %.1f s after stop", self.config.stop_timeout_s)

    def move_home(self, T_base_ee: np.ndarray, timeout_s: float) -> bool:
        # A velocity servo rather than franky's CartesianMotion: no switch of control mode
        # (pose motions after velocity streaming stalled now and then in franky-sim), the
        # same robot-side hold as streaming, and explicit speed/acceleration limits.
        self._require()
        return servo_to_pose(self, T_base_ee, timeout_s, self.config)

    def gripper_move(self, width_m: float) -> None:
        if self._gripper is None:
            raise RobotError("no gripper connected (gripper_enabled is false)")
        width = float(np.clip(width_m, 0.0, GRIPPER_MAX_WIDTH_M))
        self._gripper.move_async(width, self.config.gripper_speed_m_s)

    def gripper_grasp(self) -> None:
        if self._gripper is None:
            raise RobotError("no gripper connected (gripper_enabled is false)")
        # Wide epsilons: "grasped" means the fingers stopped on anything between 0 and max width.
        self._gripper.grasp_async(0.0, self.config.gripper_speed_m_s, self.config.gripper_force_n,
                                  epsilon_inner=GRIPPER_MAX_WIDTH_M, epsilon_outer=GRIPPER_MAX_WIDTH_M)

    def recover(self) -> bool:
        robot = self._require()
        return bool(self._wrap(robot.recover_from_errors, "error recovery"))


# -- fake backend ------------------------------------------------------------------------------
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
        self._T0 = pose_matrix((0.5, 0.0, 0.4), (1.0, 0.0, 0.0, 0.0)) if T_base_ee is None else np.array(T_base_ee, float)
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
        self.T_base_ee[:3, :3] = _rotvec_to_matrix(0.5 * (self.ang + new_ang) * dt) @ self.T_base_ee[:3, :3]
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
