"""What every subscription callback runs under: nothing a publisher sends can end a node.

:class:`Inbox` wraps a node's subscription callbacks: ``inbox.subscribe(node, topics.X,
callback)`` makes the subscription of a topic table entry (``robot_stack.nodes.topics``) with
the callback wrapped, ``inbox.wrap(name, callback)`` wraps any callback (a fleet's per-robot
subscriptions pass ``(robot_id, msg)``). The callbacks read messages with the validating
``convert.*_from_msg`` functions, which raise :class:`ValueError` naming the field and the
problem; the inbox drops such a message, counts it per topic (:attr:`Inbox.dropped`) and logs
at most one warning per topic every ``log_period_s`` (saying how many were dropped since the
last one). Any other exception a message provokes is a bug in the node, not in the message: it
is dropped the same way, counted in :attr:`Inbox.errors`, and logged with its traceback (also
throttled), so one bad message never ends a node's spin loop.
"""
from __future__ import annotations

import collections
import threading
import time
import traceback
from typing import Any, Callable


class Inbox:
    """Guards a node's subscription callbacks; see the module docstring."""

    def __init__(self, logger: Any, log_period_s: float = 5.0, clock: Callable[[], float] = time.monotonic) -> None:
        self._logger = logger
        self.log_period_s = log_period_s
        self._clock = clock
        self._lock = threading.Lock()
        self.dropped: collections.Counter[str] = collections.Counter()
        """Messages dropped per topic (malformed, or they made the callback fail)."""
        self.errors: collections.Counter[str] = collections.Counter()
        """Of those, the ones whose callback failed with something other than ValueError (a bug)."""
        self.last_problem: dict[str, str] = {}
        self._logged: dict[str, tuple[float, int]] = {}  # topic -> (last log time, dropped count then)

    def wrap(self, topic: str, callback: Callable[..., None]) -> Callable[..., None]:
        """``callback`` such that no message can make it raise (``topic``: the name counts and
        log lines use)."""

        def guarded(*args: Any) -> None:
            try:
                callback(*args)
            except ValueError as e:
                self.drop(topic, str(e))
            except Exception as e:  # noqa: BLE001 -- the point of the inbox: log the bug, keep the node
                self.drop(topic, f"{type(e).__name__}: {e}", error=traceback.format_exc())

        guarded.__wrapped__ = callback  # type: ignore[attr-defined]
        return guarded

    def subscribe(self, node: Any, topic: Any, callback: Callable[[Any], None], *, callback_group: Any = None,
                  raw: bool = False, **fields: str) -> Any:
        """``topics.subscription`` of a table entry with ``callback`` wrapped, counted under the
        topic's resolved name (``fields`` fill ``{camera}``)."""
        from robot_stack.nodes import topics

        name = node.resolve_topic_name(topic.name.format(**fields))
        return topics.subscription(node, topic, self.wrap(name, callback), callback_group=callback_group, raw=raw,
                                   **fields)

    def drop(self, topic: str, reason: str, error: str | None = None) -> None:
        """Count a dropped message on ``topic`` and log it (throttled per topic)."""
        with self._lock:
            self.dropped[topic] += 1
            if error is not None:
                self.errors[topic] += 1
            self.last_problem[topic] = reason
            now = self._clock()
            last_t, last_n = self._logged.get(topic, (-float("inf"), 0))
            if now - last_t < self.log_period_s:
                return
            self._logged[topic] = (now, self.dropped[topic])
            n_new = self.dropped[topic] - last_n
        more = f" ({n_new} dropped since the last report, {self.dropped[topic]} in all)" if n_new > 1 else ""
        if error is None:
            self._logger.warning(f"dropping a message on {topic}: {reason}{more}")
        else:
            self._logger.error(f"a message on {topic} made its callback fail ({reason}); dropped{more}. "
                               f"This is a bug in the node:\n{error}")

    def counts(self) -> dict[str, int]:
        """Dropped messages per topic (for status lines and stats)."""
        with self._lock:
            return dict(self.dropped)


__all__ = ["Inbox"]
