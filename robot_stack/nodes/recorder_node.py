"""Recorder node: writes the session to a rosbag2 bag (MCAP storage) under the run dir.

A thin shell over :class:`robot_stack.recording.bag.SessionBag`, in its own process so that
recording never costs the control path: raw subscriptions (CDR bytes, no deserialisation) to
the selected topics, each message written with its receive time. What arrived is taken in one
batch every ``take_every_s`` (a second node, ``recorder_subscriptions``, holds the
subscriptions; see ``robot_stack/nodes/raw_topics.py``), and with Fast DDS the process loads
``recorder_fastdds.xml`` (heartbeats answered after 100 ms) unless a profiles file is set:
together they took the recorder from about 6.4% to about 4% of a core on the sim graph. The session's topics are the
topic table's (``robot_stack/nodes/topics.py``, resolved in the node's namespace, default
``robot_stack``; ``{camera}`` topics for each of ``cameras``): subscribed at start-up with what
their publishers offer (``qos.offered`` in ``robot_stack/nodes/qos.py``: camera, state and
diagnostics streams reliable and transient local, so the samples their publishers keep reach the
recorder even when discovery matches them late; a publisher offering less is taken as it offers,
with a line in the log); other
matching topics are found by discovery every ``discover_every_s``.

Subscribes
  the selected topics (``topics``: names or fnmatch patterns; default every topic in the node's
  namespace, ``/diagnostics`` and ``/rosout``, without ``franka/debug/*`` and the raw
  SpaceMouse streams, ``spacemouse/*`` and ``sim/operator_joy``, which ``operator`` carries): cameras, robot state,
  operator and policy commands, step records, episode summaries, policy versions, status,
  health and logs. Services (homing, episode resets) are not topics and are not recorded.

Writes ``<bag_dir>/<bag_prefix>_<YYYY_MM_DD-HH_MM_SS>/`` (``metadata.yaml`` + one ``.mcap``);
the metadata's ``custom_data`` holds the namespace the recorder ran in (``namespace``). With
``images: jpeg`` camera images are stored as ``<topic>/compressed``
(``sensor_msgs/CompressedImage``). On a clean stop (Ctrl-C, SIGTERM) it keeps taking messages
the other nodes still publish while they close (until they have left the graph, ``drain_s`` at
most), then finishes the bag and logs what it holds and the CPU time the recorder process used.

Parameters: every field of :class:`RecorderNodeConfig`; see config/recorder.yaml.
"""
from __future__ import annotations

import os
import pathlib
import resource
import time
from dataclasses import dataclass
from typing import MutableMapping

from rclpy.clock import Clock, ClockType
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy

from robot_stack.nodes import topics as topic_table
from robot_stack.nodes.params import declare_config, run_node
from robot_stack.nodes.raw_topics import RawTopic, RawTopics, default_selection, settings, table_specs
from robot_stack.recording.bag import CHUNK_COMPRESSIONS, IMAGE_MODES, SessionBag, default_bag_name
from robot_stack.recording.schemas import MessageTypes, UnknownMessageType
from robot_stack.recording.topics import split_patterns
from robot_stack.types.config import ConfigError


@dataclass(frozen=True)
class RecorderNodeConfig:
    """Recorder parameters."""

    bag_dir: str = "runs/bags"
    """Folder receiving one bag per run, named <bag_prefix>_<YYYY_MM_DD-HH_MM_SS>."""
    bag_prefix: str = "session"
    """First part of the bag folder's name."""
    topics: str = ""
    """Topics to record, names or fnmatch patterns separated by commas or spaces (relative ones
    in the node's namespace); "" = every topic in the namespace, /diagnostics and /rosout."""
    exclude: str = ""
    """Patterns to leave out of the selection (with the default selection, added to its exclusions:
    franka/debug/* and the raw SpaceMouse streams that repeat operator)."""
    cameras: str = "front wrist"
    """Camera names whose cameras/<name>/... topics are subscribed at start-up (others are found
    by discovery, a second or so later)."""
    images: str = "raw"
    """Camera images as sent (raw) or JPEG-compressed as <topic>/compressed (jpeg; 16-bit depth as PNG)."""
    jpeg_quality: int = 90
    """JPEG quality with images: jpeg, 1-100."""
    chunk_compression: str = "zstd"
    """Compression of the MCAP chunks: zstd or none."""
    discover_every_s: float = 1.0
    """Look for new matching topics in the graph this often, s (0: only the session's known topics)."""
    drain_s: float = 4.0
    """On a clean stop, keep recording until the other nodes have left the graph and 0.3 s passed
    without a message, for at most this long, s (their last messages and log lines; keep it under
    ros2 launch's 5 s before SIGTERM)."""
    kept_samples: bool = True
    """Ask the table's publishers for what they offer (camera, state and diagnostics streams:
    reliable, transient local, their last one to two seconds kept), so a publisher that discovery matches
    late loses nothing; false: subscribe as live subscribers do (best effort, volatile), less
    CPU (no heartbeats to answer), but a publisher's first second may be missing."""
    take_every_s: float = 0.05
    """Take the arrived messages in one batch this often, s (log times are still each message's
    receive time); 0: a callback per message, a wake-up of the process for every message."""
    history_depth: int = 1000
    """Queue of each subscription, messages (best-effort topics a tenth): how far the recorder may
    fall behind on a busy machine without losing a message."""
    report_every_s: float = 60.0
    """Log what the bag holds this often, s (0: only at the end)."""

    def validate(self) -> None:
        if not self.bag_dir:
            raise ValueError("bag_dir must not be empty")
        if self.images not in IMAGE_MODES:
            raise ValueError(f"images must be one of {', '.join(IMAGE_MODES)}, got '{self.images}'")
        if self.chunk_compression not in CHUNK_COMPRESSIONS:
            raise ValueError(f"chunk_compression must be one of {', '.join(CHUNK_COMPRESSIONS)}, "
                             f"got '{self.chunk_compression}'")
        if not 1 <= self.jpeg_quality <= 100:
            raise ValueError(f"jpeg_quality must be in [1, 100], got {self.jpeg_quality}")
        if self.history_depth < 1:
            raise ValueError(f"history_depth must be >= 1, got {self.history_depth}")
        for name in ("discover_every_s", "drain_s", "report_every_s", "take_every_s"):
            if not getattr(self, name) >= 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")


class RecorderNode(Node):
    """Thin node over SessionBag."""

    def __init__(self, **node_kwargs):
        node_kwargs.setdefault("namespace", topic_table.DEFAULT_NAMESPACE)
        super().__init__("recorder", **node_kwargs)
        self.config: RecorderNodeConfig = declare_config(self, RecorderNodeConfig)
        cfg = self.config
        ns = self.get_namespace()
        self.selection = default_selection(cfg.topics, cfg.exclude, ns)
        path = pathlib.Path(cfg.bag_dir).expanduser() / default_bag_name(cfg.bag_prefix)
        if path.exists():
            raise ConfigError(f"bag folder {path} exists already")
        self._last_message = time.monotonic()
        self._t0 = time.monotonic()
        self._cpu0 = self._cpu_s()
        # Subscribe first, before the message definitions are loaded and the bag is opened, so
        # that what the other nodes publish at start-up is already queued for us (callbacks run
        # only once the node spins, after __init__).
        self.topics = RawTopics(self, self.selection, self._on_message, table_specs(ns, split_patterns(cfg.cameras)),
                                history_depth=cfg.history_depth, offered=cfg.kept_samples,
                                take_every_s=cfg.take_every_s)
        for topic in self.topics.topics.values():
            if not self.topics.subscribe(topic):
                self.get_logger().warning(f"not recording {topic.name}: {self.topics.skipped[topic.name]}")
        self.bag = SessionBag(path, MessageTypes(), images=cfg.images, jpeg_quality=cfg.jpeg_quality,
                              chunk_compression=cfg.chunk_compression, custom_data={"namespace": ns})
        try:
            self.bag.open()
        except OSError as e:
            raise ConfigError(f"cannot create the bag {path}: {e}") from None
        for topic in list(self.topics.topics.values()):
            if topic.subscription is not None:
                self._add_to_bag(topic)
        # Wall-clock timers, with use_sim_time too (a paused sim clock would stop them).
        steady = Clock(clock_type=ClockType.STEADY_TIME)
        if cfg.discover_every_s > 0:
            self.create_timer(cfg.discover_every_s, self._discover, clock=steady)
        if cfg.report_every_s > 0:
            self.create_timer(cfg.report_every_s, self._report, clock=steady)
        self.get_logger().info(f"recording {len(self.topics.topics)} topics of {ns} to {path} "
                               f"(images {cfg.images}, chunks {cfg.chunk_compression}; selection "
                               f"{' '.join(self.selection.include)}"
                               + (f" minus {' '.join(self.selection.exclude)}" if self.selection.exclude else "")
                               + ")")

    def _add_to_bag(self, topic: RawTopic) -> bool:
        try:
            self.bag.add_topic(topic.name, topic.msgtype, settings(topic.qos))
            return True
        except UnknownMessageType as e:
            self.topics.unsubscribe(topic)
            self.topics.skipped[topic.name] = str(e)
            self.get_logger().warning(f"not recording {topic.name}: {e}")
            return False

    def _record(self, topic: RawTopic) -> None:
        """A topic found by discovery: into the bag, then subscribed."""
        if self._add_to_bag(topic) and not self.topics.subscribe(topic):
            self.get_logger().warning(f"not recording {topic.name}: {self.topics.skipped[topic.name]}")

    def _on_message(self, topic: RawTopic, data: bytes, t_ns: int) -> None:
        self._last_message = time.monotonic()
        self.bag.write(topic.name, data, t_ns)

    def _discover(self) -> None:
        for topic, asked in self.topics.adapt():
            self._add_to_bag(topic)  # the QoS the bag records for it, unless it has messages already
            self.get_logger().info(
                f"{topic.name}: a publisher does not offer {_describe(asked)}; recording it "
                f"{_describe(topic.qos)} (the first messages of a publisher matched late may be missing)")
        for topic in self.topics.discover():
            self.get_logger().info(f"recording {topic.name} ({topic.msgtype}), found in the graph")
            self._record(topic)

    @staticmethod
    def _cpu_s() -> float:
        ru = resource.getrusage(resource.RUSAGE_SELF)
        return ru.ru_utime + ru.ru_stime

    def cpu_share(self) -> float:
        """CPU time of this process since start-up / wall time (1.0 = one core busy)."""
        return (self._cpu_s() - self._cpu0) / max(time.monotonic() - self._t0, 1e-9)

    def _report(self) -> None:
        s = self.bag.summary
        self.get_logger().info(f"bag: {s.messages} messages on {len(s.topics)} topics, "
                               f"{sum(t.bytes for t in s.topics.values()) / 1e6:.1f} MB of messages, "
                               f"recorder CPU {100 * self.cpu_share():.1f}% of a core")

    def _still_published(self) -> list[str]:
        """The recorded topics another node still publishes (/rosout aside: every node, this one
        too, publishes its log there)."""
        return sorted(name for name, t in self.topics.topics.items()
                      if t.subscription is not None and name != "/rosout" and self.count_publishers(name) > 0)

    def _drain(self) -> None:
        """Take what is still arriving: the other nodes stop when we do (one Ctrl-C for the whole
        launch) and publish their last messages and log lines while they close. Spin until they
        are gone from the graph and nothing came for 0.3 s, for ``drain_s`` at most."""
        executor = self.executor
        if executor is None or not self.context.ok() or self.config.drain_s <= 0:
            return
        end = time.monotonic() + self.config.drain_s
        while time.monotonic() < end:
            if time.monotonic() - self._last_message >= 0.3 and not self._still_published():
                return
            executor.spin_once(timeout_sec=0.05)
        still = self._still_published()
        if still:
            self.get_logger().warning(f"stopped recording after drain_s={self.config.drain_s} s while "
                                      f"{len(still)} topics still had publishers ({', '.join(still[:5])}"
                                      f"{', ...' if len(still) > 5 else ''}): what they publish while closing "
                                      "is not in the bag (a longer drain_s waits for them)")

    def close(self) -> None:
        """Drain, then finish the bag and log its contents and the recorder's CPU use."""
        self._drain()
        self.topics.take()
        cpu = self.cpu_share()
        wall = time.monotonic() - self._t0
        s = self.bag.close()
        size_mb = s.size_bytes / 1e6
        self.get_logger().info(
            f"bag {s.path}: {s.messages} messages on {len(s.topics)} topics, {size_mb:.1f} MB in {wall:.0f} s "
            f"({size_mb / max(wall / 60, 1e-9):.1f} MB/min); recorder CPU {100 * cpu:.1f}% of a core"
            + (f"; {s.compress_errors} images could not be compressed" if s.compress_errors else ""))
        for name, stats in sorted(s.topics.items()):
            self.get_logger().info(f"  {name}: {stats.messages} ({stats.msgtype})")


    def destroy_node(self) -> None:
        self.topics.destroy()
        super().destroy_node()


def _describe(q: QoSProfile) -> str:
    return (("reliable" if q.reliability == ReliabilityPolicy.RELIABLE else "best effort") + ", "
            + ("transient local" if q.durability == DurabilityPolicy.TRANSIENT_LOCAL else "volatile"))


def _events_executor(_node):
    # rclpy's C++ events executor: a fraction of the single-threaded executor's overhead per
    # callback, which is most of the recorder's cost (hundreds of small messages per second).
    from rclpy.experimental import EventsExecutor

    return EventsExecutor()


DDS_PROFILE = pathlib.Path(__file__).with_name("recorder_fastdds.xml")
"""Fast DDS profile of the recorder's readers: heartbeats answered after 100 ms (see the file)."""

_FAST_DDS = ("rmw_fastrtps_cpp", "rmw_fastrtps_dynamic_cpp")


def use_dds_profile(environ: MutableMapping[str, str]) -> bool:
    """Point Fast DDS at :data:`DDS_PROFILE` in ``environ`` (the process environment, before the
    ROS context starts), unless another middleware is selected or a profiles file is set already
    (a lab's own DDS configuration wins; the recorder then costs about 0.7 points of a core
    more on the sim graph). True when it did."""
    if (environ.get("RMW_IMPLEMENTATION") or "rmw_fastrtps_cpp") not in _FAST_DDS:  # unset: Fast DDS
        return False
    if any(environ.get(name) for name in ("FASTDDS_DEFAULT_PROFILES_FILE", "FASTRTPS_DEFAULT_PROFILES_FILE")):
        return False
    environ["FASTDDS_DEFAULT_PROFILES_FILE"] = str(DDS_PROFILE)
    return True


def main(args: list[str] | None = None) -> int:
    use_dds_profile(os.environ)
    return run_node(RecorderNode, args, make_executor=_events_executor)


if __name__ == "__main__":
    raise SystemExit(main())
