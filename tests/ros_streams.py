"""Test helpers for the node tests: publish the actor's velocity commands or the SpaceMouse
node's operator commands at a steady rate from a thread (``with TwistStreamer(...):``), watch
the franka node's status and EE pose from a probe node (``watch_franka``), and call a service
from the test thread while an executor spins the probe (``call``)."""
from __future__ import annotations

import threading

from geometry_msgs.msg import TwistStamped
from rclpy.node import Node

from robot_stack.msg import OperatorCommand
from robot_stack.nodes import topics


def spin_in_background(node: Node):
    """Spin ``node`` in a daemon thread with an executor of its own context, until that context
    is shut down; returns (executor, thread). For probes with a context of their own (the
    ``spin`` fixture serves the test's ``ros_context``)."""
    from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor

    executor = SingleThreadedExecutor(context=node.context)
    executor.add_node(node)

    def run():
        try:
            executor.spin()
        except ExternalShutdownException:
            pass

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return executor, thread


class Streamer:
    """Publishes ``make_msg()`` on ``topic`` at ``rate_hz`` from a thread until stopped."""

    def __init__(self, node: Node, entry: topics.Topic, make_msg, rate_hz=50.0, namespace=topics.DEFAULT_NAMESPACE):
        self.pub = node.create_publisher(entry.msg_type, entry.resolve(namespace), entry.profile)
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
    return Streamer(node, topics.CMD_TWIST, make, rate_hz)


def OperatorStreamer(node: Node, lin, intervening=True, rate_hz=50.0) -> Streamer:
    """The SpaceMouse node's OperatorCommand."""
    def make():
        msg = OperatorCommand()
        msg.header.frame_id = "base"
        msg.intervening = intervening
        msg.twist.linear.x, msg.twist.linear.y, msg.twist.linear.z = (float(v) for v in lin)
        return msg
    return Streamer(node, topics.OPERATOR, make, rate_hz)


def watch_franka(ctx, spin, collector, node, gripper: bool = False):
    """A probe node collecting the franka ``node``'s status events and EE poses (and gripper
    widths), spun together with it: ``(probe, status, poses[, widths])``."""
    probe = Node("probe", context=ctx)
    status = collector(probe, topics.FRANKA_STATUS)
    poses = collector(probe, topics.EE_POSE)
    widths = collector(probe, topics.GRIPPER_WIDTH) if gripper else None
    spin(node, probe)
    return (probe, status, poses, widths) if gripper else (probe, status, poses)


def call(node: Node, service: topics.Service, request, timeout_s: float = 10.0, namespace=topics.DEFAULT_NAMESPACE):
    """Call ``service`` from the test thread (an executor must spin ``node``) and return the
    response; AssertionError when the server is missing or does not answer within ``timeout_s``."""
    client = node.create_client(service.srv_type, service.resolve(namespace))
    try:
        assert client.wait_for_service(timeout_sec=timeout_s), f"no {service.resolve(namespace)} service"
        answered = threading.Event()
        future = client.call_async(request)
        future.add_done_callback(lambda _f: answered.set())
        assert answered.wait(timeout_s), f"{service.resolve(namespace)} did not answer within {timeout_s} s"
        return future.result()
    finally:
        node.destroy_client(client)
