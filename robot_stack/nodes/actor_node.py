# Over 400 lines: about 90 are the docstring, the node's topic and parameter reference.
"""Actor node: runs the policy on the robot, lets the operator take over, streams steps.

A thin ROS shell over :class:`robot_stack.actor.core.ActorCore` (read its docstring for
the arbitration, step-record and episode rules). Executor (``executor``): rclpy's
``EventsExecutor`` by default (least overhead per callback), or ``MultiThreadedExecutor``; the
operator subscription, the sensor subscriptions and the policy-weights subscription each sit
in their own callback group (run in parallel by the multi-threaded executor; the events
executor runs callbacks one at a time, so there a weights update delays operator commands by
its deserialization time). The control loop runs in its own thread, paced to absolute
deadlines on the monotonic clock (``control_thread``; with ``control_thread: false`` or
``use_sim_time`` it is an rclpy timer in its own callback group), so a slow policy never
delays an operator command, and callbacks never delay a control tick.

Topic and service names are relative (robot_stack.nodes.topics; default namespace
``robot_stack``, so ``steps`` is ``/robot_stack/steps``).

Subscribes
  ``cameras/<name>/image_raw`` (sensor_msgs/Image, ``qos.SENSOR``) for each
      camera of the policy spec: rgb8 (bgr8/rgba8/bgra8/mono8 converted), any size (resized
      to the spec's). Frames older than ``max_frame_age_s`` (header stamp vs. node clock)
      are refused.
  ``ee_pose`` (geometry_msgs/PoseStamped, ``qos.STATE``): EE (TCP) pose in the
      base frame; ``franka/ee_twist`` (geometry_msgs/TwistStamped,
      ``qos.STATE``): EE twist, base frame; ``franka/gripper_width``
      (std_msgs/Float32, ``qos.STATE``): m, stamped on receipt. Older than
      ``max_state_age_s`` is refused.
  ``operator`` (robot_stack/OperatorCommand, ``qos.COMMAND``): while
      ``intervening`` the operator's twist is sent to the robot in the same callback
      (projected onto the policy's action space: clipped to its speed bounds, dimensions
      it lacks dropped); ``episode_mark`` 1/2 ends the episode as success/failure.
  ``steps/ack`` (robot_stack/StepAck, ``qos.ACK``): the learner's watermark of this robot's
      records; acknowledged records leave the spool, a new learner id rewinds the sending to
      its watermark. The actor logs when a learner appears and when acknowledgements stop.
  ``policy`` (robot_stack/PolicyWeights, ``qos.POLICY``): new weights are
      SHA-256-checked, deserialized in their own callback group and swapped in atomically
      between ticks; only versions newer than the running one apply; weights whose spec
      (cameras, proprio, action) differs from the running one are rejected. Ignored in
      evaluation mode. Without a learner the actor keeps its last policy.
  ``sim/success`` (std_msgs/Bool, ``qos.STATE``: best effort, so it matches
      reliable and best-effort publishers; publish it every sim step): true ends the running
      episode as a success (sim worlds only; a true before the episode's first step is
      ignored, so a flag left over from the previous episode does not end the next one).

Publishes
  ``franka/cmd_twist`` (geometry_msgs/TwistStamped, ``qos.COMMAND``): EE
      velocity in ``base_frame`` (m/s, rad/s) every control tick (policy, operator or a
      zero "hold") and on every operator command while intervening. Never NaN: a policy
      action that is not finite or has the wrong shape is replaced by a hold and logged.
      ``header.stamp``: the tick time for policy and hold commands (= the StepRecord stamp
      of that step); for a forwarded operator command the OperatorCommand's own stamp (the
      SpaceMouse read time), so the command's age can be traced end to end.
  ``franka/gripper_cmd`` (std_msgs/Float32, ``qos.COMMAND``): target width
      (``gripper_open_width_m`` or 0) when the action's gripper dimension changes sign
      (only for specs with a ``gripper`` action).
  ``steps`` (robot_stack/StepRecord, ``qos.STEPS``): one record per control
      step, completed one tick later (see ActorCore), plus an ``is_last`` record per
      episode. Not published in evaluation mode. Each record first goes to the step spool
      (``spool_dir``, :mod:`robot_stack.actor.spool`) and stays there until the learner
      acknowledges it on ``steps/ack``: while no learner runs, records are spooled (bounded by
      ``spool_max_records``); a learner that starts or restarts gets every record after its
      watermark, in order (a sender thread, not the control loop, publishes).
  ``episodes`` (robot_stack/EpisodeSummary, ``qos.EPISODES``): one per episode.

Calls (asynchronously from the control thread: the tick sends the request and later ticks
look at the answer, so neither a tick nor an executor callback ever waits for it)
  ``episode/reset`` (robot_stack/ResetEpisode, ``reset_mode: world``): the id of the episode
      about to start; the sim world answers once the scene is re-sampled and the arm is at the
      start pose, which completes the reset.
  ``franka/home`` (std_srvs/Trigger, ``reset_mode: franka_home``): a successful answer
      completes the reset; a failed one is logged and the reset asked for again after
      ``reset_timeout_s``. With ``none`` nothing is called and the next episode starts at once.
      While the service is not there yet the actor holds and keeps looking for it.

Time: frame and state ages compare header stamps with the node clock (ROS time; set
``use_sim_time`` for a sim clock), so publishers must stamp with the same clock (on several
machines: synchronized clocks). Episode-level rules (time limit = truncation, marks and sim
success = terminal, the first step of every episode after a reset, records completed one tick
later with the time-weighted executed action and the majority-of-the-step intervention
flag) are ActorCore's; see robot_stack/actor/core.py.

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
import threading
import time

import numpy as np
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup, ReentrantCallbackGroup
from rclpy.duration import Duration
from rclpy.node import Node

from robot_stack.actor.config import ActorNodeConfig
from robot_stack.actor.core import ActorCore, RobotCommand, TickResult
from robot_stack.actor.episode_ids import EpisodeIdFile
from robot_stack.actor.evaluation import EvaluationRun
from robot_stack.actor.learner_wait import LearnerWait
from robot_stack.actor.policy import initial_policy, policy_from_weights, same_layout
from robot_stack.actor.resets import ResetCoordinator
from robot_stack.actor.spool import StepSpool
from robot_stack.devices.realtime import current_thread_scheduling
from robot_stack.nodes import convert, topics
from robot_stack.nodes.control_loop import ControlLoop
from robot_stack.nodes.inbox import Inbox
from robot_stack.nodes.params import declare_config, run_node
from robot_stack.types.config import ConfigError
from robot_stack.types.spec import PolicySpec


class _ResetCall:
    """The reset service call in flight (owned by the control thread)."""

    def __init__(self, episode_id: int, request) -> None:
        self.episode_id = episode_id
        self.request = request
        self.future = None  # set once sent; the executor completes it with the answer


class ActorNode(Node):
    def __init__(self, **kwargs):
        kwargs.setdefault("namespace", topics.DEFAULT_NAMESPACE)
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
        self._evaluation = EvaluationRun(cfg.policy_file, cfg.eval_episodes, cfg.eval_report_file)
        self._episode_ids = EpisodeIdFile(cfg.episode_id_file)
        self._resets = ResetCoordinator(cfg.reset_mode, cfg.wait_for_reset_done)
        self._last_log_s = time.monotonic()
        self._gripper_sent: float | None = None
        self._warned: dict[str, float] = {}
        self.inbox = Inbox(self.get_logger())
        """Every subscription callback runs under it: malformed messages are dropped and counted."""
        self.rejected_weights = 0
        """PolicyWeights messages rejected (bad digest, format, layout or network)."""
        self.steps_published = 0
        """StepRecords published (benchmarks compare it with what the learner received)."""
        self.spool = StepSpool(cfg.spool_dir or None, cfg.spool_max_records, cfg.spool_window,
                               cfg.spool_resend_after_s, on_event=self.get_logger().info)
        """Every step record waits here until the learner acknowledges it."""
        self._spool_lock = threading.Lock()
        self._send_wake = threading.Event()
        self._learner_seen: bool | None = None
        self._closing = False
        self._sender: threading.Thread | None = None
        if not cfg.evaluation:
            try:
                self.spool.open()
            except OSError as e:
                raise ConfigError(f"parameter 'spool_dir': cannot use {cfg.spool_dir}: {e}") from None
        self._learner_wait = LearnerWait(cfg.wait_for_learner_s, skip=cfg.evaluation)

        self._control_group = MutuallyExclusiveCallbackGroup()
        self._operator_group = MutuallyExclusiveCallbackGroup()
        self._sensor_group = ReentrantCallbackGroup()
        self._weights_group = MutuallyExclusiveCallbackGroup()

        self.cmd_pub = topics.publisher(self, topics.CMD_TWIST)
        self.gripper_pub = topics.publisher(self, topics.GRIPPER_CMD)
        self.steps_pub = topics.publisher(self, topics.STEPS)
        self.episodes_pub = topics.publisher(self, topics.EPISODES)
        reset_service = {"world": topics.EPISODE_RESET, "franka_home": topics.FRANKA_HOME}.get(cfg.reset_mode)
        self._reset_service = reset_service
        self._reset_client = (None if reset_service is None else
                              topics.client(self, reset_service, callback_group=self._sensor_group))
        self._reset_call: _ResetCall | None = None

        spec, policy, version = initial_policy(cfg.policy_file, cfg.spec_json, cfg.spec_file, cfg.seed, cfg.evaluation)
        self._camera_subs = []
        if spec is not None:
            self._make_core(spec, policy, version)
        self.inbox.subscribe(self, topics.EE_POSE, self._on_pose, callback_group=self._sensor_group)
        self.inbox.subscribe(self, topics.EE_TWIST, self._on_twist, callback_group=self._sensor_group)
        self.inbox.subscribe(self, topics.GRIPPER_WIDTH, self._on_gripper_width, callback_group=self._sensor_group)
        self.inbox.subscribe(self, topics.SIM_SUCCESS, self._on_sim_success, callback_group=self._sensor_group)
        self.inbox.subscribe(self, topics.OPERATOR, self._on_operator, callback_group=self._operator_group)
        if not cfg.evaluation:
            self.inbox.subscribe(self, topics.POLICY, self._on_weights, callback_group=self._weights_group)
            self._ack_sub = self.inbox.subscribe(self, topics.STEP_ACK, self._on_ack, callback_group=self._sensor_group)
            self._sender = threading.Thread(target=self._send_loop, name="actor-steps", daemon=True)
            self._sender.start()
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
               f"waiting for the learner's first weights on {self.resolve_topic_name(topics.POLICY.name)}"))

    # ------------------------------------------------------------------ set-up
    def _first_episode_id(self) -> int:
        try:
            first = self._episode_ids.first_episode_id()
        except (OSError, ValueError) as e:
            self.get_logger().warning(f"episode_id_file {self._episode_ids.path} unreadable ({e}); starting at episode 1")
            first = 1
        return max(first, self.spool.max_episode_id + 1)  # never below a record still in the spool

    def _make_core(self, spec: PolicySpec, policy, version: int) -> None:
        core = ActorCore(self.config, spec, policy, policy_version=version,
                         first_episode_id=self._first_episode_id(), evaluation=self.config.evaluation)
        for cam in spec.cameras:
            self._camera_subs.append(self.inbox.subscribe(
                self, topics.CAMERA_IMAGE, lambda msg, name=cam.name: self._on_image(name, msg),
                callback_group=self._sensor_group, camera=cam.name))
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
        self.cmd_pub.publish(convert.twist_to_msg(cmd.lin_m_s, cmd.ang_rad_s, stamp_s, self.config.base_frame))
        if cmd.gripper is not None and math.isfinite(cmd.gripper):
            width = self.config.gripper_open_width_m if cmd.gripper > 0 else 0.0
            if width != self._gripper_sent:
                self._gripper_sent = width
                self.gripper_pub.publish(convert.float32_to_msg(width))

    # ------------------------------------------------------------------ callbacks
    def _on_image(self, name: str, msg) -> None:
        core = self.core
        try:
            img = convert.image_from_msg(msg)
        except ValueError as e:
            raise ValueError(f"camera '{name}': {e}") from None
        core.on_camera_frame(name, img, *convert.stamp_and_frame(msg))

    def _on_pose(self, msg) -> None:
        if self.core is None:
            return
        pose = convert.pose_from_msg(msg, require_finite=True)
        self.core.on_ee_pose(pose.xyz_m, pose.quat_xyzw, pose.stamp_s)

    def _on_twist(self, msg) -> None:
        if self.core is None:
            return
        twist = convert.twist_from_msg(msg, require_finite=True)
        self.core.on_ee_twist(twist.lin_m_s, twist.ang_rad_s, twist.stamp_s)

    def _on_gripper_width(self, msg) -> None:
        if self.core is not None:
            self.core.on_gripper_width(convert.float_from_msg(msg, require_finite=True), self._now_s())

    def _on_sim_success(self, msg) -> None:
        if self.core is not None:
            self.core.on_sim_success(convert.bool_from_msg(msg), self._now_s())

    def _on_operator(self, msg) -> None:
        core = self.core
        if core is None:
            return
        cmd = convert.operator_from_msg(msg)  # ValueError (non-finite): the inbox drops it
        now = self._now_s()
        out = core.on_operator_command(cmd, now)
        if out is not None:
            # Stamped with the operator's read time: the command is that reading, forwarded.
            self._send(out, cmd.t if cmd.t > 0.0 else now)

    def _on_weights(self, msg) -> None:
        core = self.core
        if core is not None and msg.version <= core.policy_version:
            return
        try:
            w = convert.weights_from_msg(msg)  # digest, format, version, spec_json
            spec, _ = w.parse_spec()
            if core is not None and not same_layout(spec, core.spec):
                raise ValueError(
                    f"its spec (cameras {list(spec.camera_names)}, proprio {list(spec.proprio_names)}, action "
                    f"{list(spec.action.names)}) differs from the running policy's; restart the actor to change the layout")
            policy = policy_from_weights(w, self.config.seed)  # the network, checked against its data
        except ValueError as e:
            self.rejected_weights += 1
            raise ValueError(f"rejecting policy weights version {msg.version}: {e}") from None
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
                raise ValueError(f"rejecting policy weights version {w.version}: another layout than the running policy's")
        if core.set_policy(policy, w.version):
            self.get_logger().info(f"policy weights version {w.version} applied (learner step {w.learner_step})")

    def _on_tick(self) -> None:
        core = self.core
        if core is None or self.done.is_set() or not self._learner_ready():
            return
        now = self._now_s()
        self._advance_reset_call(now)
        out: TickResult = core.tick(now)
        if out.command is not None:
            self._send(out.command, now)
        if out.refused:
            self._warn_throttled("refused", f"observation refused, holding: {out.refused}")
        if out.policy_error:
            self._warn_throttled("policy", f"policy action rejected, holding: {out.policy_error}")
        if not self.config.evaluation and out.steps:
            with self._spool_lock:
                for step in out.steps:
                    self.spool.append(step)  # on disk before it is sent; the sender thread publishes it
            self._send_wake.set()
        if out.summary is not None:
            self.episodes_pub.publish(convert.summary_to_msg(out.summary))
            self._save_episode_id(out.summary.episode_id)
            if self.config.evaluation and self._evaluation.add(out.summary):
                self._finish_evaluation(now)
                return
        if out.reset_request is not None:
            self._request_reset(out.reset_request)
        if time.monotonic() - self._last_log_s >= self.config.log_every_s:
            self._last_log_s = time.monotonic()
            self.get_logger().info(f"actor: {json.dumps({**core.snapshot(), 'steps_published': self.steps_published, 'spool': self._spool_counts(), 'dropped_messages': self.inbox.counts()})}")

    # ------------------------------------------------------------------ step records
    def _on_ack(self, msg) -> None:
        ack = convert.ack_from_msg(msg)
        with self._spool_lock:
            self.spool.on_ack(ack, time.monotonic())
        core = self.core
        if ack.watermark is not None and core is not None and core.episode_id <= ack.watermark[0]:
            core.episode_ids_after(ack.watermark[0])  # e.g. episode_id_file lost: never reuse an id
        self._send_wake.set()

    def _learner_present(self, listeners: int) -> bool:
        """A learner is matched: it publishes acknowledgements and subscribes to the records."""
        present = self._ack_sub.get_publisher_count() > 0 and listeners > 0
        if present != self._learner_seen:
            first, self._learner_seen = self._learner_seen is None, present
            with self._spool_lock:
                n = self.spool.pending
            topic = self.steps_pub.topic_name
            text = (f"a learner is matched on {topic}" if present else
                    f"no learner matched on {topic}{' yet' if first else ''}: step records are spooled until "
                    f"one acknowledges them ({n} waiting, at most spool_max_records={self.config.spool_max_records})")
            if present or first:
                self.get_logger().info(text)
            else:
                self.get_logger().warning(text)
        return present

    def _send_loop(self) -> None:
        """Publish spooled records in order as the learner acknowledges them (never in the control loop)."""
        while self.context.ok() and not self._closing:
            self._send_wake.wait(0.2)
            self._send_wake.clear()
            try:
                listeners = self.steps_pub.get_subscription_count()
                present = self._learner_present(listeners)
                with self._spool_lock:
                    batch = self.spool.take(time.monotonic(), present, listeners)
                for step in batch:
                    self.steps_pub.publish(convert.step_to_msg(step, self.config.base_frame))
                    self.steps_published += 1
            except Exception as e:  # noqa: BLE001 -- the records stay spooled; say why and try again
                if not self.context.ok() or self._closing:
                    return
                self._warn_throttled("sender", f"step sender: {e!r}; records stay spooled", 5.0)

    def _spool_counts(self) -> dict:
        with self._spool_lock:
            return {"pending": self.spool.pending, **dict(self.spool.counters)}

    def _learner_ready(self) -> bool:
        """wait_for_learner_s: True once a learner subscribes to the step records (or the wait
        is over, or not needed)."""
        wait = self._learner_wait
        if wait.over:
            return True
        ready = wait.ready(self.steps_pub.get_subscription_count())
        if wait.state == "found":
            self.get_logger().info("a learner subscribes to the step records: stepping")
        elif wait.state == "timeout":
            self.get_logger().warning(
                f"no learner subscribed to {self.steps_pub.topic_name} within wait_for_learner_s={self.config.wait_for_learner_s:g} s: "
                f"stepping without one (step records are lost until a learner subscribes; start learner_node "
                f"with the same ROS_DOMAIN_ID)")
        else:
            self._warn_throttled("learner", f"waiting for a learner to subscribe to {self.steps_pub.topic_name} "
                                            f"({wait.waited_s:.0f} of {self.config.wait_for_learner_s:g} s)")
        return ready

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
        """Control thread: start the reset service call for ``episode_id`` (replacing one
        still in flight: the core asks again after reset_timeout_s)."""
        # Saved when the episode is about to start, so a restarted actor never reuses its id
        # (the learner takes an id's records once).
        self._save_episode_id(episode_id)
        req = self._resets.request()
        if req.service is not None:
            self._drop_reset_call()
            request = convert.reset_request(episode_id) if req.service == "world" else convert.trigger_request()
            self._reset_call = _ResetCall(episode_id, request)
            self._advance_reset_call(self._now_s())
        if req.done_now:
            self.core.on_reset_done(episode_id, self._now_s())

    def _advance_reset_call(self, now: float) -> None:
        """Control thread: send the pending reset call once its server is there, and hand its
        answer to the core once it has come. Never waits."""
        call, client = self._reset_call, self._reset_client
        if call is None or client is None:
            return
        if call.future is None:
            if not client.service_is_ready():
                self._warn_throttled("reset-service", f"waiting for the reset service "
                                     f"{self.resolve_service_name(self._reset_service.name)} (holding still)")
                return
            call.future = client.call_async(call.request)
            return
        if not call.future.done():
            return
        self._reset_call = None
        try:
            ok, message = convert.result_from_response(call.future.result())
        except Exception as e:  # noqa: BLE001 - an exception set on the future by rclpy: a failed call
            ok, message = False, f"call failed: {e!r}"
        if self._resets.completes(ok):
            if not ok:
                self.get_logger().warning(f"reset for episode {call.episode_id}: {message}; starting it anyway")
            self.core.on_reset_done(call.episode_id, now)
        else:
            self.get_logger().error(f"reset for episode {call.episode_id} failed: {message}; will request it again")

    def _drop_reset_call(self) -> None:
        call, self._reset_call = self._reset_call, None
        if call is not None and call.future is not None and not call.future.done():
            self._reset_client.remove_pending_request(call.future)

    def _save_episode_id(self, episode_id: int) -> None:
        try:
            self._episode_ids.save(episode_id)
        except OSError as e:
            self._warn_throttled("episode_id_file", f"cannot write episode_id_file {self._episode_ids.path}: {e}")

    def _finish_evaluation(self, now: float) -> None:
        report = self._evaluation.report()
        self.get_logger().info(f"evaluation finished: {json.dumps(report)}")
        self._evaluation.write(report)
        self.eval_report = report
        self._send(RobotCommand.hold(), now)
        self.done.set()

    def destroy_node(self) -> None:
        self._stop_control_loop()
        self._closing = True  # the step sender stops too
        self._send_wake.set()
        super().destroy_node()

    def _stop_control_loop(self) -> None:
        loop = getattr(self, "_control_loop", None)
        if loop is not None:
            loop.stop()

    def close(self) -> None:
        """Stop the control loop, leave the robot holding still and wait (up to
        ``close_ack_timeout_s``) until every subscriber of the step records has received those
        sent; records no learner acknowledged stay in the spool (on disk with ``spool_dir``: the
        next actor run sends them)."""
        self._stop_control_loop()
        acked = None
        if self.context.ok():
            self._send(RobotCommand.hold(), self._now_s())
            acked = self.steps_pub.wait_for_all_acked(Duration(seconds=self.config.close_ack_timeout_s))
        self._closing = True
        self._send_wake.set()
        if self._sender is not None:
            self._sender.join(timeout=2.0)
        with self._spool_lock:
            pending = self.spool.pending
            self.spool.close()
        kept = ("" if not pending else f"; {pending} unacknowledged step record(s) "
                + (f"stay in {self.config.spool_dir} for the next run" if self.config.spool_dir else "are dropped (no spool_dir)"))
        self.get_logger().info(f"actor closing: steps_published={self.steps_published}"
                               + ("" if acked is None else f" all_acknowledged={str(acked).lower()}") + kept)


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
