"""Learner node: labels the actor's steps (RLIF), trains RLPD-SAC, publishes policy weights.

A thin ROS shell over :class:`robot_stack.rl.learner.LearnerCore` (read its docstring for
labelling, the replay buffers, the update-to-data rule, checkpoints and resume). Gradient
steps run in the core's own training thread, never in a callback.

Topic names are relative (robot_stack.nodes.topics; default namespace ``robot_stack``).

Subscribes
  ``steps`` (robot_stack/StepRecord, ``qos.STEPS``: reliable, depth 1000): one
      record per actor control step. Each record is validated against the policy spec
      (cameras, image sizes, proprio layout, action size, finite action within [-1, 1]); a
      bad record is dropped and logged (counted as ``rejected_steps``), which the labeller
      treats as a gap (the unpaired step is dropped, never joined across the gap). Records are
      taken in the actor's order and once (``robot_stack.rl.intake``, one stream per robot):
      duplicates and early records are dropped and counted (``duplicate_steps``,
      ``early_steps``).

Publishes
  ``policy`` (robot_stack/PolicyWeights, ``qos.POLICY``: reliable + transient
      local, depth 1): the actor networks (format ``torch_state_dict``, ``spec_json`` with
      the policy spec and network config, SHA-256), once at start (a resumed run's weights,
      or the initial random ones) and every ``publish_every_updates`` updates. ``version``
      increases strictly, also across restarts (a killed learner's successor publishes above
      every version handed out before); a late-joining actor gets the latest.
  ``steps/ack`` (robot_stack/StepAck, ``qos.ACK``: reliable + transient local, depth 1): after
      every step record and once a second, the watermark (every record up to it is on disk),
      this process's random ``learner_id`` and its stored/duplicate/early counts. The actor
      deletes acknowledged records from its spool and resends the rest.
  ``learner/stats`` (robot_stack/LearnerStats, ``qos.EPISODES``): every ``stats_every_s``:
      env_steps, transitions, buffer, intervention_buffer, updates, updates_per_s,
      update_backlog, policy_version, episodes, success_rate, intervention_rate (rolling over
      ``stats_window`` episodes), dropped/rejected steps, and as named metrics the other
      counters and the latest losses (critic_loss, actor_loss, alpha, entropy, ...). The same
      figures go to the log and to TensorBoard (``run_dir/tb``).
  ``/diagnostics`` (diagnostic_msgs/DiagnosticArray, ``qos.DIAGNOSTICS``), every
      ``stats_every_s``: one status named by the node's full name (``/robot_stack/learner``),
      OK, or WARN while rejected steps arrive; values: updates, updates/s, backlog, version.

Fleet (several robots, one learner): with ``robots`` (robot ids = the robots' namespaces) or
``discover_robots``, the learner subscribes to ``/<robot_id>/steps`` of each robot instead of
its own ``steps`` (discovery: every such topic of type StepRecord that appears, checked every
``discover_every_s``; robots join and leave while it runs), labels each robot's stream
separately and stores the robot id with each transition (:class:`robot_stack.rl.fleet.Fleet`),
and publishes the same PolicyWeights message to ``/<robot_id>/policy`` of every robot (a robot
that joins gets the latest at once) as well as on its own ``policy``. Each robot's stream has its
own order, duplicates and watermark (``run_dir/learner_state/<robot_id>.bin``), and each robot
gets its own StepAck on ``/<robot_id>/steps/ack``. The stats carry a
``robots`` object (per robot: records, env_steps, transitions, episodes, rates, active).

Files under ``run_dir``: ``checkpoint.pt`` (agent + counters), ``replay_online.log`` and
``replay_intervention.log`` (crash-safe append-only replay logs; damaged bytes go to
``*.quarantine``), ``learner_state.bin`` or ``learner_state/<robot_id>.bin`` per robot
(watermark, counters and the step waiting for its successor, rewritten after every record),
``policy_version`` (the last version handed out), ``policies/latest.pt``
and ``policies/best.pt`` (exports an actor can load with ``policy_file``; elsewhere with
``policies_dir``), ``tb/``.
Restarting the node on the same ``run_dir`` resumes training where it stopped.

Parameters: every field of :class:`LearnerNodeConfig` (nested ``sac.*``, ``sac.network.*``,
``labelling.*``); see config/learner.yaml.
"""
from __future__ import annotations

import secrets
import threading
from dataclasses import dataclass

from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.node import Node

from robot_stack.nodes import convert, topics
from robot_stack.nodes.inbox import Inbox
from robot_stack.nodes.params import declare_config, run_node
from robot_stack.nodes.robot_topics import RobotTopics
from robot_stack.rl.fleet import check_robot_id, robot_topic
from robot_stack.rl.learner import LearnerConfig, LearnerCore
from robot_stack.types.config import ConfigError
from robot_stack.types.records import MAX_ID
from robot_stack.types.records import PolicyWeights as PolicyWeightsData
from robot_stack.types.records import StepAck as StepAckData
from robot_stack.types.status import Health, LearnerStats


@dataclass
class LearnerNodeConfig(LearnerConfig):
    """Learner node parameters: the LearnerCore fields plus the node's own."""

    stats_every_s: float = 5.0
    """Period of the stats topic, log line and TensorBoard scalars, in s."""
    robots: tuple[str, ...] | None = None
    """Fleet: robot ids (their namespaces, e.g. arm1) whose /<id>/steps the learner subscribes
    to from the start; unset and discover_robots false: the learner's own steps topic."""
    discover_robots: bool = False
    """Fleet: also subscribe to every /<id>/steps StepRecord topic that appears in the graph."""
    discover_every_s: float = 2.0
    """How often the graph is searched for new robots, s."""

    @property
    def fleet(self) -> bool:
        return bool(self.robots) or self.discover_robots

    def validate(self) -> None:
        super().validate()
        if not self.discover_every_s > 0:
            raise ValueError(f"discover_every_s={self.discover_every_s} must be > 0")
        for rid in self.robots or ():
            check_robot_id(rid)
        if not self.stats_every_s > 0:
            raise ValueError(f"stats_every_s={self.stats_every_s} must be > 0")


class LearnerNode(Node):
    def __init__(self, **kwargs):
        kwargs.setdefault("namespace", topics.DEFAULT_NAMESPACE)
        super().__init__("learner", **kwargs)
        self.config: LearnerNodeConfig = declare_config(self, LearnerNodeConfig)
        self.policy_pub = topics.publisher(self, topics.POLICY)
        self.stats_pub = topics.publisher(self, topics.LEARNER_STATS)
        self.diagnostics_pub = topics.publisher(self, topics.DIAGNOSTICS)
        self.ack_pub = topics.publisher(self, topics.STEP_ACK)
        self.learner_id = secrets.randbits(63)
        """Random per process: the actor resends what it holds to a learner it has not seen."""
        self.rejected_steps = 0
        self._rejected_reported = 0
        self._warn_lock = threading.Lock()
        self._fleet_lock = threading.Lock()
        self._robot_policy_pubs: dict = {}
        self._robot_ack_pubs: dict = {}
        self._ack_robots: list[str] = []  # fleet: every robot that joined (non-fleet: the single robot "")
        self._last_weights = None
        self.core = LearnerCore(self.config, on_weights=self._publish_weights)
        try:
            self.core.open()
        except (ValueError, OSError) as e:
            raise ConfigError(f"learner cannot start: {e}") from None
        self._steps_group = MutuallyExclusiveCallbackGroup()
        self._stats_group = MutuallyExclusiveCallbackGroup()
        self.inbox = Inbox(self.get_logger())
        """Malformed step records are dropped and counted here, per topic."""
        if self.config.fleet:
            self.robot_topics = RobotTopics(
                self, topics.STEPS, self._on_robot_step,
                robots=self.config.robots or (), discover=self.config.discover_robots,
                discover_every_s=self.config.discover_every_s, callback_group=self._steps_group,
                on_join=self._on_robot_join, inbox=self.inbox)
        else:
            self.inbox.subscribe(self, topics.STEPS, self._on_step, callback_group=self._steps_group)
        self.create_timer(self.config.stats_every_s, self._on_stats, callback_group=self._stats_group)
        self.create_timer(1.0, self._publish_acks, callback_group=self._steps_group)
        self.core.start()
        self._publish_acks()
        spec = self.core.spec
        self.get_logger().info(
            f"learner in {self.core.run_dir}: cameras {list(spec.camera_names)}, proprio {len(spec.proprio_names)}, "
            f"action {list(spec.action.names)}; policy version {self.core.version}, "
            f"{len(self.core.online)} transitions in the buffer, {self.core.updates} updates so far")

    def _publish_weights(self, w: PolicyWeightsData) -> None:
        # Called from the training thread (and once from __init__); rclpy publish is thread-safe.
        if not self.context.ok():
            return  # shutting down: the export is on disk (policies/latest.pt), nobody to send it to
        w.stamp_s = self.get_clock().now().nanoseconds * 1e-9
        msg = convert.weights_to_msg(w)
        with self._fleet_lock:
            self._last_weights = msg
            pubs = list(self._robot_policy_pubs.values())
        self.policy_pub.publish(msg)
        for pub in pubs:  # the same message (version, bytes) to every robot
            pub.publish(msg)

    def _on_robot_join(self, robot_id: str) -> None:
        ack_topic = robot_topic(robot_id, topics.STEP_ACK.name)
        ack_pub = None if ack_topic == self.ack_pub.topic_name else topics.publisher_at(self, topics.STEP_ACK, ack_topic)
        with self._fleet_lock:
            if ack_pub is not None:
                self._robot_ack_pubs[robot_id] = ack_pub
            self._ack_robots.append(robot_id)
        self._publish_ack(robot_id)
        if robot_topic(robot_id, "policy") == self.policy_pub.topic_name:
            return  # that robot already reads the learner's own policy topic
        pub = topics.publisher_at(self, topics.POLICY, robot_topic(robot_id, topics.POLICY.name))
        with self._fleet_lock:
            self._robot_policy_pubs[robot_id] = pub
            last = self._last_weights
        if last is not None:
            pub.publish(last)

    def _on_robot_step(self, robot_id: str, msg) -> None:
        self._on_step(msg, robot_id)

    def _on_step(self, msg, robot_id: str = "") -> None:
        try:
            step = convert.step_from_msg(msg, self.core.spec)
        except ValueError:
            self.rejected_steps += 1
            self.core.counters["rejected_steps"] += 1
            if msg.episode_id <= MAX_ID:
                self.core.skip_step((int(msg.episode_id), int(msg.step_index)), robot_id)
                self._publish_ack(robot_id)
            raise  # the inbox logs it (throttled)
        try:
            self.core.add_step(step, robot_id)
        except OSError as e:  # e.g. disk full: not acknowledged, so the actor keeps it and resends it
            self.core.counters["unstored_steps"] += 1
            self.get_logger().error(f"cannot store step record in {self.core.run_dir}: {e}",
                                    throttle_duration_sec=5.0)
        self._publish_ack(robot_id)

    def _publish_ack(self, robot_id: str = "") -> None:
        """The watermark of ``robot_id``'s stream (every record up to it is on disk; its actor
        deletes those from its spool) on the robot's ``/<robot_id>/steps/ack``, or on the
        learner's own ``steps/ack`` for the single robot (or a fleet robot in the learner's
        namespace)."""
        if not self.context.ok():
            return
        with self._fleet_lock:
            pub = self._robot_ack_pubs.get(robot_id, self.ack_pub)
        intake = self.core.intakes.get(robot_id)  # read only: the steps callback makes intakes
        wm, c = (None, {}) if intake is None else (intake.watermark, dict(intake.counters))
        pub.publish(convert.ack_to_msg(StepAckData(
            learner_id=self.learner_id, watermark=wm, stored=c.get("accepted_steps", 0),
            duplicates=c.get("duplicate_steps", 0), early=c.get("early_steps", 0),
            stamp_s=self.get_clock().now().nanoseconds * 1e-9)))

    def _publish_acks(self) -> None:
        """Once a second (and at start): every robot's acknowledgement, so an actor that missed
        one, or starts, learns the watermark."""
        with self._fleet_lock:
            robots = list(self._ack_robots) if self.config.fleet else [""]
        for rid in robots:
            self._publish_ack(rid)

    def _on_stats(self) -> None:
        stats = self.core.stats()
        now = self.get_clock().now()
        self.stats_pub.publish(convert.learner_stats_to_msg(LearnerStats.from_dict(stats, now.nanoseconds * 1e-9)))
        rejected_now = self.rejected_steps - self._rejected_reported
        self._rejected_reported = self.rejected_steps
        health = Health(
            name=self.get_fully_qualified_name(), level=Health.WARN if rejected_now else Health.OK,
            message=f"{rejected_now} step records rejected in the last {self.config.stats_every_s:g} s"
            if rejected_now else "training",
            hardware_id=str(self.config.sac.device),
            values={k: str(stats[k]) for k in ("env_steps", "updates", "updates_per_s", "update_backlog",
                                                "policy_version") if k in stats})
        self.diagnostics_pub.publish(convert.diagnostics_to_msg([health], now.to_msg()))
        self.get_logger().info(
            f"steps {stats['env_steps']} | updates {stats['updates']} ({stats['updates_per_s']:.2f}/s, "
            f"backlog {stats['update_backlog']}) | v{stats['policy_version']} | episodes {stats['episodes']} "
            f"success {stats['success_rate']:.2f} intervention {stats['intervention_rate']:.2f}"
            + (f" | critic {stats['critic_loss']:.4f} actor {stats['actor_loss']:.4f}" if "critic_loss" in stats else ""))
        if self.config.fleet:
            self.get_logger().info(f"fleet: {stats['robots_active']} of {len(stats['robots'])} robots active | " + " | ".join(
                f"{rid}: {r['env_steps']} steps, {r['episodes']} episodes, success {r['success_rate']:.2f}, "
                f"intervention {r['intervention_rate']:.2f}{'' if r['active'] else ' (idle)'}"
                for rid, r in stats["robots"].items()))

    def close(self) -> None:
        """Stop training and write the final checkpoint."""
        self.core.close()


def main(args: list[str] | None = None) -> int:
    # Training runs in the core's own thread; the callbacks (store a step, log stats) are short,
    # so one executor thread keeps steps flowing. (rclpy's MultiThreadedExecutor busy-waits on
    # the ready entities of busy callback groups: it took CPU from training.)
    return run_node(LearnerNode, args)


if __name__ == "__main__":
    raise SystemExit(main())
