"""A session's rosbag2 bag in MCAP storage, written from CDR bytes and read back (ROS-free).

:class:`SessionBag` writes what the recorder node's raw subscriptions receive: ``write(topic,
cdr_bytes, t_ns)``, one call per message, with no deserialisation (images that are to be
compressed excepted, see :mod:`robot_stack.recording.images`). The bag is a folder holding
``metadata.yaml`` and one ``.mcap`` file (rosbag2 format version 9, the ``ros2`` MCAP profile,
``ros2msg`` schemas, ``cdr`` messages, each topic's offered QoS and type hash), written with
rosbags; ``ros2 bag info``/``ros2 bag play`` of ROS 2 Jazzy and Kilted and Foxglove read it. A
topic enters the bag with its first message (topics that stayed silent are not listed). Chunks
of about 1 MB are zstd-compressed by default (``chunk_compression``): MCAP readers decompress
them transparently, and ``ros2 bag info`` shows no compression since it is inside the storage.

The ``.mcap`` file and ``metadata.yaml`` are finished by :meth:`SessionBag.close`. A killed
recorder leaves the chunks written so far (up to the last 1 MB) without the MCAP summary or
``metadata.yaml``; ``ros2 bag reindex`` and ``mcap recover`` repair that.

:func:`read_messages` iterates over a bag's messages (time order) and :func:`bag_info`
summarises it, both through rosbags' reader.
"""
from __future__ import annotations

import datetime
import logging
import pathlib
import threading
from dataclasses import dataclass, field
from typing import Iterable, Iterator

from robot_stack.recording.images import IMAGE, ImageCompressor, compressed_topic
from robot_stack.recording.schemas import MessageTypes

log = logging.getLogger(__name__)

CHUNK_COMPRESSIONS = ("zstd", "none")
IMAGE_MODES = ("raw", "jpeg")


@dataclass(frozen=True)
class QosSettings:
    """The QoS a topic's publishers offer, written to the bag for ``ros2 bag play`` to reuse."""

    reliable: bool = True
    transient_local: bool = False
    depth: int = 10


@dataclass
class TopicStats:
    """What the bag holds of one topic."""

    msgtype: str
    messages: int = 0
    bytes: int = 0


@dataclass
class BagSummary:
    """A written or read bag: path, per-topic stats, time span."""

    path: pathlib.Path
    topics: dict[str, TopicStats] = field(default_factory=dict)
    start_ns: int = 0
    end_ns: int = 0
    compress_errors: int = 0
    custom_data: dict[str, str] = field(default_factory=dict)
    """The metadata's ``custom_data`` (the recorder writes ``namespace``: where it recorded)."""

    @property
    def messages(self) -> int:
        return sum(t.messages for t in self.topics.values())

    @property
    def duration_s(self) -> float:
        return max(0, self.end_ns - self.start_ns) * 1e-9

    @property
    def size_bytes(self) -> int:
        return sum(p.stat().st_size for p in self.path.iterdir() if p.is_file()) if self.path.is_dir() else 0

    def describe(self) -> str:
        """A few lines like ``ros2 bag info``'s."""
        lines = [f"bag: {self.path}", f"size: {self.size_bytes / 1e6:.1f} MB, {self.messages} messages, "
                 f"{self.duration_s:.1f} s"]
        if self.start_ns:
            start = datetime.datetime.fromtimestamp(self.start_ns * 1e-9, tz=datetime.timezone.utc)
            lines.append(f"start: {start.isoformat(timespec='milliseconds')}")
        lines += [f"{k}: {v}" for k, v in sorted(self.custom_data.items())]
        width = max((len(t) for t in self.topics), default=0)
        for name in sorted(self.topics):
            t = self.topics[name]
            lines.append(f"  {name:{width}s}  {t.messages:7d}  {t.msgtype}")
        return "\n".join(lines)


def default_bag_name(prefix: str = "session", now: datetime.datetime | None = None) -> str:
    """``session_2025_01_31-14_05_09``: rosbag2's naming with a prefix."""
    now = now or datetime.datetime.now()
    return f"{prefix}_{now:%Y_%m_%d-%H_%M_%S}"


def _qos(q: QosSettings):
    from rosbags.interfaces import Qos, QosDurability, QosHistory, QosLiveliness, QosReliability, QosTime

    zero = QosTime(0, 0)
    # rosbag2 writes "infinite" (unset) durations as the largest value; 0 reads the same in play.
    return Qos(QosHistory.KEEP_LAST, int(q.depth),
               QosReliability.RELIABLE if q.reliable else QosReliability.BEST_EFFORT,
               QosDurability.TRANSIENT_LOCAL if q.transient_local else QosDurability.VOLATILE,
               zero, zero, QosLiveliness.AUTOMATIC, zero, False)


class SessionBag:
    """A rosbag2 bag (MCAP) written from serialised messages; see the module docstring.

    ``images="jpeg"`` writes every ``sensor_msgs/Image`` topic as ``<topic>/compressed``
    (``sensor_msgs/CompressedImage``, JPEG at ``jpeg_quality``; 16-bit depth as PNG).
    ``custom_data`` (string keys and values) goes to the metadata's ``custom_data``.
    Thread-safe: ``write`` may be called from several threads.
    """

    def __init__(self, path: str | pathlib.Path, types: MessageTypes | None = None, *, images: str = "raw",
                 jpeg_quality: int = 90, chunk_compression: str = "zstd", custom_data: dict[str, str] | None = None):
        if images not in IMAGE_MODES:
            raise ValueError(f"images must be one of {IMAGE_MODES}, got '{images}'")
        if chunk_compression not in CHUNK_COMPRESSIONS:
            raise ValueError(f"chunk_compression must be one of {CHUNK_COMPRESSIONS}, got '{chunk_compression}'")
        self.path = pathlib.Path(path)
        self.types = types or MessageTypes()
        self.images = images
        self.jpeg_quality = jpeg_quality
        self.chunk_compression = chunk_compression
        self._writer = None
        self._compressor: ImageCompressor | None = None
        self._topics: dict[str, tuple[str, QosSettings]] = {}
        self._connections: dict[str, object] = {}
        self._lock = threading.Lock()
        self.summary = BagSummary(self.path, custom_data={str(k): str(v) for k, v in (custom_data or {}).items()})

    # ---------------------------------------------------------------------------- lifecycle
    def open(self) -> "SessionBag":
        """Create the bag folder (it must not exist) and the MCAP file."""
        from rosbags.rosbag2 import StoragePlugin, Writer
        from rosbags.rosbag2.enums import CompressionFormat, CompressionMode

        self.path.parent.mkdir(parents=True, exist_ok=True)
        writer = Writer(self.path, version=9, storage_plugin=StoragePlugin.MCAP)
        if self.chunk_compression == "zstd":
            writer.set_compression(CompressionMode.STORAGE, CompressionFormat.ZSTD)
        for key, value in self.summary.custom_data.items():
            writer.set_custom_data(key, value)
        writer.open()
        self._writer = writer
        if self.images == "jpeg":
            self._compressor = ImageCompressor(self.types, self.jpeg_quality)
        return self

    def __enter__(self) -> "SessionBag":
        return self.open()

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> BagSummary:
        """Finish the MCAP file and write metadata.yaml; returns what the bag holds."""
        with self._lock:
            if self._writer is not None:
                self._writer.close()
                self._writer = None
        return self.summary

    # ---------------------------------------------------------------------------- writing
    def add_topic(self, topic: str, msgtype: str, qos: QosSettings = QosSettings()) -> str:
        """Declare a topic before its messages are written; returns the topic name it is
        written under (``<topic>/compressed`` for a compressed image topic). Raises
        UnknownMessageType when its definition cannot be found."""
        self.types.definition(msgtype)  # fail here, not at the first message
        with self._lock:
            self._topics[topic] = (msgtype, qos)
        return self.stored_topic(topic, msgtype)

    def stored_topic(self, topic: str, msgtype: str) -> str:
        return compressed_topic(topic) if (self.images == "jpeg" and msgtype == IMAGE) else topic

    def _connection(self, topic: str):
        conn = self._connections.get(topic)
        if conn is None:
            msgtype, qos = self._topics[topic]
            if self._compressor is not None and msgtype == IMAGE:
                from robot_stack.recording.images import COMPRESSED_IMAGE

                name, stored_type = compressed_topic(topic), COMPRESSED_IMAGE
            else:
                name, stored_type = topic, msgtype
            text, rihs01 = self.types.definition(stored_type)
            conn = self._writer.add_connection(name, stored_type, msgdef=text, rihs01=rihs01,
                                               offered_qos_profiles=[_qos(qos)])
            self._connections[topic] = conn
            self.summary.topics[name] = TopicStats(stored_type)
        return conn

    def write(self, topic: str, data: bytes | memoryview, t_ns: int) -> None:
        """Write one serialised message of a declared topic, received at ``t_ns`` (ns since the
        epoch, the bag's log time)."""
        msgtype = self._topics[topic][0]
        if self._compressor is not None and msgtype == IMAGE:
            try:
                data = self._compressor.compress(data)
            except ValueError as e:
                self.summary.compress_errors += 1
                if self.summary.compress_errors == 1:
                    log.warning("%s: image not compressed, dropped: %s", topic, e)
                return
        with self._lock:
            if self._writer is None:
                return  # closed: a late callback during shutdown
            conn = self._connection(topic)
            self._writer.write(conn, int(t_ns), data)
            stats = self.summary.topics[conn.topic]
            stats.messages += 1
            stats.bytes += len(data)
            if not self.summary.start_ns or t_ns < self.summary.start_ns:
                self.summary.start_ns = int(t_ns)
            self.summary.end_ns = max(self.summary.end_ns, int(t_ns))


# ------------------------------------------------------------------------------- reading
@dataclass(frozen=True)
class BagMessage:
    """One recorded message: topic, type, log time (ns) and CDR bytes."""

    topic: str
    msgtype: str
    t_ns: int
    data: bytes


def find_bag(path: str | pathlib.Path) -> pathlib.Path:
    """The bag folder for a path: the folder itself, the folder of a given metadata.yaml or
    .mcap, or the newest bag under a folder of bags (a run dir's ``bags/``)."""
    p = pathlib.Path(path).expanduser()
    if p.is_file():
        p = p.parent
    if (p / "metadata.yaml").is_file():
        return p
    if p.is_dir():
        bags = sorted((c for c in p.iterdir() if (c / "metadata.yaml").is_file()), key=lambda c: c.name)
        if bags:
            return bags[-1]
    raise FileNotFoundError(f"no rosbag2 bag (a folder with metadata.yaml) at {p}")


def read_messages(path: str | pathlib.Path, topics: Iterable[str] | None = None) -> Iterator[BagMessage]:
    """A bag's messages in log-time order (only ``topics`` when given)."""
    from rosbags.rosbag2 import Reader

    wanted = None if topics is None else set(topics)
    with Reader(find_bag(path)) as reader:
        conns = [c for c in reader.connections if wanted is None or c.topic in wanted]
        if not conns:
            return
        for conn, t_ns, data in reader.messages(connections=conns):
            yield BagMessage(conn.topic, conn.msgtype, int(t_ns), bytes(data))


def _custom_data(bag: pathlib.Path) -> dict[str, str]:
    """metadata.yaml's ``custom_data`` (rosbags' reader does not expose it)."""
    import yaml

    info = (yaml.safe_load((bag / "metadata.yaml").read_text()) or {}).get("rosbag2_bagfile_information", {})
    return {str(k): str(v) for k, v in (info.get("custom_data") or {}).items()}


def bag_info(path: str | pathlib.Path) -> BagSummary:
    """Topics, counts, types and time span of a bag (from its metadata)."""
    from rosbags.rosbag2 import Reader

    bag = find_bag(path)
    with Reader(bag) as reader:
        summary = BagSummary(bag, start_ns=int(reader.start_time), end_ns=int(reader.end_time),
                             custom_data=_custom_data(bag))
        for name, info in reader.topics.items():
            summary.topics[name] = TopicStats(info.msgtype or "", int(info.msgcount))
    return summary


__all__ = ["BagMessage", "BagSummary", "QosSettings", "SessionBag", "TopicStats", "bag_info",
           "default_bag_name", "find_bag", "read_messages"]
