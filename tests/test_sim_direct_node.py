"""The franka node with ``robot.backend: direct`` over real DDS on loopback: against a direct
world it publishes state, moves under TwistStamped, stops by its watchdog, homes and drives the
gripper; with the sim world node in ``physics: direct`` an episode reset goes all the way
(episode/reset service -> start pose -> franka home_to service -> answer)."""
from __future__ import annotations

import os
import re
import threading
import time

import numpy as np
import pytest

pytest.importorskip("rclpy")
pytest.importorskip("franky_sim")
pytestmark = [pytest.mark.ros, pytest.mark.timing]  # timing: nodes over DDS on loopback and a world running in real time

from rclpy.node import Node  # noqa: E402
from std_msgs.msg import Float32  # noqa: E402
from std_srvs.srv import Trigger  # noqa: E402

from robot_stack.nodes import convert, topics  # noqa: E402
from robot_stack.nodes.franka_node import FrankaNode  # noqa: E402
from robot_stack.nodes.params import parameter_overrides  # noqa: E402
from ros_streams import TwistStreamer, call, watch_franka  # noqa: E402

ADDRESS = f"127.0.0.{160 + os.getpid() % 10}"
PORT = 17338


def franka_node(ctx, **params):
    params = {"robot.backend": "direct", "robot.robot_ip": ADDRESS, "robot.direct_port": PORT, **params}
    return FrankaNode(context=ctx, parameter_overrides=parameter_overrides(params))


def event_is(*names):
    return lambda m: m.event in names


def test_franka_node_drives_the_direct_world(ros_context, spin, collector):
    from robot_stack.sim.direct_world import DirectWorld, DirectWorldConfig

    with DirectWorld(DirectWorldConfig(hostname=ADDRESS, port=PORT)) as world:
        node = franka_node(ros_context, home_xyz_m=[0.45, 0.05, 0.3], home_randomize_xyz_m=[0.0, 0.0, 0.0])
        probe, status, poses, widths = watch_franka(ros_context, spin, collector, node, gripper=True)
        try:
            ready = status.wait_for(1, timeout_s=10.0, where=event_is("ready"))[0]
            assert "backend=direct" in ready.detail
            z0 = poses.wait_for(3, timeout_s=10.0)[-1].pose.position.z
            n = len(poses.messages)
            with TwistStreamer(probe, (0.0, 0.0, -0.05)):
                time.sleep(1.0)  # stream for 1 s
            moved = poses.wait_for(1, timeout_s=5.0, start=n, where=lambda m: m.pose.position.z < z0 - 0.02)
            assert abs(moved[-1].pose.position.x - poses.messages[n].pose.position.x) < 0.01  # straight down
            status.wait_for(1, timeout_s=5.0, where=event_is("watchdog_stop"))

            answer = call(probe, topics.FRANKA_HOME, Trigger.Request(), timeout_s=20.0)
            assert answer.success, answer.message
            n = len(poses.messages)
            p = poses.wait_for(1, timeout_s=3.0, start=n)[0].pose.position
            assert np.allclose([p.x, p.y, p.z], [0.45, 0.05, 0.3], atol=0.005)

            grip = topics.GRIPPER_CMD
            probe.create_publisher(Float32, grip.resolve(), grip.profile).publish(Float32(data=0.07))
            widths.wait_for(1, timeout_s=5.0, where=lambda m: abs(m.data - 0.07) < 0.002)
            world.check()
        finally:
            node.close()


def test_episode_reset_through_sim_world_and_franka_nodes(ros_context, spin, collector):
    """sim_world_node (physics: direct) samples a start pose, the franka node (direct backend)
    homes there, and the reset is answered: the reset path of the sim graph without franky."""
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.parameter import Parameter
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
    status = collector(probe, topics.FRANKA_STATUS)
    poses = collector(probe, topics.EE_POSE)
    images = collector(probe, topics.CAMERA_IMAGE, camera="front")
    spin(franka, probe)
    try:
        assert isinstance(world.world, DirectWorld)
        status.wait_for(1, timeout_s=10.0, where=event_is("ready"))
        assert np.frombuffer(images.wait_for(2, timeout_s=20.0)[-1].data, np.uint8).std() > 5
        answer = call(probe, topics.EPISODE_RESET, convert.reset_request(3), timeout_s=25.0)
        assert answer.success, answer.message  # answered once the arm reached the start pose
        assert any(event_is("home_done")(m) for m in status.messages), "reset answered without a home move"
        target = [float(v) for v in re.search(r"xyz=\[([^\]]+)\]", answer.message).group(1).split(",")]
        n = len(poses.messages)
        p = poses.wait_for(1, timeout_s=3.0, start=n)[0].pose.position
        assert np.allclose([p.x, p.y, p.z], target, atol=0.005)
    finally:
        franka.close()
        world_exec.shutdown(timeout_sec=2)
        world.close()
