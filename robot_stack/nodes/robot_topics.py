"""One subscription per robot: the ``/<robot_id>/<leaf>`` topics of a fleet, as robots join.

A fleet learner (or monitor) listens to the same topic in every robot's namespace
(``/arm1/steps``, ``/arm2/steps``, ...). :class:`RobotTopics` subscribes to those of the robots
named at start-up and, with discovery on, every ``discover_every_s`` to each topic of the
right type whose name ends in ``/<leaf>`` that has appeared in the ROS graph since: a robot
that starts later joins without a restart. A robot that leaves keeps its subscription (it
costs nothing while no one publishes), so when it comes back its records flow again at once;
the learner's per-robot bookkeeping says who is active. The callback gets ``(robot_id, msg)``;
robot ids come from :func:`robot_stack.rl.fleet.robot_id_from_topic`.
"""
from __future__ import annotations

import logging
from typing import Any, Callable, Iterable

from rclpy.node import Node

from robot_stack.nodes.topics import Topic, subscription_at
from robot_stack.rl.fleet import check_robot_id, robot_id_from_topic, robot_topic

log = logging.getLogger(__name__)


class RobotTopics:
    """Subscriptions to ``/<robot_id>/<leaf>`` per robot; see the module docstring."""

    def __init__(self, node: Node, topic: Topic, callback: Callable[[str, Any], None],
                 robots: Iterable[str] = (), discover: bool = False, discover_every_s: float = 2.0,
                 callback_group=None, on_join: Callable[[str], None] | None = None, inbox=None):
        """``topic``: the table entry each robot publishes in its namespace (its relative name
        is the leaf: ``topics.STEPS`` -> ``/<robot_id>/steps``). ``inbox``: a
        :class:`~robot_stack.nodes.inbox.Inbox` that guards each robot's callback (a message
        the callback rejects is dropped and counted under that robot's topic)."""
        self.node = node
        self.topic = topic
        self.type_name, self.leaf = topic.type, topic.name
        self.callback = callback
        self.callback_group = callback_group
        self.on_join = on_join or (lambda rid: None)
        self.inbox = inbox
        self.subscriptions: dict[str, Any] = {}
        for rid in robots:
            self.add(rid)
        if discover:
            node.create_timer(discover_every_s, self.discover)

    def add(self, robot_id: str) -> bool:
        """Subscribe to ``robot_id``'s topic unless already; True when it is new."""
        rid = check_robot_id(robot_id)
        if rid in self.subscriptions:
            return False
        topic = robot_topic(rid, self.leaf)
        callback = self.callback if self.inbox is None else self.inbox.wrap(topic, self.callback)
        self.subscriptions[rid] = subscription_at(self.node, self.topic, topic, lambda msg, rid=rid: callback(rid, msg),
                                                  callback_group=self.callback_group)
        self.node.get_logger().info(f"robot '{rid}' joined: subscribed to {topic}")
        self.on_join(rid)
        return True

    def discover(self) -> list[str]:
        """Subscribe to every new robot's topic in the graph; returns the robots added."""
        added = []
        for name, types in self.node.get_topic_names_and_types():
            if self.type_name in types:
                rid = robot_id_from_topic(name, self.leaf)
                if rid is not None and self.add(rid):
                    added.append(rid)
        return added

    def publisher_counts(self) -> dict[str, int]:
        """Publishers matched per robot (0: the robot has left or not started)."""
        return {rid: sub.get_publisher_count() for rid, sub in self.subscriptions.items()}


__all__ = ["RobotTopics"]
