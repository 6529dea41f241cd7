"""Raw (serialised) subscriptions to a selection of topics, for the recorder and the live view.

The session's topics come from the topic table (:data:`robot_stack.nodes.topics.TOPICS`, resolved
in the graph's namespace by :func:`table_specs`: type and named QoS profile), and so does the
default selection (:func:`default_selection`: everything in the namespace, the table's ROS-wide
topics and ``/rosout``). :class:`RawTopics` knows the table's topics and finds others matching
its selection in the ROS graph (``discover()``: type from the graph, QoS adapted to the
publishers' as ``ros2 bag record`` does: reliable only if every publisher is, transient local
only if every publisher is). Its subscriptions are ``raw=True``: the callback receives the CDR
bytes as they came off the wire, nothing is deserialised.

With ``offered=True`` (the recorder) a table topic is subscribed with what its publishers offer
(``qos.offered``: reliable, transient local for camera, state and diagnostics streams), so the
publishers' kept samples reach a subscription that matched them late. A publisher that offers
less (a camera driver of another project, best effort and volatile) cannot match that request;
the subscription's incompatible-QoS event marks the topic, and ``adapt()`` subscribes it again
as every publisher can serve it.

With ``take_every_s`` (the recorder) messages are not called back one by one: the subscriptions
belong to a second node that no executor spins, and a timer of the node takes what arrived every
``take_every_s`` seconds and hands it on in receive order with each message's receive time from
the middleware. A callback per message wakes the process for every message (hundreds per
second on a session), most of the recorder's own CPU; a batch every 50 ms wakes it 20 times a
second.
"""
from __future__ import annotations

import importlib
import time
from dataclasses import dataclass
from typing import Callable, Iterable

from rclpy.clock import Clock, ClockType
from rclpy.event_handler import SubscriptionEventCallbacks
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy

from robot_stack.nodes import qos, topics
from robot_stack.recording.bag import QosSettings
from robot_stack.recording.topics import TopicSelection, TopicSpec

ROSOUT = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=1000, reliability=ReliabilityPolicy.RELIABLE,
                    durability=DurabilityPolicy.TRANSIENT_LOCAL)
"""/rosout as rcl publishes it (reliable, transient local): a late subscriber gets recent logs."""


ROSOUT_TOPIC = TopicSpec("/rosout", "rcl_interfaces/msg/Log", "ROSOUT")
"""Every node's log (ROS-wide)."""

NOT_BY_DEFAULT = (topics.FRANKA_DEBUG_SENT, topics.SPACEMOUSE_JOY, topics.SPACEMOUSE_TWIST, topics.SIM_OPERATOR_JOY)
"""Table entries left out of the default selection: the latency probe (debug_latency), and the
raw SpaceMouse streams, the SpaceMouse node's Joy/Twist and the simulated device's readings,
which ``operator`` carries (axes, twist, buttons' effects). Naming them in a selection takes them."""


def table_specs(namespace: str, cameras: Iterable[str] = ("front", "wrist")) -> tuple[TopicSpec, ...]:
    """Every topic of the table resolved in ``namespace`` (``{camera}`` entries once per name in
    ``cameras``), and /rosout."""
    out = []
    for t in topics.TOPICS:
        names = [t.resolve(namespace, camera=c) for c in cameras] if "{camera}" in t.name else [t.resolve(namespace)]
        out += [TopicSpec(name, t.type, t.qos) for name in names]
    return (*out, ROSOUT_TOPIC)


def default_selection(include: str, exclude: str, namespace: str) -> TopicSelection:
    """The selection for the recorder's and the live view's ``topics``/``exclude`` parameters: when
    ``include`` is empty, every topic in ``namespace``, the table's ROS-wide topics
    (``/diagnostics``) and /rosout, without :data:`NOT_BY_DEFAULT`."""
    ros_wide = [t.name for t in topics.TOPICS if t.name.startswith("/")]
    return TopicSelection.parse(include, exclude, namespace, default_include=("*", *ros_wide, ROSOUT_TOPIC.name),
                                default_exclude=[t.resolve(namespace, camera="*") for t in NOT_BY_DEFAULT])


def profile(name: str) -> QoSProfile:
    """A QoS profile by its name in robot_stack.nodes.qos (or ROSOUT)."""
    return ROSOUT if name.upper() == "ROSOUT" else qos.by_name(name)


def offered_profile(name: str) -> QoSProfile:
    """What publishers of a named profile offer (``qos.offered``; ROSOUT as it is)."""
    return ROSOUT if name.upper() == "ROSOUT" else qos.offered(name)


def served_by(request: QoSProfile, offers: Iterable[QoSProfile]) -> QoSProfile:
    """``request`` weakened so that every one of ``offers`` matches it: reliable only if every
    publisher is, transient local only if every publisher is (depth and history kept)."""
    offers = list(offers)
    reliable = request.reliability == ReliabilityPolicy.RELIABLE and all(
        o.reliability == ReliabilityPolicy.RELIABLE for o in offers)
    latched = request.durability == DurabilityPolicy.TRANSIENT_LOCAL and all(
        o.durability == DurabilityPolicy.TRANSIENT_LOCAL for o in offers)
    return QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=int(request.depth),
                      reliability=ReliabilityPolicy.RELIABLE if reliable else ReliabilityPolicy.BEST_EFFORT,
                      durability=DurabilityPolicy.TRANSIENT_LOCAL if latched else DurabilityPolicy.VOLATILE)


def settings(p: QoSProfile) -> QosSettings:
    """rclpy profile -> the ROS-free QoS a bag records."""
    return QosSettings(reliable=p.reliability == ReliabilityPolicy.RELIABLE,
                       transient_local=p.durability == DurabilityPolicy.TRANSIENT_LOCAL, depth=int(p.depth))


def message_class(msgtype: str):
    """``pkg/msg/Name`` -> the generated Python class (ImportError/AttributeError if not installed)."""
    pkg, kind, name = msgtype.split("/")
    return getattr(importlib.import_module(f"{pkg}.{kind}"), name)


@dataclass
class RawTopic:
    """A topic available for raw subscription."""

    name: str
    msgtype: str
    qos: QoSProfile
    spec: TopicSpec | None = None
    subscription: object | None = None


class RawTopics:
    """Raw subscriptions to the selected topics of ``node``; see the module docstring.

    ``on_message(topic, data, t_ns)`` runs in the node's executor with the CDR bytes and the
    receive time (ROS time, ns: the node clock with ``use_sim_time``, else the system clock).

    ``table`` holds the session's known topics (:func:`table_specs`). With ``preload`` the table's
    selected topics are available at once (the recorder subscribes to them before their
    publishers exist); without it a topic becomes available when discovery finds a publisher
    (the live view offers only what exists), with the table's type and QoS when the table knows
    it.

    ``history_depth`` deepens the subscriptions' queues (reliable topics at least that deep, best
    effort ones a tenth of it): a KEEP_LAST reader whose queue is full drops its oldest message
    even on a reliable topic, and the recorder, on a busy machine, sometimes falls behind for a
    moment. The topic's own QoS (``RawTopic.qos``, what its publishers offer) stays as it is.

    ``take_every_s`` > 0: taken in batches (see the module docstring); the subscriptions live on a
    node named ``<node>_subscriptions`` in the same namespace (no parameters, no log), their QoS
    events are handled by ``node``'s executor. Messages still queued when the caller stops are
    taken by :meth:`take`; :meth:`destroy` removes the second node.
    """

    def __init__(self, node: Node, selection: TopicSelection, on_message: Callable[[RawTopic, bytes, int], None],
                 table: Iterable[TopicSpec] = (), *, preload: bool = True, callback_group=None,
                 history_depth: int = 0, offered: bool = False, take_every_s: float = 0.0):
        self.node = node
        self.selection = selection
        self.on_message = on_message
        self.callback_group = callback_group
        self.history_depth = int(history_depth)
        self.topics: dict[str, RawTopic] = {}
        self.skipped: dict[str, str] = {}
        """Matching topics that cannot be taken, with the reason (unknown type, several types)."""
        self._table = {spec.name: spec for spec in selection.known(table)}
        self._profile = offered_profile if offered else profile
        self._incompatible: set[str] = set()
        self._holder: Node | None = None
        self._last_received: dict[str, int] = {}
        if take_every_s > 0:
            import rclpy

            self._holder = rclpy.create_node(f"{node.get_name()}_subscriptions", namespace=node.get_namespace(),
                                             context=node.context, start_parameter_services=False,
                                             enable_rosout=False)
            self._sim_time = bool(node.get_parameter("use_sim_time").value)
            # On the steady clock: with use_sim_time a node's timers stop while the sim clock does,
            # and the queues would fill meanwhile.
            node.create_timer(take_every_s, self.take, callback_group=callback_group,
                              clock=Clock(clock_type=ClockType.STEADY_TIME))
        if preload:
            for spec in self._table.values():
                self.topics[spec.name] = RawTopic(spec.name, spec.msgtype, self._profile(spec.qos), spec)

    def discover(self) -> list[RawTopic]:
        """Add topics of the ROS graph that match the selection and are not known yet."""
        new = []
        for name, types in self.node.get_topic_names_and_types():
            if name in self.topics or name in self.skipped or not self.selection.matches(name):
                continue
            if len(types) != 1:
                self.skipped[name] = f"published with {len(types)} types: {types}"
                continue
            infos = self.node.get_publishers_info_by_topic(name)
            if not infos:
                continue  # only subscribers so far: wait for a publisher to learn its QoS
            spec = self._table.get(name)
            if spec is not None:
                topic = RawTopic(name, spec.msgtype, self._profile(spec.qos), spec)
                self.topics[name] = topic
                new.append(topic)
                continue
            depth = max([10] + [int(i.qos_profile.depth) for i in infos])
            strongest = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=depth, reliability=ReliabilityPolicy.RELIABLE,
                                   durability=DurabilityPolicy.TRANSIENT_LOCAL)
            topic = RawTopic(name, types[0], served_by(strongest, [i.qos_profile for i in infos]))
            self.topics[name] = topic
            new.append(topic)
        return new

    def adapt(self) -> list[tuple[RawTopic, QoSProfile]]:
        """Subscribe again, as every publisher can serve them (:func:`served_by`), the topics whose
        subscription a publisher could not match; returns each with the QoS it had asked for."""
        changed = []
        for name in sorted(self._incompatible):
            self._incompatible.discard(name)
            topic = self.topics.get(name)
            if topic is None or topic.subscription is None:
                continue
            infos = self.node.get_publishers_info_by_topic(name)
            new = served_by(topic.qos, [i.qos_profile for i in infos])
            if (new.reliability, new.durability) == (topic.qos.reliability, topic.qos.durability):
                continue
            old = topic.qos
            self.unsubscribe(topic)
            topic.qos = new
            self.subscribe(topic)
            changed.append((topic, old))
        return changed

    def subscribe(self, topic: RawTopic) -> bool:
        """Start the raw subscription of a topic; False (and the reason in ``skipped``) when its
        message type is not installed here."""
        if topic.subscription is not None:
            return True
        try:
            cls = message_class(topic.msgtype)
        except (ImportError, AttributeError, ValueError) as e:
            self.skipped[topic.name] = f"message type {topic.msgtype} not importable: {e}"
            return False
        on_message = self.on_message
        if self.node.get_parameter("use_sim_time").value:
            clock = self.node.get_clock()

            def callback(data: bytes, _topic=topic) -> None:
                on_message(_topic, data, clock.now().nanoseconds)
        else:
            # ROS time is the system clock without use_sim_time; time.time_ns() reads it in
            # 0.4 us, Clock.now() takes about 10 us, a sixth of the recorder's cost per message.
            def callback(data: bytes, _topic=topic) -> None:
                on_message(_topic, data, time.time_ns())

        q = topic.qos
        reliable = q.reliability == ReliabilityPolicy.RELIABLE
        depth = max(int(q.depth), self.history_depth if reliable else self.history_depth // 10)
        sub_qos = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=depth, reliability=q.reliability,
                             durability=q.durability)
        events = SubscriptionEventCallbacks(
            incompatible_qos=lambda _info, _name=topic.name: self._incompatible.add(_name))
        owner = self._holder or self.node
        topic.subscription = owner.create_subscription(cls, topic.name, callback, sub_qos, raw=True,
                                                       callback_group=self.callback_group, event_callbacks=events)
        if self._holder is not None:
            # The QoS events still need an executor: the node's handles them.
            for handler in topic.subscription.event_handlers:
                self._holder.remove_waitable(handler)
                self.node.add_waitable(handler)
        return True

    def unsubscribe(self, topic: RawTopic) -> None:
        sub = topic.subscription
        if sub is None:
            return
        if self._holder is not None:
            self.take()  # what it holds still counts
            for handler in sub.event_handlers:
                self.node.remove_waitable(handler)
                self._holder.add_waitable(handler)  # destroy_subscription removes them from there
        (self._holder or self.node).destroy_subscription(sub)
        topic.subscription = None

    def take(self) -> int:
        """Hand every message queued in the batched subscriptions to ``on_message``, in the order
        they were received; returns how many. (Without ``take_every_s`` the executor's callbacks
        hand them on and this takes nothing.)"""
        if self._holder is None:
            return 0
        batch = []
        for topic in list(self.topics.values()):
            sub = topic.subscription
            if sub is None:
                continue
            last = self._last_received.get(topic.name, 0)
            with sub.handle:
                while (got := sub.handle.take_message(sub.msg_type, True)) is not None:
                    # A reliable reader hands samples on in order: one repaired after later ones
                    # arrived was received for us when its successors could be, not before.
                    last = max(last, got[1].get("received_timestamp") or time.time_ns())
                    batch.append((last, len(batch), topic, got[0]))
            self._last_received[topic.name] = last
        if not batch:
            return 0
        batch.sort(key=lambda item: item[:2])  # receive order across topics, each topic's own order kept
        if not self._sim_time:
            for received, _, topic, data in batch:
                self.on_message(topic, data, received)
            return len(batch)
        # The middleware stamps with the system clock; with use_sim_time the log time is ROS time
        # (0 until the first /clock message, as the clock says then).
        offset = self.node.get_clock().now().nanoseconds - time.time_ns()
        for received, _, topic, data in batch:
            self.on_message(topic, data, max(0, received + offset))
        return len(batch)

    def destroy(self) -> None:
        """Take what is queued, end every subscription, and remove the batched subscriptions' node."""
        self.take()
        for topic in self.topics.values():
            self.unsubscribe(topic)
        if self._holder is not None:
            self._holder.destroy_node()
            self._holder = None


__all__ = ["NOT_BY_DEFAULT", "ROSOUT", "ROSOUT_TOPIC", "RawTopic", "RawTopics", "default_selection", "message_class",
           "offered_profile", "profile", "served_by", "settings", "table_specs"]
