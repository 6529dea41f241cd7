"""Message definitions of the session's topic types, for bag and live-view schemas (ROS-free).

:class:`MessageTypes` is a rosbags typestore holding ROS 2 Kilted's standard messages and, on
demand, any other type whose ``.msg`` file is installed under ``<prefix>/share/<pkg>/msg/``
for a prefix on ``AMENT_PREFIX_PATH`` (this package's own ``msg/`` folder in the source tree
counts as the prefix of ``robot_stack``). From it come what a rosbag2 bag and a Foxglove channel
need per type: the ``ros2msg`` schema text (the type's definition followed by those of the types
it uses, as ``ros2 bag record`` writes it) and the RIHS01 type hash, which equal what rosidl
generates for the same ``.msg`` (checked for every type of the session in the tests).
"""
from __future__ import annotations

import os
import pathlib
import threading
from typing import Iterable

from rosbags.interfaces import Nodetype
from rosbags.typesys import Stores, get_typestore, get_types_from_msg
from rosbags.typesys.base import TypesysError

SOURCE_MSG_DIR = pathlib.Path(__file__).resolve().parents[2] / "msg"
"""``msg/`` of the source tree (absent in an installed package, where the share folder has them)."""


class UnknownMessageType(LookupError):
    """No definition of a message type was found (not a Kilted standard type, no ``.msg`` file)."""


def ament_prefixes() -> list[pathlib.Path]:
    """The install prefixes on ``AMENT_PREFIX_PATH``, in order."""
    return [pathlib.Path(p) for p in os.environ.get("AMENT_PREFIX_PATH", "").split(os.pathsep) if p]


def _referenced_types(fields) -> Iterable[str]:
    """Type names a parsed definition's fields refer to (nested, in arrays and sequences)."""
    for _name, (node, args) in fields:
        while node in (Nodetype.ARRAY, Nodetype.SEQUENCE):
            (node, args), _ = args
        if node == Nodetype.NAME:
            yield args


class MessageTypes:
    """Typestore of every type a session uses; see the module docstring. Thread-safe."""

    def __init__(self, prefixes: Iterable[pathlib.Path] | None = None):
        self.store = get_typestore(Stores.ROS2_KILTED)
        self.prefixes = list(ament_prefixes() if prefixes is None else prefixes)
        self._lock = threading.Lock()
        self._defs: dict[str, tuple[str, str]] = {}

    def _msg_file(self, msgtype: str) -> pathlib.Path | None:
        pkg, kind, name = msgtype.split("/")
        candidates = [p / "share" / pkg / kind / f"{name}.msg" for p in self.prefixes]
        if pkg == "robot_stack" and kind == "msg":
            candidates.append(SOURCE_MSG_DIR / f"{name}.msg")
        return next((c for c in candidates if c.is_file()), None)

    def _load(self, msgtype: str) -> None:
        """Register ``msgtype`` and the types it uses from their ``.msg`` files."""
        pending, parsed = [msgtype], {}
        while pending:
            name = pending.pop()
            if name in parsed or name in self.store.fielddefs:
                continue
            path = self._msg_file(name) if name.count("/") == 2 else None
            if path is None:
                raise UnknownMessageType(
                    f"no definition of message type '{name}': not a ROS 2 Kilted standard type, and no "
                    f"share/<pkg>/msg/<Name>.msg under AMENT_PREFIX_PATH ({len(self.prefixes)} prefixes)")
            types = get_types_from_msg(path.read_text(), name)
            parsed.update(types)
            for _consts, fields in types.values():
                pending.extend(_referenced_types(fields))
        if parsed:
            self.store.register(parsed)

    def ensure(self, msgtype: str) -> None:
        """Make ``msgtype`` (``pkg/msg/Name``) known; UnknownMessageType when no definition exists."""
        if msgtype.count("/") != 2:
            raise UnknownMessageType(f"message type '{msgtype}' is not of the form pkg/msg/Name")
        with self._lock:
            if msgtype not in self.store.fielddefs:
                try:
                    self._load(msgtype)
                except TypesysError as e:
                    raise UnknownMessageType(f"message type '{msgtype}': {e}") from None

    def definition(self, msgtype: str) -> tuple[str, str]:
        """``(ros2msg schema text, RIHS01 type hash)`` of ``msgtype``."""
        self.ensure(msgtype)
        with self._lock:
            if msgtype not in self._defs:
                text, _ = self.store.generate_msgdef(msgtype, ros_version=2)
                self._defs[msgtype] = (text, self.store.hash_rihs01(msgtype))
            return self._defs[msgtype]

    def deserialize(self, data: bytes | memoryview, msgtype: str):
        """CDR bytes (with the 4-byte encapsulation header) -> a rosbags message object."""
        self.ensure(msgtype)
        return self.store.deserialize_cdr(data, msgtype)

    def serialize(self, msg, msgtype: str) -> bytes:
        """A rosbags message object -> CDR bytes (little endian, as rmw writes them)."""
        self.ensure(msgtype)
        return bytes(self.store.serialize_cdr(msg, msgtype))

    def make(self, msgtype: str, **fields):
        """A new rosbags message object of ``msgtype``."""
        self.ensure(msgtype)
        return self.store.types[msgtype](**fields)


__all__ = ["MessageTypes", "UnknownMessageType", "ament_prefixes"]
