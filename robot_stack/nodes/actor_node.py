"""Actor node: runs the policy on the robot, lets the operator take over, streams steps.

A thin ROS shell over :class:`robot_stack.core.actor.ActorCore` (read its docstring for
the arbitration, step-record and episode rules). Executor (``executor``): rclpy's
``EventsExecutor`` by default (least overhead per callback), or ``MultiThreadedExecutor``; the
operator subscription, the sensor subscriptions and the policy-weights subscription each sit
in their own callback group (run in parallel by the multi-threaded executor; the events
executor runs callbacks one at a time, so there a weights update delays operator commands by
its deserialization time). The control loop runs in its own thread, paced to absolute
deadlines on the monotonic clock (``control_thread``; with ``control_thread: false`` or
``use_sim_time`` it is an rclpy timer in its own callback group), so a slow policy never
delays an operator command, and callbacks never delay a control tick.

Subscribes
  ``/robot_stack/cameras/<name>/image_raw`` (sensor_msgs/Image, ``qos.SENSOR``) for each
      camera of the policy spec: rgb8 (bgr8/rgba8/bgra8/mono8 converted), any size (resized
      to the spec's). Frames older than ``max_frame_age_s`` (header stamp vs. node clock)
      are refused.
  ``/robot_stack/ee_pose`` (geometry_msgs/PoseStamped, ``qos.STATE``): EE (TCP) pose in the
      base frame; ``/robot_stack/franka/ee_twist`` (geometry_msgs/TwistStamped,
      ``qos.STATE``): EE twist, base frame; ``/robot_stack/franka/gripper_width``
      (std_msgs/Float32, ``qos.STATE``): m, stamped on receipt. Older than
      ``max_state_age_s`` is refused.
  ``/robot_stack/operator`` (robot_stack/OperatorCommand, ``qos.COMMAND``): while
      ``intervening`` the operator's twist is sent to the robot in the same callback
      (projected onto the policy's action space: clipped to its speed bounds, dimensions
      it lacks dropped); ``episode_mark`` 1/2 ends the episode as success/failure.
  ``/robot_stack/policy`` (robot_stack/PolicyWeights, ``qos.POLICY``): new weights are
      SHA-256-checked, deserialized in their own callback group and swapped in atomically
      between ticks; only versions newer than the running one apply; weights whose spec
      (cameras, proprio, action) differs from the running one are rejected. Ignored in
      evaluation mode. Without a learner the actor keeps its last policy.
  ``/robot_stack/sim/success`` (std_msgs/Bool, ``qos.STATE``: best effort, so it matches
      reliable and best-effort publishers; publish it every sim step): true ends the running
      episode as a success (sim worlds only; a true before the episode's first step is
      ignored, so a flag left over from the previous episode does not end the next one).
  ``/robot_stack/episode/reset_done`` (std_msgs/UInt64, ``qos.COMMAND``): a reset responder
      (the sim world node) reports that the reset for that episode id is complete
      (``reset_mode: topic``).
  ``/robot_stack/franka/status`` (std_msgs/String JSON, ``qos.EPISODES``): with
      ``reset_mode: franka_home`` a ``home_done`` event newer than the request (its wall
      clock ``t``) completes the reset.

Publishes
  ``/robot_stack/franka/cmd_twist`` (geometry_msgs/TwistStamped, ``qos.COMMAND``): EE
      velocity in ``base_frame`` (m/s, rad/s) every control tick (policy, operator or a
      zero "hold") and on every operator command while intervening. Never NaN: a policy
      action that is not finite or has the wrong shape is replaced by a hold and logged.
      ``header.stamp``: the tick time for policy and hold commands (= the StepRecord stamp
      of that step); for a forwarded operator command the OperatorCommand's own stamp (the
      SpaceMouse read time), so the command's age can be traced end to end.
  ``/robot_stack/franka/gripper_cmd`` (std_msgs/Float32, ``qos.COMMAND``): target width
      (``gripper_open_width_m`` or 0) when the action's gripper dimension changes sign
      (only for specs with a ``gripper`` action).
  ``/robot_stack/steps`` (robot_stack/StepRecord, ``qos.STEPS``): one record per control
      step, completed one tick later (see ActorCore), plus an ``is_last`` record per
      episode. Not published in evaluation mode.
  ``/robot_stack/episodes`` (robot_stack/EpisodeSummary, ``qos.EPISODES``): one per episode.
  ``/robot_stack/episode/reset`` (std_msgs/UInt64, ``qos.COMMAND``): reset request carrying
      the id of the episode about to start (``reset_mode: topic``; responder: put the robot
      home and reset the world, then echo the id on ``/robot_stack/episode/reset_done``).
      With ``reset_mode: franka_home`` an std_msgs/Empty goes to ``/robot_stack/franka/home``
      instead; with ``none`` nothing is sent and the next episode starts at once.

Time: frame and state ages compare header stamps with the node clock (ROS time; set
``use_sim_time`` for a sim clock), so publishers must stamp with the same clock (on several
machines: synchronized clocks). Episode-level rules (time limit = truncation, marks and sim
success = terminal, the first step of every episode after a reset, records completed one tick
later with the time-weighted executed action and the majority-of-the-step intervention
flag) are ActorCore's; see robot_stack/core/actor.py.

Policy at start-up, first match wins:
  1. ``policy_file``: an exported policy (``robot_stack.rl.policy_io.save_policy_file``),
     the warm start (and what evaluation mode runs). While learning it runs as version 0,
     so the learner's weights (any version) replace it as soon as they arrive;
  2. ``spec_json`` / ``spec_file``: a random-init policy built from that spec (a plain
     PolicySpec JSON, or the ``spec_json`` of an export with its ``network`` config);
  3. neither: the actor waits (holding still, no episodes) for the learner's first
     PolicyWeights (TRANSIENT_LOCAL: a running learner's latest arrives at once) and builds
     the policy from its ``spec_json``.

Evaluation mode (``evaluation: true``, needs ``policy_file``): deterministic actions, no
step records, no weight updates; after ``eval_episodes`` episodes it logs the success rate,
writes ``eval_report_file`` (JSON) if set, holds the robot still and exits.

Parameters: every field of :class:`ActorNodeConfig` (flat names); see config/actor.yaml.
"""
from __future__ import annotations

import json
import math
import os
import pathlib
import threading
import time
from dataclasses import dataclass

import numpy as np
from geometry_msgs.msg import PoseStamped, TwistStamped
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup, ReentrantCallbackGroup
from rclpy.duration import Duration
from rclpy.node import Node
from sensor_msgs.msg import Image
from std_msgs.msg import Bool, Empty, Float32, String, UInt64

from robot_stack.core.actor import ActorConfig, ActorCore, RobotCommand, TickResult, parse_spec_json
from robot_stack.core.config import ConfigError
from robot_stack.core.spec import PolicySpec
from robot_stack.msg import EpisodeSummary, OperatorCommand, PolicyWeights, StepRecord
from robot_stack.nodes import convert, qos
from robot_stack.core.realtime import current_thread_scheduling
from robot_stack.nodes.control_loop import ControlLoop
from robot_stack.nodes.params import declare_config, run_node

CAMERA_TOPIC = "/robot_stack/cameras/{name}/image_raw"
EE_POSE_TOPIC = "/robot_stack/ee_pose"
EE_TWIST_TOPIC = "/robot_stack/franka/ee_twist"
GRIPPER_WIDTH_TOPIC = "/robot_stack/franka/gripper_width"
CMD_TWIST_TOPIC = "/robot_stack/franka/cmd_twist"
GRIPPER_CMD_TOPIC = "/robot_stack/franka/gripper_cmd"
FRANKA_HOME_TOPIC = "/robot_stack/franka/home"
FRANKA_STATUS_TOPIC = "/robot_stack/franka/status"
OPERATOR_TOPIC = "/robot_stack/operator"
POLICY_TOPIC = "/robot_stack/policy"
STEPS_TOPIC = "/robot_stack/steps"
EPISODES_TOPIC = "/robot_stack/episodes"
SIM_SUCCESS_TOPIC = "/robot_stack/sim/success"
RESET_TOPIC = "/robot_stack/episode/reset"
RESET_DONE_TOPIC = "/robot_stack/episode/reset_done"

RESET_MODES = ("topic", "franka_home", "none")



@dataclass
class ActorNodeConfig(ActorConfig):
    """Actor node parameters: the ActorCore fields plus the node's own."""

    policy_file: str = ""
    """Exported policy file (policies/...) to start from (warm start) or to evaluate; '' for none."""
    spec_json: str = ""
    """Policy spec JSON for a random-init policy when no policy_file: a PolicySpec, or an
    export's spec_json (policy_spec + network). '' with spec_file '' waits for the learner."""
    spec_file: str = ""
    """File holding the spec JSON (same content as spec_json)."""
    seed: int = 0
    """Seed of the policy's sampling noise and of a random-init policy."""
    evaluation: bool = False
    """Evaluation mode: run policy_file deterministically, no learning, report the success rate."""
    eval_episodes: int = 20
    """Episodes to run in evaluation mode."""
    eval_report_file: str = ""
    """Where evaluation mode writes its JSON report ('' = log only)."""
    reset_mode: str = "topic"
    """How episodes are reset: 'topic' (/robot_stack/episode/reset + reset_done, sim world),
    'franka_home' (/robot_stack/franka/home + its home_done status), 'none' (no reset)."""
    base_frame: str = "base"
    """frame_id of the commanded twist (the robot base frame)."""
    gripper_open_width_m: float = 0.08
    """Gripper width sent for an 'open' gripper action, in m (close sends 0)."""
    episode_id_file: str = ""
    """File keeping the last episode id, so a restarted actor continues counting ('' = start at 1)."""
    log_every_s: float = 10.0
    """Period of the status log line (steps, refusals, policy version), in s."""
    wait_for_learner_s: float = 10.0
    """At start-up, take no step until a learner subscribes to the step records (DDS discovery
    can take seconds on a busy machine; steps published before it are lost to the learner), but
    at most this long, s; then run without one (logged). 0: do not wait. Not in evaluation."""
    close_ack_timeout_s: float = 2.0
    """On a clean stop, wait this long at most for the learner to acknowledge every step record
    (no collected step lost in flight), s."""
    executor: str = "events"
    """ROS executor of the actor process (main()): 'events' (rclpy's C++ EventsExecutor: far
    less per-callback overhead, measured 2-3x lower takeover latency and jitter on a loaded
    2-core machine, benchmarks/latency.py; one thread, so a weights update delays operator
    commands by its deserialization; the control loop keeps its own thread) or
    'multi_threaded' (rclpy MultiThreadedExecutor: the callback groups run in parallel, but it
    busy-waits on the ready entities of busy groups and can take a core; see README, Latency)."""
    control_thread: bool = True
    """Run the control loop in a dedicated thread paced to absolute monotonic deadlines
    (lower period jitter than an executor timer); false, or use_sim_time: an rclpy timer in
    its own callback group."""
    control_thread_priority: int = 0
    """SCHED_FIFO priority (1..98) of the control thread, so a busy machine cannot delay a
    tick; 0: normal scheduling. Needs root, CAP_SYS_NICE or an rtprio limit (as libfranka
    does); refused, the node says how to allow it and runs at normal priority. With it the
    policy runs on one torch thread (worker threads would inherit the priority) and the GIL
    is handed over every 0.5 ms instead of 5 ms."""

    def validate(self) -> None:
        super().validate()
        if self.reset_mode not in RESET_MODES:
            raise ValueError(f"reset_mode must be one of {RESET_MODES}, got '{self.reset_mode}'")
        if self.evaluation and not self.policy_file:
            raise ValueError("evaluation: true needs policy_file (the exported policy to evaluate)")
        if self.eval_episodes < 1:
            raise ValueError(f"eval_episodes={self.eval_episodes} must be >= 1")
        if not 0 <= self.control_thread_priority <= 98:
            raise ValueError(f"control_thread_priority must be in 0..98 (0: normal scheduling), got {self.control_thread_priority}")
        if self.executor not in ("multi_threaded", "events"):
            raise ValueError(f"executor must be 'multi_threaded' or 'events', got '{self.executor}'")
        if self.spec_json and self.spec_file:
            raise ValueError("give spec_json or spec_file, not both")
        if not (math.isfinite(self.wait_for_learner_s) and self.wait_for_learner_s >= 0):
            raise ValueError(f"wait_for_learner_s must be a finite number >= 0, got {self.wait_for_learner_s}")
        if not (math.isfinite(self.close_ack_timeout_s) and self.close_ack_timeout_s >= 0):
            raise ValueError(f"close_ack_timeout_s must be a finite number >= 0, got {self.close_ack_timeout_s}")


# ----------------------------------------------------------------------------- policies
def random_policy(spec: PolicySpec, network: dict | None, seed: int):
    """An untrained actor network for ``spec`` (the learner's network layout when given)."""
    import torch

    from robot_stack.core.config import from_dict
    from robot_stack.rl.networks import ActorHead, NetworkConfig, ObsEncoder, PolicyNet
    from robot_stack.rl.policy_io import Policy

    net_cfg = from_dict(NetworkConfig, network or {}, where="network")
    torch.manual_seed(seed)  # parameter init uses the global generator
    encoder = ObsEncoder(spec, net_cfg, load_weights=bool(net_cfg.encoder_weights))
    return Policy(spec, PolicyNet(encoder, ActorHead(encoder.out_dim, spec.action.dim, net_cfg.hidden_dims)), seed)


def same_layout(a: PolicySpec, b: PolicySpec) -> bool:
    """Whether two specs take the same observations and give the same actions."""
    return a.cameras == b.cameras and a.proprio_names == b.proprio_names and a.action == b.action


class ActorNode(Node):
    def __init__(self, **kwargs):
        super().__init__("actor", **kwargs)
        self.config: ActorNodeConfig = declare_config(self, ActorNodeConfig)
        cfg = self.config
        if cfg.evaluation:
            cfg.deterministic = True  # evaluation always takes the policy's mean action
        self.done = threading.Event()
        """Set when evaluation mode has finished (main() then exits)."""
        self.fatal_error: str | None = None
        """Set when the control loop thread died (main() then exits with status 1)."""
        self.core: ActorCore | None = None
        self._core_lock = threading.Lock()
        self._eval_results: list = []
        self._last_log_s = time.monotonic()
        self._gripper_sent: float | None = None
        self._reset_request_wall_s = math.inf
        self._warned: dict[str, float] = {}
        self.rejected_weights = 0
        """PolicyWeights messages rejected (bad digest, format, layout or network)."""
        self.steps_published = 0
        """StepRecords published (benchmarks compare it with what the learner received)."""
        self._learner_wait_over = cfg.evaluation or cfg.wait_for_learner_s <= 0
        self._learner_wait_start = time.monotonic()

        self._control_group = MutuallyExclusiveCallbackGroup()
        self._operator_group = MutuallyExclusiveCallbackGroup()
        self._sensor_group = ReentrantCallbackGroup()
        self._weights_group = MutuallyExclusiveCallbackGroup()

        self.cmd_pub = self.create_publisher(TwistStamped, CMD_TWIST_TOPIC, qos.COMMAND)
        self.gripper_pub = self.create_publisher(Float32, GRIPPER_CMD_TOPIC, qos.COMMAND)
        self.steps_pub = self.create_publisher(StepRecord, STEPS_TOPIC, qos.STEPS)
        self.episodes_pub = self.create_publisher(EpisodeSummary, EPISODES_TOPIC, qos.EPISODES)
        self.reset_pub = self.create_publisher(UInt64, RESET_TOPIC, qos.COMMAND)
        self.home_pub = self.create_publisher(Empty, FRANKA_HOME_TOPIC, qos.COMMAND)

        spec, policy, version = self._initial_policy()
        self._camera_subs = []
        if spec is not None:
            self._make_core(spec, policy, version)
        self.create_subscription(PoseStamped, EE_POSE_TOPIC, self._on_pose, qos.STATE, callback_group=self._sensor_group)
        self.create_subscription(TwistStamped, EE_TWIST_TOPIC, self._on_twist, qos.STATE, callback_group=self._sensor_group)
        self.create_subscription(Float32, GRIPPER_WIDTH_TOPIC, self._on_gripper_width, qos.STATE, callback_group=self._sensor_group)
        self.create_subscription(Bool, SIM_SUCCESS_TOPIC, self._on_sim_success, qos.STATE, callback_group=self._sensor_group)
        self.create_subscription(UInt64, RESET_DONE_TOPIC, self._on_reset_done, qos.COMMAND, callback_group=self._sensor_group)
        self.create_subscription(String, FRANKA_STATUS_TOPIC, self._on_franka_status, qos.EPISODES, callback_group=self._sensor_group)
        self.create_subscription(OperatorCommand, OPERATOR_TOPIC, self._on_operator, qos.COMMAND, callback_group=self._operator_group)
        if not cfg.evaluation:
            self.create_subscription(PolicyWeights, POLICY_TOPIC, self._on_weights, qos.POLICY, callback_group=self._weights_group)
        self.timer = None
        self._control_loop: ControlLoop | None = None
        # The thread paces on the host's monotonic clock; a sim clock (use_sim_time) needs the
        # ROS timer, which follows /clock.
        if cfg.control_thread and not self.get_parameter("use_sim_time").value:
            self._control_loop = ControlLoop(
                "actor-control", cfg.period_s, self._on_tick, on_error=self._on_control_loop_error,
                priority=cfg.control_thread_priority, prepare=self._prepare_control_thread,
                alive=self.context.ok, logger=self.get_logger()).start()
        else:
            self.timer = self.create_timer(cfg.period_s, self._on_tick, callback_group=self._control_group)
        self.get_logger().info(
            f"actor at {cfg.control_rate_hz:g} Hz, reset_mode={cfg.reset_mode}, "
            f"{'evaluation of ' + cfg.policy_file if cfg.evaluation else 'learning'}; "
            + (f"policy version {version}, cameras {list(spec.camera_names)}" if spec else
               f"waiting for the learner's first weights on {POLICY_TOPIC}"))

    # ------------------------------------------------------------------ set-up
    def _initial_policy(self):
        cfg = self.config
        if cfg.policy_file:
            from robot_stack.rl.policy_io import load_policy_from_bytes, read_policy_file

            path = pathlib.Path(cfg.policy_file).expanduser()
            if not path.is_file():
                raise ConfigError(f"parameter 'policy_file': {path} does not exist (export one with the learner or give '')")
            try:
                spec_json, data, meta = read_policy_file(path)
                policy = load_policy_from_bytes(spec_json, data, cfg.seed)
            except (ValueError, RuntimeError, KeyError, OSError) as e:
                raise ConfigError(f"parameter 'policy_file': cannot load {path}: {e}") from None
            # While learning, a warm start counts as version 0 so that any learner weights (a
            # fresh learner starts again at 1) replace it; evaluation reports the file's version.
            return policy.spec, policy, int(meta.get("version", 0)) if cfg.evaluation else 0
        text = cfg.spec_json
        if cfg.spec_file:
            try:
                text = pathlib.Path(cfg.spec_file).expanduser().read_text()
            except OSError as e:
                raise ConfigError(f"parameter 'spec_file': {e}") from None
        if text:
            try:
                spec, network = parse_spec_json(text)
            except ValueError as e:
                raise ConfigError(f"parameter 'spec_json'/'spec_file': {e}") from None
            return spec, random_policy(spec, network, cfg.seed), 0
        return None, None, 0

    def _first_episode_id(self) -> int:
        path = self.config.episode_id_file
        if not path:
            return 1
        try:
            return int(pathlib.Path(path).read_text().strip()) + 1
        except FileNotFoundError:
            return 1
        except (OSError, ValueError) as e:
            self.get_logger().warning(f"episode_id_file {path} unreadable ({e}); starting at episode 1")
            return 1

    def _make_core(self, spec: PolicySpec, policy, version: int) -> None:
        core = ActorCore(self.config, spec, policy, policy_version=version,
                         first_episode_id=self._first_episode_id(), evaluation=self.config.evaluation)
        for cam in spec.cameras:
            topic = CAMERA_TOPIC.format(name=cam.name)
            self._camera_subs.append(self.create_subscription(
                Image, topic, lambda msg, name=cam.name: self._on_image(name, msg), qos.SENSOR,
                callback_group=self._sensor_group))
        self.core = core  # one assignment: callbacks see either no core or a complete one

    # ------------------------------------------------------------------ helpers
    def _now_s(self) -> float:
        return self.get_clock().now().nanoseconds * 1e-9

    def _warn_throttled(self, key: str, text: str, period_s: float = 2.0) -> None:
        now = time.monotonic()
        if now - self._warned.get(key, -math.inf) >= period_s:
            self._warned[key] = now
            self.get_logger().warning(text)

    def _send(self, cmd: RobotCommand, stamp_s: float) -> None:
        if not (np.all(np.isfinite(cmd.lin_m_s)) and np.all(np.isfinite(cmd.ang_rad_s))):
            # The core never produces this; a last guard so a NaN can never reach the arm.
            self.get_logger().error(f"refusing to send a non-finite twist from {cmd.source}; holding")
            cmd = RobotCommand.hold(cmd.gripper)
        msg = TwistStamped()
        msg.header = convert.header(stamp_s, self.config.base_frame)
        msg.twist.linear.x, msg.twist.linear.y, msg.twist.linear.z = (float(v) for v in cmd.lin_m_s)
        msg.twist.angular.x, msg.twist.angular.y, msg.twist.angular.z = (float(v) for v in cmd.ang_rad_s)
        self.cmd_pub.publish(msg)
        if cmd.gripper is not None and math.isfinite(cmd.gripper):
            width = self.config.gripper_open_width_m if cmd.gripper > 0 else 0.0
            if width != self._gripper_sent:
                self._gripper_sent = width
                self.gripper_pub.publish(Float32(data=float(width)))

    # ------------------------------------------------------------------ callbacks
    def _on_image(self, name: str, msg: Image) -> None:
        core = self.core
        try:
            img = convert.image_from_msg(msg)
        except ValueError as e:
            self._warn_throttled(f"img-{name}", f"camera '{name}': dropping frame: {e}")
            return
        core.on_camera_frame(name, img, convert.stamp_to_s(msg.header.stamp), msg.header.frame_id)

    def _on_pose(self, msg: PoseStamped) -> None:
        if self.core is None:
            return
        p, q = msg.pose.position, msg.pose.orientation
        self.core.on_ee_pose([p.x, p.y, p.z], [q.x, q.y, q.z, q.w], convert.stamp_to_s(msg.header.stamp))

    def _on_twist(self, msg: TwistStamped) -> None:
        if self.core is None:
            return
        lin, ang = msg.twist.linear, msg.twist.angular
        self.core.on_ee_twist([lin.x, lin.y, lin.z], [ang.x, ang.y, ang.z], convert.stamp_to_s(msg.header.stamp))

    def _on_gripper_width(self, msg: Float32) -> None:
        if self.core is not None:
            self.core.on_gripper_width(float(msg.data), self._now_s())

    def _on_sim_success(self, msg: Bool) -> None:
        if self.core is not None:
            self.core.on_sim_success(bool(msg.data), self._now_s())

    def _on_reset_done(self, msg: UInt64) -> None:
        if self.core is not None and self.config.reset_mode == "topic":
            self.core.on_reset_done(int(msg.data), self._now_s())

    def _on_franka_status(self, msg: String) -> None:
        if self.core is None or self.config.reset_mode != "franka_home":
            return
        try:
            event = json.loads(msg.data)
        except json.JSONDecodeError:
            return
        # The status topic is transient local: only a home_done newer than our request counts.
        if event.get("event") == "home_done" and float(event.get("t", 0.0)) >= self._reset_request_wall_s:
            self.core.on_reset_done(self.core.episode_id, self._now_s())
        elif event.get("event") == "home_failed":
            self.get_logger().error(f"franka homing failed: {event.get('detail', '')}; will request it again")

    def _on_operator(self, msg: OperatorCommand) -> None:
        core = self.core
        if core is None:
            return
        try:
            cmd = convert.operator_from_msg(msg)
        except ValueError as e:
            self._warn_throttled("operator", f"dropping operator command: {e}")
            return
        now = self._now_s()
        out = core.on_operator_command(cmd, now)
        if out is not None:
            # Stamped with the operator's read time: the command is that reading, forwarded.
            self._send(out, cmd.t if cmd.t > 0.0 else now)

    def _on_weights(self, msg: PolicyWeights) -> None:
        core = self.core
        if core is not None and msg.version <= core.policy_version:
            return
        try:
            w = convert.weights_from_msg(msg)
            from robot_stack.rl.policy_io import load_policy_from_bytes

            policy = load_policy_from_bytes(w.spec_json, w.data, self.config.seed)
        except (ValueError, RuntimeError, KeyError) as e:
            self.rejected_weights += 1
            self.get_logger().error(f"rejecting policy weights version {msg.version}: {e}")
            return
        if core is None:
            with self._core_lock:
                if self.core is None:
                    self._make_core(policy.spec, policy, w.version)
                    self.get_logger().info(f"built the policy from the learner's weights version {w.version}; "
                                           f"cameras {list(policy.spec.camera_names)}")
                    return
            core = self.core
        if not same_layout(policy.spec, core.spec):
            self.rejected_weights += 1
            self.get_logger().error(
                f"rejecting policy weights version {w.version}: its spec (cameras {list(policy.spec.camera_names)}, "
                f"proprio {list(policy.spec.proprio_names)}, action {list(policy.spec.action.names)}) differs from "
                "the running policy's; restart the actor to change the layout")
            return
        if core.set_policy(policy, w.version):
            self.get_logger().info(f"policy weights version {w.version} applied (learner step {w.learner_step})")

    def _on_tick(self) -> None:
        core = self.core
        if core is None or self.done.is_set() or not self._learner_ready():
            return
        now = self._now_s()
        out: TickResult = core.tick(now)
        if out.command is not None:
            self._send(out.command, now)
        if out.refused:
            self._warn_throttled("refused", f"observation refused, holding: {out.refused}")
        if out.policy_error:
            self._warn_throttled("policy", f"policy action rejected, holding: {out.policy_error}")
        if not self.config.evaluation:
            for step in out.steps:
                self.steps_pub.publish(convert.step_to_msg(step, self.config.base_frame))
                self.steps_published += 1
        if out.summary is not None:
            self.episodes_pub.publish(convert.summary_to_msg(out.summary))
            self._save_episode_id(out.summary.episode_id)
            if self.config.evaluation:
                self._eval_results.append(out.summary)
                if len(self._eval_results) >= self.config.eval_episodes:
                    self._finish_evaluation(now)
                    return
        if out.reset_request is not None:
            self._request_reset(out.reset_request)
        if time.monotonic() - self._last_log_s >= self.config.log_every_s:
            self._last_log_s = time.monotonic()
            self.get_logger().info(f"actor: {json.dumps({**core.snapshot(), 'steps_published': self.steps_published})}")

    def _learner_ready(self) -> bool:
        """wait_for_learner_s: True once a learner subscribes to the step records (or the wait
        is over, or not needed)."""
        if self._learner_wait_over:
            return True
        if self.steps_pub.get_subscription_count() > 0:
            self._learner_wait_over = True
            self.get_logger().info("a learner subscribes to the step records: stepping")
            return True
        waited = time.monotonic() - self._learner_wait_start
        if waited >= self.config.wait_for_learner_s:
            self._learner_wait_over = True
            self.get_logger().warning(
                f"no learner subscribed to {STEPS_TOPIC} within wait_for_learner_s={self.config.wait_for_learner_s:g} s: "
                f"stepping without one (step records are lost until a learner subscribes; start learner_node "
                f"with the same ROS_DOMAIN_ID)")
            return True
        self._warn_throttled("learner", f"waiting for a learner to subscribe to {STEPS_TOPIC} "
                                        f"({waited:.0f} of {self.config.wait_for_learner_s:g} s)")
        return False

    @property
    def _control_loop_thread(self) -> threading.Thread | None:
        return None if self._control_loop is None else self._control_loop.thread

    def _on_control_loop_error(self, e: BaseException) -> None:
        """An exception in a control tick ends the node like one in a timer callback would."""
        if not self.context.ok():
            return  # Ctrl-C/SIGTERM shut the context down under this tick: a normal stop
        self.fatal_error = f"control loop failed: {e!r}"
        self.get_logger().fatal(self.fatal_error)
        self.done.set()  # main() stops spinning and exits non-zero

    def _prepare_control_thread(self) -> None:
        # A process started real-time as a whole (launch-prefix 'chrt -f N', session.launch.yaml's
        # rt_prefix) would hand SCHED_FIFO to torch's worker pool as well: busy-waiting workers
        # at real-time priority starve the machine. Same for a real-time control thread.
        process_rt = (current_thread_scheduling() or (os.SCHED_OTHER, 0))[0] in (os.SCHED_FIFO, os.SCHED_RR)
        if self.config.control_thread_priority <= 0 and not process_rt:
            return
        import sys

        import torch

        torch.set_num_threads(1)  # an intra-op pool started from this thread would inherit SCHED_FIFO
        sys.setswitchinterval(0.0005)  # a woken tick waits at most this long for the GIL
        if process_rt:
            self.get_logger().info("running real-time (launch-prefix): torch on one thread")

    def _request_reset(self, episode_id: int) -> None:
        mode = self.config.reset_mode
        self._reset_request_wall_s = time.time()
        if mode == "topic":
            self.reset_pub.publish(UInt64(data=int(episode_id)))
        elif mode == "franka_home":
            self.home_pub.publish(Empty())
        if mode == "none" or not self.config.wait_for_reset_done:
            self.core.on_reset_done(episode_id, self._now_s())

    def _save_episode_id(self, episode_id: int) -> None:
        path = self.config.episode_id_file
        if not path:
            return
        tmp = f"{path}.tmp"
        try:
            pathlib.Path(path).parent.mkdir(parents=True, exist_ok=True)
            with open(tmp, "w") as f:
                f.write(f"{episode_id}\n")
            os.replace(tmp, path)
        except OSError as e:
            self._warn_throttled("episode_id_file", f"cannot write episode_id_file {path}: {e}")

    def _finish_evaluation(self, now: float) -> None:
        res = self._eval_results
        report = {
            "policy_file": self.config.policy_file,
            "episodes": len(res),
            "successes": sum(r.success for r in res),
            "success_rate": sum(r.success for r in res) / len(res),
            "mean_steps": float(np.mean([r.steps for r in res])),
            "intervention_rate": (sum(r.intervention_steps for r in res) / max(1, sum(r.steps for r in res))),
            "episode_success": [bool(r.success) for r in res],
        }
        self.get_logger().info(f"evaluation finished: {json.dumps(report)}")
        if self.config.eval_report_file:
            path = pathlib.Path(self.config.eval_report_file)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(report, indent=2) + "\n")
        self.eval_report = report
        self._send(RobotCommand.hold(), now)
        self.done.set()

    def destroy_node(self) -> None:
        self._stop_control_loop()
        super().destroy_node()

    def _stop_control_loop(self) -> None:
        loop = getattr(self, "_control_loop", None)
        if loop is not None:
            loop.stop()

    def close(self) -> None:
        """Stop the control loop, leave the robot holding still and wait (up to
        ``close_ack_timeout_s``) until every subscriber of the step records (the learner) has
        acknowledged them, so a clean stop loses no collected step (when the ROS context is up)."""
        self._stop_control_loop()
        acked = None
        if self.context.ok():
            self._send(RobotCommand.hold(), self._now_s())
            acked = self.steps_pub.wait_for_all_acked(Duration(seconds=self.config.close_ack_timeout_s))
        self.get_logger().info(f"actor closing: steps_published={self.steps_published}"
                               + ("" if acked is None else f" all_acknowledged={str(acked).lower()}"))


def _executor_for(node: "ActorNode"):
    if node.config.executor == "events":
        from rclpy.experimental import EventsExecutor

        return EventsExecutor()
    from rclpy.executors import MultiThreadedExecutor

    return MultiThreadedExecutor(num_threads=4)


def main(args: list[str] | None = None) -> int:
    # Spins until Ctrl-C/SIGTERM, or until evaluation mode has finished (node.done).
    return run_node(ActorNode, args, make_executor=_executor_for, done=lambda node: node.done,
                    fatal_exit_code=1)


if __name__ == "__main__":
    raise SystemExit(main())
