"""The topics the recorder and the live view take, and their selection (ROS-free).

A :class:`TopicSpec` is a topic with its message type and the name of its QoS profile in
``robot_stack/nodes/qos.py``. The node layer builds the session's specs from the topic table
(``robot_stack/nodes/topics.py``: ``TOPICS`` resolved in the graph's namespace, see
``robot_stack/nodes/raw_topics.py``) and hands them here; this package keeps no list of names of
its own. The recorder subscribes to the selected ones at start-up, before their publishers exist,
so nothing a node publishes early is missed; topics not in the table that match the selection are
found by discovery (their QoS then follows the publishers', as ``ros2 bag record`` does).

A selection is a list of patterns (``fnmatch``: ``*`` matches across ``/``) minus exclusions. A
pattern without a leading ``/`` is relative to the node's namespace.
"""
from __future__ import annotations

import fnmatch
from dataclasses import dataclass
from typing import Iterable, Sequence


@dataclass(frozen=True)
class TopicSpec:
    """A topic of the session."""

    name: str
    """Absolute topic name."""
    msgtype: str
    """Message type, ``pkg/msg/Name``."""
    qos: str
    """QoS profile name in robot_stack.nodes.qos (SENSOR, STATE, COMMAND, STEPS, EPISODES, POLICY,
    DIAGNOSTICS) or ROSOUT."""


def split_patterns(text: str) -> list[str]:
    """``"a, b c"`` -> ``["a", "b", "c"]`` (commas or whitespace between patterns)."""
    return [p for p in text.replace(",", " ").split() if p]


def absolute(pattern: str, namespace: str = "/") -> str:
    """A pattern with a leading ``/``: relative ones are taken in ``namespace``."""
    if pattern.startswith("/"):
        return pattern
    return namespace.rstrip("/") + "/" + pattern


@dataclass(frozen=True)
class TopicSelection:
    """Which topics to take: any matching ``include`` and none of ``exclude`` (fnmatch patterns)."""

    include: tuple[str, ...]
    exclude: tuple[str, ...] = ()

    @classmethod
    def parse(cls, include: str, exclude: str, namespace: str = "/",
              default_include: Sequence[str] = (), default_exclude: Sequence[str] = ()) -> "TopicSelection":
        """From the nodes' string parameters: empty ``include`` means the defaults; the default
        exclusions apply only to the default selection (naming a topic records it)."""
        inc = split_patterns(include)
        exc = split_patterns(exclude)
        if not inc:
            inc, exc = list(default_include), list(default_exclude) + exc
        return cls(tuple(absolute(p, namespace) for p in inc), tuple(absolute(p, namespace) for p in exc))

    def matches(self, topic: str) -> bool:
        return (any(fnmatch.fnmatchcase(topic, p) for p in self.include)
                and not any(fnmatch.fnmatchcase(topic, p) for p in self.exclude))

    def known(self, table: Iterable[TopicSpec]) -> list[TopicSpec]:
        """The table's topics this selection takes."""
        return [t for t in table if self.matches(t.name)]


def spec_of(topic: str, table: Iterable[TopicSpec]) -> TopicSpec | None:
    return next((t for t in table if t.name == topic), None)


__all__ = ["TopicSelection", "TopicSpec", "absolute", "spec_of", "split_patterns"]
