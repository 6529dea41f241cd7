"""A node's control loop in its own thread, paced to absolute deadlines on the monotonic clock.

Used by the actor and the Franka node instead of an rclpy timer, for two reasons (measured on
a 2-core machine with rclpy Kilted):

* A timer shares the executor with the node's subscriptions, so a burst of callbacks delays a
  tick, and a tick delays a callback (an operator command, say).
* With a timer in its own callback group, rclpy's ``MultiThreadedExecutor`` busy-waits on
  ready entities of busy groups: the Franka node at 100 Hz with one 50 Hz command stream took
  96% of a core that way (22% with a single-threaded executor), and delayed its own command
  callbacks by up to 0.5 s, tripping its watchdog.

The loop ticks at ``k * period``: a late tick does not shift the later ones; after an overrun
of more than one period the missed ticks are skipped (never run in a burst). Optionally the
thread asks for ``SCHED_FIFO`` (see :mod:`robot_stack.devices.realtime`); a refused request is
logged with the fix and the loop runs at normal priority.
"""
from __future__ import annotations

import threading
import time
from collections.abc import Callable

from robot_stack.devices.realtime import RealtimeError, make_current_thread_fifo


class ControlLoop:
    """Calls ``tick()`` every ``period_s`` in a thread named ``name`` until :meth:`stop`.

    ``on_error(exc)`` runs in the loop's thread when ``tick`` raises (the loop then ends); the
    loop also ends quietly once ``alive()`` returns False (e.g. the ROS context shut down);
    ``prepare()`` runs in the thread before the priority is raised (e.g. to stop a library
    from starting worker threads that would inherit it). ``priority`` 1..98 asks for
    SCHED_FIFO at that priority; 0 keeps normal scheduling. ``logger`` (an rclpy or a
    ``logging`` logger) hears how the priority request went.
    """

    def __init__(self, name: str, period_s: float, tick: Callable[[], None], *,
                 on_error: Callable[[BaseException], None],
                 priority: int = 0,
                 prepare: Callable[[], None] | None = None,
                 alive: Callable[[], bool] | None = None,
                 logger=None):
        if not period_s > 0:
            raise ValueError(f"period_s must be > 0, got {period_s}")
        if not 0 <= priority <= 98:
            raise ValueError(f"priority must be in 0..98 (0: normal scheduling), got {priority}")
        self.period_s = period_s
        self._tick, self._on_error, self._prepare = tick, on_error, prepare
        self._priority = priority
        self._alive = alive or (lambda: True)
        self._logger = logger
        self._stop = threading.Event()
        self.ticks = 0
        self.thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> ControlLoop:
        self.thread.start()
        return self

    def stop(self, timeout_s: float = 2.0) -> None:
        """Ask the loop to end and wait for the tick in progress (not from inside a tick)."""
        self._stop.set()
        if self.thread.is_alive() and self.thread is not threading.current_thread():
            self.thread.join(timeout=timeout_s)

    @property
    def running(self) -> bool:
        return self.thread.is_alive()

    def _raise_priority(self) -> None:
        if self._prepare is not None:
            self._prepare()
        if self._priority <= 0:
            return
        try:
            make_current_thread_fifo(self._priority)
        except RealtimeError as e:
            if self._logger is not None:
                self._logger.warning(f"{self.thread.name}: priority {self._priority} refused: {e}; "
                                     f"the loop runs at normal priority")
        else:
            if self._logger is not None:
                self._logger.info(f"{self.thread.name} runs SCHED_FIFO priority {self._priority}")

    def _run(self) -> None:
        self._raise_priority()
        period = self.period_s
        next_t = time.monotonic() + period
        while not self._stop.wait(max(0.0, next_t - time.monotonic())):  # pacing to the deadline
            if not self._alive():
                return
            try:
                self._tick()
            except Exception as e:  # noqa: BLE001 - thread top level: hand it to the owner
                self._on_error(e)
                return
            self.ticks += 1
            next_t += period
            now = time.monotonic()
            if now - next_t > period:
                next_t = now + period - (now - next_t) % period
