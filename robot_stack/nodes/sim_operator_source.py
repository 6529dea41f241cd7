"""The SpaceMouse node's ``sim`` backend source in the sim graph: readings from a Joy topic.

The simulated operator runs inside the sim world node (it needs the sim state) and publishes
its SpaceMouse readings on ``sim/operator_joy`` (relative: in the graph's namespace) (sensor_msgs/Joy: 6 axes in
[-1, 1], buttons). :class:`JoyTopicSource` subscribes to that topic from inside the
SpaceMouse node's process, so deadzone, hysteresis and hold time run exactly as for a person.
Select it with ``backend: sim`` and
``sim_provider: robot_stack.nodes.sim_operator_source:JoyTopicSource``.

The subscription lives in its own rclpy context and thread (the provider gets no node
handle). That context reads the process's command line like the SpaceMouse node's, so a
``__ns`` remap (the launch file's namespace) puts it in the same namespace; without one it
uses the nodes' default namespace. A reading older than ``max_age_s`` counts as hands off (zero axes): if the sim
world dies, the operator lets go rather than freezing a deflection.
"""
from __future__ import annotations

import logging
import os
import threading
import time

import numpy as np

from robot_stack.nodes.inbox import Inbox
from robot_stack.types.teleop import SpaceMouseReading


class JoyTopicSource:
    """SimOperatorSource fed by sensor_msgs/Joy messages; see the module docstring."""

    def __init__(self, topic: str | None = None, max_age_s: float = 0.5, namespace: str | None = None):
        from robot_stack.nodes import topics

        self.topic = topic or topics.SIM_OPERATOR_JOY.name
        self.namespace = topics.DEFAULT_NAMESPACE if namespace is None else namespace
        self.max_age_s = max_age_s
        self._lock = threading.Lock()
        self._new = threading.Event()  # set by each message, cleared by wait_for_new
        self._latest: SpaceMouseReading | None = None
        self._received_at = 0.0
        self._context = None
        self._executor = None
        self._thread: threading.Thread | None = None
        self.inbox = Inbox(logging.getLogger(__name__))
        """Malformed Joy messages are dropped and counted here."""

    def connect(self) -> None:
        import rclpy
        from rclpy.executors import SingleThreadedExecutor

        from robot_stack.nodes import topics

        self._context = rclpy.Context()
        domain = int(os.environ.get("ROS_DOMAIN_ID", "0") or 0)
        rclpy.init(context=self._context, domain_id=domain)
        node = rclpy.create_node("sim_operator_source", namespace=self.namespace, context=self._context)
        entry = topics.SIM_OPERATOR_JOY
        node.create_subscription(entry.msg_type, self.topic, self.inbox.wrap(self.topic, self._on_joy), entry.profile)
        self._executor = SingleThreadedExecutor(context=self._context)
        self._executor.add_node(node)
        self._thread = threading.Thread(target=self._spin, name="sim-operator-source", daemon=True)
        self._thread.start()

    def _spin(self) -> None:
        from rclpy.executors import ExternalShutdownException

        try:
            self._executor.spin()
        except ExternalShutdownException:
            pass

    def _on_joy(self, msg) -> None:
        from robot_stack.nodes import convert

        axes, buttons = convert.joy_from_msg(msg)
        if axes.shape != (6,) or not np.all(np.isfinite(axes)):
            # dropped (the inbox counts it); the reading goes stale and counts as hands off
            raise ValueError(f"operator Joy must hold 6 finite axes, got {axes.tolist()[:8]}")
        reading = SpaceMouseReading(t=time.monotonic(), axes=np.clip(axes, -1.0, 1.0), buttons=buttons)
        with self._lock:
            self._latest, self._received_at = reading, time.monotonic()
        self._new.set()

    def wait_for_new(self, timeout_s: float) -> bool:
        """Wait up to ``timeout_s`` for a message newer than the last wait; whether one came."""
        got = self._new.wait(timeout_s)
        self._new.clear()
        return got

    def read(self) -> SpaceMouseReading | None:
        with self._lock:
            if self._latest is None or time.monotonic() - self._received_at > self.max_age_s:
                return None
            r = self._latest
        # Stamp with the read time so hold-time logic sees time pass between identical readings.
        return SpaceMouseReading(t=time.monotonic(), axes=r.axes, buttons=r.buttons)

    def close(self) -> None:
        import rclpy

        if self._context is not None:
            rclpy.try_shutdown(context=self._context)
            if self._thread is not None:
                self._thread.join(timeout=2.0)
            self._context = None
