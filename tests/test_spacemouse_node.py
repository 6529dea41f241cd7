"""SpaceMouse node over real DDS on loopback: parameters, topics/QoS, intervention end to end."""
from __future__ import annotations

import time

import numpy as np
import pytest

pytestmark = pytest.mark.ros

rclpy = pytest.importorskip("rclpy")
from geometry_msgs.msg import TwistStamped  # noqa: E402
from rclpy.node import Node  # noqa: E402
from rclpy.parameter import Parameter  # noqa: E402
from rclpy.qos import DurabilityPolicy, ReliabilityPolicy  # noqa: E402
from sensor_msgs.msg import Joy  # noqa: E402

from robot_stack.msg import OperatorCommand  # noqa: E402
from robot_stack.nodes import qos, topics  # noqa: E402
from robot_stack.nodes.spacemouse_node import SpaceMouseNode  # noqa: E402

OPERATOR_TOPIC = topics.OPERATOR.resolve()
JOY_TOPIC = topics.SPACEMOUSE_JOY.resolve()
TWIST_TOPIC = topics.SPACEMOUSE_TWIST.resolve()
from robot_stack.testing.spacemouse import FakeHidDevice, encode_reports  # noqa: E402
from robot_stack.types.config import ConfigError  # noqa: E402

HOLD_S = 0.3


def _node(ctx, hid=None, **params):
    overrides = [Parameter(k, value=v) for k, v in {"backend": "fake", **params}.items()]
    return SpaceMouseNode(context=ctx, hid_device=hid or FakeHidDevice(), parameter_overrides=overrides)


def test_mistyped_parameter_fails_with_its_name(ros_context):
    with pytest.raises(ConfigError, match="read_rate_hz.*double"):
        _node(ros_context, read_rate_hz="fast")


def test_misspelled_parameter_fails_with_suggestion(ros_context):
    with pytest.raises(ConfigError, match="unknown parameter 'intervention.hold_sec'.*did you mean 'intervention.hold_s'"):
        _node(ros_context, **{"intervention.hold_sec": 0.5})


def test_invalid_value_fails_with_reason(ros_context):
    with pytest.raises(ConfigError, match="publish_rate_hz"):
        _node(ros_context, read_rate_hz=100.0, publish_rate_hz=500.0)


def test_parameters_are_documented_and_integers_accepted_for_floats(ros_context):
    node = _node(ros_context, read_rate_hz=100, **{"mapping.max_lin_speed_m_s": 0.2})
    try:
        assert node.config.read_rate_hz == 100.0 and node.config.mapping.max_lin_speed_m_s == 0.2
        desc = node.describe_parameter("intervention.hold_s")
        assert "after the operator lets go" in desc.description
        assert desc.read_only
    finally:
        node.destroy_node()


def test_topics_and_qos_as_documented(ros_context):
    node = _node(ros_context)
    try:
        # What the publishers offer: commands reliable and volatile; the raw streams as every SENSOR
        # publisher, reliable and transient local (kept for a late-matching recorder).
        for topic, profile in ((OPERATOR_TOPIC, qos.offered("COMMAND")), (JOY_TOPIC, qos.offered("SENSOR")),
                               (TWIST_TOPIC, qos.offered("SENSOR"))):
            (info,) = node.get_publishers_info_by_topic(topic)
            assert (info.qos_profile.reliability, info.qos_profile.durability) == (profile.reliability, profile.durability)
        assert qos.offered("COMMAND").durability == DurabilityPolicy.VOLATILE
        assert qos.COMMAND.reliability == ReliabilityPolicy.RELIABLE
    finally:
        node.destroy_node()


@pytest.mark.timing  # nodes over DDS on loopback: discovery and executor scheduling within the waits
def test_intervention_end_to_end_press_release_hold_unplug(ros_context, spin, collector):
    hid = FakeHidDevice()
    node = _node(
        ros_context, hid, read_rate_hz=200.0, publish_rate_hz=50.0,
        **{"intervention.hold_s": HOLD_S, "mapping.max_lin_speed_m_s": 0.1},
    )
    listener = Node("listener", context=ros_context)
    ops = collector(listener, OperatorCommand, OPERATOR_TOPIC, qos.COMMAND)
    joy = collector(listener, Joy, JOY_TOPIC, qos.SENSOR)
    twist = collector(listener, TwistStamped, TWIST_TOPIC, qos.SENSOR)
    spin(node, listener)
    try:
        ops.wait_for(3, timeout_s=10.0)  # idle: periodic, not intervening
        assert not any(m.intervening for m in ops.messages)

        # Press: push the cap right (x = +0.5 of full scale) -> intervening with vx = 0.05 * 0.95-ish.
        for rep in encode_reports([0.5, 0, 0, 0, 0, 0]):
            hid.push(rep)
        t_press = time.monotonic()
        (on,) = ops.wait_for(1, where=lambda m: m.intervening)[:1]
        expected_vx = 0.1 * (0.5 - 0.05) / 0.95
        assert on.twist.linear.x == pytest.approx(expected_vx, abs=1e-3)
        assert on.twist.linear.y == pytest.approx(0.0) and on.twist.linear.z == pytest.approx(0.0)
        assert on.axes[0] == pytest.approx(0.5, abs=1 / 350)
        assert on.header.frame_id == "base"
        # The stamp is the device read time on the ROS clock: close to now, not in the future.
        now_ns = node.get_clock().now().nanoseconds
        stamp_ns = on.header.stamp.sec * 10**9 + on.header.stamp.nanosec
        assert 0 <= now_ns - stamp_ns < 2 * 10**9
        joy.wait_for(1, where=lambda m: abs(m.axes[0] - 0.5) < 0.01)
        twist.wait_for(1, where=lambda m: m.twist.linear.x > 0.04)

        # Release: zero report -> stays intervening (zero twist) for the hold time, then off.
        n_before = len(ops.messages)
        for rep in encode_reports([0, 0, 0, 0, 0, 0]):
            hid.push(rep)
        t_release = time.monotonic()
        held = ops.wait_for(3, timeout_s=5.0, start=n_before)
        zero_holding = [m for m in held if m.intervening and m.twist.linear.x == 0.0]
        assert zero_holding, "expected zero-twist intervening messages during the hold time"
        ops.wait_for(1, timeout_s=5.0, start=n_before, where=lambda m: not m.intervening)
        t_off = time.monotonic()
        assert t_off - t_release >= HOLD_S * 0.9
        assert t_press < t_release

        # Unplug mid-intervention: intervening false with zero twist, published at once.
        for rep in encode_reports([0, 0, -0.8, 0, 0, 0]):
            hid.push(rep)
        n_on = len(ops.messages)
        ops.wait_for(1, start=n_on, where=lambda m: m.intervening and m.twist.linear.z < 0)
        n_unplug = len(ops.messages)
        hid.unplug()
        (off,) = ops.wait_for(1, start=n_unplug, where=lambda m: not m.intervening)[:1]
        assert off.twist.linear.z == 0.0 and off.twist.linear.x == 0.0 and not np.any(np.asarray(off.axes))
        # ...and keeps publishing hold-still commands while the device is gone.
        n_gone = len(ops.messages)
        later = ops.wait_for(3, timeout_s=5.0, start=n_gone)
        assert all(not m.intervening for m in later)
    finally:
        node.close()
        node.destroy_node()
        listener.destroy_node()


@pytest.mark.timing  # nodes over DDS on loopback: discovery and executor scheduling within the waits
def test_absent_device_publishes_hold_still_commands(ros_context, spin, collector):
    node = _node(ros_context, FakeHidDevice(fail_open=True), reconnect_period_s=0.2)
    listener = Node("listener", context=ros_context)
    ops = collector(listener, OperatorCommand, OPERATOR_TOPIC, qos.COMMAND)
    spin(node, listener)
    try:
        msgs = ops.wait_for(5, timeout_s=10.0)
        assert all(not m.intervening and m.twist.linear.x == 0.0 and m.twist.linear.z == 0.0 for m in msgs)
        assert not node.device.connected and "udev" in node._last_error
    finally:
        node.close()
        node.destroy_node()
        listener.destroy_node()


@pytest.mark.timing  # nodes over DDS on loopback: discovery and executor scheduling within the waits
def test_sim_backend_takes_a_plugged_in_operator_source(ros_context, spin, collector):
    from robot_stack.types.teleop import SpaceMouseReading

    class Operator:  # what the simulated operator implements (SimOperatorSource)
        def read(self):
            return SpaceMouseReading(t=time.monotonic(), axes=np.array([0.0, 0.0, 1.0, 0.0, 0.0, 0.0]))

    node = SpaceMouseNode(context=ros_context, source=Operator(),
                          parameter_overrides=[Parameter("backend", value="sim")])
    listener = Node("listener", context=ros_context)
    ops = collector(listener, OperatorCommand, OPERATOR_TOPIC, qos.COMMAND)
    spin(node, listener)
    try:
        (m,) = ops.wait_for(1, where=lambda m: m.intervening)[:1]
        assert m.twist.linear.z == pytest.approx(node.config.mapping.max_lin_speed_m_s)
    finally:
        node.close()
        node.destroy_node()
        listener.destroy_node()


@pytest.mark.timing  # nodes over DDS on loopback: discovery and executor scheduling within the waits
def test_new_report_while_intervening_is_published_at_once(ros_context, spin, collector):
    """publish_on_report: a changed reading goes out with the read that saw it, not at the next
    periodic publish (here 0.1 Hz, so only the report itself can trigger the message in time)."""
    hid = FakeHidDevice()
    node = _node(ros_context, hid, read_rate_hz=200.0, publish_rate_hz=0.1, **{"intervention.hold_s": 5.0})
    listener = Node("listener", context=ros_context)
    ops = collector(listener, OperatorCommand, OPERATOR_TOPIC, qos.COMMAND)
    spin(node, listener)
    try:
        deadline = time.monotonic() + 10.0
        while node.pub_operator.get_subscription_count() < 1 and time.monotonic() < deadline:
            time.sleep(0.05)  # discovery
        t0 = time.monotonic()
        for rep in encode_reports([0.5, 0, 0, 0, 0, 0]):
            hid.push(rep)
        ops.wait_for(1, timeout_s=3.0, where=lambda m: m.intervening)  # the onset (a state change)
        for rep in encode_reports([0.5, 0.4, 0, 0, 0, 0]):
            hid.push(rep)
        (m,) = ops.wait_for(1, timeout_s=3.0, where=lambda m: m.intervening and m.twist.linear.y > 0.02)[:1]
        assert m.axes[1] == pytest.approx(0.4, abs=1 / 350)
        assert time.monotonic() - t0 < 9.0  # well before the first periodic publish (10 s)
    finally:
        node.close()


@pytest.mark.timing  # nodes over DDS on loopback: discovery and executor scheduling within the waits
def test_a_report_is_published_at_once_not_at_the_next_read_period(ros_context, spin, collector):
    """The reader waits on the device, so with a 1 Hz read rate (1 s between wake-ups) a
    takeover still goes out as soon as its report arrives."""
    hid = FakeHidDevice()
    node = _node(ros_context, hid, read_rate_hz=1.0, publish_rate_hz=1.0)
    listener = Node("listener", context=ros_context)
    ops = collector(listener, OperatorCommand, OPERATOR_TOPIC, qos.COMMAND)
    spin(node, listener)
    try:
        ops.wait_for(1, timeout_s=10.0)  # discovery done: the periodic idle message came
        delays = []
        for k in range(3):
            n = len(ops.messages)
            time.sleep(0.13)  # lands at different phases of the 1 s wake-up period
            t_push = time.monotonic()
            for rep in encode_reports([0.6 if k % 2 == 0 else -0.6, 0, 0, 0, 0, 0]):
                hid.push(rep)
            ops.wait_for(1, timeout_s=5.0, start=n, where=lambda m: m.intervening and abs(m.twist.linear.x) > 0)
            delays.append(time.monotonic() - t_push)
        # A polled device would take up to 1 s (0.5 s on average); all three came sooner.
        assert max(delays) < 0.35, f"report -> OperatorCommand took {delays} s"
    finally:
        node.close()
        node.destroy_node()
        listener.destroy_node()


def test_malformed_reports_do_not_end_an_intervention(ros_context, spin, collector):
    """Short and unknown reports mid-intervention are dropped and counted: no intervening=false,
    no gap in the commands, one warning."""
    hid = FakeHidDevice()
    node = _node(ros_context, hid, read_rate_hz=200.0, publish_rate_hz=50.0, **{"intervention.hold_s": 0.3})
    listener = Node("listener", context=ros_context)
    ops = collector(listener, OperatorCommand, OPERATOR_TOPIC, qos.COMMAND)
    spin(node, listener)
    try:
        for rep in encode_reports([0.5, 0, 0, 0, 0, 0]):
            hid.push(rep)
        ops.wait_for(1, timeout_s=10.0, where=lambda m: m.intervening)
        start = len(ops.messages)
        for rep in (b"\x03", b"\x01\x10", b"\x02", bytes([7, 1, 2, 3])):
            hid.push(rep)
        msgs = ops.wait_for(40, timeout_s=5.0, start=start)  # 0.8 s at 50 Hz
        assert all(m.intervening and m.twist.linear.x > 0.04 for m in msgs), \
            "a malformed report ended (or zeroed) the intervention"
        gaps = np.diff([m.header.stamp.sec + m.header.stamp.nanosec * 1e-9 for m in msgs])
        assert gaps.max() < 0.3, f"the node stopped publishing for {gaps.max():.2f} s"
        assert node.device.counters["malformed_reports"] == 3 and node.device.counters["ignored_reports"] == 1
    finally:
        node.close()
        node.destroy_node()
        listener.destroy_node()


def test_a_device_that_goes_quiet_while_deflected_ends_the_intervention(ros_context, spin, collector):
    hid = FakeHidDevice()
    node = _node(ros_context, hid, read_rate_hz=200.0, publish_rate_hz=50.0,
                 **{"intervention.hold_s": 0.6, "intervention.report_timeout_s": 0.25})
    listener = Node("listener", context=ros_context)
    ops = collector(listener, OperatorCommand, OPERATOR_TOPIC, qos.COMMAND)
    spin(node, listener)
    try:
        for rep in encode_reports([0.5, 0, 0, 0, 0, 0]):
            hid.push(rep)
        ops.wait_for(1, timeout_s=10.0, where=lambda m: m.intervening)
        time.sleep(0.3)  # streaming (the fake device repeats a deflection every 8 ms): still intervening
        assert ops.messages[-1].intervening
        start = len(ops.messages)
        hid.hang()  # no release report, no error
        t_hang = time.monotonic()
        ops.wait_for(1, timeout_s=5.0, start=start, where=lambda m: not m.intervening)
        assert time.monotonic() - t_hang < 0.25 + 0.3
        off_at = len(ops.messages)
        later = ops.wait_for(25, timeout_s=5.0, start=off_at)  # the device stays quiet for 0.5 s more
        assert not any(m.intervening or m.twist.linear.x for m in later)
        hid.resume()
        ops.wait_for(1, timeout_s=5.0, start=off_at, where=lambda m: m.intervening)  # fresh reports: a new takeover
    finally:
        node.close()
        node.destroy_node()
        listener.destroy_node()
