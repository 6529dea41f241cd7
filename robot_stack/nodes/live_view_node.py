"""Live view node: serves the running session to Foxglove over its WebSocket protocol.

A thin shell over :class:`robot_stack.recording.live.LiveServer`: every ``discover_every_s`` it
offers the selected topics that have publishers (default every topic in the node's namespace,
``/diagnostics`` and ``/rosout``; types and QoS from the topic table, ``robot_stack/nodes/topics.py``)
as Foxglove channels, and holds a raw subscription (CDR bytes, no deserialisation) only to the
topics a Foxglove client has subscribed to, so an unwatched session costs it nothing but
discovery. Open Foxglove, connect to ``ws://<host>:<port>`` and import the layout
``foxglove/robot_stack_layout.json`` (made for the default namespace ``robot_stack``; ``python -m
robot_stack.recording.layout --namespace arm1 FILE`` writes one for another): cameras, EE pose and
twist (3D and plots), intervention state, policy vs executed command, episode outcomes and
learner statistics.

Serves ``ws://<host>:<port>`` (subprotocol ``foxglove.sdk.v1``); ``host: 0.0.0.0`` to let
other machines connect. With ``images: jpeg`` (default) camera images go out as
``<topic>/compressed``. Typed messages (the franka node's FrankaStatus, the learner's
LearnerStats, /diagnostics) go out as CDR with their ``ros2msg`` schemas, their fields plottable;
the learner's named metrics also as JSON on ``<namespace>/live/learner_metrics``; the EE and
camera poses also as ``foxglove.FrameTransforms`` on ``<namespace>/live/transforms``.

Parameters: every field of :class:`LiveViewNodeConfig`; see config/live_view.yaml.
"""
from __future__ import annotations

from dataclasses import dataclass

from rclpy.node import Node

from robot_stack.nodes import topics as topic_table
from robot_stack.nodes.params import declare_config, run_node
from robot_stack.nodes.raw_topics import RawTopic, RawTopics, default_selection, table_specs
from robot_stack.recording.live import LEARNER_METRICS, LIVE_IMAGE_MODES, TRANSFORMS, LiveServer, channel_name
from robot_stack.recording.schemas import MessageTypes, UnknownMessageType
from robot_stack.recording.topics import absolute, split_patterns
from robot_stack.types.config import ConfigError

_CAMERA_POSE = topic_table.CAMERA_POSE.name


@dataclass(frozen=True)
class LiveViewNodeConfig:
    """Live view parameters."""

    host: str = "127.0.0.1"
    """Address the WebSocket server binds (0.0.0.0: every interface, for a viewer on another machine)."""
    port: int = 8765
    """WebSocket port (Foxglove's default; 0 picks a free one, logged at start)."""
    topics: str = ""
    """Topics to offer, names or fnmatch patterns separated by commas or spaces (relative ones in
    the node's namespace); "" = every topic in the namespace, /diagnostics and /rosout."""
    exclude: str = ""
    """Patterns left out of the selection."""
    images: str = "jpeg"
    """Camera images as sent (raw) or JPEG-compressed as <topic>/compressed (jpeg)."""
    jpeg_quality: int = 80
    """JPEG quality with images: jpeg, 1-100."""
    transforms: str = (f"{topic_table.EE_POSE.name}=ee {_CAMERA_POSE.format(camera='front')}=front_camera "
                       f"{_CAMERA_POSE.format(camera='wrist')}=wrist_camera")
    """PoseStamped topics also served as frame transforms on <namespace>/live/transforms, as
    topic=child_frame pairs (relative topics in the node's namespace)."""
    discover_every_s: float = 1.0
    """Look for new topics this often, s."""
    subscribe_every_s: float = 0.2
    """Match the ROS subscriptions to the Foxglove clients' this often, s."""

    def validate(self) -> None:
        if self.images not in LIVE_IMAGE_MODES:
            raise ValueError(f"images must be one of {', '.join(LIVE_IMAGE_MODES)}, got '{self.images}'")
        if not 0 <= self.port <= 65535:
            raise ValueError(f"port must be in [0, 65535], got {self.port}")
        if not 1 <= self.jpeg_quality <= 100:
            raise ValueError(f"jpeg_quality must be in [1, 100], got {self.jpeg_quality}")
        for pair in split_patterns(self.transforms):
            if pair.count("=") != 1 or not all(pair.split("=")):
                raise ValueError(f"transforms: '{pair}' is not topic=child_frame")
        for name in ("discover_every_s", "subscribe_every_s"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)}")


class LiveViewNode(Node):
    """Thin node over LiveServer."""

    def __init__(self, **node_kwargs):
        node_kwargs.setdefault("namespace", topic_table.DEFAULT_NAMESPACE)
        super().__init__("live_view", **node_kwargs)
        self.config: LiveViewNodeConfig = declare_config(self, LiveViewNodeConfig)
        cfg = self.config
        ns = self.get_namespace()
        transforms = dict(pair.split("=") for pair in split_patterns(cfg.transforms))
        self.server = LiveServer(MessageTypes(), host=cfg.host, port=cfg.port, images=cfg.images,
                                 jpeg_quality=cfg.jpeg_quality,
                                 transforms={absolute(t, ns): child for t, child in transforms.items()},
                                 transforms_topic=channel_name(TRANSFORMS, ns),
                                 metrics={topic_table.LEARNER_STATS.resolve(ns): channel_name(LEARNER_METRICS, ns)})
        self.topics = RawTopics(self, default_selection(cfg.topics, cfg.exclude, ns), self._on_message,
                                table_specs(ns), preload=False)
        try:
            port = self.server.start()
        except (OSError, RuntimeError) as e:  # port in use, address not available
            raise ConfigError(f"live view cannot serve on {cfg.host}:{cfg.port}: {e}") from None
        self.create_timer(cfg.discover_every_s, self._discover)
        self.create_timer(cfg.subscribe_every_s, self._match_subscriptions)
        self.get_logger().info(f"serving the session to Foxglove on ws://{cfg.host}:{port} "
                               f"(layout: foxglove/robot_stack_layout.json)")

    def _discover(self) -> None:
        for topic in self.topics.discover():
            try:
                self.server.advertise(topic.name, topic.msgtype)
            except UnknownMessageType as e:
                self.topics.skipped[topic.name] = str(e)
                self.get_logger().warning(f"not serving {topic.name}: {e}")

    def _match_subscriptions(self) -> None:
        wanted = self.server.wanted_topics()
        for name, topic in self.topics.topics.items():
            if name in wanted and topic.subscription is None and name not in self.topics.skipped:
                if not self.topics.subscribe(topic):
                    self.get_logger().warning(f"not serving {name}: {self.topics.skipped[name]}")
            elif name not in wanted and topic.subscription is not None:
                self.topics.unsubscribe(topic)

    def _on_message(self, topic: RawTopic, data: bytes, t_ns: int) -> None:
        self.server.publish(topic.name, data, t_ns)

    def close(self) -> None:
        self.server.stop()


def main(args: list[str] | None = None) -> int:
    return run_node(LiveViewNode, args)


if __name__ == "__main__":
    raise SystemExit(main())
