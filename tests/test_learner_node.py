"""Learner node over real DDS on loopback: parameters, topics/QoS, bad records, resume."""
from __future__ import annotations

import time

import numpy as np
import pytest

pytestmark = pytest.mark.ros

rclpy = pytest.importorskip("rclpy")
pytest.importorskip("torch")
from rclpy.node import Node  # noqa: E402
from rclpy.qos import DurabilityPolicy, ReliabilityPolicy  # noqa: E402

from robot_stack.msg import PolicyWeights, StepRecord  # noqa: E402
from robot_stack.nodes import convert, qos, topics  # noqa: E402
from robot_stack.nodes import learner_node as ln  # noqa: E402
from robot_stack.nodes.params import parameter_overrides  # noqa: E402
from robot_stack.types import records  # noqa: E402
from robot_stack.types.config import ConfigError  # noqa: E402
from robot_stack.types.spec import ActionSpec, CameraSpec, PolicySpec  # noqa: E402

SPEC = PolicySpec(
    cameras=(CameraSpec("wrist", 32, 32),),
    proprio_names=("tcp_x_m", "tcp_y_m", "tcp_z_m"),
    action=ActionSpec(names=("vx", "vy", "vz")),
)
SMALL = {"sac": {"num_critics": 2, "batch_size": 8,
                 "network": {"encoder_channels": 8, "latent_dim": 16, "hidden_dims": [32, 32], "augment_pad_px": 0}},
         "min_transitions": 8, "publish_every_updates": 5, "tensorboard": False, "stats_every_s": 0.5}


def make_learner(ctx, run_dir, **params):
    base = {"run_dir": str(run_dir), "spec_json": SPEC.to_json(), **SMALL, **params}
    return ln.LearnerNode(context=ctx, parameter_overrides=parameter_overrides(base))


def step_msgs(ep_id: int, n: int, intervene_at=(), size=32):
    rng = np.random.default_rng(ep_id)
    out = []
    for i in range(n + 1):
        last = i == n
        a = np.zeros(0, np.float32) if last else rng.uniform(-1, 1, 3).astype(np.float32)
        obs = {"wrist": rng.integers(0, 255, (size, size, 3), dtype=np.uint8),
               "proprio": rng.normal(size=3).astype(np.float32)}
        s = records.StepRecord(episode_id=ep_id, step_index=i, obs=obs, stamp_s=100.0 + i, image_stamps_s=[100.0 + i],
                               proprio_names=SPEC.proprio_names, action=a, policy_action=a,
                               intervention=i in intervene_at, is_first=i == 0, is_last=last, is_terminal=False)
        out.append(convert.step_to_msg(s, "base"))
    return out


def test_mistyped_and_unknown_parameters_fail_with_names(ros_context, tmp_path):
    with pytest.raises(ConfigError, match="sac.batch_size"):
        make_learner(ros_context, tmp_path, **{"sac.batch_size": "big"})
    with pytest.raises(ConfigError, match="unknown parameter 'min_transition'.*did you mean 'min_transitions'"):
        make_learner(ros_context, tmp_path, min_transition=5)
    with pytest.raises(ConfigError, match="no policy spec"):
        make_learner(ros_context, tmp_path / "fresh", spec_json="")


@pytest.mark.timing  # nodes over DDS on loopback: discovery and the training thread within the waits
def test_topics_qos_and_initial_weights(ros_context, spin, collector, tmp_path):
    node = make_learner(ros_context, tmp_path)
    probe = Node("probe", context=ros_context)
    try:
        (info,) = probe.get_publishers_info_by_topic(topics.POLICY.resolve())
        assert info.qos_profile.reliability == ReliabilityPolicy.RELIABLE
        assert info.qos_profile.durability == DurabilityPolicy.TRANSIENT_LOCAL
        (sub,) = probe.get_subscriptions_info_by_topic(topics.STEPS.resolve())
        assert sub.qos_profile.reliability == ReliabilityPolicy.RELIABLE
        # Transient local: a subscriber that joins after the start still gets version 1.
        weights = collector(probe, PolicyWeights, topics.POLICY.resolve(), qos.POLICY)
        executor = spin(node, probe)
        (w,) = weights.wait_for(1, timeout_s=10.0)
        assert w.version == 1 and convert.weights_from_msg(w).spec_json
        executor.shutdown(timeout_sec=2.0)
    finally:
        node.close()
        node.destroy_node()
        probe.destroy_node()


@pytest.mark.timing  # nodes over DDS on loopback: discovery and the training thread within the waits
def test_bad_records_are_dropped_good_ones_train(ros_context, spin, collector, tmp_path):
    node = make_learner(ros_context, tmp_path)
    probe = Node("probe", context=ros_context)
    pub = probe.create_publisher(StepRecord, topics.STEPS.resolve(), qos.STEPS)
    stats = collector(probe, topics.LEARNER_STATS)
    diagnostics = collector(probe, topics.DIAGNOSTICS)
    weights = collector(probe, PolicyWeights, topics.POLICY.resolve(), qos.POLICY)
    executor = spin(node, probe)
    try:
        deadline = time.monotonic() + 10
        while not pub.get_subscription_count() and time.monotonic() < deadline:
            time.sleep(0.05)
        for m in step_msgs(1, 4, size=48):  # wrong image size for the spec
            pub.publish(m)
        nan = step_msgs(2, 2)[0]
        nan.action = [float("nan"), 0.0, 0.0]
        pub.publish(nan)
        for ep in range(3, 6):
            for m in step_msgs(ep, 6, intervene_at=(3,)):
                pub.publish(m)
        s = stats.wait_for(1, timeout_s=30.0, where=lambda m: m.transitions >= 18)
        st = convert.learner_stats_from_msg(s[-1])
        assert st.rejected_steps == 6 and st.intervention_buffer == 3 and st.episodes == 3
        # /diagnostics warned about the rejected records
        diagnostics.wait_for(1, timeout_s=10.0, where=lambda m: any(
            h.name == "/robot_stack/learner" and h.level == h.WARN for h in convert.diagnostics_from_msg(m)))
        weights.wait_for(1, timeout_s=60.0, where=lambda m: m.version >= 2)
        # the latest losses travel as named metrics
        stats.wait_for(1, timeout_s=30.0, where=lambda m: "critic_loss" in m.metric_names)
    finally:
        executor.shutdown(timeout_sec=2.0)
        node.close()
        node.destroy_node()
        probe.destroy_node()


@pytest.mark.timing  # nodes over DDS on loopback: discovery and the training thread within the waits
def test_restart_resumes_from_checkpoint_and_buffer(ros_context, spin, collector, tmp_path):
    node = make_learner(ros_context, tmp_path)
    probe = Node("probe", context=ros_context)
    pub = probe.create_publisher(StepRecord, topics.STEPS.resolve(), qos.STEPS)
    executor = spin(node, probe)
    deadline = time.monotonic() + 10
    while not pub.get_subscription_count() and time.monotonic() < deadline:
        time.sleep(0.05)
    for ep in range(1, 4):
        for m in step_msgs(ep, 6):
            pub.publish(m)
    deadline = time.monotonic() + 60
    while (node.core.transitions < 18 or node.core.updates < 5) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert node.core.transitions == 18 and node.core.updates >= 5
    executor.remove_node(node)  # no callback may run on the closed node
    node.close()
    version, updates = node.core.version, node.core.updates
    node.destroy_node()

    again = make_learner(ros_context, tmp_path)
    weights = collector(probe, PolicyWeights, topics.POLICY.resolve(), qos.POLICY)
    spin(again)
    try:
        # The resumed learner trains at once (its buffer is full enough), so only the count it
        # started from is exact.
        assert len(again.core.online) == 18 and again.core.resumed_updates == updates
        assert again.core.updates >= updates
        got = weights.wait_for(1, timeout_s=10.0, where=lambda m: m.version == version + 1)
        assert got[0].learner_step >= updates
    finally:
        executor.shutdown(timeout_sec=2.0)
        again.close()
        again.destroy_node()
        probe.destroy_node()
