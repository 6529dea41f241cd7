"""A two-robot fleet over real DDS on loopback: one learner node, two robots' step streams.

Robot ``arm1`` is named in the learner's ``robots`` parameter; ``arm2`` joins later and is
found by discovery. Both robots use the same episode ids with different takeover steps and
their records interleave, so a learner that paired records across robots, or labelled them
as one stream, would put the -1 rewards in the wrong places. Each robot's actor side
subscribes to its own ``/<robot>/policy`` and applies the weights: both must end up with the
same trained version and act identically on the same observation. Each robot gets its own
acknowledgement on ``/<robot>/steps/ack``: the watermark of its own stream. Then arm2 leaves
(idle in the stats) and comes back: its records flow again without a learner restart.
"""
from __future__ import annotations

import time

import numpy as np
import pytest

pytestmark = [pytest.mark.ros, pytest.mark.timing]  # timing: nodes over DDS on loopback, training within a deadline

rclpy = pytest.importorskip("rclpy")
pytest.importorskip("torch")
from rclpy.node import Node  # noqa: E402

from robot_stack.msg import EpisodeSummary, PolicyWeights, StepAck, StepRecord  # noqa: E402
from robot_stack.nodes import convert, qos, topics  # noqa: E402
from robot_stack.nodes import learner_node as ln  # noqa: E402
from robot_stack.nodes import monitor_node as mn  # noqa: E402
from robot_stack.nodes.params import parameter_overrides  # noqa: E402
from robot_stack.rl.policy_io import load_policy_from_bytes  # noqa: E402
from robot_stack.types import records  # noqa: E402
from robot_stack.types.spec import ActionSpec, CameraSpec, PolicySpec  # noqa: E402

SPEC = PolicySpec(
    cameras=(CameraSpec("wrist", 32, 32),),
    proprio_names=("robot", "episode", "step"),
    action=ActionSpec(names=("vx", "vy", "vz")),
)
PARAMS = {"sac": {"num_critics": 2, "batch_size": 8,
                  "network": {"encoder_channels": 8, "latent_dim": 16, "hidden_dims": [32, 32], "augment_pad_px": 0}},
          "min_transitions": 8, "publish_every_updates": 5, "tensorboard": False, "stats_every_s": 0.5,
          "robots": ["arm1"], "discover_robots": True, "discover_every_s": 0.3, "robot_active_s": 2.0}
TAKEOVER = {"arm1": 2, "arm2": 4}  # each robot's operator takes over at this step of every episode
CODE = {"arm1": 1.0, "arm2": 2.0}
EPISODES, STEPS = 3, 6


def step_msgs(robot: str, ep_id: int):
    """One episode of ``robot``; the action's first entry says the robot, the last the step."""
    rng = np.random.default_rng(ep_id)
    out = []
    for i in range(STEPS + 1):
        last = i == STEPS
        a = np.zeros(0, np.float32) if last else np.array([CODE[robot] / 4, 0.0, i / 10], np.float32)
        obs = {"wrist": rng.integers(0, 255, (32, 32, 3), dtype=np.uint8),
               "proprio": np.array([CODE[robot], ep_id, i], np.float32)}
        s = records.StepRecord(episode_id=ep_id, step_index=i, obs=obs, stamp_s=100.0 + i, image_stamps_s=[100.0 + i],
                               proprio_names=SPEC.proprio_names, action=a, policy_action=a,
                               intervention=i == TAKEOVER[robot], is_first=i == 0, is_last=last)
        out.append(convert.step_to_msg(s, "base"))
    return out


def stats_dict(msg) -> dict:
    """A LearnerStats message as ``LearnerCore.stats()`` has it (per-robot rows under ``robots``)."""
    s = convert.learner_stats_from_msg(msg)
    return {**s.as_dict(), "robots": s.robots_dict()}


def robot_stat(msg, robot: str, key: str, default=None):
    """A per-robot figure of a learner stats message (``default`` before the robot's first record)."""
    return stats_dict(msg)["robots"].get(robot, {}).get(key, default)


class Robot:
    """A robot's actor side on the wire: publishes its steps, applies the policy it receives."""

    def __init__(self, ctx, robot: str):
        self.robot = robot
        self.node = Node("actor", namespace=robot, context=ctx)
        self.pub = self.node.create_publisher(StepRecord, "steps", qos.STEPS)
        self.episodes = self.node.create_publisher(EpisodeSummary, "episodes", qos.EPISODES)
        self.weights: list[PolicyWeights] = []
        self.node.create_subscription(PolicyWeights, "policy", self.weights.append, qos.POLICY)
        self.acks: list[StepAck] = []
        self.node.create_subscription(StepAck, "steps/ack", self.acks.append, qos.ACK)

    def wait_for_ack(self, watermark: tuple[int, int], timeout_s: float = 15.0) -> records.StepAck:
        """The first acknowledgement on this robot's steps/ack that covers ``watermark``."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            for m in list(self.acks):
                a = convert.ack_from_msg(m)
                if a.watermark is not None and a.watermark >= watermark:
                    return a
            time.sleep(0.05)
        last = convert.ack_from_msg(self.acks[-1]) if self.acks else None
        raise AssertionError(f"/{self.robot}/steps/ack never reached {watermark} (last: {last})")

    def wait_for_learner(self, timeout_s: float = 15.0) -> None:
        deadline = time.monotonic() + timeout_s
        while not self.pub.get_subscription_count():
            assert time.monotonic() < deadline, f"learner never subscribed to /{self.robot}/steps"
            time.sleep(0.05)

    def applied(self, version: int):
        """(sha256, policy) of the weights of ``version`` as this robot received them."""
        w = convert.weights_from_msg(next(m for m in self.weights if m.version == version))
        return w.sha256, load_policy_from_bytes(w.spec_json, w.data)


def test_two_robots_feed_one_learner_with_separate_labels_and_get_the_same_policy(ros_context, spin, collector,
                                                                                   tmp_path):
    learner = ln.LearnerNode(context=ros_context, parameter_overrides=parameter_overrides(
        {"run_dir": str(tmp_path), "spec_json": SPEC.to_json(), **PARAMS}))
    monitor = mn.MonitorNode(context=ros_context, parameter_overrides=parameter_overrides(
        {"out_dir": str(tmp_path / "monitor"), "discover_robots": True}))
    arm1 = Robot(ros_context, "arm1")
    probe = Node("probe", context=ros_context)
    stats = collector(probe, topics.LEARNER_STATS)
    executor = spin(learner, monitor, arm1.node, probe)
    later: list[Node] = []
    try:
        arm1.wait_for_learner()
        assert set(learner.robot_topics.subscriptions) == {"arm1"}
        arm2 = Robot(ros_context, "arm2")  # joins while the learner runs: found by discovery
        executor.add_node(arm2.node)
        arm2.wait_for_learner()
        for ep in range(EPISODES):  # the same episode ids on both robots, records interleaved
            for m1, m2 in zip(step_msgs("arm1", ep), step_msgs("arm2", ep)):
                arm1.pub.publish(m1)
                arm2.pub.publish(m2)
        total = 2 * EPISODES * STEPS
        st = stats_dict(stats.wait_for(1, timeout_s=30.0, where=lambda m: m.transitions >= total)[-1])
        assert st["transitions"] == total and st["dropped_steps"] == 0 and st["episodes"] == 2 * EPISODES
        for robot in ("arm1", "arm2"):
            r = st["robots"][robot]
            assert r["transitions"] == EPISODES * STEPS and r["episodes"] == EPISODES and r["active"]
            assert r["intervention_rate"] == pytest.approx(1 / STEPS)
        # Each robot is acknowledged on its own topic, up to its own last record; the same
        # episode ids on the other robot are no duplicates.
        ack1, ack2 = arm1.wait_for_ack((EPISODES - 1, STEPS)), arm2.wait_for_ack((EPISODES - 1, STEPS))
        assert ack1.watermark == ack2.watermark == (EPISODES - 1, STEPS) and ack1.learner_id == ack2.learner_id
        assert ack1.duplicates == ack2.duplicates == 0 and ack1.stored == ack2.stored == EPISODES * (STEPS + 1)
        for m in step_msgs("arm1", EPISODES - 1)[-3:]:  # arm1 resends its last records: duplicates for arm1 only
            arm1.pub.publish(m)
        deadline = time.monotonic() + 10
        while learner.core.intake("arm1").counters["duplicate_steps"] < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert learner.core.intake("arm1").counters["duplicate_steps"] == 3
        assert learner.core.intake("arm2").counters["duplicate_steps"] == 0

        # Per-robot labels: in each robot's stored transitions the -1 sits on the step before
        # that robot's takeover, and obs/next_obs are that robot's consecutive steps.
        buf = learner.core.online
        with learner.core._buf_lock:
            valid = np.flatnonzero(buf._valid)
            robots = np.array(buf.robots)[buf._robot[valid]]
            step = np.round(buf._action[valid, 2] * 10).astype(int)
            code = buf._action[valid, 0] * 4
            reward = buf._reward[valid]
            nxt = buf._proprio[buf._next[valid]]
            cur = buf._proprio[valid]
        assert buf.robot_counts() == {"arm1": EPISODES * STEPS, "arm2": EPISODES * STEPS}
        for robot in ("arm1", "arm2"):
            mine = robots == robot
            np.testing.assert_array_equal(code[mine], CODE[robot])
            np.testing.assert_array_equal(cur[mine, 0], CODE[robot])
            np.testing.assert_array_equal(nxt[mine, 0], CODE[robot])
            np.testing.assert_array_equal(nxt[mine, 2], cur[mine, 2] + 1)
            np.testing.assert_array_equal(reward[mine], np.where(step[mine] == TAKEOVER[robot] - 1, -1.0, 0.0))

        # One policy for the fleet: both robots apply the same trained weights (training goes on,
        # so compare the newest version both have received).
        deadline = time.monotonic() + 60
        common: set[int] = set()
        while time.monotonic() < deadline:
            common = {w.version for w in list(arm1.weights)} & {w.version for w in list(arm2.weights)}
            if max(common, default=0) >= 2:
                break
            time.sleep(0.2)
        v1 = max(common, default=0)
        assert v1 >= 2, f"no trained version reached both robots: {sorted(common)}"
        (sha1, p1), (sha2, p2) = arm1.applied(v1), arm2.applied(v1)
        assert sha1 == sha2
        obs = {"wrist": np.full((32, 32, 3), 90, np.uint8), "proprio": np.array([1.0, 0.0, 3.0], np.float32)}
        np.testing.assert_array_equal(p1.act(obs, deterministic=True), p2.act(obs, deterministic=True))

        # The monitor shows each robot's episodes and the fleet's totals from the learner stats.
        for robot, r in ((arm1, 1), (arm2, 2)):
            robot.episodes.publish(convert.summary_to_msg(records.EpisodeSummary(
                stamp_s=1.0, episode_id=0, steps=STEPS, intervention_steps=1, interventions=1,
                intervention_rate=1 / STEPS, success=r == 1, truncated=r != 1, window=20, success_rate=float(r == 1),
                intervention_rate_window=1 / STEPS, policy_version=v1, evaluation=False)))
        deadline = time.monotonic() + 10
        while set(monitor.robot_progress) != {"arm1", "arm2"} and time.monotonic() < deadline:
            time.sleep(0.1)
        assert {r: len(log.rows) for r, log in monitor.robot_progress.items()} == {"arm1": 1, "arm2": 1}
        assert (tmp_path / "monitor" / "arm2" / "progress.csv").exists()
        line = monitor.fleet_line()
        assert "/2 robots active" in line and f"arm1: {EPISODES * STEPS} steps, {EPISODES} ep" in line, line

        # arm2 leaves (idle in the stats), then comes back with a new episode: its records flow
        # again without a learner restart, and it gets the current policy at once.
        executor.remove_node(arm2.node)
        arm2.node.destroy_node()
        stats.wait_for(1, timeout_s=10.0, where=lambda m: robot_stat(m, "arm2", "active", True) is False)
        back = Robot(ros_context, "arm2")
        later.append(back.node)
        executor.add_node(back.node)
        back.wait_for_learner()
        for m in step_msgs("arm2", EPISODES):
            back.pub.publish(m)
        st = stats_dict(stats.wait_for(1, timeout_s=30.0, where=lambda m: robot_stat(m, "arm2", "transitions", 0)
                                       >= (EPISODES + 1) * STEPS)[-1])
        assert st["robots"]["arm2"]["active"] and st["robots"]["arm2"]["episodes"] == EPISODES + 1
        assert back.wait_for_ack((EPISODES, STEPS)).watermark == (EPISODES, STEPS)
        deadline = time.monotonic() + 10
        while not back.weights and time.monotonic() < deadline:
            time.sleep(0.05)
        assert back.weights and max(w.version for w in back.weights) >= v1
    finally:
        executor.shutdown(timeout_sec=2.0)
        learner.close()
        monitor.close()
        for n in (learner, monitor, arm1.node, probe, *later):
            n.destroy_node()
