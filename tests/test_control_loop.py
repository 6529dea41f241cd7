"""ControlLoop: ticks at absolute deadlines in its own thread, skips (never bursts) missed ticks
after an overrun, hands a tick's exception to its owner, ends when its owner is gone, and
reports a refused real-time request instead of failing."""
from __future__ import annotations

import threading
import time

import pytest

from robot_stack.nodes.control_loop import ControlLoop


class RecordingLogger:
    """Logger stand-in: keeps (level, text) of every call."""

    def __init__(self, records: list):
        self.records = records

    def info(self, text):
        self.records.append(("info", text))

    def warning(self, text):
        self.records.append(("warning", text))


@pytest.mark.timing  # wall-clock pacing of a thread (tick counts and gaps)
def test_ticks_at_its_period_without_drift():
    stamps: list[float] = []
    loop = ControlLoop("t-loop", 0.01, lambda: stamps.append(time.monotonic()), on_error=pytest.fail).start()
    time.sleep(1.0)
    loop.stop()
    assert not loop.running and loop.thread.name == "t-loop"
    # Absolute deadlines: the tick count follows the elapsed time (a relative sleep after each
    # tick would lose the tick's own duration every period and fall behind).
    span = stamps[-1] - stamps[0]
    assert abs((len(stamps) - 1) - span / 0.01) <= 3, (len(stamps), span)
    assert 90 <= len(stamps) <= 101


@pytest.mark.timing  # wall-clock pacing of a thread (tick counts and gaps)
def test_an_overrun_skips_the_missed_ticks_instead_of_bursting():
    stamps: list[float] = []

    def tick():
        stamps.append(time.monotonic())
        if len(stamps) == 3:
            time.sleep(0.1)  # overrun by ~10 periods

    loop = ControlLoop("t-overrun", 0.01, tick, on_error=pytest.fail).start()
    time.sleep(0.4)
    loop.stop()
    gaps = [b - a for a, b in zip(stamps, stamps[1:])]
    assert gaps[2] >= 0.1  # the long tick
    # no catch-up burst after it: every later gap is close to a period, not ~0
    assert min(gaps[3:]) > 0.004, gaps[3:8]


def test_a_failing_tick_ends_the_loop_and_reaches_the_owner():
    errors: list[BaseException] = []
    done = threading.Event()
    calls = [0]

    def tick():
        calls[0] += 1
        if calls[0] == 5:
            raise RuntimeError("bug in tick")

    def on_error(e):
        errors.append(e)
        done.set()

    loop = ControlLoop("t-fail", 0.005, tick, on_error=on_error).start()
    assert done.wait(5.0)
    loop.thread.join(2.0)
    assert not loop.running and calls[0] == 5
    assert isinstance(errors[0], RuntimeError) and "bug in tick" in str(errors[0])


@pytest.mark.timing  # wall-clock pacing of a thread (tick counts and gaps)
def test_ends_quietly_once_its_owner_is_gone():
    alive = threading.Event()
    alive.set()
    loop = ControlLoop("t-alive", 0.005, lambda: None, on_error=pytest.fail, alive=alive.is_set).start()
    time.sleep(0.05)
    alive.clear()
    loop.thread.join(2.0)
    assert not loop.running and loop.ticks > 0


def test_bad_period_or_priority_is_refused_by_name():
    with pytest.raises(ValueError, match="period_s"):
        ControlLoop("x", 0.0, lambda: None, on_error=pytest.fail)
    with pytest.raises(ValueError, match="priority"):
        ControlLoop("x", 0.01, lambda: None, on_error=pytest.fail, priority=99)


@pytest.mark.timing  # wall-clock pacing of a thread (tick counts and gaps)
def test_real_time_request_is_applied_or_reported(monkeypatch):
    """Asked for SCHED_FIFO, the loop thread either runs FIFO (and says so) or, refused, logs
    the fix and keeps ticking at normal priority; prepare() runs first, in the loop's thread."""
    import os

    from robot_stack.devices import realtime

    logs: list[tuple[str, str]] = []
    seen: dict = {}

    def prepare():
        seen["prepare_thread"] = threading.current_thread().name

    def tick():
        seen.setdefault("policy", os.sched_getscheduler(0))

    refuse = [True]
    real = realtime.make_current_thread_fifo

    def maybe_refuse(prio):
        if refuse[0]:
            raise realtime.RealtimeError("refused (test); " + realtime.FIX_HINT)
        real(prio)

    import robot_stack.nodes.control_loop as cl
    monkeypatch.setattr(cl, "make_current_thread_fifo", maybe_refuse)
    loop = ControlLoop("t-rt", 0.01, tick, on_error=pytest.fail, priority=10, prepare=prepare,
                       logger=RecordingLogger(logs)).start()
    time.sleep(0.1)
    loop.stop()
    assert seen["prepare_thread"] == "t-rt"
    assert seen["policy"] == os.SCHED_OTHER and loop.ticks > 0
    assert logs and logs[0][0] == "warning" and "rtprio" in logs[0][1] and "normal priority" in logs[0][1]


@pytest.mark.timing  # wall-clock pacing of a thread (tick counts and gaps)
def test_real_time_request_really_applies_where_allowed():
    """Without the monkeypatch: where the OS allows it (root here), the tick runs SCHED_FIFO."""
    import os

    seen: list[int] = []
    logs: list[tuple[str, str]] = []
    loop = ControlLoop("t-rt-real", 0.01, lambda: seen.append(os.sched_getscheduler(0)), on_error=pytest.fail,
                       priority=1, logger=RecordingLogger(logs)).start()
    time.sleep(0.1)
    loop.stop()
    assert seen
    if logs[0][0] == "info":
        assert seen[0] == os.SCHED_FIFO and "SCHED_FIFO priority 1" in logs[0][1]
    else:
        assert seen[0] == os.SCHED_OTHER and "normal priority" in logs[0][1]
