"""Test helpers for the franka node tests: publish the actor's velocity commands or the
SpaceMouse node's operator commands at a steady rate from a thread (``with TwistStreamer(...):``),
and watch the node's status and EE pose from a probe node (``watch_franka``)."""
from __future__ import annotations

import threading

from geometry_msgs.msg import TwistStamped
from rclpy.node import Node

from robot_stack.msg import OperatorCommand
from robot_stack.nodes import qos
from robot_stack.nodes.franka_node import (CMD_TWIST_TOPIC, EE_POSE_TOPIC, GRIPPER_WIDTH_TOPIC, OPERATOR_TOPIC,
                                           STATUS_QOS, STATUS_TOPIC)


class Streamer:
    """Publishes ``make_msg()`` on ``topic`` at ``rate_hz`` from a thread until stopped."""

    def __init__(self, node: Node, msg_type, topic, make_msg, rate_hz=50.0):
        self.pub = node.create_publisher(msg_type, topic, qos.COMMAND)
        self.make_msg, self.period = make_msg, 1.0 / rate_hz
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.is_set():
            self.pub.publish(self.make_msg())
            self._stop.wait(self.period)  # publishing rate, not synchronization

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


def TwistStreamer(node: Node, lin, frame="base", rate_hz=50.0) -> Streamer:
    """The actor's velocity commands (TwistStamped on cmd_twist)."""
    def make():
        msg = TwistStamped()
        msg.header.frame_id = frame
        msg.twist.linear.x, msg.twist.linear.y, msg.twist.linear.z = (float(v) for v in lin)
        return msg
    return Streamer(node, TwistStamped, CMD_TWIST_TOPIC, make, rate_hz)


def OperatorStreamer(node: Node, lin, intervening=True, rate_hz=50.0) -> Streamer:
    """The SpaceMouse node's OperatorCommand."""
    def make():
        msg = OperatorCommand()
        msg.header.frame_id = "base"
        msg.intervening = intervening
        msg.twist.linear.x, msg.twist.linear.y, msg.twist.linear.z = (float(v) for v in lin)
        return msg
    return Streamer(node, OperatorCommand, OPERATOR_TOPIC, make, rate_hz)


def watch_franka(ctx, spin, collector, node, gripper: bool = False):
    """A probe node collecting the franka ``node``'s status events and EE poses (and gripper
    widths), spun together with it: ``(probe, status, poses[, widths])``."""
    from geometry_msgs.msg import PoseStamped
    from std_msgs.msg import Float32, String

    probe = Node("probe", context=ctx)
    status = collector(probe, String, STATUS_TOPIC, STATUS_QOS)
    poses = collector(probe, PoseStamped, EE_POSE_TOPIC, qos.STATE)
    widths = collector(probe, Float32, GRIPPER_WIDTH_TOPIC, qos.STATE) if gripper else None
    spin(node, probe)
    return (probe, status, poses, widths) if gripper else (probe, status, poses)
