"""The ``franky`` Franka backend: the real robot through franky-control (libfranka), or
franky-sim over loopback -- the same code path, only ``robot_ip`` differs."""
from __future__ import annotations

import logging
import math
import time

import numpy as np

from robot_stack.devices.franka.base import (
    GRIPPER_MAX_WIDTH_M,
    FrankaConfig,
    RobotConnectionError,
    RobotError,
    RobotState,
)
from robot_stack.devices.franka import limits as fr3_limits
from robot_stack.devices.franka.servo import servo_to_pose
from robot_stack.devices.realtime import RealtimeError, current_thread_scheduling, set_current_thread_scheduling

logger = logging.getLogger(__name__)


def _restore_thread_scheduling(saved: tuple[int, int] | None) -> None:
    """Put the calling thread back to ``saved`` (policy, priority) after franky raised it.

    Through pthreads (robot_stack.devices.realtime): with the bare syscall the caller ran normally
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
                 collision_force_threshold_n: float = 30.0, limits: fr3_limits.CartesianLimits | None = None,
                 ee_offset_m: float = 0.1034):
        self.config = config
        self.collision_torque_threshold_nm = collision_torque_threshold_nm
        self.collision_force_threshold_n = collision_force_threshold_n
        self.limits = limits or fr3_limits.CartesianLimits()
        self._joints = fr3_limits.JointLimiter(self.limits, ee_offset_m)
        self._q_rad: np.ndarray | None = None  # of the last state read: where a twist is mapped to joints
        self._franky = None
        self._robot = None
        self._gripper = None
        self._gripper_width_m = float("nan")
        self._gripper_read_t = -math.inf
        # Lost command cycles: a success rate below 1 after it read 1 since the loop (re)started
        # (the robot reads 0 with no loop running, and a new loop's window starts partly empty).
        self._rate_seen_full = False
        self._lossy_until = -math.inf
        self.lossy_link_count = 0
        """How often a lossy stretch began (for logs and benchmarks)."""

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
            # franky's own limits are above the FR3's (13 m/s^2, 25 rad/s^2 ...), and with a new motion
            # every control period franky plans each step as fast as they allow: ours instead.
            for name, value in fr3_limits.franky_limits(self.limits).items():
                getattr(self._robot, name).set(value)
            fr3 = fr3_limits.FR3
            # franky 2.0 caps joint velocity limits at the Panda's values (2.175 / 2.61 rad/s).
            vmax = self._robot.joint_velocity_limit.max
            self._robot.joint_velocity_limit.set(
                [min(fr3_limits.LIMIT_FRACTION * v, m) for v, m in zip(fr3.joint_velocity_rad_s, vmax)])
            self._robot.joint_acceleration_limit.set([self.limits.joint_accel_rad_s2] * 7)
            self._robot.joint_jerk_limit.set([self.limits.joint_jerk_rad_s3] * 7)
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
        q = np.array(s.q, dtype=np.float64).reshape(7)
        self._q_rad = q
        lossy = self._note_success_rate(float(s.control_command_success_rate))
        return RobotState(
            t_s=s.time.to_sec(),
            T_base_ee=np.array(s.O_T_EE.matrix, dtype=np.float64),
            ee_lin_m_s=np.array(twist.linear, dtype=np.float64).reshape(3),
            ee_ang_rad_s=np.array(twist.angular, dtype=np.float64).reshape(3),
            q_rad=q,
            dq_rad_s=np.array(s.dq, dtype=np.float64).reshape(7),
            gripper_width_m=self._read_gripper_width(),
            has_error=bool(has_error),
            lossy_link=lossy,
        )

    def _note_success_rate(self, rate: float) -> bool:
        """Track the robot's share of received commands (last 100 cycles); True while lossy."""
        now = time.monotonic()
        if rate <= 0.0:
            self._rate_seen_full = False
        elif rate >= 1.0:
            self._rate_seen_full = True
        elif self._rate_seen_full:
            if now >= self._lossy_until:
                self.lossy_link_count += 1
                logger.warning(
                    "the robot lost command cycles (%.0f%% of the last 100 received): planning with joint "
                    "acceleration %.2g rad/s^2 for %.0f s; check the real-time set-up", 100.0 * rate,
                    self.limits.lossy_link_joint_accel_rad_s2, self.limits.lossy_link_hold_s)
            self._lossy_until = now + self.limits.lossy_link_hold_s
        return now < self._lossy_until

    def _acceleration_factor(self) -> float:
        """franky's acceleration factor for the next motion: below 1 while the link is lossy."""
        if time.monotonic() < self._lossy_until:
            return self.limits.lossy_link_accel_factor
        return 1.0

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
        lin, ang = np.asarray(lin_m_s, dtype=np.float64), np.asarray(ang_rad_s, dtype=np.float64)
        if self._q_rad is None:
            self.read_state()
        if self.config.command_interface == "joint_velocity":
            dq = self._joints.joint_velocity(self._q_rad, lin, ang)
            accel = self._acceleration_factor()
            jmotion = f.JointVelocityMotion(dq, duration=hold, relative_dynamics_factor=(
                1.0 if accel == 1.0 else f.RelativeDynamicsFactor(1.0, accel, 1.0)))
            self._wrap(lambda: robot.move(jmotion, asynchronous=True), "velocity command")
            return
        # Where the Jacobian amplifies Cartesian acceleration and jerk into joint space, franky
        # plans this step with correspondingly lower limits (the ramp was scaled the same way).
        js = self._joints.scale(self._q_rad, lin, ang)
        factor = f.RelativeDynamicsFactor(1.0, js.acceleration * self._acceleration_factor(), js.jerk)
        motion = f.CartesianVelocityMotion(f.Twist(lin, ang), duration=hold, relative_dynamics_factor=factor)
        self._wrap(lambda: robot.move(motion, asynchronous=True), "velocity command")

    def stop(self) -> None:
        robot, f = self._require(), self._franky
        if self.config.command_interface == "joint_velocity":
            motion = f.JointVelocityMotion(np.zeros(7), duration=f.Duration(10))
        else:
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
        robot, f = self._require(), self._franky
        # franky keeps the exception that ended the aborted motion and raises it from the next
        # move(): collect it here, or one reflex would cost a second recovery on the next send.
        try:
            robot.join_motion(self.config.stop_timeout_s)
        except (f.ControlException, f.CommandException, f.InvalidOperationException, RuntimeError) as e:
            logger.info("collected the aborted motion's error before recovering: %s", e)
        if not self._wrap(robot.recover_from_errors, "error recovery"):
            return False
        # franky answers state reads from its last state while fresh ones look stale (a robot, or a
        # simulator, running behind the wall clock): a reflex mode read right after the recovery
        # would count as a second reflex. Poll the robot's mode until it leaves the reflex.
        deadline = time.monotonic() + self.config.stop_timeout_s
        while self.read_state().has_error:
            if time.monotonic() > deadline:
                logger.error("robot still reports a reflex %.1f s after the recovery", self.config.stop_timeout_s)
                return False
            time.sleep(0.01)  # polling the robot's state
        return True
