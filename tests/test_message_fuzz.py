"""Fuzzing every topic every node subscribes to: no message can crash a node.

Each node of the graph is built in-process (fake or direct-physics backends) and every one of
its subscription callbacks is fed random messages of the topic's type and mutations of a valid
message (one to three fields set to extreme integers, NaN/inf, JSON of the wrong shape or
nested thousands deep in strings such as PolicyWeights.spec_json, random bytes, sequences of
the wrong length;
:mod:`robot_stack.testing.message_fuzz`). Asserts, per topic: no exception leaves the callback,
every message the node's validation rejected was counted, and none of them failed in a way the
validation did not foresee (``inbox.errors``: a callback that raised something other than
ValueError would be a bug the safety net hid). The callbacks are called directly (not over DDS),
so the fuzzing is fast and deterministic (seeded).
"""
from __future__ import annotations

import io
import json
import os
import time

import numpy as np
import pytest

pytestmark = pytest.mark.ros

rclpy = pytest.importorskip("rclpy")
torch = pytest.importorskip("torch")
from geometry_msgs.msg import PoseStamped, TwistStamped  # noqa: E402
from rclpy.parameter import Parameter  # noqa: E402
from sensor_msgs.msg import Image, Joy  # noqa: E402
from std_msgs.msg import Bool, Float32  # noqa: E402

from robot_stack.actor.policy import random_policy  # noqa: E402
from robot_stack.msg import (  # noqa: E402
    EpisodeSummary,
    FrankaStatus,
    LearnerStats,
    OperatorCommand,
    PolicyWeights,
    StepAck,
    StepRecord,
)
from robot_stack.nodes import convert  # noqa: E402
from robot_stack.nodes.params import parameter_overrides  # noqa: E402
from robot_stack.testing.message_fuzz import MessageFuzzer  # noqa: E402
from robot_stack.types import records  # noqa: E402
from robot_stack.types import status  # noqa: E402
from robot_stack.types.spec import ActionSpec, CameraSpec, PolicySpec  # noqa: E402
from robot_stack.types.teleop import OperatorCommand as OperatorCommandData  # noqa: E402

SPEC = PolicySpec(cameras=(CameraSpec("front", 32, 32),), proprio_names=("tcp_x_m", "tcp_y_m", "tcp_z_m"),
                  action=ActionSpec(names=("vx", "vy", "vz")), control_rate_hz=10.0)
NETWORK = {"encoder_channels": 4, "latent_dim": 8, "hidden_dims": [16, 16], "augment_pad_px": 0}
N_RANDOM, N_MUTATED = 60, 140


def _export_json() -> str:
    return json.dumps({"format": "torch_state_dict", "policy_spec": SPEC.to_dict(), "network": NETWORK})


def seeds() -> dict[type, object]:
    """One valid message per type the nodes subscribe to (the mutation fuzzer's starting points)."""
    now = time.time()
    obs = {"front": np.full((32, 32, 3), 90, np.uint8), "proprio": np.array([0.4, 0.0, 0.3], np.float32)}
    a = np.array([0.1, -0.2, 0.3], np.float32)
    step = records.StepRecord(episode_id=7, step_index=3, obs=obs, action=a, policy_action=a, stamp_s=now,
                              proprio_names=SPEC.proprio_names)
    buf = io.BytesIO()
    torch.save(random_policy(SPEC, NETWORK, 0).net.state_dict(), buf)
    weights = records.PolicyWeights(version=5, learner_step=10, env_steps=100, spec_json=_export_json(), data=buf.getvalue())
    summary = records.EpisodeSummary(stamp_s=now, episode_id=3, steps=40, intervention_steps=5, interventions=1,
                                     intervention_rate=0.125, success=True, truncated=False, window=20,
                                     success_rate=0.5, intervention_rate_window=0.2, policy_version=4, evaluation=False)
    stats = status.LearnerStats(env_steps=100, updates=12, updates_per_s=2.5, episodes=3, success_rate=0.5,
                                intervention_rate=0.2, metrics={"critic_loss": 0.3},
                                robots=(status.RobotStats("arm1", records=60, env_steps=58, episodes=2, success_rate=0.5,
                                                          last_record_age_s=0.4, active=True),), stamp_s=now)
    return {
        StepRecord: convert.step_to_msg(step, "base"),
        PolicyWeights: convert.weights_to_msg(weights),
        EpisodeSummary: convert.summary_to_msg(summary),
        OperatorCommand: convert.operator_to_msg(OperatorCommandData(t=now, intervening=True, lin_m_s=np.array([0.02, 0, 0]))),
        TwistStamped: convert.twist_to_msg([0.01, 0, 0], [0, 0, 0], now, "base"),
        PoseStamped: convert.pose_to_msg([0.45, 0.0, 0.3], [1.0, 0.0, 0.0, 0.0], now, "base"),
        Image: convert.image_to_msg(obs["front"], now, "front_optical_frame"),
        Float32: convert.float32_to_msg(0.04),
        Bool: convert.bool_to_msg(True),
        Joy: convert.joy_to_msg([0.3, 0, 0, 0, 0, 0], [0, 1], now),
        LearnerStats: convert.learner_stats_to_msg(stats),
        StepAck: convert.ack_to_msg(records.StepAck(learner_id=2**62 + 1, watermark=(7, 3), stored=40, stamp_s=now)),
        FrankaStatus: convert.franka_status_to_msg(status.FrankaStatus("home_failed", "unreachable", "homing",
                                                                        {"rejected_nan": 2}, now)),
    }


def fuzz_callbacks(subscriptions, inbox, seed: int) -> dict[str, int]:
    """Feed each (topic, msg_type, callback) random and mutated messages; return the messages
    sent per topic. Fails on any exception leaving a callback or any unforeseen failure."""
    rng = np.random.default_rng(seed)
    fuzzer = MessageFuzzer(rng)
    valid = seeds()
    sent = {}
    for topic, msg_type, callback in subscriptions:
        msgs = [fuzzer.random(msg_type) for _ in range(N_RANDOM)]
        if msg_type in valid:
            msgs += [fuzzer.mutate(valid[msg_type]) for _ in range(N_MUTATED)]
        for msg in msgs:
            callback(msg)  # must never raise
        sent[topic] = len(msgs)
        assert not inbox.errors.get(topic), (
            f"{topic}: {inbox.errors[topic]} message(s) made the callback fail unforeseen; last: "
            f"{inbox.last_problem.get(topic)}")
    return sent


def node_subscriptions(node):
    return [(s.topic_name, s.msg_type, s.callback) for s in node.subscriptions]


def _destroy(node):
    close = getattr(node, "close", None)
    if callable(close):
        close()
    node.destroy_node()


def test_actor_survives_any_message_on_any_topic(ros_context):
    from robot_stack.nodes.actor_node import ActorNode

    node = ActorNode(context=ros_context, parameter_overrides=parameter_overrides({
        "spec_json": _export_json(), "reset_mode": "world", "wait_for_learner_s": 0.0, "control_rate_hz": 10.0}))
    try:
        subs = node_subscriptions(node)
        assert {t for t, _, _ in subs} >= {"/robot_stack/policy", "/robot_stack/operator", "/robot_stack/ee_pose",
                                          "/robot_stack/cameras/front/image_raw", "/robot_stack/sim/success",
                                          "/robot_stack/steps/ack"}
        fuzz_callbacks(subs, node.inbox, seed=1)
        assert node.inbox.dropped["/robot_stack/policy"] > 0 and node.rejected_weights > 0
        assert node._control_loop.thread.is_alive()
    finally:
        _destroy(node)


@pytest.mark.parametrize("robots", [None, ["arm1", "lab/arm2"]], ids=["single", "fleet"])
def test_learner_survives_any_step_record(ros_context, tmp_path, robots):
    """The learner's own steps topic, and a fleet learner's /<robot_id>/steps per robot."""
    from robot_stack.nodes.learner_node import LearnerNode

    params = {"run_dir": str(tmp_path), "spec_json": _export_json(), "tensorboard": False, "min_transitions": 100_000,
              "sac": {"num_critics": 2, "batch_size": 8}}
    if robots:
        params["robots"] = robots
    node = LearnerNode(context=ros_context, parameter_overrides=parameter_overrides(params))
    try:
        subs = node_subscriptions(node)
        topics_fuzzed = {t for t, _, _ in subs}
        want = {"/arm1/steps", "/lab/arm2/steps"} if robots else {"/robot_stack/steps"}
        assert want <= topics_fuzzed
        sent = fuzz_callbacks(subs, node.inbox, seed=2)
        for topic in want:
            assert node.inbox.dropped[topic] > sent[topic] // 2
        assert node.core._thread.is_alive()
    finally:
        _destroy(node)


def test_monitor_survives_any_summary_stats_or_status(ros_context, tmp_path):
    from robot_stack.nodes.monitor_node import MonitorNode

    node = MonitorNode(context=ros_context, parameter_overrides=[Parameter("out_dir", value=str(tmp_path))])
    try:
        subs = node_subscriptions(node)
        assert {t for t, _, _ in subs} == {"/robot_stack/episodes", "/robot_stack/learner/stats",
                                           "/robot_stack/franka/status"}
        fuzz_callbacks(subs, node.inbox, seed=3)
        on_stats = next(cb for t, _, cb in subs if t.endswith("stats"))
        good = seeds()[LearnerStats]
        dropped = node.inbox.dropped["/robot_stack/learner/stats"]
        for field, value in (("success_rate", float("nan")), ("success_rate", 1.5), ("updates_per_s", float("inf")),
                             ("updates", 2**64 - 1)):
            bad = convert.learner_stats_to_msg(convert.learner_stats_from_msg(good))
            setattr(bad, field, value)
            on_stats(bad)
        bad = convert.learner_stats_to_msg(convert.learner_stats_from_msg(good))
        bad.robots = [bad.robots[0], bad.robots[0]]  # a robot twice
        on_stats(bad)
        assert node.inbox.dropped["/robot_stack/learner/stats"] == dropped + 5
        on_stats(good)
        assert node.progress.learner_updates == 12 and set(node.fleet_stats) == {"arm1"}
    finally:
        _destroy(node)


def test_franka_node_survives_any_command(ros_context):
    from robot_stack.nodes.franka_node import FrankaNode

    node = FrankaNode(context=ros_context, parameter_overrides=parameter_overrides(
        {"robot.backend": "fake", "home_timeout_s": 0.5}))
    try:
        subs = node_subscriptions(node)
        assert {t for t, _, _ in subs} == {"/robot_stack/franka/cmd_twist", "/robot_stack/franka/gripper_cmd",
                                           "/robot_stack/operator"}
        fuzz_callbacks(subs, node.inbox, seed=4)
        assert not node.done.is_set() and node.fatal_error is None
    finally:
        _destroy(node)


def test_sim_world_survives_any_message(ros_context):
    from robot_stack.nodes.sim_world_node import SimWorldNode

    node = SimWorldNode(context=ros_context, parameter_overrides=[
        Parameter("physics", value="direct"), Parameter("hostname", value=f"127.0.0.{110 + os.getpid() % 10}"),
        Parameter("direct_port", value=17400 + os.getpid() % 100), Parameter("seed", value=1)])
    try:
        subs = node_subscriptions(node)
        assert {t for t, _, _ in subs} == {"/robot_stack/franka/cmd_twist"}
        fuzz_callbacks(subs, node.inbox, seed=5)
        assert node.inbox.dropped["/robot_stack/franka/cmd_twist"] > 0
    finally:
        _destroy(node)


def test_sim_operator_source_survives_any_joy():
    from robot_stack.nodes.sim_operator_source import JoyTopicSource

    source = JoyTopicSource()
    fuzz_callbacks([(source.topic, Joy, source.inbox.wrap(source.topic, source._on_joy))], source.inbox, seed=6)
    assert source.inbox.dropped[source.topic] > 0
