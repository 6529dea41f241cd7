# Over 400 lines: one pure filter, its six stages in order, with their reasons (about 60 lines of specification).
"""Safety layer for Cartesian velocity streaming (ROS-free, pure, testable).

Every end-effector velocity command passes through a :class:`SafetyFilter` before it
reaches the robot. The filter is a pure function of what it was given (commands with their
time stamps, the current EE position, the current time), so it runs identically in the
Franka node, in tests with the fake robot and against franky-sim.

What it enforces, in this order, on every control tick (:meth:`SafetyFilter.update`):

1. **Command validity** (at :meth:`SafetyFilter.submit`): NaN/inf, wrong shapes and absurd
   magnitudes (above the ``reject_*`` thresholds) are rejected, counted and logged with a
   reason; a rejected command also clears the last good one, so the robot decelerates to
   zero instead of carrying on (or jumping to a garbage value).
2. **Watchdog**: no accepted command for ``watchdog_timeout_s`` -> target zero.
3. **Speed limits**: the translational and rotational target speeds are scaled down to
   ``max_lin_speed_m_s`` / ``max_ang_speed_rad_s`` (direction kept).
4. **Workspace box**: per axis the linear velocity is clipped to
   ``[k (min - p), k (max - p)]`` with ``k = box_approach_gain_1_s``. Far from a wall this
   removes nothing; near a wall it removes only the component pushing outward (smoothly, so
   the approach decelerates); outside the box the bound turns into a pull-back velocity
   (capped by ``max_pullback_speed_m_s``).
4b. **Orientation limits** (with the measured EE orientation): the EE may tilt at most
   ``max_tilt_rad`` away from ``reference_quat_xyzw`` and turn at most ``max_yaw_rad`` about
   its axis; near a limit the rotation towards it is removed like the box's outward speed
   (gain ``box_approach_gain_1_s``). Rotations random-walk otherwise, into wrist and elbow
   configurations where the joints reach their limits or the Jacobian degenerates.
5. **Joint limits** (with the measured joint angles): the twist is scaled down so that no
   joint exceeds its share of the FR3's position-based velocity envelope (the arm slows to a
   stop before a joint limit), and the acceleration allowed in step 6 shrinks where the
   Jacobian amplifies it (:class:`robot_stack.devices.franka.limits.JointLimiter`).
6. **Acceleration limits**: the change of the output twist per tick is limited to
   ``max_lin_accel_m_s2 * dt`` and ``max_ang_accel_rad_s2 * dt`` (vector norm), so a stop,
   a watchdog timeout or a rejected command ramps down instead of jerking. Between ticks
   franky's motion generator keeps to the same accelerations and to ``max_*_jerk_*``
   (:func:`robot_stack.devices.franka.limits.franky_limits`).

While :attr:`SafetyFilter.lossy_link` is set (the robot loses command cycles, and franky plans
with ``lossy_link_joint_accel_rad_s2``), the accelerations of step 6 scale by the ratio r of
that to ``max_joint_accel_rad_s2``, and the speeds of step 3 and the approach gain of steps 4 and
4b by sqrt(r): the arm moves more slowly and still stops within the same distance, so it keeps
to the box as at full acceleration.

:class:`RecoveryPolicy` decides whether to call the robot's error recovery after a reflex
error (one attempt per reflex), up to ``max_recovery_attempts`` within ``recovery_window_s``.

Events (strings, also used as status events by the Franka node): ``watchdog_stop``,
``rejected_nan``, ``rejected_shape``, ``rejected_out_of_range``, ``box_clamp``,
``box_outside``, ``joint_limit``, ``recovering``, ``recovery_gave_up``.

The workspace box type and its file loader are the calibration's
(:mod:`robot_stack.calibration.workspace`): the box is either given inline
(``workspace_min_xyz_m``/``workspace_max_xyz_m``) or loaded from the file the workspace
calibration wrote (``workspace_file``, see :func:`resolve_workspace`).
"""
from __future__ import annotations

import logging
import math
from collections import Counter
import dataclasses
from dataclasses import dataclass, field

import numpy as np

from robot_stack.devices.franka import limits as fr3_limits
from robot_stack.types.workspace import WorkspaceBox, load_workspace_box

logger = logging.getLogger(__name__)

EVENT_WATCHDOG_STOP = "watchdog_stop"
EVENT_REJECTED_NAN = "rejected_nan"
EVENT_REJECTED_SHAPE = "rejected_shape"
EVENT_REJECTED_OUT_OF_RANGE = "rejected_out_of_range"
EVENT_BOX_CLAMP = "box_clamp"
EVENT_BOX_OUTSIDE = "box_outside"
EVENT_RECOVERING = "recovering"
EVENT_RECOVERY_GAVE_UP = "recovery_gave_up"
EVENT_JOINT_LIMIT = "joint_limit"
EVENT_ORIENTATION_LIMIT = "orientation_limit"

DEFAULT_BOX_MIN_XYZ_M = (0.42, -0.20, 0.15)
DEFAULT_BOX_MAX_XYZ_M = (0.60, 0.20, 0.40)


@dataclass(frozen=True)
class SafetyConfig:
    """Every threshold of the safety layer (one field per knob)."""

    workspace_file: str = ""
    """Workspace box YAML written by the workspace calibration; when set, its box replaces
    workspace_min_xyz_m/workspace_max_xyz_m (see resolve_workspace). Empty: use the inline box."""
    workspace_frame: str = "base"
    """Frame of the inline box (a loaded file names its own); must be the robot base frame."""
    workspace_min_xyz_m: tuple[float, float, float] = DEFAULT_BOX_MIN_XYZ_M
    """Workspace box lower corner (x, y, z) in m, robot base frame. The default lies inside the FR3's
    dexterous workspace for the gripper pointing down (checked with the arm's kinematics)."""
    workspace_max_xyz_m: tuple[float, float, float] = DEFAULT_BOX_MAX_XYZ_M
    """Workspace box upper corner (x, y, z) in m, robot base frame."""
    max_lin_speed_m_s: float = 0.15
    """Largest EE translational speed sent to the robot, m/s (faster commands are scaled down)."""
    max_ang_speed_rad_s: float = 0.6
    """Largest EE rotational speed sent to the robot, rad/s (faster commands are scaled down)."""
    max_lin_accel_m_s2: float = 1.0
    """Largest change of EE translational velocity, m/s^2 (ramps starts, stops and watchdog stops)."""
    max_ang_accel_rad_s2: float = 4.0
    """Largest change of EE rotational velocity, rad/s^2."""
    max_lin_jerk_m_s3: float = 500.0
    """Largest EE translational jerk franky's 1 kHz motion generator may plan, m/s^3 (per axis,
    like the acceleration limits, which franky follows too)."""
    max_ang_jerk_rad_s3: float = 2000.0
    """Largest EE rotational jerk franky's motion generator may plan, rad/s^3 (per axis)."""
    max_joint_accel_rad_s2: float = 2.5
    """Largest joint acceleration, rad/s^2 (FR3: 10): franky's limit when it streams joint velocities,
    and the ramp's bound where the Jacobian amplifies Cartesian acceleration. Low, because a lost
    1 kHz cycle turns the acceleration of the moment into a jerk the robot judges (see
    lossy_link_joint_accel_rad_s2)."""
    max_joint_jerk_rad_s3: float = 800.0
    """Largest joint jerk franky may plan, rad/s^3 (FR3: 5000). 250 was tried: fewer reflexes after
    runs of lost cycles (the plan's acceleration rises more slowly), but in the sim graph, where the
    simulated arm runs at 0.4x real time next to the learner, the arm lagged the commands by 0.40 s
    of wall time against 0.25 s at 800, too slow to follow a 10 Hz policy."""
    lossy_link_joint_accel_rad_s2: float = 0.5
    """Joint acceleration franky may plan while the link loses command cycles, rad/s^2 (at most
    max_joint_accel_rad_s2). Through n lost 1 kHz cycles the robot extrapolates the last command at
    constant acceleration a, while franky resumes from its own last waypoint: the resumed command
    is a jerk step of about n * a / 1 ms (n = 2 at 2.5 rad/s^2 is the FR3's 5000 rad/s^3). So once
    the robot reports a lost cycle (control_command_success_rate below 1), franky plans with
    this lower acceleration for lossy_link_hold_s (event ``lossy_link``), and the filter slows
    down to match (:attr:`SafetyFilter.lossy_link`)."""
    lossy_link_hold_s: float = 10.0
    """How long the lower acceleration stays after the last lost command cycle the robot reported, s."""
    reference_quat_xyzw: tuple[float, float, float, float] = (1.0, 0.0, 0.0, 0.0)
    """Task orientation (x, y, z, w) the orientation limits are measured from (default: the gripper
    pointing down, as the home pose)."""
    max_tilt_rad: float = 0.25
    """Largest angle between the EE z axis and the reference's, rad."""
    max_yaw_rad: float = 1.0
    """Largest turn about the EE z axis away from the reference, rad (either way)."""
    flange_to_ee_m: float = 0.1034
    """Distance from the flange to the commanded EE point along the flange z axis, m (the Franka
    Hand's TCP): the joint-limit stage maps twists of this point to joint velocities."""
    reject_lin_speed_m_s: float = 1.0
    """Commands faster than this (m/s) are not scaled but rejected as garbage (a unit or scaling bug upstream)."""
    reject_ang_speed_rad_s: float = 4.0
    """Commands rotating faster than this (rad/s) are rejected as garbage."""
    watchdog_timeout_s: float = 0.25
    """No accepted command for this long -> the target becomes zero and the robot ramps to a stop."""
    box_approach_gain_1_s: float = 4.0
    """Near a wall the outward speed is limited to gain * distance (1/s): the approach slows down
    smoothly. Must satisfy gain * max_lin_speed_m_s <= max_lin_accel_m_s2 so the ramp can brake in time."""
    max_pullback_speed_m_s: float = 0.05
    """Largest speed (m/s) used to pull the EE back inside when it is outside the box."""
    max_tick_dt_s: float = 0.05
    """Largest time step (s) the acceleration limiter credits per tick, so a stalled loop cannot
    grant one large velocity jump when it resumes."""
    max_recovery_attempts: int = 3
    """Error recoveries allowed within recovery_window_s before giving up (status recovery_gave_up)."""
    recovery_window_s: float = 60.0
    """Window (s) over which recovery attempts are counted; older attempts are forgotten."""
    collision_torque_threshold_nm: float = 20.0
    """Joint torque (Nm) above which the robot's collision reflex stops it (set on the robot at connect)."""
    collision_force_threshold_n: float = 30.0
    """Cartesian contact force (N) above which the robot's collision reflex stops it (set at connect)."""

    def validate(self) -> None:
        self.box.validate()
        positive = (
            "max_lin_speed_m_s", "max_ang_speed_rad_s", "max_lin_accel_m_s2", "max_ang_accel_rad_s2",
            "max_lin_jerk_m_s3", "max_ang_jerk_rad_s3", "max_joint_accel_rad_s2", "max_joint_jerk_rad_s3", "lossy_link_joint_accel_rad_s2", "lossy_link_hold_s", "max_tilt_rad", "max_yaw_rad", "reject_lin_speed_m_s", "reject_ang_speed_rad_s", "watchdog_timeout_s",
            "box_approach_gain_1_s", "max_pullback_speed_m_s", "max_tick_dt_s", "recovery_window_s",
            "collision_torque_threshold_nm", "collision_force_threshold_n",
        )
        for name in positive:
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and math.isfinite(v) and v > 0):
                raise ValueError(f"{name} must be a finite number > 0, got {v!r}")
        if self.lossy_link_joint_accel_rad_s2 > self.max_joint_accel_rad_s2:
            raise ValueError(
                f"lossy_link_joint_accel_rad_s2 ({self.lossy_link_joint_accel_rad_s2}) must be <= "
                f"max_joint_accel_rad_s2 ({self.max_joint_accel_rad_s2}): it is the gentler limit for a lossy link"
            )
        if self.reject_lin_speed_m_s < self.max_lin_speed_m_s:
            raise ValueError(
                f"reject_lin_speed_m_s ({self.reject_lin_speed_m_s}) must be >= max_lin_speed_m_s "
                f"({self.max_lin_speed_m_s}), or valid fast commands would be rejected instead of scaled"
            )
        if self.reject_ang_speed_rad_s < self.max_ang_speed_rad_s:
            raise ValueError(
                f"reject_ang_speed_rad_s ({self.reject_ang_speed_rad_s}) must be >= max_ang_speed_rad_s "
                f"({self.max_ang_speed_rad_s})"
            )
        if self.box_approach_gain_1_s * self.max_lin_speed_m_s > self.max_lin_accel_m_s2 + 1e-12:
            raise ValueError(
                f"box_approach_gain_1_s * max_lin_speed_m_s = "
                f"{self.box_approach_gain_1_s * self.max_lin_speed_m_s:.3f} m/s^2 exceeds max_lin_accel_m_s2 "
                f"= {self.max_lin_accel_m_s2}: the ramp could not brake before the wall; lower the gain "
                f"or raise the acceleration limit"
            )
        q = np.asarray(self.reference_quat_xyzw, dtype=float)
        if not (q.shape == (4,) and np.all(np.isfinite(q)) and abs(np.linalg.norm(q) - 1.0) < 1e-3):
            raise ValueError(f"reference_quat_xyzw must be a unit quaternion (x, y, z, w), got {self.reference_quat_xyzw}")
        if not (math.isfinite(self.flange_to_ee_m) and 0.0 <= self.flange_to_ee_m <= 0.5):
            raise ValueError(f"flange_to_ee_m must be in [0, 0.5] m, got {self.flange_to_ee_m!r}")
        fr3_limits.check_config(self.cartesian_limits)
        if not isinstance(self.max_recovery_attempts, int) or self.max_recovery_attempts < 0:
            raise ValueError(f"max_recovery_attempts must be an integer >= 0, got {self.max_recovery_attempts!r}")

    @property
    def cartesian_limits(self) -> fr3_limits.CartesianLimits:
        """The limits franky's motion generator is given (see robot_stack.devices.franka.limits)."""
        return fr3_limits.CartesianLimits(self.max_lin_speed_m_s, self.max_ang_speed_rad_s, self.max_lin_accel_m_s2,
                                          self.max_ang_accel_rad_s2, self.max_lin_jerk_m_s3, self.max_ang_jerk_rad_s3,
                                          self.max_joint_accel_rad_s2, self.max_joint_jerk_rad_s3,
                                          self.lossy_link_joint_accel_rad_s2, self.lossy_link_hold_s)

    @property
    def box(self) -> WorkspaceBox:
        return WorkspaceBox(self.workspace_frame, tuple(self.workspace_min_xyz_m), tuple(self.workspace_max_xyz_m))


def resolve_workspace(config: SafetyConfig) -> SafetyConfig:
    """The config with the box from ``workspace_file`` filled in (unchanged when it is empty).

    Raises ValueError (CalibrationFileError / InvalidWorkspaceBoxError) naming the file and
    the problem when the file is missing or its box is unusable.
    """
    if not config.workspace_file:
        return config
    box = load_workspace_box(config.workspace_file)
    resolved = dataclasses.replace(config, workspace_frame=box.frame, workspace_min_xyz_m=tuple(box.min_xyz_m),
                                   workspace_max_xyz_m=tuple(box.max_xyz_m))
    resolved.validate()
    logger.info("workspace box from %s: %s..%s in %s", config.workspace_file, box.min_xyz_m, box.max_xyz_m, box.frame)
    return resolved


@dataclass(frozen=True)
class SafeTwist:
    """Output of one safety tick: the twist to send and what the filter did."""

    lin_m_s: np.ndarray
    """EE linear velocity to send, base frame, m/s."""
    ang_rad_s: np.ndarray
    """EE angular velocity to send, base frame, rad/s."""
    events: tuple[str, ...] = ()
    """Events raised on this tick (see module docstring); edge-triggered, not repeated every tick."""

    @property
    def is_zero(self) -> bool:
        return not (np.any(self.lin_m_s) or np.any(self.ang_rad_s))


@dataclass(frozen=True)
class Verdict:
    """Whether a submitted command was accepted, and why not."""

    accepted: bool
    reason: str = ""
    """Event name when rejected (rejected_nan, rejected_shape, rejected_out_of_range)."""
    detail: str = ""


def check_command(lin_m_s, ang_rad_s, config: SafetyConfig) -> Verdict:
    """Validate a raw twist command without side effects."""
    try:
        lin = np.asarray(lin_m_s, dtype=np.float64)
        ang = np.asarray(ang_rad_s, dtype=np.float64)
    except (TypeError, ValueError) as e:
        return Verdict(False, EVENT_REJECTED_SHAPE, f"not numeric: {e}")
    if lin.shape != (3,) or ang.shape != (3,):
        return Verdict(False, EVENT_REJECTED_SHAPE, f"expected 3+3 values, got shapes {lin.shape} and {ang.shape}")
    if not (np.all(np.isfinite(lin)) and np.all(np.isfinite(ang))):
        return Verdict(False, EVENT_REJECTED_NAN, f"non-finite command lin={lin.tolist()} ang={ang.tolist()}")
    v, w = float(np.linalg.norm(lin)), float(np.linalg.norm(ang))
    if v > config.reject_lin_speed_m_s:
        return Verdict(False, EVENT_REJECTED_OUT_OF_RANGE, f"|lin| = {v:.3f} m/s > reject_lin_speed_m_s = {config.reject_lin_speed_m_s}")
    if w > config.reject_ang_speed_rad_s:
        return Verdict(False, EVENT_REJECTED_OUT_OF_RANGE, f"|ang| = {w:.3f} rad/s > reject_ang_speed_rad_s = {config.reject_ang_speed_rad_s}")
    return Verdict(True)


def _limit_norm(v: np.ndarray, max_norm: float) -> np.ndarray:
    n = float(np.linalg.norm(v))
    return v if n <= max_norm or n == 0.0 else v * (max_norm / n)


class SafetyFilter:
    """Turns the latest command into a safe twist on every control tick (not thread-safe:
    the caller serializes :meth:`submit` and :meth:`update`)."""

    def __init__(self, config: SafetyConfig):
        config.validate()
        self.config = config
        self._box = config.box
        limits = config.cartesian_limits
        self.joints = fr3_limits.JointLimiter(limits, config.flange_to_ee_m)
        self._lossy_link_accel_factor = limits.lossy_link_accel_factor
        self.joint_scale = fr3_limits.JointScale(1.0, 1.0, 1.0)
        """The joint-space factors of the last update (1.0 without joint angles)."""
        self._joint_limited = False
        self._orientation_limited = False
        self._R_ref = _quat_to_matrix(config.reference_quat_xyzw)
        self.counters: Counter[str] = Counter()
        """How often each event happened (rejections, watchdog stops, clamps...)."""
        self._cmd_lin = np.zeros(3)
        self._cmd_ang = np.zeros(3)
        self._cmd_t: float | None = None
        self._out_lin = np.zeros(3)
        self._out_ang = np.zeros(3)
        self._last_update_t: float | None = None
        self._watchdog_tripped = True  # no command yet counts as "stopped", without an event
        self._clamping = False
        self._outside = False
        self._pending: list[str] = []
        self._gain = config.box_approach_gain_1_s  # the approach gain of this update (steps 4, 4b)
        self.lossy_link = False
        """Set by the caller while the robot loses command cycles (RobotState.lossy_link): slower
        and gentler, with the same stopping distances (module docstring)."""

    # -- commands --------------------------------------------------------------------------
    def submit(self, lin_m_s, ang_rad_s, t_s: float) -> Verdict:
        """Offer a new command (base frame, m/s and rad/s) received at time ``t_s``."""
        verdict = check_command(lin_m_s, ang_rad_s, self.config)
        if not verdict.accepted:
            self.counters[verdict.reason] += 1
            self._pending.append(verdict.reason)
            logger.warning("safety: command rejected (%s): %s", verdict.reason, verdict.detail)
            # Drop the last good command too: the source is broken, so decelerate to zero.
            self._cmd_lin = np.zeros(3)
            self._cmd_ang = np.zeros(3)
            self._cmd_t = None
            return verdict
        self._cmd_lin = np.asarray(lin_m_s, dtype=np.float64).copy()
        self._cmd_ang = np.asarray(ang_rad_s, dtype=np.float64).copy()
        self._cmd_t = float(t_s)
        return verdict

    def clear(self) -> None:
        """Forget the current command (target zero from now on, still ramped)."""
        self._cmd_lin = np.zeros(3)
        self._cmd_ang = np.zeros(3)
        self._cmd_t = None

    def reset(self, lin_m_s=None, ang_rad_s=None) -> None:
        """Forget the command and set the ramp state to the robot's actual velocity (after a
        recovery or a home move the robot is at rest, whatever we last sent)."""
        self.clear()
        self._out_lin = np.zeros(3) if lin_m_s is None else np.asarray(lin_m_s, float).copy()
        self._out_ang = np.zeros(3) if ang_rad_s is None else np.asarray(ang_rad_s, float).copy()
        self._last_update_t = None
        self._watchdog_tripped = True

    @property
    def watchdog_tripped(self) -> bool:
        """True from the watchdog stop (or before any command) until the next fresh command."""
        return self._watchdog_tripped

    @property
    def output(self) -> tuple[np.ndarray, np.ndarray]:
        """Last twist returned by :meth:`update`."""
        return self._out_lin.copy(), self._out_ang.copy()

    def command_age_s(self, t_s: float) -> float:
        return math.inf if self._cmd_t is None else t_s - self._cmd_t

    # -- control tick ----------------------------------------------------------------------
    def update(self, t_s: float, p_base_ee_m=None, q_rad=None, R_base_ee=None) -> SafeTwist:
        """Safe twist for time ``t_s`` given the EE position (m, base frame; None skips the box), the
        joint angles (rad; None skips the joint-limit stage) and the EE orientation (3x3; None skips
        the orientation limits)."""
        cfg = self.config
        events = self._pending
        self._pending = []

        # 2. watchdog
        fresh = self._cmd_t is not None and (t_s - self._cmd_t) <= cfg.watchdog_timeout_s
        if fresh:
            lin, ang = self._cmd_lin.copy(), self._cmd_ang.copy()
            self._watchdog_tripped = False
        else:
            lin, ang = np.zeros(3), np.zeros(3)
            if not self._watchdog_tripped and self._cmd_t is not None:
                self.counters[EVENT_WATCHDOG_STOP] += 1
                events.append(EVENT_WATCHDOG_STOP)
                logger.warning("safety: no command for %.3f s > %.3f s: stopping", t_s - self._cmd_t, cfg.watchdog_timeout_s)
            self._watchdog_tripped = True

        # 3. speed limits (slower on a lossy link: module docstring)
        r = self._lossy_link_accel_factor if self.lossy_link else 1.0
        self._gain = math.sqrt(r) * cfg.box_approach_gain_1_s
        lin = _limit_norm(lin, math.sqrt(r) * cfg.max_lin_speed_m_s)
        ang = _limit_norm(ang, math.sqrt(r) * cfg.max_ang_speed_rad_s)

        # 4. workspace box
        if p_base_ee_m is not None:
            p = np.asarray(p_base_ee_m, dtype=np.float64)
            if p.shape == (3,) and np.all(np.isfinite(p)):
                lin = self._box_filter(lin, p, events)
            else:
                # Without a valid position the box cannot be checked: stop rather than guess.
                logger.error("safety: invalid EE position %r: stopping", p_base_ee_m)
                lin, ang = np.zeros(3), np.zeros(3)

        # 4b. orientation limits
        if R_base_ee is not None:
            R = np.asarray(R_base_ee, dtype=np.float64)
            if R.shape == (3, 3) and np.all(np.isfinite(R)):
                ang = self._orientation_filter(ang, R, events)

        # 5. joint limits: velocity envelope, and how much acceleration the Jacobian leaves
        accel_scale = r
        if q_rad is not None:
            js = self.joints.scale(q_rad, lin, ang)
            self.joint_scale = js
            lin, ang = lin * js.velocity, ang * js.velocity
            accel_scale = r * js.acceleration
            limited = js.velocity < 0.999
            if limited and not self._joint_limited:
                self.counters[EVENT_JOINT_LIMIT] += 1
                events.append(EVENT_JOINT_LIMIT)
            self._joint_limited = limited

        # 6. acceleration limits
        # The first tick after a reset has no dt yet: it holds the current output (no jump).
        dt = 0.0 if self._last_update_t is None else min(max(t_s - self._last_update_t, 0.0), cfg.max_tick_dt_s)
        self._out_lin = self._out_lin + _limit_norm(lin - self._out_lin, accel_scale * cfg.max_lin_accel_m_s2 * dt)
        self._out_ang = self._out_ang + _limit_norm(ang - self._out_ang, accel_scale * cfg.max_ang_accel_rad_s2 * dt)
        # Snap tiny residues to exact zero so "stopped" is unambiguous downstream.
        if not np.any(lin) and np.linalg.norm(self._out_lin) < 1e-9:
            self._out_lin = np.zeros(3)
        if not np.any(ang) and np.linalg.norm(self._out_ang) < 1e-9:
            self._out_ang = np.zeros(3)
        self._last_update_t = t_s
        return SafeTwist(self._out_lin.copy(), self._out_ang.copy(), tuple(events))

    def _orientation_filter(self, ang: np.ndarray, R: np.ndarray, events: list[str]) -> np.ndarray:
        cfg = self.config
        k, pull = self._gain, 4.0 * cfg.max_pullback_speed_m_s  # rad/s back inside
        tilt, yaw = tilt_and_yaw(self._R_ref, R)
        out = ang.copy()
        n = np.cross(self._R_ref[:, 2], R[:, 2])  # turning about n increases the tilt
        if np.linalg.norm(n) > 1e-9:
            n /= np.linalg.norm(n)
            bound = max(k * (cfg.max_tilt_rad - tilt), -pull)
            rate = float(out @ n)
            if rate > bound:
                out -= (rate - bound) * n
        z = R[:, 2]  # turning about the EE's own z axis changes the yaw
        lo = min(max(k * (-cfg.max_yaw_rad - yaw), -pull), pull)
        hi = max(min(k * (cfg.max_yaw_rad - yaw), pull), -pull)
        rate = float(out @ z)
        if rate > hi or rate < lo:
            out += (float(np.clip(rate, lo, hi)) - rate) * z
        limited = bool(np.linalg.norm(out - ang) > 1e-6)
        if limited and not self._orientation_limited:
            self.counters[EVENT_ORIENTATION_LIMIT] += 1
            events.append(EVENT_ORIENTATION_LIMIT)
        self._orientation_limited = limited
        return out

    def _box_filter(self, lin: np.ndarray, p: np.ndarray, events: list[str]) -> np.ndarray:
        cfg, box = self.config, self._box
        k = self._gain
        upper = k * (box.upper - p)  # largest allowed velocity per axis (negative outside: pull back)
        lower = k * (box.lower - p)
        outside = not box.contains(p)
        if outside:
            # Cap the pull-back so a large excursion does not produce a fast return.
            upper = np.maximum(upper, -cfg.max_pullback_speed_m_s)
            lower = np.minimum(lower, cfg.max_pullback_speed_m_s)
        out = np.clip(lin, lower, upper)
        clamped = bool(np.any(np.abs(out - lin) > 1e-6))
        if clamped and not self._clamping and not outside:
            self.counters[EVENT_BOX_CLAMP] += 1
            events.append(EVENT_BOX_CLAMP)
        if outside and not self._outside:
            self.counters[EVENT_BOX_OUTSIDE] += 1
            events.append(EVENT_BOX_OUTSIDE)
            logger.warning("safety: EE at %s is outside the workspace box %s..%s: pulling back",
                           np.round(p, 3).tolist(), box.min_xyz_m, box.max_xyz_m)
        self._clamping = clamped
        self._outside = outside
        return out


def _quat_to_matrix(q_xyzw) -> np.ndarray:
    x, y, z, w = np.asarray(q_xyzw, dtype=np.float64) / np.linalg.norm(q_xyzw)
    return np.array([
        [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
        [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
        [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
    ])


def tilt_and_yaw(R_ref: np.ndarray, R: np.ndarray) -> tuple[float, float]:
    """(tilt, yaw) of orientation ``R`` from ``R_ref``, rad: the angle between their z axes, and the
    turn about z of the relative rotation (exact for zero tilt)."""
    tilt = math.acos(float(np.clip(R[:, 2] @ R_ref[:, 2], -1.0, 1.0)))
    rel = R_ref.T @ R
    return tilt, math.atan2(rel[1, 0] - rel[0, 1], rel[0, 0] + rel[1, 1])


@dataclass
class RecoveryPolicy:
    """Allows at most ``max_attempts`` error recoveries within ``window_s`` seconds."""

    max_attempts: int = 3
    """Recoveries allowed within the window."""
    window_s: float = 60.0
    """Length of the window, s."""
    attempts: list[float] = field(default_factory=list)
    """Times of the recoveries inside the window."""
    gave_up: bool = False
    """True once the limit was hit: no further automatic recovery until :meth:`reset`."""

    @classmethod
    def from_config(cls, config: SafetyConfig) -> "RecoveryPolicy":
        return cls(max_attempts=config.max_recovery_attempts, window_s=config.recovery_window_s)

    def allow(self, t_s: float) -> bool:
        """Call on an error: True if a recovery may be tried now (and counts it)."""
        if self.gave_up:
            return False
        self.attempts = [a for a in self.attempts if t_s - a < self.window_s]
        if len(self.attempts) >= self.max_attempts:
            self.gave_up = True
            logger.error("safety: %d recoveries within %.0f s: giving up", len(self.attempts), self.window_s)
            return False
        self.attempts.append(t_s)
        return True

    def reset(self) -> None:
        """Operator acknowledged the problem: allow recoveries again."""
        self.attempts.clear()
        self.gave_up = False
