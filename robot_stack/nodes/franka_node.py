# Over 400 lines: about 80 are the docstring; control loop, home moves, recovery and fallback are short methods over devices.franka.
"""Franka node: streams safe EE velocities to the arm and publishes its state.

Every command passes through :class:`robot_stack.devices.franka.safety.SafetyFilter` (workspace box,
speed and acceleration limits, watchdog, NaN/out-of-range rejection). A control thread
(:class:`robot_stack.nodes.control_loop.ControlLoop`, optionally SCHED_FIFO with
``control_thread_priority``) runs at ``control_rate_hz`` on absolute deadlines: read the robot
state, run the safety filter on the latest command, send the resulting twist, publish state.
The subscriptions run in a single-threaded executor (their callbacks are short; a home move
runs in its own worker thread). With ``send_on_command`` (default) a new velocity command is
also sent at once by a sender thread that the command callback wakes, through the same safety
filter and send path as the control loop (one code path, serialized by a lock), with the EE
position of the last control tick for the box check; so a command reaches the robot without
waiting up to one control period (operator takeover latency). (Sending from the callback
itself saved about 1 ms at p99 but made franky-sim's motion planner fail with error -110 in 2
of 2 latency runs: each command was then a send, with no coalescing.) The loop keeps re-sending,
ramping and watching at ``control_rate_hz``. An exception in the loop stops and releases the
arm at once and ends the node with a non-zero exit status.

Topic and service names are relative (robot_stack.nodes.topics; default namespace
``robot_stack``, so ``franka/cmd_twist`` is ``/robot_stack/franka/cmd_twist``).

Subscribes (all ``qos.COMMAND``: reliable, volatile, depth 10)
  ``franka/cmd_twist`` (geometry_msgs/TwistStamped): EE velocity in the robot
      base frame (``header.frame_id`` empty or ``base_frame``), m/s and rad/s. Must arrive
      faster than ``safety.watchdog_timeout_s``; otherwise the arm ramps to a stop.
  ``operator`` (robot_stack/OperatorCommand), with ``operator_fallback`` (default):
      the SpaceMouse node's command. Ignored while the actor streams (the actor arbitrates and
      forwards the operator itself). When no velocity command has come for
      ``safety.watchdog_timeout_s`` (the actor crashed, hung or was stopped), once the watchdog
      has stopped the arm, an intervening operator's twist drives it directly, through the same
      safety filter:
      the operator can take over without an actor. Not during a home move nor within
      ``fallback_after_home_s`` after one (the actor is resetting then), unless the actor's
      command publisher has left the graph. Status events ``operator_fallback`` /
      ``operator_fallback_end``.
  ``franka/gripper_cmd`` (std_msgs/Float32): target finger width in m
      (0..0.08). A width <= ``gripper_grasp_below_m`` grasps with ``robot.gripper_force_n``.

Services (answered when the move has ended; the callbacks await it, so the executor keeps
serving commands and state meanwhile)
  ``franka/home`` (std_srvs/Trigger): move to the configured home pose, offset uniformly by up
      to ``home_randomize_xyz_m`` per axis (clamped into the workspace box).
  ``franka/home_to`` (robot_stack/HomeTo): move to this pose (base frame, inside the box).
      Homing suspends velocity streaming (state keeps being published). The answer's
      ``success`` says whether the pose was reached; a request while a move runs is refused
      (``home_busy``). The status topic reports ``home_started`` / ``home_done`` /
      ``home_failed`` as well.

Publishes
  ``franka/joint_states`` (sensor_msgs/JointState, ``qos.STATE``): fr3_joint1..7,
      rad and rad/s.
  ``ee_pose`` (geometry_msgs/PoseStamped, ``qos.STATE``): EE (TCP) pose in the base frame.
  ``franka/ee_twist`` (geometry_msgs/TwistStamped, ``qos.STATE``): measured EE twist.
  ``franka/gripper_width`` (std_msgs/Float32, ``qos.STATE``): finger width, m, with every
      ``gripper_publish_every``-th state (10 Hz).
  ``franka/status`` (robot_stack/FrankaStatus, ``qos.EPISODES``: reliable, transient local,
      so a late joiner sees recent events): one message per event (event, detail, mode, the
      safety counters; header stamp = node clock). Events (its EVENT_* constants): ``ready``, ``watchdog_stop``,
      ``rejected_nan``, ``rejected_shape``, ``rejected_out_of_range``, ``rejected_frame``,
      ``box_clamp``, ``box_outside``, ``error``, ``recovering``, ``recovered``,
      ``joint_limit``, ``recovery_gave_up``, ``needs_attention``, ``reconnected``, ``home_started``,
      ``home_retry``, ``home_done``, ``home_failed``, ``home_busy``, ``gripper_rejected``,
      ``operator_fallback``, ``operator_fallback_end``, ``lossy_link``, ``lossy_link_end``,
      ``shutdown``. ``mode`` is ``streaming``,
      ``homing`` or ``gave_up``. One reflex costs one recovery attempt (a home move it
      interrupted is retried); after ``safety.max_recovery_attempts`` within
      ``safety.recovery_window_s`` the node stops commanding the arm (mode ``gave_up``), keeps
      publishing the state and repeats ``needs_attention`` every second until it is restarted.
  ``/diagnostics`` (diagnostic_msgs/DiagnosticArray, ``qos.DIAGNOSTICS``), once a second: one
      status named by the node's full name (``/robot_stack/franka``): ERROR after
      ``recovery_gave_up`` or while the link is lost, WARN while the operator drives directly
      or the link loses command cycles,
      else OK; the message is the last event, the values the mode and safety counters.
  ``franka/debug/sent`` (robot_stack/CommandSent, ``qos.STEPS``: reliable and deep, every
      event is a measurement sample), only with ``debug_latency: true``: one per velocity
      command, published right after that command's first twist went to the robot: the
      command's header stamp, the node clock (ROS time) when its callback ran and just after
      ``send_twist`` returned, and the trigger ``command`` (sent from the subscription) or
      ``tick`` (sent by the control loop). Used by benchmarks/latency.py; off by default.

State is published every ``state_publish_every``-th control tick. On shutdown or an
exception the node stops the arm (zero velocity, ramped by the robot); the franky backend
additionally holds each velocity only ``robot.segment_hold_s``, so a killed process cannot
leave the arm moving.

Parameters: every field of :class:`FrankaNodeConfig` (nested ``robot.*``, ``safety.*``);
see config/franka.yaml.
"""
from __future__ import annotations

import dataclasses
import math
import threading
import time
from dataclasses import dataclass, field

import numpy as np
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup, ReentrantCallbackGroup
from rclpy.node import Node
from rclpy.task import Future

from robot_stack.devices.franka.base import (
    FR3_JOINT_NAMES,
    FrankaConfig,
    RobotConnectionError,
    RobotError,
    RobotState,
    make_robot,
    sample_home_pose,
)
from robot_stack.types.config import ConfigError
from robot_stack.devices.franka.safety import (
    EVENT_RECOVERING,
    EVENT_RECOVERY_GAVE_UP,
    RecoveryPolicy,
    SafetyConfig,
    SafetyFilter,
    resolve_workspace,
)
from robot_stack.nodes import convert, topics
from robot_stack.nodes.control_loop import ControlLoop
from robot_stack.nodes.inbox import Inbox
from robot_stack.nodes.params import declare_config, run_node
from robot_stack.types.geometry import R_to_quat_xyzw, T_from_xyz_quat
from robot_stack.types.status import CommandSent, FrankaStatus, Health

EVENT_NEEDS_ATTENTION = "needs_attention"
ATTENTION_PERIOD_S = 1.0
"""After giving up, the status repeats needs_attention this often, s."""
DIAGNOSTICS_PERIOD_S = 1.0
"""Period of the /diagnostics status, s (the ROS convention: 1 Hz)."""
THROTTLED_EVENTS = frozenset({"rejected_nan", "rejected_shape", "rejected_out_of_range", "rejected_frame",
                              "gripper_rejected", "home_busy"})
THROTTLED_ERRORS = ("state read failed", "connection lost", "reconnect failed")
"""Status events a stream of bad commands or a lasting fault repeats (and ``error`` events with
these details): reported at most once per ``status_throttle_s`` each, the next report saying
how many were left out. Each reflex error (and its recovery) is still reported."""
SUBMIT_EVENTS = frozenset({"rejected_nan", "rejected_shape", "rejected_out_of_range"})
"""Safety events raised when a command is submitted (reported then, not again at the next tick)."""


@dataclass(frozen=True)
class FrankaNodeConfig:
    """Franka node parameters."""

    robot: FrankaConfig = field(default_factory=FrankaConfig)
    """Robot backend and connection (robot.* parameters)."""
    safety: SafetyConfig = field(default_factory=SafetyConfig)
    """Safety limits (safety.* parameters)."""
    control_rate_hz: float = 100.0
    """Rate of the velocity streaming loop, Hz."""
    state_publish_every: int = 2
    """Publish the robot state every N-th control tick (100 Hz / 2 = 50 Hz)."""
    gripper_publish_every: int = 5
    """Publish the gripper width every N-th state publication (50 Hz / 5 = 10 Hz): the Franka
    Hand's width is read every ``robot.gripper_poll_period_s`` (0.1 s); faster would only repeat
    the last reading with a newer stamp."""
    base_frame: str = "base"
    """Robot base frame id: commands must be in it; published poses/twists are in it."""
    home_xyz_m: tuple[float, float, float] = (0.5, 0.0, 0.35)
    """Home EE position in the base frame, m."""
    home_quat_xyzw: tuple[float, float, float, float] = (1.0, 0.0, 0.0, 0.0)
    """Home EE orientation (x, y, z, w); the default points the gripper down."""
    home_randomize_xyz_m: tuple[float, float, float] = (0.0, 0.0, 0.0)
    """Half-width of the uniform random offset added to the home position per axis, m."""
    home_seed: int = 0
    """Seed of the home randomization (reproducible episode starts)."""
    home_timeout_s: float = 15.0
    """A home move that takes longer is stopped and reported as home_failed, s."""
    gripper_grasp_below_m: float = 0.005
    """Gripper width commands at or below this (m) grasp with force instead of moving to a width."""
    send_on_command: bool = True
    """Send each new velocity command to the robot at once (through the safety filter) instead
    of only on the next control tick: cuts up to one control period of command latency."""
    debug_latency: bool = False
    """Publish a 'sent' event per velocity command on franka/debug/sent (latency
    measurement; see the module docstring)."""
    reconnect_period_s: float = 1.0
    """After the link to the robot drops (libfranka network errors), try to reconnect this often,
    s (0: never; the node then only reports the loss). The arm starts from rest afterwards."""
    operator_fallback: bool = True
    """Without velocity commands for safety.watchdog_timeout_s (no actor), let an intervening
    operator (the operator topic) drive the arm directly, through the safety filter."""
    fallback_after_home_s: float = 2.0
    """No operator fallback during a home move and for this long after it (the actor is
    resetting then, not gone), s; an actor whose command publisher has left the graph counts
    as gone at once."""
    status_throttle_s: float = 1.0
    """Repeated status events of one kind (rejected commands, errors) are reported at most this
    often, s; each report counts the ones left out."""
    control_thread_priority: int = 0
    """SCHED_FIFO priority (1..98) for the control thread, 0 for normal scheduling. Needs root,
    CAP_SYS_NICE or an rtprio limit (as libfranka does); if refused the node logs the fix and
    runs at normal priority."""
    connect_timeout_s: float = 0.0
    """Keep retrying a refused connection for this long, s (0: fail at once). The sim session
    sets it so this node may start before the sim world serves."""

    def validate(self) -> None:
        if not (math.isfinite(self.control_rate_hz) and 1.0 <= self.control_rate_hz <= 1000.0):
            raise ValueError(f"control_rate_hz must be in [1, 1000], got {self.control_rate_hz}")
        if self.robot.segment_hold_s < 2.0 / self.control_rate_hz:
            raise ValueError(
                f"robot.segment_hold_s ({self.robot.segment_hold_s}) must be at least two control periods "
                f"({2.0 / self.control_rate_hz:.3f} s), or the robot stops between commands")
        if not 0 <= self.control_thread_priority <= 98:
            raise ValueError(f"control_thread_priority must be in 0..98 (0: normal scheduling), "
                             f"got {self.control_thread_priority}")
        if self.state_publish_every < 1:
            raise ValueError(f"state_publish_every must be >= 1, got {self.state_publish_every}")
        if self.gripper_publish_every < 1:
            raise ValueError(f"gripper_publish_every must be >= 1, got {self.gripper_publish_every}")
        if not self.base_frame:
            raise ValueError("base_frame must not be empty")
        q = np.asarray(self.home_quat_xyzw, float)
        if not (np.all(np.isfinite(q)) and abs(np.linalg.norm(q) - 1.0) < 1e-3):
            raise ValueError(f"home_quat_xyzw must be a unit quaternion (x, y, z, w), got {self.home_quat_xyzw}")
        if not self.safety.workspace_file:  # a box from a file is checked once it is loaded
            _check_home_in_box(self.home_xyz_m, self.safety)
        if any(r < 0 for r in self.home_randomize_xyz_m):
            raise ValueError(f"home_randomize_xyz_m must be >= 0, got {self.home_randomize_xyz_m}")
        if self.home_timeout_s <= 0:
            raise ValueError(f"home_timeout_s must be > 0, got {self.home_timeout_s}")
        for name in ("fallback_after_home_s", "status_throttle_s"):
            if not (math.isfinite(getattr(self, name)) and getattr(self, name) >= 0):
                raise ValueError(f"{name} must be a finite number >= 0 s, got {getattr(self, name)}")


def _check_home_in_box(home_xyz_m, safety: SafetyConfig) -> None:
    if not safety.box.contains(home_xyz_m):
        raise ValueError(f"home_xyz_m {tuple(home_xyz_m)} lies outside the workspace box "
                         f"{safety.workspace_min_xyz_m}..{safety.workspace_max_xyz_m}")


class FrankaNode(Node):
    """Thin node: ROS I/O around FrankaRobot + SafetyFilter."""

    def __init__(self, robot=None, **node_kwargs):
        node_kwargs.setdefault("namespace", topics.DEFAULT_NAMESPACE)
        super().__init__("franka", **node_kwargs)
        cfg = declare_config(self, FrankaNodeConfig)
        try:
            safety_cfg = resolve_workspace(cfg.safety)
            _check_home_in_box(cfg.home_xyz_m, safety_cfg)
        except ValueError as e:
            raise ConfigError(f"parameter 'safety.workspace_file': {e}") from e
        if safety_cfg.workspace_frame != cfg.base_frame:
            raise ConfigError(
                f"workspace box is in frame '{safety_cfg.workspace_frame}' but base_frame is '{cfg.base_frame}': "
                f"set base_frame (or safety.workspace_frame) to the robot base frame the box was recorded in")
        self.config: FrankaNodeConfig = dataclasses.replace(cfg, safety=safety_cfg)
        cfg = self.config
        self.robot = robot if robot is not None else make_robot(
            cfg.robot, cfg.safety.collision_torque_threshold_nm, cfg.safety.collision_force_threshold_n,
            limits=cfg.safety.cartesian_limits, ee_offset_m=cfg.safety.flange_to_ee_m)
        self.safety = SafetyFilter(cfg.safety)
        self.recovery = RecoveryPolicy.from_config(cfg.safety)
        self._rng = np.random.default_rng(cfg.home_seed)
        self._T_home = T_from_xyz_quat(cfg.home_xyz_m, cfg.home_quat_xyzw)
        self._cmd_lock = threading.Lock()    # safety filter: command callbacks vs control tick
        self._robot_lock = threading.Lock()  # robot: control tick vs home worker
        self._mode = "streaming"
        self._tick = 0
        self._state_count = 0  # state publications (the gripper width goes with every gripper_publish_every-th)
        self._sent_zero = False
        self._last_state: RobotState | None = None  # of the last control tick (box check between ticks)
        self._pending_stamp_s: tuple[float, float] | None = None  # debug_latency: (stamp, receipt) of the command not yet sent
        self._home_thread: threading.Thread | None = None
        self._closed = False
        self._actor_cmd_t = -math.inf  # monotonic time of the last cmd_twist (operator fallback)
        self._fallback = False  # the operator drives directly (no actor)
        self._lossy_link = False  # the robot reports lost command cycles (RobotState.lossy_link)
        self._link_lost_since: float | None = None
        self._reconnect_at = 0.0
        self._attention_detail = ""
        self._attention_at = math.inf
        self._last_event = FrankaStatus("none")
        self._home_ended_t = -math.inf  # monotonic end of the last home move (operator fallback)
        self._throttle: dict[tuple[str, str], tuple[float, int]] = {}  # (event, kind) -> (last report, left out)
        self._throttle_lock = threading.Lock()

        self._connect(cfg.connect_timeout_s)

        self._status_pub = topics.publisher(self, topics.FRANKA_STATUS)
        self._joint_pub = topics.publisher(self, topics.JOINT_STATES)
        self._pose_pub = topics.publisher(self, topics.EE_POSE)
        self._twist_pub = topics.publisher(self, topics.EE_TWIST)
        self._gripper_pub = topics.publisher(self, topics.GRIPPER_WIDTH)
        self._debug_pub = topics.publisher(self, topics.FRANKA_DEBUG_SENT) if cfg.debug_latency else None
        self._diagnostics_pub = topics.publisher(self, topics.DIAGNOSTICS)
        cmd_group = MutuallyExclusiveCallbackGroup()
        self.inbox = Inbox(self.get_logger())  # no message can end the node: malformed ones are dropped and counted
        self._cmd_sub = self.inbox.subscribe(self, topics.CMD_TWIST, self._on_cmd_twist, callback_group=cmd_group)
        if cfg.operator_fallback:
            self.inbox.subscribe(self, topics.OPERATOR, self._on_operator, callback_group=cmd_group)
        self.inbox.subscribe(self, topics.GRIPPER_CMD, self._on_gripper_cmd, callback_group=cmd_group)
        # The home services await the move (seconds): a group of their own, which never holds
        # up the command callbacks (a mutually exclusive group would stay busy while they wait).
        home_group = ReentrantCallbackGroup()
        topics.service(self, topics.FRANKA_HOME, self._on_home, callback_group=home_group)
        topics.service(self, topics.FRANKA_HOME_TO, self._on_home_to, callback_group=home_group)
        self.create_timer(DIAGNOSTICS_PERIOD_S, self._publish_diagnostics)
        self.done = threading.Event()  # set when the node must end (control loop failed)
        self.fatal_error: str | None = None
        self._send_request = threading.Event()
        self._sender: threading.Thread | None = None
        if cfg.send_on_command:
            self._sender = threading.Thread(target=self._sender_loop, name="franka-send", daemon=True)
            self._sender.start()
        # The control loop has its own thread so command callbacks never delay it.
        self._control_loop = ControlLoop(
            "franka-control", 1.0 / cfg.control_rate_hz, self._control_tick,
            on_error=self._on_control_loop_error, priority=cfg.control_thread_priority,
            prepare=self._prepare_control_thread, alive=self.context.ok, logger=self.get_logger())
        self._status("ready", f"backend={cfg.robot.backend} ip={cfg.robot.robot_ip} rate={cfg.control_rate_hz} Hz")
        self._control_loop.start()

    def _connect(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                self.robot.connect()
                return
            except RobotConnectionError as e:
                if time.monotonic() >= deadline:
                    raise
                self.get_logger().info(f"robot not reachable yet ({e}); retrying until connect_timeout_s")
                time.sleep(1.0)  # pacing of retries, not synchronization

    # -- status -------------------------------------------------------------------------------
    def _status(self, event: str, detail: str = "") -> None:
        """Log an event and publish it on franka/status (event names: msg/FrankaStatus EVENT_*)."""
        if event in THROTTLED_EVENTS or (event == "error" and detail.startswith(THROTTLED_ERRORS)):
            key, now = (event, detail.split(":", 1)[0][:40]), time.monotonic()
            with self._throttle_lock:
                last, left_out = self._throttle.get(key, (-math.inf, 0))
                if now - last < self.config.status_throttle_s:
                    self._throttle[key] = (last, left_out + 1)
                    return
                self._throttle[key] = (now, 0)
            if left_out:
                detail += f" ({left_out} more in the last {now - last:.1f} s)"
        status = FrankaStatus(event=event, detail=detail, mode=self._mode, counters=dict(self.safety.counters),
                              stamp_s=self.get_clock().now().nanoseconds * 1e-9)
        self._last_event = status
        text = f"{event}: {detail}" if detail else event
        # rclpy binds a severity to each call site, hence two separate calls.
        if event in ("ready", "home_started", "home_done", "recovered", "shutdown"):
            self.get_logger().info(text)
        else:
            self.get_logger().warning(text)
        if not self.context.ok():
            return  # shutting down (e.g. a home move finishing after Ctrl-C): logged above
        self._status_pub.publish(convert.franka_status_to_msg(status))

    def _note_lossy_link(self, lossy: bool) -> None:
        """The safety filter slows down while the robot loses command cycles (franky backend); an
        event when that starts and ends."""
        self.safety.lossy_link = lossy
        if lossy == self._lossy_link:
            return
        self._lossy_link = lossy
        s = self.config.safety
        if lossy:
            self._status("lossy_link", f"the robot lost command cycles: joint acceleration limited to "
                         f"{s.lossy_link_joint_accel_rad_s2} rad/s^2 (speeds lowered to keep stopping distances) "
                         f"until none is lost for {s.lossy_link_hold_s} s; check the real-time set-up "
                         f"(docs/realtime.md)")
        else:
            self._status("lossy_link_end", f"no lost command cycle for {s.lossy_link_hold_s} s: joint acceleration "
                         f"{s.max_joint_accel_rad_s2} rad/s^2 again")

    def _publish_diagnostics(self) -> None:
        """/diagnostics: this node's health, once a second."""
        last = self._last_event
        if self._mode == "gave_up" or self._link_lost_since is not None:
            level = Health.ERROR
        elif self._fallback or self._lossy_link:
            level = Health.WARN
        else:
            level = Health.OK
        with self._cmd_lock:
            counters = dict(self.safety.counters)
        health = Health(
            name=self.get_fully_qualified_name(), level=level,
            message=f"{self._mode}; last event {last.event}" + (f": {last.detail}" if last.detail else ""),
            hardware_id=f"{self.config.robot.backend}:{self.config.robot.robot_ip}",
            values={"mode": self._mode, **{k: str(v) for k, v in counters.items()}})
        self._diagnostics_pub.publish(convert.diagnostics_to_msg([health], self.get_clock().now().to_msg()))

    # -- commands -------------------------------------------------------------------------------
    def _on_cmd_twist(self, msg) -> None:
        self._actor_cmd_t = time.monotonic()
        if self._fallback:
            self._fallback = False
            self._status("operator_fallback_end", "velocity commands are back: the actor arbitrates again")
        twist = convert.twist_from_msg(msg)
        self._submit(twist.frame_id, twist.stamp_s, twist.lin_m_s, twist.ang_rad_s)

    def _on_operator(self, msg) -> None:
        """operator_fallback: the operator drives directly while no actor streams commands."""
        if self._mode == "gave_up":
            return  # nothing drives the arm until the node is restarted
        if not self._fallback:
            now = time.monotonic()
            if now - self._actor_cmd_t <= self.config.safety.watchdog_timeout_s:
                return  # the actor streams: it arbitrates and forwards the operator itself
            if self._mode != "streaming":
                return  # a home move owns the arm (the actor is resetting, not gone)
            actor_left = self._cmd_sub.get_publisher_count() == 0
            if not actor_left and now - self._home_ended_t < self.config.fallback_after_home_s:
                return  # just homed: the actor is finishing its reset
            with self._cmd_lock:
                stopped = self.safety.watchdog_tripped
            if not stopped:
                return  # the watchdog stops the arm first; then the operator may drive it
        cmd = convert.operator_from_msg(msg, require_finite=False)  # the safety filter rejects and counts NaNs
        stamp_s, frame_id = convert.stamp_and_frame(msg)
        if cmd.intervening:
            if not self._fallback:
                self._fallback = True
                self._status("operator_fallback", "no velocity commands (actor silent): the operator "
                                                  "drives the arm directly, within the safety limits")
            self._submit(frame_id, stamp_s, cmd.lin_m_s, cmd.ang_rad_s)
        elif self._fallback:
            self._fallback = False
            self._submit(frame_id, stamp_s, np.zeros(3), np.zeros(3))  # let go: ramp to rest (the watchdog follows)
            self._status("operator_fallback_end", "the operator let go")

    def _submit(self, frame_id: str, stamp_s: float, lin, ang) -> None:
        """A velocity command (cmd_twist, or the operator's in fallback) into the safety filter."""
        if frame_id not in ("", self.config.base_frame):
            with self._cmd_lock:
                self.safety.clear()
                self.safety.counters["rejected_frame"] += 1
            self._status("rejected_frame", f"twist in frame '{frame_id}', expected '{self.config.base_frame}'")
            return
        with self._cmd_lock:
            verdict = self.safety.submit(lin, ang, time.monotonic())
            if verdict.accepted and self._debug_pub is not None:
                self._pending_stamp_s = (stamp_s, self.get_clock().now().nanoseconds * 1e-9)
        if not verdict.accepted:
            self._status(verdict.reason, verdict.detail)
        if self._sender is not None:
            self._send_request.set()

    def _sender_loop(self) -> None:
        """send_on_command: send each new command as soon as it was submitted."""
        while True:
            self._send_request.wait()  # woken by a command callback or by close()
            self._send_request.clear()
            if self._closed:
                return
            self._send_now()

    def _send_now(self) -> None:
        """Send the (filtered) latest command at once, between control ticks."""
        if self._closed or self._mode != "streaming":
            return
        # Wait for a running control tick (well under a period); never for a home move.
        if not self._robot_lock.acquire(timeout=1.0 / self.config.control_rate_hz):
            return  # the next control tick sends it
        try:
            state = self._last_state
            if self._closed or state is None or state.has_error or self._mode != "streaming":
                return  # closed meanwhile, no state yet, or an error the control tick is handling
            self._stream(time.monotonic(), state, "command")
        finally:
            self._robot_lock.release()

    def _on_gripper_cmd(self, msg) -> None:
        width = convert.float_from_msg(msg)
        if not math.isfinite(width) or width < 0.0:
            self._status("gripper_rejected", f"width {width!r} is not a finite number >= 0 m")
            return
        try:
            if width <= self.config.gripper_grasp_below_m:
                self.robot.gripper_grasp()
            else:
                self.robot.gripper_move(width)
        except RobotError as e:
            self._status("gripper_rejected", str(e))

    async def _on_home(self, _request, response):
        """franka/home (std_srvs/Trigger): the configured home pose, randomized; answered when the move ends."""
        T = sample_home_pose(self._T_home, self.config.home_randomize_xyz_m, self._rng)
        T[:3, 3] = self.config.safety.box.clip(T[:3, 3])
        ok, message = await self._home(T)
        return convert.fill_result(response, ok, message)

    async def _on_home_to(self, request, response):
        """franka/home_to (HomeTo): a base-frame pose inside the box; answered when the move ends."""
        xyz, quat, _, frame_id = convert.home_to_target(request)
        problem = ""
        if frame_id not in ("", self.config.base_frame):
            problem = f"pose in frame '{frame_id}', expected '{self.config.base_frame}'"
        elif not (np.all(np.isfinite(xyz)) and np.all(np.isfinite(quat)) and np.linalg.norm(quat) > 0.5):
            problem = f"invalid pose {xyz.tolist()} {quat.tolist()}"
        elif not self.config.safety.box.contains(xyz):
            problem = f"target {np.round(xyz, 3).tolist()} is outside the workspace box"
        if problem:
            self._status("home_failed", problem)
            return convert.fill_result(response, False, problem)
        ok, message = await self._home(T_from_xyz_quat(xyz, quat))
        return convert.fill_result(response, ok, message)

    async def _home(self, T_base_ee: np.ndarray) -> tuple[bool, str]:
        """Run a home move in a worker thread and wait for it without blocking the executor:
        (reached, detail)."""
        if self._mode != "streaming":
            detail = f"cannot home while {self._mode}"
            self._status("home_busy", detail)
            return False, detail
        self._mode = "homing"
        self._status("home_started", f"target xyz={np.round(T_base_ee[:3, 3], 4).tolist()}")
        done = Future(executor=self.executor)
        # With a done callback, set_result (in the worker thread) schedules a task on the
        # executor, which wakes it: the awaiting service callback resumes at once.
        done.add_done_callback(lambda _f: None)
        # A home move blocks for seconds: a worker thread, so callbacks and state keep flowing.
        self._home_thread = threading.Thread(target=self._home_worker, args=(T_base_ee, done), daemon=True)
        self._home_thread.start()
        return await done

    def _home_worker(self, T_base_ee: np.ndarray, done: Future) -> None:
        ok, detail = False, ""
        with self._robot_lock:
            with self._cmd_lock:
                self.safety.reset()
            while True:
                try:
                    ok = self.robot.move_home(T_base_ee, self.config.home_timeout_s)
                    detail = "reached" if ok else f"not reached within {self.config.home_timeout_s} s"
                except RobotConnectionError as e:
                    detail = str(e)
                except RobotError as e:
                    # A reflex during the move: recover (one attempt, counted like any other) and
                    # move again; the arm stopped where the reflex caught it.
                    if self._handle_error(e, time.monotonic()):
                        self._status("home_retry", f"home move interrupted ({e}): recovered, moving again")
                        continue
                    detail = f"{e}; not recovered"
                break
            with self._cmd_lock:
                self.safety.reset()  # commands sent during homing are stale now
            self._sent_zero = True
        self._home_ended_t = time.monotonic()
        if self._mode == "homing":
            self._mode = "streaming"
        xyz = np.round(T_base_ee[:3, 3], 4).tolist()
        try:
            self._status("home_done" if ok else "home_failed", f"target xyz={xyz} {detail}")
        finally:
            done.set_result((ok, f"target xyz={xyz} {detail}"))  # the service answers, whatever happens

    # -- control loop ---------------------------------------------------------------------------
    def _control_tick(self) -> None:
        if self._closed:
            return
        if self._mode == "gave_up":
            self._attention_tick()
            return
        # A command being sent right now holds the lock for well under a period: wait for it.
        # A home move holds it for seconds: do not.
        if self._mode == "homing" or not self._robot_lock.acquire(timeout=1.0 / self.config.control_rate_hz):
            # Homing owns the robot's motion; keep the state flowing (reads are thread-safe).
            self._tick += 1
            if self._tick % self.config.state_publish_every == 0:
                try:
                    self._publish_state(self.robot.read_state())
                except (RobotError, RobotConnectionError) as e:
                    self.get_logger().warning(f"state read during homing failed: {e}")
            return
        try:
            try:
                state = self.robot.read_state()
            except RobotConnectionError as e:
                self._on_link_lost(e)
                return
            except RobotError as e:
                self._status("error", f"state read failed: {e}")
                return
            self._link_lost_since = None
            self._last_state = state
            self._note_lossy_link(state.lossy_link)
            now = time.monotonic()
            if state.has_error:
                with self._cmd_lock:
                    out = self.safety.update(now, state.p_base_ee)
                for event in out.events:
                    if event not in SUBMIT_EVENTS:
                        self._status(event, f"ee at {np.round(state.p_base_ee, 4).tolist()}")
                self._handle_error(RobotError("robot reports a reflex/error state"), now)
            else:
                self._stream(now, state, "tick")
            self._tick += 1
            if self._tick % self.config.state_publish_every == 0:
                self._publish_state(state)
        finally:
            self._robot_lock.release()

    def _on_control_loop_error(self, e: BaseException) -> None:
        """A bug in a control tick: stop and release the arm now, then end the node (exit 2)."""
        if self._closed or not self.context.ok():
            return  # shutting down under this tick: a normal stop
        self.fatal_error = f"control loop failed: {e!r}"
        self.get_logger().fatal(self.fatal_error)
        self.close()
        self.done.set()  # main() stops spinning and exits non-zero

    def _prepare_control_thread(self) -> None:
        if self.config.control_thread_priority > 0:
            import sys

            # With real-time priority asked for, a woken thread (the control tick, the sender)
            # waits at most 0.5 ms for the GIL instead of Python's default 5 ms.
            sys.setswitchinterval(0.0005)

    def _on_link_lost(self, error: Exception) -> None:
        """The robot stopped answering: report it once, then reconnect every reconnect_period_s.
        Called with ``_robot_lock`` held; no command can reach the arm meanwhile (it holds on
        its own: each velocity segment lasts at most robot.segment_hold_s)."""
        now = time.monotonic()
        if self._link_lost_since is None:
            self._link_lost_since = now
            self._reconnect_at = now + self.config.reconnect_period_s
            self._status("error", f"connection lost: {error}")
            return
        if self.config.reconnect_period_s <= 0 or now < self._reconnect_at:
            return
        self._reconnect_at = now + self.config.reconnect_period_s
        try:
            self.robot.close()
        except (RobotError, RobotConnectionError) as e:
            self.get_logger().info(f"closing the lost connection: {e}")
        try:
            self.robot.connect()
        except RobotConnectionError as e:
            self._status("error", f"reconnect failed: {e}")
            return
        with self._cmd_lock:
            self.safety.reset()  # start again from rest, ramping up within the limits
        self._sent_zero = True
        self._status("reconnected", f"after {now - self._link_lost_since:.1f} s")
        self._link_lost_since = None

    def _stream(self, now: float, state: RobotState, trigger: str) -> None:
        """Safety filter -> robot: the one send path of the control tick and of send_on_command.
        Called with ``_robot_lock`` held."""
        with self._cmd_lock:
            out = self.safety.update(now, state.p_base_ee, state.q_rad, state.T_base_ee[:3, :3])
            pending, self._pending_stamp_s = self._pending_stamp_s, None
        for event in out.events:
            if event not in SUBMIT_EVENTS:  # those were reported when the command came in
                self._status(event, f"ee at {np.round(state.p_base_ee, 4).tolist()}")
        if out.is_zero and self._sent_zero:
            # Repeated zeros are skipped: the last one already brings the arm to rest.
            return
        try:
            self.robot.send_twist(out.lin_m_s, out.ang_rad_s)
            self._sent_zero = out.is_zero
        except RobotError as e:
            self._handle_error(e, now)
            return
        except RobotConnectionError as e:
            self._on_link_lost(e)  # reported once, reconnects every reconnect_period_s
            return
        self._report_sent(pending, trigger)

    def _report_sent(self, pending: tuple[float, float] | None, trigger: str) -> None:
        if pending is None or self._debug_pub is None or not self.context.ok():
            return
        sent_s = self.get_clock().now().nanoseconds * 1e-9
        self._debug_pub.publish(convert.command_sent_to_msg(CommandSent(pending[0], pending[1], sent_s, trigger)))

    def _handle_error(self, error: Exception, now: float) -> bool:
        """One reflex or error: one recovery attempt (within the policy's budget). True when the
        robot accepts commands again; after the budget the node stops commanding (gave_up)."""
        self._status("error", str(error))
        with self._cmd_lock:
            self.safety.reset()  # after a reflex the arm is at rest: ramp up from zero again
        self._sent_zero = True
        if not self.recovery.allow(now):
            self._give_up(f"{self.recovery.max_attempts} recoveries within {self.recovery.window_s:.0f} s did not "
                          f"keep the robot running (last error: {error})")
            return False
        self._status(EVENT_RECOVERING, f"attempt {len(self.recovery.attempts)} of {self.recovery.max_attempts}")
        try:
            ok = self.robot.recover()
        except (RobotError, RobotConnectionError) as e:
            ok, error = False, e
        self._status("recovered" if ok else "error", "" if ok else f"recovery failed: {error}")
        return ok

    def _give_up(self, reason: str) -> None:
        self._mode = "gave_up"
        self._fallback = False
        self._attention_detail = (f"ROBOT NEEDS ATTENTION: {reason}. The node no longer commands the arm; "
                                  f"check the robot, then restart the franka node")
        self._attention_at = time.monotonic() + ATTENTION_PERIOD_S
        self._status(EVENT_RECOVERY_GAVE_UP, self._attention_detail)

    def _attention_tick(self) -> None:
        """gave_up: keep publishing the robot state, and repeat that the robot needs attention."""
        self._tick += 1
        if self._tick % self.config.state_publish_every == 0:
            try:
                self._publish_state(self.robot.read_state())
            except (RobotError, RobotConnectionError) as e:
                self.get_logger().warning(f"state read failed: {e}")
        if time.monotonic() >= self._attention_at:
            self._attention_at = time.monotonic() + ATTENTION_PERIOD_S
            self._status(EVENT_NEEDS_ATTENTION, self._attention_detail)

    def _publish_state(self, s: RobotState) -> None:
        stamp = self.get_clock().now().to_msg()
        frame = self.config.base_frame
        self._joint_pub.publish(convert.joint_state_to_msg(FR3_JOINT_NAMES, s.q_rad, s.dq_rad_s, stamp))
        self._pose_pub.publish(convert.pose_to_msg(s.T_base_ee[:3, 3], R_to_quat_xyzw(s.T_base_ee[:3, :3]), stamp, frame))
        self._twist_pub.publish(convert.twist_to_msg(s.ee_lin_m_s, s.ee_ang_rad_s, stamp, frame))
        self._state_count += 1
        if (self._state_count - 1) % self.config.gripper_publish_every == 0 and math.isfinite(s.gripper_width_m):
            self._gripper_pub.publish(convert.float32_to_msg(s.gripper_width_m))

    # -- shutdown -------------------------------------------------------------------------------
    def close(self) -> None:
        """Stop the arm and release the robot (idempotent)."""
        if self._closed:
            return
        self._closed = True
        self._control_loop.stop()
        if self._sender is not None:
            self._send_request.set()
            self._sender.join(timeout=2.0)
        if self._home_thread is not None:
            self._home_thread.join(timeout=self.config.home_timeout_s)
        with self._robot_lock:
            try:
                self.robot.close()
            except (RobotError, RobotConnectionError) as e:
                self.get_logger().error(f"robot close failed: {e}")
        if self.context.ok():  # at interpreter exit the context may already be gone
            self._status("shutdown", "robot stopped and released")


def main(args: list[str] | None = None) -> int:
    """Entry point: spin FrankaNode's subscriptions (its control loop has its own thread) until
    Ctrl-C/SIGTERM or a failed control loop; the arm is stopped on any exit (run_node calls
    close() first). An unreachable robot exits with 3, a failed control loop with 2."""
    from rclpy.executors import SingleThreadedExecutor

    return run_node(FrankaNode, args, make_executor=lambda node: SingleThreadedExecutor(),
                    done=lambda node: node.done, exit_codes={RobotConnectionError: 3})


if __name__ == "__main__":
    raise SystemExit(main())
