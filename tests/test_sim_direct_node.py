"""The franka node with ``robot.backend: direct`` over real DDS on loopback: against a direct
world it publishes state, moves under TwistStamped, stops by its watchdog, homes and drives the
gripper; with the sim world node in ``physics: direct`` an episode reset goes all the way
(reset -> start pose -> franka home move -> reset_done)."""
from __future__ import annotations

import json
import os
import threading
import time

import numpy as np
import pytest

pytest.importorskip("rclpy")
pytest.importorskip("franky_sim")
pytestmark = [pytest.mark.ros, pytest.mark.timing]  # timing: nodes over DDS on loopback and a world running in real time

from geometry_msgs.msg import PoseStamped  # noqa: E402
from rclpy.node import Node  # noqa: E402
from std_msgs.msg import Empty, Float32, String  # noqa: E402

from robot_stack.nodes import qos  # noqa: E402
from robot_stack.nodes.franka_node import (  # noqa: E402
    EE_POSE_TOPIC,
    GRIPPER_CMD_TOPIC,
    HOME_TOPIC,
    STATUS_QOS,
    STATUS_TOPIC,
    FrankaNode,
)
from robot_stack.nodes.params import parameter_overrides  # noqa: E402
from ros_streams import TwistStreamer, watch_franka  # noqa: E402

ADDRESS = f"127.0.0.{160 + os.getpid() % 10}"
PORT = 17338


def franka_node(ctx, **params):
    params = {"robot.backend": "direct", "robot.robot_ip": ADDRESS, "robot.direct_port": PORT, **params}
    return FrankaNode(context=ctx, parameter_overrides=parameter_overrides(params))


def event_is(*names):
    return lambda m: json.loads(m.data)["event"] in names


def test_franka_node_drives_the_direct_world(ros_context, spin, collector):
    from robot_stack.sim.direct_world import DirectWorld, DirectWorldConfig

    with DirectWorld(DirectWorldConfig(hostname=ADDRESS, port=PORT)) as world:
        node = franka_node(ros_context, home_xyz_m=[0.45, 0.05, 0.3], home_randomize_xyz_m=[0.0, 0.0, 0.0])
        probe, status, poses, widths = watch_franka(ros_context, spin, collector, node, gripper=True)
        try:
            ready = status.wait_for(1, timeout_s=10.0, where=event_is("ready"))[0]
            assert "backend=direct" in json.loads(ready.data)["detail"]
            z0 = poses.wait_for(3, timeout_s=10.0)[-1].pose.position.z
            n = len(poses.messages)
            with TwistStreamer(probe, (0.0, 0.0, -0.05)):
                time.sleep(1.0)  # stream for 1 s
            moved = poses.wait_for(1, timeout_s=5.0, start=n, where=lambda m: m.pose.position.z < z0 - 0.02)
            assert abs(moved[-1].pose.position.x - poses.messages[n].pose.position.x) < 0.01  # straight down
            status.wait_for(1, timeout_s=5.0, where=event_is("watchdog_stop"))

            probe.create_publisher(Empty, HOME_TOPIC, qos.COMMAND).publish(Empty())
            done = status.wait_for(1, timeout_s=20.0, where=event_is("home_done", "home_failed"))
            assert json.loads(done[0].data)["event"] == "home_done", done[0].data
            n = len(poses.messages)
            p = poses.wait_for(1, timeout_s=3.0, start=n)[0].pose.position
            assert np.allclose([p.x, p.y, p.z], [0.45, 0.05, 0.3], atol=0.005)

            probe.create_publisher(Float32, GRIPPER_CMD_TOPIC, qos.COMMAND).publish(Float32(data=0.07))
            widths.wait_for(1, timeout_s=5.0, where=lambda m: abs(m.data - 0.07) < 0.002)
            world.check()
        finally:
            node.close()


def test_episode_reset_through_sim_world_and_franka_nodes(ros_context, spin, collector):
    """sim_world_node (physics: direct) samples a start pose, the franka node (direct backend)
    homes there, and the reset is answered: the reset path of the sim graph without franky."""
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.parameter import Parameter
    from sensor_msgs.msg import Image
    from std_msgs.msg import UInt64

    from robot_stack.nodes.sim_world_node import SimWorldNode
    from robot_stack.sim.direct_world import DirectWorld

    world = SimWorldNode(context=ros_context, parameter_overrides=[
        Parameter("physics", value="direct"), Parameter("hostname", value=ADDRESS),
        Parameter("direct_port", value=PORT), Parameter("operator_enabled", value=False), Parameter("seed", value=4)])
    # The world renders with EGL contexts bound to one thread: a single-threaded executor, as
    # rclpy.spin in its main().
    world_exec = SingleThreadedExecutor(context=ros_context)
    world_exec.add_node(world)
    threading.Thread(target=world_exec.spin, daemon=True).start()
    franka = franka_node(ros_context)
    probe = Node("probe", context=ros_context)
    home_to = collector(probe, PoseStamped, "/robot_stack/franka/home_to", qos.COMMAND)
    done = collector(probe, UInt64, "/robot_stack/episode/reset_done", qos.COMMAND)
    status = collector(probe, String, STATUS_TOPIC, STATUS_QOS)
    poses = collector(probe, PoseStamped, EE_POSE_TOPIC, qos.STATE)
    images = collector(probe, Image, "/robot_stack/cameras/front/image_raw", qos.SENSOR)
    reset = probe.create_publisher(UInt64, "/robot_stack/episode/reset", qos.COMMAND)
    spin(franka, probe)
    try:
        assert isinstance(world.world, DirectWorld)
        status.wait_for(1, timeout_s=10.0, where=event_is("ready"))
        assert np.frombuffer(images.wait_for(2, timeout_s=20.0)[-1].data, np.uint8).std() > 5
        deadline = time.monotonic() + 10.0
        while reset.get_subscription_count() < 1 and time.monotonic() < deadline:
            time.sleep(0.05)  # discovery: the reset request must not be lost
        reset.publish(UInt64(data=3))
        target = home_to.wait_for(1, timeout_s=10.0)[0].pose.position
        assert done.wait_for(1, timeout_s=25.0)[0].data == 3
        assert any(event_is("home_done")(m) for m in status.messages), "reset answered without a home move"
        n = len(poses.messages)
        p = poses.wait_for(1, timeout_s=3.0, start=n)[0].pose.position
        assert np.allclose([p.x, p.y, p.z], [target.x, target.y, target.z], atol=0.005)
    finally:
        franka.close()
        world_exec.shutdown(timeout_sec=2)
        world.close()
