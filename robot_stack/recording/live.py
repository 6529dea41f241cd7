"""The live session served to Foxglove over its WebSocket protocol (ROS-free, foxglove-sdk).

:class:`LiveServer` runs a Foxglove WebSocket server and turns each ROS topic it is told about
(``advertise(topic, msgtype)``) into Foxglove channels:

* by default one channel of the same name carrying the CDR bytes as received, with the type's
  ``ros2msg`` schema (Foxglove decodes ROS 2 messages itself: image, plot, 3D, state-transition
  and raw-message panels all work on them);
* ``sensor_msgs/Image`` with ``images="jpeg"``: ``<topic>/compressed`` (``CompressedImage``),
  which a browser on a laptop can keep up with at camera rates;
* a ``PoseStamped`` listed in ``transforms`` (the EE pose, the cameras' poses): also a
  ``foxglove.FrameTransforms`` on ``transforms_topic`` (``<namespace>/live/transforms``; parent =
  the pose's frame_id, child = the name given), so the 3D panel shows the frames move;
* a ``robot_stack/LearnerStats`` listed in ``metrics``: also its ``metric_names`` /
  ``metric_values`` (losses, alpha, counters) as one JSON object on the channel given
  (``<namespace>/live/learner_metrics``), so a plot can name them (``.critic_loss``), which
  parallel arrays do not allow.

Status and statistics are typed messages (``robot_stack/FrankaStatus``, ``LearnerStats``,
``diagnostic_msgs/DiagnosticArray``): their fields plot from the CDR channel directly.

Only what a Foxglove client subscribes to costs anything: :meth:`wanted_topics` says which ROS
topics are needed right now (the node subscribes to exactly those), and ``publish(topic, data,
t_ns)`` is handed the CDR bytes of a message received on one of them.
"""
from __future__ import annotations

import json
import logging
import math
import threading
from dataclasses import dataclass, field

from robot_stack.recording.images import COMPRESSED_IMAGE, IMAGE, ImageCompressor, compressed_topic
from robot_stack.recording.schemas import MessageTypes

log = logging.getLogger(__name__)

TRANSFORMS = "live/transforms"
"""foxglove.FrameTransforms derived from the poses listed in ``transforms`` (relative to the
namespace; not a ROS topic, a Foxglove channel)."""
LEARNER_METRICS = "live/learner_metrics"
"""The learner's named metrics as JSON (relative to the namespace; a Foxglove channel)."""
LIVE_IMAGE_MODES = ("raw", "jpeg")
_POSE = "geometry_msgs/msg/PoseStamped"
_LEARNER_STATS = "robot_stack/msg/LearnerStats"


def channel_name(relative: str, namespace: str = "/robot_stack") -> str:
    """``live/transforms`` in ``namespace`` -> ``/robot_stack/live/transforms``."""
    ns = "/".join(p for p in namespace.split("/") if p)
    return f"/{ns}/{relative}" if ns else f"/{relative}"


@dataclass
class _Source:
    """A ROS topic and the Foxglove channels fed from it."""

    topic: str
    msgtype: str
    kind: str  # "cdr", "image"
    channel: object
    frame: str | None = None  # child frame of a FrameTransform derived from this pose topic
    metrics: object | None = None  # JSON channel of the named metrics derived from LearnerStats
    channel_topics: list[str] = field(default_factory=list)


class LiveServer:
    """Foxglove WebSocket server fed with CDR bytes; see the module docstring."""

    def __init__(self, types: MessageTypes | None = None, *, host: str = "127.0.0.1", port: int = 8765,
                 images: str = "jpeg", jpeg_quality: int = 80, transforms: dict[str, str] | None = None,
                 transforms_topic: str = channel_name(TRANSFORMS), metrics: dict[str, str] | None = None,
                 name: str = "robot_stack"):
        if images not in LIVE_IMAGE_MODES:
            raise ValueError(f"images must be one of {LIVE_IMAGE_MODES}, got '{images}'")
        self.types = types or MessageTypes()
        self.host, self.port, self.name = host, int(port), name
        self.images = images
        self.jpeg_quality = jpeg_quality
        self.transforms = dict(transforms or {})
        self.transforms_topic = transforms_topic
        self.metrics = dict(metrics or {})
        self._sources: dict[str, _Source] = {}
        self._by_channel: dict[str, set[str]] = {}  # Foxglove channel topic -> ROS topics feeding it
        self._subscribed: dict[str, int] = {}  # Foxglove channel topic -> client subscriptions
        self._lock = threading.Lock()
        self._context = None
        self._server = None
        self._tf_channel = None
        self._compressor: ImageCompressor | None = None
        self.errors = 0

    # ------------------------------------------------------------------------- lifecycle
    def start(self) -> int:
        """Start serving; returns the port (an ephemeral one when ``port`` is 0)."""
        import foxglove

        self._context = foxglove.Context()
        if self.images == "jpeg":
            self._compressor = ImageCompressor(self.types, self.jpeg_quality)
        self._server = foxglove.start_server(name=self.name, host=self.host, port=self.port,
                                             server_listener=_Listener(self), context=self._context)
        self.port = int(self._server.port)
        return self.port

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None

    # ------------------------------------------------------------------------- channels
    def advertise(self, topic: str, msgtype: str) -> list[str]:
        """Offer a ROS topic to Foxglove clients; returns the Foxglove channel topics it feeds.
        Raises UnknownMessageType when the type's definition cannot be found."""
        import foxglove

        with self._lock:
            if topic in self._sources:
                return list(self._sources[topic].channel_topics)
        kind = "image" if (msgtype == IMAGE and self._compressor is not None) else "cdr"
        name, stored = (compressed_topic(topic), COMPRESSED_IMAGE) if kind == "image" else (topic, msgtype)
        text, _ = self.types.definition(stored)
        schema = foxglove.Schema(name=stored, encoding="ros2msg", data=text.encode())
        channel = foxglove.Channel(name, schema=schema, message_encoding="cdr", context=self._context)
        source = _Source(topic, msgtype, kind, channel, channel_topics=[name])
        if msgtype == _POSE and topic in self.transforms:
            source.frame = self.transforms[topic]
            source.channel_topics.append(self.transforms_topic)
            if self._tf_channel is None:
                from foxglove.channels import FrameTransformsChannel

                self._tf_channel = FrameTransformsChannel(self.transforms_topic, context=self._context)
        if msgtype == _LEARNER_STATS and topic in self.metrics:
            source.metrics = foxglove.Channel(self.metrics[topic], schema={"type": "object"}, context=self._context)
            source.channel_topics.append(self.metrics[topic])
        with self._lock:
            self._sources[topic] = source
            for ch in source.channel_topics:
                self._by_channel.setdefault(ch, set()).add(topic)
        return list(source.channel_topics)

    def advertised(self) -> set[str]:
        with self._lock:
            return set(self._sources)

    def _on_subscribe(self, channel_topic: str, delta: int) -> None:
        with self._lock:
            n = self._subscribed.get(channel_topic, 0) + delta
            if n > 0:
                self._subscribed[channel_topic] = n
            else:
                self._subscribed.pop(channel_topic, None)

    def wanted_topics(self) -> set[str]:
        """ROS topics at least one Foxglove client needs now."""
        with self._lock:
            return {t for ch in self._subscribed for t in self._by_channel.get(ch, ())}

    # ------------------------------------------------------------------------- data
    def publish(self, topic: str, data: bytes, t_ns: int) -> None:
        """Forward one message of an advertised ROS topic (CDR bytes, receive time in ns)."""
        source = self._sources.get(topic)
        if source is None:
            return
        try:
            if source.kind == "cdr":
                source.channel.log(data, log_time=t_ns)
            else:
                source.channel.log(self._compressor.compress(data), log_time=t_ns)
            if source.frame is not None and self._tf_channel is not None:
                self._tf_channel.log(self._transform(data, source.frame), log_time=t_ns)
            if source.metrics is not None:
                stats = self.types.deserialize(data, _LEARNER_STATS)
                if len(stats.metric_names) != len(stats.metric_values):
                    raise ValueError(f"{len(stats.metric_names)} metric names but {len(stats.metric_values)} values")
                named = {str(n): (float(v) if math.isfinite(v) else None)  # JSON has no NaN
                         for n, v in zip(stats.metric_names, stats.metric_values)}
                source.metrics.log(json.dumps(named).encode(), log_time=t_ns)
        except (ValueError, KeyError) as e:  # a malformed message: count it, keep serving
            self.errors += 1
            if self.errors == 1:
                log.warning("live view: a message on %s could not be converted: %s", topic, e)

    def _transform(self, data: bytes, child: str):
        from foxglove.messages import FrameTransform, FrameTransforms, Quaternion, Timestamp, Vector3

        pose = self.types.deserialize(data, _POSE)
        p, q = pose.pose.position, pose.pose.orientation
        return FrameTransforms(transforms=[FrameTransform(
            timestamp=Timestamp(int(pose.header.stamp.sec), int(pose.header.stamp.nanosec)),
            parent_frame_id=pose.header.frame_id or "base", child_frame_id=child,
            translation=Vector3(x=float(p.x), y=float(p.y), z=float(p.z)),
            rotation=Quaternion(x=float(q.x), y=float(q.y), z=float(q.z), w=float(q.w)))])


class _Listener:
    """foxglove ServerListener: counts client subscriptions per channel (called from the SDK's thread)."""

    def __init__(self, server: LiveServer):
        self.server = server

    def on_subscribe(self, client, channel) -> None:
        self.server._on_subscribe(channel.topic, +1)

    def on_unsubscribe(self, client, channel) -> None:
        self.server._on_subscribe(channel.topic, -1)


__all__ = ["LEARNER_METRICS", "LIVE_IMAGE_MODES", "LiveServer", "TRANSFORMS", "channel_name"]
