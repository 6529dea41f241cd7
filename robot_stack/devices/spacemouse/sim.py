"""The ``sim`` SpaceMouse backend: readings from a provider (e.g. the simulated operator)."""
from __future__ import annotations

import time
from typing import Any, Callable, Protocol, Union, runtime_checkable

import numpy as np

from robot_stack.devices.spacemouse.base import SpaceMouse, SpaceMouseError
from robot_stack.types.config import make_from_spec
from robot_stack.types.teleop import SpaceMouseReading


@runtime_checkable
class SimOperatorSource(Protocol):
    """What the sim backend reads: the simulated operator (or anything else)."""

    def read(self) -> SpaceMouseReading | None:
        """Newest reading, or None when the operator has nothing to say (hands off)."""


class SimSpaceMouse(SpaceMouse):
    """Readings from a provider; None from the provider means hands off (zero axes)."""

    def __init__(self, source: Union[SimOperatorSource, Callable[[], SpaceMouseReading | None]], n_buttons: int = 2, clock: Callable[[], float] = time.monotonic):
        self._source = source
        self._read = source.read if isinstance(source, SimOperatorSource) else source
        self._clock = clock
        self._n_buttons = n_buttons
        self._connected = False

    @property
    def connected(self) -> bool:
        return self._connected

    def connect(self) -> None:
        connect = getattr(self._source, "connect", None)
        if callable(connect):
            connect()
        self._connected = True

    def read(self, wait_s: float = 0.0) -> SpaceMouseReading:
        if not self._connected:
            raise SpaceMouseError("SpaceMouse read before connect(); call connect() first")
        if wait_s > 0:
            # A source that can say when it has something new (wait_for_new(timeout_s)) wakes the
            # reader; otherwise this paces the reader like a polled device.
            wait = getattr(self._source, "wait_for_new", None)
            if callable(wait):
                wait(wait_s)
            else:
                time.sleep(wait_s)
        r = self._read()
        if r is None:
            return SpaceMouseReading(t=self._clock(), axes=np.zeros(6), buttons=(0,) * self._n_buttons)
        axes = np.asarray(r.axes, dtype=np.float64)
        if axes.shape != (6,) or not np.all(np.isfinite(axes)):
            raise SpaceMouseError(f"sim operator source gave axes {axes!r}; expected 6 finite values in [-1, 1]")
        return r

    def close(self) -> None:
        if self._connected:
            close = getattr(self._source, "close", None)
            if callable(close):
                close()
        self._connected = False


def load_sim_provider(spec: str) -> Any:
    """Call 'module:callable' and return what it makes (the SimOperatorSource it makes)."""
    return make_from_spec(spec, "sim_provider")
