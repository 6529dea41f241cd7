"""Franka node over real DDS (loopback): parameters validated, state published, moves under
TwistStamped, watchdog stop, NaN rejection, home, gripper, recovery limit, clean shutdown.
The fake backend runs in-process; the last test drives franky-sim through the franky backend."""
from __future__ import annotations

import contextlib
import time

import numpy as np
import pytest

pytest.importorskip("rclpy")
pytestmark = pytest.mark.ros

from geometry_msgs.msg import TwistStamped  # noqa: E402
from rclpy.node import Node  # noqa: E402
from std_msgs.msg import Float32  # noqa: E402
from std_srvs.srv import Trigger  # noqa: E402

from robot_stack.devices.franka.base import FrankaConfig
from robot_stack.devices.franka.fake import FakeRobot  # noqa: E402
from robot_stack.nodes import convert, topics  # noqa: E402
from robot_stack.types.config import ConfigError  # noqa: E402
from robot_stack.nodes.franka_node import FrankaNode  # noqa: E402
from robot_stack.nodes.params import parameter_overrides  # noqa: E402
from ros_streams import OperatorStreamer, TwistStreamer, call, watch_franka  # noqa: E402


def make_node(ctx, robot=None, **params):
    params.setdefault("robot.backend", "fake")
    return FrankaNode(robot=robot, context=ctx, parameter_overrides=parameter_overrides(params))


def events(status_collector, start=0):
    return [m.event for m in status_collector.messages[start:]]


@pytest.mark.parametrize("params,match", [
    ({"control_rate_hz": "fast"}, "control_rate_hz"),
    ({"safety.max_lin_speed": 0.1}, "did you mean 'safety.max_lin_speed_m_s'"),
    ({"safety.max_lin_speed_m_s": -1.0}, "max_lin_speed_m_s"),
    ({"robot.backend": "ros1"}, "backend"),
    ({"home_xyz_m": [2.0, 0.0, 0.3]}, "home_xyz_m"),
    ({"safety.workspace_file": "/nonexistent/workspace.yaml"}, "workspace_file"),
    ({"safety.workspace_frame": "world"}, "frame 'world'"),
])
def test_bad_parameters_fail_at_startup_with_their_name(ros_context, params, match):
    with pytest.raises(ConfigError, match=match):
        make_node(ros_context, **params)


def test_shipped_params_file_loads(ros_context, tmp_path):
    """config/franka.yaml is accepted as is (backend switched to fake: no robot here)."""
    import pathlib

    import yaml

    from robot_stack.types.config import from_dict
    from robot_stack.nodes.franka_node import FrankaNodeConfig

    data = yaml.safe_load((pathlib.Path(__file__).parents[1] / "config" / "franka.yaml").read_text())
    params = data["/**/franka"]["ros__parameters"]
    cfg = from_dict(FrankaNodeConfig, params)
    assert cfg.robot.backend == "franky"
    params["robot"]["backend"] = "fake"
    node = FrankaNode(context=ros_context, parameter_overrides=parameter_overrides(params))
    try:
        assert node.config.control_rate_hz == cfg.control_rate_hz
    finally:
        node.close()
        node.destroy_node()


@pytest.mark.timing  # nodes over DDS on loopback and the node's control loop in real time, within the waits
def test_publishes_state_moves_and_watchdog_stops(ros_context, spin, collector):
    node = make_node(ros_context, **{"safety.watchdog_timeout_s": 0.2})
    probe = Node("probe", context=ros_context)
    status = collector(probe, topics.FRANKA_STATUS)
    joints = collector(probe, topics.JOINT_STATES)
    poses = collector(probe, topics.EE_POSE)
    twists = collector(probe, topics.EE_TWIST)
    widths = collector(probe, topics.GRIPPER_WIDTH)
    diagnostics = collector(probe, topics.DIAGNOSTICS)
    spin(node, probe)
    try:
        status.wait_for(1, where=lambda m: m.event == "ready")
        (health,) = convert.diagnostics_from_msg(diagnostics.wait_for(1, timeout_s=5.0)[0])
        assert health.name == "/robot_stack/franka" and health.level == health.OK, health
        assert health.values["mode"] == "streaming"
        js = joints.wait_for(3)[-1]
        assert list(js.name) == [f"fr3_joint{i}" for i in range(1, 8)] and len(js.position) == 7
        p0 = poses.wait_for(3)[-1]
        assert p0.header.frame_id == "base"
        widths.wait_for(1)
        n_poses, n_widths = len(poses.messages), len(widths.messages)
        poses.wait_for(n_poses + 20)
        new_widths = len(widths.messages) - n_widths  # one with every 5th state (gripper_publish_every)
        assert 2 <= new_widths <= 6, f"{new_widths} gripper widths with 20 EE poses"
        x0 = poses.messages[-1].pose.position.x

        n_before = len(poses.messages)
        with TwistStreamer(probe, (0.05, 0.0, 0.0)):
            poses.wait_for(1, timeout_s=5.0, start=n_before,
                           where=lambda m: m.pose.position.x > x0 + 0.03)
        # stream cut: watchdog event, then the arm comes to rest
        n_status = len(status.messages)
        status.wait_for(1, timeout_s=3.0, start=n_status, where=lambda m: m.event == "watchdog_stop")
        n_tw = len(twists.messages)
        twists.wait_for(1, timeout_s=3.0, start=n_tw,
                        where=lambda m: abs(m.twist.linear.x) < 1e-4)
        # /diagnostics carries the safety counters (once a second)
        diagnostics.wait_for(1, timeout_s=3.0, start=len(diagnostics.messages),
                             where=lambda m: int(convert.diagnostics_from_msg(m)[0].values.get("watchdog_stop", 0)) >= 1)
        x_rest = poses.messages[-1].pose.position.x
        n_pose = len(poses.messages)
        poses.wait_for(10, timeout_s=3.0, start=n_pose)
        assert abs(poses.messages[-1].pose.position.x - x_rest) < 1e-3
    finally:
        node.close()
        assert not node.robot.connected  # close() stopped and released the robot


@pytest.mark.timing  # nodes over DDS on loopback and the node's control loop in real time, within the waits
def test_nan_frame_home_and_gripper(ros_context, spin, collector):
    node = make_node(ros_context, home_xyz_m=[0.45, 0.1, 0.3], home_randomize_xyz_m=[0.0, 0.0, 0.0])
    probe, status, poses, widths = watch_franka(ros_context, spin, collector, node, gripper=True)
    try:
        status.wait_for(1, where=lambda m: m.event == "ready")
        with TwistStreamer(probe, (float("nan"), 0.0, 0.0), rate_hz=10.0):
            status.wait_for(1, timeout_s=5.0, where=lambda m: m.event == "rejected_nan")
        with TwistStreamer(probe, (0.01, 0.0, 0.0), frame="camera", rate_hz=10.0):
            status.wait_for(1, timeout_s=5.0, where=lambda m: m.event == "rejected_frame")

        answer = call(probe, topics.FRANKA_HOME, Trigger.Request())  # answered when the move has ended
        assert answer.success, answer.message
        assert "home_done" in events(status)
        n = len(poses.messages)
        p = poses.wait_for(1, timeout_s=3.0, start=n)[0].pose.position
        assert np.allclose([p.x, p.y, p.z], [0.45, 0.1, 0.3], atol=1e-3)

        answer = call(probe, topics.FRANKA_HOME_TO, convert.home_to_request((0.55, -0.1, 0.35), (1.0, 0, 0, 0), 0.0, "base"))
        assert answer.success, answer.message
        p = poses.wait_for(1, timeout_s=3.0, start=len(poses.messages))[0].pose.position
        assert np.allclose([p.x, p.y, p.z], [0.55, -0.1, 0.35], atol=1e-3)
        answer = call(probe, topics.FRANKA_HOME_TO, convert.home_to_request((2.0, 0.0, 0.3), (1.0, 0, 0, 0), 0.0, "base"))
        assert not answer.success and "outside" in answer.message  # outside the box: refused
        failed = status.wait_for(1, timeout_s=5.0, where=lambda m: m.event == "home_failed")
        assert "outside" in failed[0].detail

        grip = probe.create_publisher(Float32, topics.GRIPPER_CMD.resolve(), topics.GRIPPER_CMD.profile)
        grip.publish(Float32(data=0.03))
        widths.wait_for(1, timeout_s=5.0, where=lambda m: abs(m.data - 0.03) < 1e-6)
        grip.publish(Float32(data=0.0))  # at/below gripper_grasp_below_m: grasp
        widths.wait_for(1, timeout_s=5.0, where=lambda m: m.data == 0.0)
    finally:
        node.close()


@pytest.mark.timing  # nodes over DDS on loopback and the node's control loop in real time, within the waits
def test_recovery_retry_limit_then_gives_up(ros_context, spin, collector):
    robot = FakeRobot(FrankaConfig())
    node = make_node(ros_context, robot=robot, **{"safety.max_recovery_attempts": 2})
    probe = Node("probe", context=ros_context)
    status = collector(probe, topics.FRANKA_STATUS)
    spin(node, probe)
    try:
        status.wait_for(1, where=lambda m: m.event == "ready")
        robot.inject_error(100)  # every command fails from now on
        with TwistStreamer(probe, (0.02, 0.0, 0.0)):
            status.wait_for(1, timeout_s=5.0, where=lambda m: m.event == "recovery_gave_up")
        ev = events(status)
        assert ev.count("recovering") == 2 and robot.recover_calls == 2
        assert ev.count("error") == 3
        last = status.messages[-1]
        assert last.mode == "gave_up"
        n_sent = len(robot.sent)
        time.sleep(0.3)  # give the control loop time to (wrongly) command the robot again
        assert len(robot.sent) == n_sent
    finally:
        node.close()


@pytest.mark.timing  # nodes over DDS on loopback and the node's control loop in real time, within the waits
def test_after_giving_up_state_and_needs_attention_keep_flowing(ros_context, spin, collector):
    robot = FakeRobot(FrankaConfig())
    node = make_node(ros_context, robot=robot, **{"safety.max_recovery_attempts": 1})
    probe, status, poses = watch_franka(ros_context, spin, collector, node)
    try:
        status.wait_for(1, where=lambda m: m.event == "ready")
        robot.inject_error(100)
        with TwistStreamer(probe, (0.02, 0.0, 0.0)):
            status.wait_for(1, timeout_s=5.0, where=lambda m: m.event == "recovery_gave_up")
        n_poses = len(poses.messages)
        status.wait_for(2, timeout_s=5.0, where=lambda m: m.event == "needs_attention")
        assert len(poses.messages) > n_poses + 20  # 50 Hz state for more than a second
        last = status.messages[-1]
        assert last.mode == "gave_up" and "NEEDS ATTENTION" in last.detail
        with OperatorStreamer(probe, (0.02, 0.0, 0.0)):  # no operator fallback either
            time.sleep(0.5)
        assert "operator_fallback" not in events(status)
    finally:
        node.close()


class ReflexDuringHome(FakeRobot):
    """The first home move ends in a reflex, as a contact would end it."""

    def __init__(self, config):
        super().__init__(config)
        self.home_calls = 0

    def move_home(self, T_base_ee, timeout_s):
        self.home_calls += 1
        if self.home_calls == 1:
            from robot_stack.devices.franka.base import RobotError

            self.in_error = True
            raise RobotError("fake reflex during the home move")
        return super().move_home(T_base_ee, timeout_s)


@pytest.mark.timing  # nodes over DDS on loopback and the node's control loop in real time, within the waits
def test_home_move_is_retried_after_one_recovery(ros_context, spin, collector):
    robot = ReflexDuringHome(FrankaConfig())
    node = make_node(ros_context, robot=robot)
    probe, status, poses = watch_franka(ros_context, spin, collector, node)
    try:
        status.wait_for(1, where=lambda m: m.event == "ready")
        answer = call(probe, topics.FRANKA_HOME, Trigger.Request())  # answered once the retried move ended
        assert answer.success, answer.message
        # The status events travel on their own topic: the answer may arrive before the last ones.
        status.wait_for(1, where=lambda m: m.event == "home_done")
        ev = events(status)
        assert ev.count("recovering") == 1 and robot.recover_calls == 1 and robot.home_calls == 2
        assert "home_retry" in ev
    finally:
        node.close()


class LinkDropRobot(FakeRobot):
    """A fake robot whose link drops: state reads fail until it is reconnected."""

    def __init__(self, config):
        super().__init__(config)
        self.link_up = True
        self.connects = 0

    def connect(self):
        super().connect()
        self.connects += 1
        self.link_up = True

    def read_state(self):
        if not self.link_up:
            from robot_stack.devices.franka.base import RobotConnectionError
            raise RobotConnectionError("read state: Net Exception")
        return super().read_state()


@pytest.mark.timing  # nodes over DDS on loopback and the node's control loop in real time, within the waits
def test_lost_link_is_reported_then_reconnected(ros_context, spin, collector):
    robot = LinkDropRobot(FrankaConfig())
    node = make_node(ros_context, robot=robot, reconnect_period_s=0.3)
    probe = Node("probe", context=ros_context)
    status = collector(probe, topics.FRANKA_STATUS)
    spin(node, probe)
    try:
        status.wait_for(1, where=lambda m: m.event == "ready")
        assert robot.connects == 1
        robot.link_up = False
        lost = status.wait_for(1, timeout_s=5.0, where=lambda m: "connection lost" in m.detail)
        assert lost[-1].event == "error"
        status.wait_for(1, timeout_s=5.0, where=lambda m: m.event == "reconnected")
        assert robot.connects == 2
        ev = events(status)
        # Reported once, not once per control tick.
        assert sum("connection lost" in m.detail for m in status.messages) == 1, ev
    finally:
        node.close()


@pytest.mark.timing  # nodes over DDS on loopback and the node's control loop in real time, within the waits
def test_franky_backend_node_moves_franky_sim(ros_context, spin, collector):
    """The node with the franky backend against franky-sim: the real code path minus the robot."""
    pytest.importorskip("franky")
    from robot_stack.sim.franky_world import WorldProcess

    host = "127.0.0.43"
    with WorldProcess(host, task="none"):
        node = make_node(ros_context, **{"robot.backend": "franky", "robot.robot_ip": host})
        probe, status, poses = watch_franka(ros_context, spin, collector, node)
        try:
            status.wait_for(1, where=lambda m: m.event == "ready")
            z0 = poses.wait_for(3, timeout_s=10.0)[-1].pose.position.z
            n = len(poses.messages)
            with TwistStreamer(probe, (0.0, 0.0, -0.05)):
                poses.wait_for(1, timeout_s=10.0, start=n, where=lambda m: m.pose.position.z < z0 - 0.02)
            status.wait_for(1, timeout_s=5.0, where=lambda m: m.event == "watchdog_stop")
            answer = call(probe, topics.FRANKA_HOME, Trigger.Request(), timeout_s=30.0)
            assert answer.success, answer.message
            assert "home_done" in events(status)
        finally:
            node.close()


def test_exception_in_control_loop_stops_the_robot(ros_context):
    """A bug in a control tick stops and releases the arm at once (no executor or main() needed)
    and marks the node done with the error, so main() exits non-zero."""
    robot = FakeRobot(FrankaConfig())
    node = make_node(ros_context, robot=robot)
    ticks = [0]
    original = node.safety.update

    def failing_update(*args, **kwargs):
        ticks[0] += 1
        if ticks[0] > 30:
            raise RuntimeError("injected bug")
        node.safety.submit([0.05, 0.0, 0.0], [0.0, 0.0, 0.0], time.monotonic())  # arm moving when it breaks
        return original(*args, **kwargs)

    node.safety.update = failing_update
    try:
        assert node.done.wait(timeout=10.0), "the control loop's failure did not end the node"
        assert "injected bug" in node.fatal_error
        assert ticks[0] == 31
        assert robot.lin[0] > 0.01  # it was moving
        assert not robot.connected  # stopped and released by the failing loop itself
        assert not np.any(robot.cmd.lin)  # last command to the robot: stop
    finally:
        node.close()


@pytest.mark.parametrize("send_on_command,trigger", [(True, "command"), (False, "tick")])
@pytest.mark.timing  # nodes over DDS on loopback and the node's control loop in real time, within the waits
def test_command_sent_at_once_and_reported_with_debug_latency(ros_context, spin, collector, send_on_command, trigger):
    """send_on_command: a new command reaches the robot from its own callback, not the next
    control tick (1 Hz here, so the two are told apart); debug_latency reports that send with
    the command's stamp."""
    robot = FakeRobot(FrankaConfig(segment_hold_s=2.5))
    node = make_node(ros_context, robot=robot, control_rate_hz=1.0, debug_latency=True, send_on_command=send_on_command,
                     **{"robot.segment_hold_s": 2.5, "safety.watchdog_timeout_s": 3.0})
    probe = Node("probe", context=ros_context)
    sent = collector(probe, topics.FRANKA_DEBUG_SENT)
    poses = collector(probe, topics.EE_POSE)
    pub = probe.create_publisher(TwistStamped, topics.CMD_TWIST.resolve(), topics.CMD_TWIST.profile)
    spin(node, probe)
    try:
        poses.wait_for(1, timeout_s=10.0)  # a control tick has read the state
        deadline = time.monotonic() + 10.0
        while pub.get_subscription_count() < 1 and time.monotonic() < deadline:
            time.sleep(0.05)  # discovery
        msg = TwistStamped()
        msg.header.stamp = probe.get_clock().now().to_msg()
        msg.header.frame_id = "base"
        msg.twist.linear.x = 0.05
        n_sent = len(robot.sent)
        pub.publish(msg)
        ev = convert.command_sent_from_msg(sent.wait_for(1, timeout_s=5.0)[0])
        assert ev.trigger == trigger
        assert ev.command_stamp_s == pytest.approx(msg.header.stamp.sec + msg.header.stamp.nanosec * 1e-9, abs=1e-6)
        assert ev.sent_s >= ev.command_stamp_s
        assert any(lin[0] > 0 for _, lin, _ in robot.sent[n_sent:])  # ramped by the safety filter, but moving
    finally:
        node.close()


@contextlib.contextmanager
def node_without_actor(ros_context, spin, collector, **params):
    """A franka node with no actor: (probe, status collector, pose collector, start position)."""
    node = make_node(ros_context, **params)
    probe, status, poses = watch_franka(ros_context, spin, collector, node)
    try:
        status.wait_for(1, where=lambda m: m.event == "ready")
        yield probe, status, poses, poses.wait_for(3)[-1].pose.position
    finally:
        node.close()
        node.destroy_node()
        probe.destroy_node()


@pytest.mark.timing  # nodes over DDS on loopback and the node's control loop in real time, within the waits
def test_operator_drives_directly_only_while_no_actor_streams(ros_context, spin, collector):
    """operator_fallback: with no velocity commands (no actor) an intervening operator moves the
    arm through the safety filter; while commands stream, the operator topic is ignored (the
    actor arbitrates); letting go ends the fallback."""
    with node_without_actor(ros_context, spin, collector, **{"safety.watchdog_timeout_s": 0.2,
                                                             "safety.max_lin_speed_m_s": 0.05}) as (probe, status, poses, p0):
        # No actor: the operator's +y (above the speed limit: clipped to 0.05 m/s) moves the arm.
        n = len(poses.messages)
        with OperatorStreamer(probe, (0.0, 0.2, 0.0)):
            status.wait_for(1, timeout_s=5.0, where=lambda m: m.event == "operator_fallback")
            poses.wait_for(1, timeout_s=5.0, start=n, where=lambda m: m.pose.position.y > p0.y + 0.02)
        assert "rejected_out_of_range" not in events(status)
        # Let go: not intervening -> fallback ends, the arm comes to rest.
        with OperatorStreamer(probe, (0.0, 0.0, 0.0), intervening=False):
            status.wait_for(1, timeout_s=5.0, where=lambda m: m.event == "operator_fallback_end")
        # An actor streams +x: the operator's -x is ignored.
        p1 = poses.messages[-1].pose.position
        n = len(poses.messages)
        n_status = len(status.messages)
        with TwistStreamer(probe, (0.03, 0.0, 0.0)), OperatorStreamer(probe, (-0.05, 0.0, 0.0)):
            poses.wait_for(1, timeout_s=5.0, start=n, where=lambda m: m.pose.position.x > p1.x + 0.02)
        assert "operator_fallback" not in events(status, n_status)


@pytest.mark.timing  # nodes over DDS on loopback and the node's control loop in real time, within the waits
def test_operator_fallback_can_be_switched_off(ros_context, spin, collector):
    with node_without_actor(ros_context, spin, collector, operator_fallback=False) as (probe, status, poses, p0):
        n = len(poses.messages)
        with OperatorStreamer(probe, (0.0, 0.05, 0.0)):
            poses.wait_for(40, timeout_s=5.0, start=n)  # 0.8 s of state at 50 Hz
        assert abs(poses.messages[-1].pose.position.y - p0.y) < 1e-4
        assert "operator_fallback" not in events(status)


# ----------------------------------------------------------------------------- fault reporting and fallback
@pytest.mark.timing  # nodes over DDS on loopback and the node's control loop in real time, within the waits
def test_each_rejected_command_is_reported_once_and_throttled(ros_context, spin, collector):
    """50 NaN commands in 1 s: one rejected_nan report per status_throttle_s (not two per
    command), the next one counting those left out; the safety counter still counts all."""
    node = make_node(ros_context, status_throttle_s=1.0)
    probe, status, _ = watch_franka(ros_context, spin, collector, node)
    try:
        status.wait_for(1, where=lambda m: m.event == "ready")
        n0 = len(status.messages)
        with TwistStreamer(probe, (float("nan"), 0.0, 0.0), rate_hz=50.0):
            deadline = time.monotonic() + 10.0
            while node.safety.counters["rejected_nan"] < 50 and time.monotonic() < deadline:
                time.sleep(0.02)
        time.sleep(1.2)  # one more throttle period: a trailing report may come
        rejected = [m for m in status.messages[n0:] if m.event == "rejected_nan"]
        n_cmds = node.safety.counters["rejected_nan"]
        assert n_cmds >= 50
        assert 1 <= len(rejected) <= 2 + n_cmds // 50, f"{len(rejected)} reports for {n_cmds} rejected commands"
        assert len(rejected) == 1 or "more in the last" in rejected[-1].detail
    finally:
        node.close()


def stamp_s(msg) -> float:
    return msg.header.stamp.sec + msg.header.stamp.nanosec * 1e-9


class LinkDropSendRobot(LinkDropRobot):
    """Sends fail too while the link is down (as franky's do)."""

    def send_twist(self, lin_m_s, ang_rad_s):
        if not self.link_up:
            from robot_stack.devices.franka.base import RobotConnectionError
            raise RobotConnectionError("send: Net Exception")
        return super().send_twist(lin_m_s, ang_rad_s)


@pytest.mark.timing  # nodes over DDS on loopback and the node's control loop in real time, within the waits
def test_a_lost_link_is_reported_once_while_commands_keep_coming(ros_context, spin, collector):
    robot = LinkDropSendRobot(FrankaConfig())
    node = make_node(ros_context, robot=robot, reconnect_period_s=0.0)  # no reconnect: the link stays down
    probe, status, _ = watch_franka(ros_context, spin, collector, node)
    try:
        status.wait_for(1, where=lambda m: m.event == "ready")
        with TwistStreamer(probe, (0.01, 0.0, 0.0), rate_hz=20.0):
            time.sleep(0.5)
            robot.link_up = False
            time.sleep(2.0)
        lost = [m for m in status.messages if "connection lost" in m.detail]
        assert len(lost) == 1, [m.detail for m in lost]
    finally:
        node.close()


class SlowHomeRobot(FakeRobot):
    """A home move takes home_s seconds."""

    home_s = 1.5

    def move_home(self, T_base_ee, timeout_s):
        time.sleep(self.home_s)  # the duration of the motion being simulated
        return super().move_home(T_base_ee, timeout_s)


@pytest.mark.timing  # nodes over DDS on loopback and the node's control loop in real time, within the waits
def test_no_operator_fallback_while_the_actor_is_only_resetting(ros_context, spin, collector):
    """During a home move (the actor's reset) and fallback_after_home_s after it the operator does
    not take the arm over; afterwards, with the actor still silent, the fallback starts."""
    node = make_node(ros_context, robot=SlowHomeRobot(FrankaConfig()), fallback_after_home_s=1.0,
                     **{"safety.watchdog_timeout_s": 0.2})
    probe, status, _ = watch_franka(ros_context, spin, collector, node)
    try:
        status.wait_for(1, where=lambda m: m.event == "ready")
        with TwistStreamer(probe, (0.0, 0.0, 0.0), rate_hz=20.0):  # the actor streams, then resets
            time.sleep(0.5)
        client = probe.create_client(topics.FRANKA_HOME.srv_type, topics.FRANKA_HOME.resolve())
        assert client.wait_for_service(timeout_sec=5.0)
        client.call_async(Trigger.Request())  # answered when the move has ended
        status.wait_for(1, timeout_s=5.0, where=lambda m: m.event == "home_started")
        with OperatorStreamer(probe, (0.0, 0.02, 0.0)):
            done = status.wait_for(1, timeout_s=10.0, where=lambda m: m.event == "home_done")
            t_done = stamp_s(done[0])
            fb = status.wait_for(1, timeout_s=10.0, where=lambda m: m.event == "operator_fallback")
        t_fb = stamp_s(fb[0])
        assert t_fb - t_done >= 1.0 - 0.05, f"fallback {t_fb - t_done:.2f} s after the home move ended"
    finally:
        node.close()
