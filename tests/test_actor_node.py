"""Actor node over real DDS on loopback: parameters, topics/QoS, arbitration, bad input."""
from __future__ import annotations

import hashlib
import io
import json
import time

import numpy as np
import pytest

pytestmark = pytest.mark.ros

rclpy = pytest.importorskip("rclpy")
torch = pytest.importorskip("torch")
from geometry_msgs.msg import PoseStamped, TwistStamped  # noqa: E402
from rclpy.node import Node  # noqa: E402
from rclpy.parameter import Parameter  # noqa: E402
from rclpy.qos import DurabilityPolicy, ReliabilityPolicy  # noqa: E402

from robot_stack.actor.policy import random_policy  # noqa: E402
from robot_stack.msg import EpisodeSummary, OperatorCommand, PolicyWeights, StepRecord  # noqa: E402
from robot_stack.nodes import actor_node as an  # noqa: E402
from robot_stack.nodes import convert, qos, topics  # noqa: E402
from robot_stack.types import records  # noqa: E402
from robot_stack.types.config import ConfigError  # noqa: E402
from robot_stack.types.spec import ActionSpec, CameraSpec, PolicySpec  # noqa: E402
from robot_stack.types.teleop import OperatorCommand as OperatorCommandData  # noqa: E402

SPEC = PolicySpec(
    cameras=(CameraSpec("wrist", 32, 32),),
    proprio_names=("tcp_x_m", "tcp_y_m", "tcp_z_m", "tcp_vx_m_s", "tcp_vy_m_s", "tcp_vz_m_s"),
    action=ActionSpec(names=("vx", "vy", "vz"), max_lin_speed_m_s=0.1),
    control_rate_hz=10.0,
)
NETWORK = {"encoder_channels": 8, "latent_dim": 16, "hidden_dims": [32, 32], "augment_pad_px": 0}


def export_json(spec=SPEC) -> str:
    return json.dumps({"format": "torch_state_dict", "policy_spec": spec.to_dict(), "network": NETWORK})


def weights_msg(version: int, seed: int = 1, spec=SPEC, corrupt: bool = False) -> PolicyWeights:
    policy = random_policy(spec, NETWORK, seed)
    buf = io.BytesIO()
    torch.save(policy.net.state_dict(), buf)
    data = buf.getvalue()
    w = records.PolicyWeights(version=version, learner_step=version * 10, env_steps=version * 100,
                              spec_json=export_json(spec), data=data)
    msg = convert.weights_to_msg(w)
    if corrupt:
        msg.sha256 = hashlib.sha256(b"something else").hexdigest()
    return msg


def make_actor(ctx, **params):
    base = {"spec_json": export_json(), "control_rate_hz": 10.0, "reset_mode": "none", "max_frame_age_s": 0.5,
            "max_state_age_s": 0.5}
    base.update(params)
    return an.ActorNode(context=ctx, parameter_overrides=[Parameter(k, value=v) for k, v in base.items()])


class Feeder:
    """Fake camera and robot-state publishers driven by a timer (fresh stamps each period)."""

    def __init__(self, ctx, rate_hz: float = 30.0, state: bool = True):
        self.state = state
        self.node = Node("fake_robot", context=ctx)
        self.img_pub = self.node.create_publisher(
            __import__("sensor_msgs.msg", fromlist=["Image"]).Image, topics.CAMERA_IMAGE.resolve(camera="wrist"), qos.SENSOR)
        self.pose_pub = self.node.create_publisher(PoseStamped, topics.EE_POSE.resolve(), qos.STATE)
        self.twist_pub = self.node.create_publisher(TwistStamped, topics.EE_TWIST.resolve(), qos.STATE)
        self.node.create_timer(1.0 / rate_hz, self.publish)

    def publish(self):
        now = self.node.get_clock().now().to_msg()
        t = convert.stamp_to_s(now)
        self.img_pub.publish(convert.image_to_msg(np.full((48, 48, 3), 100, np.uint8), t, "wrist_optical_frame"))
        if not self.state:
            return
        pose = PoseStamped()
        pose.header.stamp = now
        pose.pose.position.x, pose.pose.position.z = 0.4, 0.3
        pose.pose.orientation.w = 1.0
        self.pose_pub.publish(pose)
        tw = TwistStamped()
        tw.header.stamp = now
        self.twist_pub.publish(tw)


def operator_msg(intervening: bool, lin=(0.0, 0.0, 0.0), mark: int = 0) -> OperatorCommand:
    return convert.operator_to_msg(OperatorCommandData(t=time.time(), intervening=intervening,
                                                       lin_m_s=np.asarray(lin, float), episode_mark=mark))


# ----------------------------------------------------------------------------- parameters
def test_mistyped_parameter_fails_with_its_name(ros_context):
    with pytest.raises(ConfigError, match="control_rate_hz"):
        make_actor(ros_context, control_rate_hz="fast")


def test_misspelled_parameter_fails_with_suggestion(ros_context):
    with pytest.raises(ConfigError, match="unknown parameter 'max_frame_age'.*did you mean 'max_frame_age_s'"):
        make_actor(ros_context, max_frame_age=0.2)


@pytest.mark.parametrize("params,match", [
    ({"reset_mode": "teleport"}, "reset_mode"),
    ({"evaluation": True}, "policy_file"),
    ({"policy_file": "/nonexistent/policy.pt"}, "policy_file"),
    ({"spec_json": "{not json"}, "JSON"),
    ({"executor": "static"}, "executor"),
])
def test_invalid_values_fail_with_reason(ros_context, params, match):
    with pytest.raises(ConfigError, match=match):
        make_actor(ros_context, **params)


def test_topics_and_qos_as_documented(ros_context):
    node = make_actor(ros_context)
    try:
        def pub_qos(topic):
            (info,) = node.get_publishers_info_by_topic(topic)
            return info.qos_profile

        def sub_qos(topic):
            (info,) = node.get_subscriptions_info_by_topic(topic)
            return info.qos_profile

        assert pub_qos(topics.STEPS.resolve()).reliability == ReliabilityPolicy.RELIABLE
        assert node.steps_pub.qos_profile.depth >= 100  # the graph API does not report depth
        assert pub_qos(topics.CMD_TWIST.resolve()).reliability == ReliabilityPolicy.RELIABLE
        assert pub_qos(topics.EPISODES.resolve()).durability == DurabilityPolicy.TRANSIENT_LOCAL
        pol = sub_qos(topics.POLICY.resolve())
        assert pol.reliability == ReliabilityPolicy.RELIABLE and pol.durability == DurabilityPolicy.TRANSIENT_LOCAL
        assert sub_qos(topics.CAMERA_IMAGE.resolve(camera="wrist")).reliability == ReliabilityPolicy.BEST_EFFORT
        assert sub_qos(topics.OPERATOR.resolve()).reliability == ReliabilityPolicy.RELIABLE
        desc = node.describe_parameter("max_frame_age_s")
        assert "refused" in desc.description and desc.read_only
    finally:
        node.destroy_node()


# ----------------------------------------------------------------------------- behaviour
@pytest.fixture
def graph(ros_context, spin, collector):
    """A running actor (1 Hz ticks, so 'immediate' is distinguishable from 'next tick'),
    fake sensors and a test node collecting its outputs."""
    actor = make_actor(ros_context, control_rate_hz=1.0, max_frame_age_s=2.0, max_state_age_s=2.0,
                       operator_timeout_s=5.0)
    feeder = Feeder(ros_context)
    probe = Node("probe", context=ros_context)
    out = {
        "cmd": collector(probe, TwistStamped, topics.CMD_TWIST.resolve(), qos.COMMAND),
        "steps": collector(probe, StepRecord, topics.STEPS.resolve(), qos.STEPS),
        "episodes": collector(probe, EpisodeSummary, topics.EPISODES.resolve(), qos.EPISODES),
    }
    op_pub = probe.create_publisher(OperatorCommand, topics.OPERATOR.resolve(), qos.COMMAND)
    w_pub = probe.create_publisher(PolicyWeights, topics.POLICY.resolve(), qos.POLICY)
    executor = spin(actor, feeder.node, probe)
    yield actor, out, op_pub, w_pub, probe
    executor.shutdown(timeout_sec=2.0)  # no callback may run on a destroyed node
    for n in (actor, feeder.node, probe):
        n.destroy_node()


def _wait(cond, timeout_s=10.0):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.02)
    return False


@pytest.mark.timing  # nodes over DDS on loopback: discovery and executor scheduling within the waits
def test_operator_command_reaches_robot_before_next_tick_and_steps_flag_it(graph):
    actor, out, op_pub, _, _ = graph
    # Wait for the first policy step (tick at 1 Hz).
    out["cmd"].wait_for(1, timeout_s=10.0)
    assert _wait(lambda: actor.core.snapshot()["step_index"] >= 1)
    n = len(out["cmd"].messages)
    t0 = time.monotonic()
    op = operator_msg(True, lin=(0.0, 0.05, 0.0))
    op_pub.publish(op)
    got = out["cmd"].wait_for(1, timeout_s=5.0, start=n, where=lambda m: abs(m.twist.linear.y - 0.05) < 1e-6)
    latency = time.monotonic() - t0
    assert latency < 0.5, f"operator command took {latency:.3f} s (control period is 1 s)"
    assert got[0].header.frame_id == "base"
    # The forwarded command carries the operator command's stamp (its device read time).
    assert (got[0].header.stamp.sec, got[0].header.stamp.nanosec) == (op.header.stamp.sec, op.header.stamp.nanosec)
    # Keep intervening over the next full step: its record must carry intervention=True.
    out["steps"].wait_for(1, timeout_s=10.0, where=lambda m: m.intervention)
    step = [m for m in out["steps"].messages if m.intervention][0]
    np.testing.assert_allclose(step.action, [0.0, 0.5, 0.0], atol=0.3)
    assert len(step.images) == 1 and step.images[0].height == 32 and step.images[0].encoding == "rgb8"
    assert step.images[0].header.frame_id == "wrist_optical_frame"  # the camera's own frame
    assert list(step.proprio_names) == list(SPEC.proprio_names)
    op_pub.publish(operator_msg(False))
    # Releasing sends a hold right away.
    out["cmd"].wait_for(1, timeout_s=5.0, start=len(out["cmd"].messages) - 1,
                        where=lambda m: m.twist.linear.y == 0.0 and m.twist.linear.x == 0.0)


class NaNPolicy:
    spec = SPEC

    def act(self, obs, deterministic):
        return np.array([np.nan, 0.0, 0.0], np.float32)


@pytest.mark.timing  # nodes over DDS on loopback: discovery and executor scheduling within the waits
def test_nan_policy_action_is_never_sent(graph):
    actor, out, _, _, _ = graph
    assert _wait(lambda: actor.core is not None)
    actor.core.set_policy(NaNPolicy(), 1000)
    n = len(out["cmd"].messages)
    cmds = out["cmd"].wait_for(2, timeout_s=10.0, start=n)
    for m in cmds:
        v = [m.twist.linear.x, m.twist.linear.y, m.twist.linear.z, m.twist.angular.x]
        assert all(np.isfinite(v)) and not any(v), f"expected a hold, got {v}"
    assert actor.core.snapshot()["policy_errors"] >= 1


@pytest.mark.timing  # nodes over DDS on loopback: discovery and executor scheduling within the waits
def test_corrupted_weights_rejected_valid_weights_applied(graph):
    actor, out, _, w_pub, _ = graph
    assert _wait(lambda: actor.core is not None)
    w_pub.publish(weights_msg(5, corrupt=True))
    assert _wait(lambda: actor.rejected_weights == 1)
    assert actor.core.policy_version == 0
    w_pub.publish(weights_msg(6))
    assert _wait(lambda: actor.core.policy_version == 6), f"version is {actor.core.policy_version}"
    # Weights for another layout (two cameras) are rejected even with a valid digest.
    other = PolicySpec(cameras=(CameraSpec("wrist", 32, 32), CameraSpec("front", 32, 32)),
                       proprio_names=SPEC.proprio_names, action=SPEC.action)
    w_pub.publish(weights_msg(7, spec=other))
    assert _wait(lambda: actor.rejected_weights == 2)
    assert actor.core.policy_version == 6


@pytest.mark.timing  # nodes over DDS on loopback: discovery and executor scheduling within the waits
def test_keeps_last_policy_when_learner_is_gone(graph):
    actor, out, _, w_pub, probe = graph
    assert _wait(lambda: actor.core is not None)
    w_pub.publish(weights_msg(4))
    assert _wait(lambda: actor.core.policy_version == 4)
    assert probe.destroy_publisher(w_pub)  # the learner is gone
    n = len(out["steps"].messages)
    steps = out["steps"].wait_for(2, timeout_s=10.0, start=n, where=lambda m: not m.is_last)
    assert all(m.policy_version == 4 for m in steps)


@pytest.mark.timing  # nodes over DDS on loopback: discovery and executor scheduling within the waits
def test_waits_for_learner_weights_when_no_spec_given(ros_context, spin):
    actor = an.ActorNode(context=ros_context, parameter_overrides=[Parameter("reset_mode", value="none")])
    probe = Node("probe_w", context=ros_context)
    w_pub = probe.create_publisher(PolicyWeights, topics.POLICY.resolve(), qos.POLICY)
    try:
        assert actor.core is None
        w_pub.publish(weights_msg(3))  # transient local: delivered on match
        executor = spin(actor, probe)
        assert _wait(lambda: actor.core is not None and actor.core.policy_version == 3)
        assert actor.core.spec.camera_names == ("wrist",)
    finally:
        executor.shutdown(timeout_sec=2.0)
        actor.destroy_node()
        probe.destroy_node()


@pytest.mark.timing  # nodes over DDS on loopback: discovery and executor scheduling within the waits
def test_reset_service_call_starts_episode(ros_context, spin, collector):
    """reset_mode world: the actor calls episode/reset with the next episode id from its control
    thread and holds until the answer comes (the executor keeps running meanwhile)."""
    from rclpy.callback_groups import ReentrantCallbackGroup
    from rclpy.task import Future

    # No learner here and nothing subscribes to the step records: without wait_for_learner_s 0 the
    # actor would take its first step (the reset) only after the default 10 s wait, the same
    # as the wait below.
    actor = make_actor(ros_context, reset_mode="world", control_rate_hz=20.0, max_episode_steps=3,
                       wait_for_learner_s=0.0)
    feeder = Feeder(ros_context)
    probe = Node("probe_r", context=ros_context)
    episodes = collector(probe, EpisodeSummary, topics.EPISODES.resolve(), qos.EPISODES)
    requests: list[int] = []
    gate: list[Future] = []

    async def on_reset(request, response):
        requests.append(int(request.episode_id))
        await gate[0]  # the test opens it
        return convert.fill_result(response, True, "reset")

    probe.create_service(topics.EPISODE_RESET.srv_type, topics.EPISODE_RESET.resolve(), on_reset,
                         callback_group=ReentrantCallbackGroup())
    executor = spin(actor, feeder.node, probe)
    gate.append(Future(executor=executor))
    gate[0].add_done_callback(lambda _f: None)  # set_result from this thread then wakes the executor
    try:
        assert _wait(lambda: requests == [1], timeout_s=10.0), requests
        time.sleep(0.5)
        assert actor.core.phase.value == "resetting"  # holds until the reset is answered
        assert not episodes.messages
        gate[0].set_result(True)
        (ep,) = episodes.wait_for(1, timeout_s=10.0)
        assert ep.episode_id == 1 and ep.truncated and ep.steps == 3
        assert _wait(lambda: requests[:2] == [1, 2], timeout_s=5.0), requests
    finally:
        executor.shutdown(timeout_sec=2.0)
        for n in (actor, feeder.node, probe):
            n.destroy_node()


@pytest.mark.timing  # nodes over DDS on loopback: discovery and executor scheduling within the waits
def test_evaluation_mode_runs_policy_file_and_reports(ros_context, spin, tmp_path):
    from std_msgs.msg import Bool

    from robot_stack.types.config import from_dict
    from robot_stack.rl.agent import SACAgent, SACConfig
    from robot_stack.rl.policy_io import save_policy_file

    agent = SACAgent(SPEC, from_dict(SACConfig, {"num_critics": 2, "network": NETWORK}))
    path = tmp_path / "policy.pt"
    save_policy_file(agent, path, {"version": 42})
    report = tmp_path / "eval.json"
    actor = an.ActorNode(context=ros_context, parameter_overrides=[
        Parameter(k, value=v) for k, v in {
            "policy_file": str(path), "evaluation": True, "eval_episodes": 3, "eval_report_file": str(report),
            "reset_mode": "none", "control_rate_hz": 20.0, "max_episode_steps": 4, "max_frame_age_s": 0.5,
            "max_state_age_s": 0.5}.items()])
    feeder = Feeder(ros_context)
    probe = Node("probe_e", context=ros_context)
    success_pub = probe.create_publisher(Bool, topics.SIM_SUCCESS.resolve(), qos.STATE)
    state = {"n": 0}

    def success_tick():  # the sim's success test: true on every other episode's second step
        state["n"] += 1
        success_pub.publish(Bool(data=actor.core.episode_id % 2 == 1 and actor.core.snapshot()["step_index"] >= 1))

    probe.create_timer(0.02, success_tick)
    executor = spin(actor, feeder.node, probe)
    try:
        assert actor.core.config.deterministic and actor.core.policy_version == 42
        assert actor.done.wait(30.0), "evaluation did not finish"
        data = json.loads(report.read_text())
        assert data["episodes"] == 3
        assert data["episode_success"] == [True, False, True]
        assert data["success_rate"] == pytest.approx(2 / 3)
    finally:
        executor.shutdown(timeout_sec=2.0)
        for n in (actor, feeder.node, probe):
            n.destroy_node()


@pytest.mark.timing  # nodes over DDS on loopback: discovery and executor scheduling within the waits
def test_warm_start_file_is_replaced_by_any_learner_weights(ros_context, spin, tmp_path):
    from robot_stack.types.config import from_dict
    from robot_stack.rl.agent import SACAgent, SACConfig
    from robot_stack.rl.policy_io import save_policy_file

    path = tmp_path / "latest.pt"
    save_policy_file(SACAgent(SPEC, from_dict(SACConfig, {"num_critics": 2, "network": NETWORK})), path,
                     {"version": 500})
    actor = an.ActorNode(context=ros_context, parameter_overrides=[
        Parameter("policy_file", value=str(path)), Parameter("reset_mode", value="none")])
    probe = Node("probe_ws", context=ros_context)
    w_pub = probe.create_publisher(PolicyWeights, topics.POLICY.resolve(), qos.POLICY)
    executor = spin(actor, probe)
    try:
        assert actor.core.policy_version == 0 and actor.core.spec == SPEC
        w_pub.publish(weights_msg(1))  # a fresh learner starts counting at 1
        assert _wait(lambda: actor.core.policy_version == 1)
    finally:
        executor.shutdown(timeout_sec=2.0)
        actor.destroy_node()
        probe.destroy_node()


@pytest.mark.timing  # nodes over DDS on loopback: discovery and executor scheduling within the waits
def test_drives_the_franka_node_and_resets_through_its_homing(ros_context, spin, collector):
    """Actor + franka_node (fake backend): topics and types match, homing completes the
    reset, the proprio comes from the franka node's state and policy commands reach it."""
    from robot_stack.nodes.franka_node import FrankaNode
    from robot_stack.nodes.params import parameter_overrides

    franka = FrankaNode(context=ros_context, parameter_overrides=parameter_overrides({"robot.backend": "fake"}))
    actor = make_actor(ros_context, reset_mode="franka_home", control_rate_hz=10.0, max_episode_steps=5)
    feeder = Feeder(ros_context, state=False)  # the franka node publishes the robot state
    probe = Node("probe_f", context=ros_context)
    episodes = collector(probe, EpisodeSummary, topics.EPISODES.resolve(), qos.EPISODES)
    steps = collector(probe, StepRecord, topics.STEPS.resolve(), qos.STEPS)
    executor = spin(franka, actor, feeder.node, probe)
    try:
        (ep,) = episodes.wait_for(1, timeout_s=30.0)
        assert ep.steps == 5 and ep.truncated
        ep1 = steps.wait_for(6, timeout_s=5.0, where=lambda m: m.episode_id == ep.episode_id)
        x, y, z = ep1[0].proprio[:3]
        assert abs(x - 0.5) < 0.03 and abs(y) < 0.03 and abs(z - 0.35) < 0.03  # franka's home pose
        moved = np.linalg.norm(np.subtract(ep1[-1].proprio[:3], ep1[0].proprio[:3]))
        assert moved > 1e-3, "the policy's commands did not move the (fake) arm"
        assert franka.safety.counters.get("rejected_nan", 0) == 0
        episodes.wait_for(2, timeout_s=30.0)  # the second reset went through homing too
    finally:
        executor.shutdown(timeout_sec=2.0)
        franka.close()  # joins a homing thread that may still be running
        for n in (franka, actor, feeder.node, probe):
            n.destroy_node()


@pytest.mark.parametrize("control_thread", [True, False])
@pytest.mark.timing  # nodes over DDS on loopback and the control loop's wall-clock rate
def test_control_loop_ticks_at_its_rate_and_stamps_commands_with_the_tick(ros_context, spin, collector, control_thread):
    """Both control loops (deadline thread, rclpy timer) tick at control_rate_hz; a policy
    command's stamp is its step's stamp (the tick time), so a step can be traced to its command."""
    actor = make_actor(ros_context, control_rate_hz=10.0, control_thread=control_thread)
    assert (actor._control_loop_thread is not None) == control_thread and (actor.timer is None) == control_thread
    feeder = Feeder(ros_context)
    probe = Node("probe", context=ros_context)
    steps = collector(probe, StepRecord, topics.STEPS.resolve(), qos.STEPS)
    cmds = collector(probe, TwistStamped, topics.CMD_TWIST.resolve(), qos.COMMAND)
    executor = spin(actor, feeder.node, probe)
    try:
        got = steps.wait_for(12, timeout_s=20.0)
        t = np.array([convert.stamp_to_s(m.header.stamp) for m in got])
        # Loose bounds (shared CI machines): the mean period, not the jitter, is what is checked here.
        assert np.median(np.diff(t)) == pytest.approx(0.1, abs=0.03)
        cmd_stamps = {(m.header.stamp.sec, m.header.stamp.nanosec) for m in cmds.messages}
        assert (got[-2].header.stamp.sec, got[-2].header.stamp.nanosec) in cmd_stamps
        assert actor.steps_published >= len(got)
    finally:
        executor.shutdown(timeout_sec=2.0)
        actor.close()
        for n in (actor, feeder.node, probe):
            n.destroy_node()
    if control_thread:
        assert not actor._control_loop_thread.is_alive()  # close() stopped it


@pytest.mark.timing  # nodes over DDS on loopback: discovery and executor scheduling within the waits
def test_first_step_waits_for_a_learner_so_none_is_lost(ros_context, spin, collector):
    """wait_for_learner_s: without a subscriber to the step records the actor takes no step;
    once one subscribes, the first record it gets is episode 1, step 0 (nothing was published
    into the void). Without any learner the wait ends after wait_for_learner_s."""
    actor = make_actor(ros_context, wait_for_learner_s=60.0)
    feeder = Feeder(ros_context)
    probe = Node("probe", context=ros_context)
    spin(actor, feeder.node, probe)
    try:
        time.sleep(1.5)  # fresh sensors at 30 Hz, ticks at 10 Hz: it would have stepped by now
        assert actor.core is not None and actor.steps_published == 0
        steps = collector(probe, StepRecord, topics.STEPS.resolve(), qos.STEPS)
        first = steps.wait_for(3, timeout_s=15.0)[0]
        assert (first.episode_id, first.step_index) == (1, 0)
    finally:
        actor.close()

    lone = make_actor(ros_context, wait_for_learner_s=0.5)
    spin(lone)
    try:
        assert _wait(lambda: lone.steps_published > 0, 10.0), "the wait for a learner never ended"
    finally:
        lone.close()
