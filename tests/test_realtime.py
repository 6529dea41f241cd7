"""robot_stack.devices.realtime: real-time scheduling of one thread, and the inheritance trap."""
from __future__ import annotations

import os
import threading

import pytest

from robot_stack.devices.realtime import RealtimeError, make_current_thread_fifo, pthread_scheduling, set_current_thread_scheduling


def _policy_of_new_thread() -> int:
    seen: list[int] = []
    t = threading.Thread(target=lambda: seen.append(os.sched_getscheduler(0)))
    t.start()
    t.join()
    return seen[0]


def _in_thread(fn):
    out: dict = {}

    def run():
        try:
            out["value"] = fn()
        except BaseException as e:  # noqa: BLE001 - handed to the test thread
            out["error"] = e

    t = threading.Thread(target=run)
    t.start()
    t.join()
    if "error" in out:
        raise out["error"]
    return out["value"]


def test_fifo_applies_to_the_thread_its_children_and_is_undone_for_later_children():
    def body():
        try:
            make_current_thread_fifo(10)
        except RealtimeError as e:
            pytest.skip(f"no real-time permission here: {e}")
        raised = (os.sched_getscheduler(0), os.sched_getparam(0).sched_priority, _policy_of_new_thread())
        set_current_thread_scheduling(os.SCHED_OTHER, 0)
        return raised, os.sched_getscheduler(0), _policy_of_new_thread()

    (policy, prio, child), after, later_child = _in_thread(body)
    assert (policy, prio) == (os.SCHED_FIFO, 10)
    assert child == os.SCHED_FIFO  # the trap: threads started by a real-time thread inherit it
    assert after == os.SCHED_OTHER and later_child == os.SCHED_OTHER
    assert os.sched_getscheduler(0) == os.SCHED_OTHER  # the test thread was never touched


def test_bare_syscall_leaves_glibc_record_stale_which_is_why_pthreads_are_used():
    """Why scheduling is restored through pthreads: undone with the bare syscall, the thread
    runs normally but pthreads still reports SCHED_FIFO (what Fast DDS copied into its threads)."""
    def body():
        try:
            make_current_thread_fifo(10)
        except RealtimeError as e:
            pytest.skip(f"no real-time permission here: {e}")
        os.sched_setscheduler(0, os.SCHED_OTHER, os.sched_param(0))
        stale = (os.sched_getscheduler(0), pthread_scheduling())
        set_current_thread_scheduling(os.SCHED_OTHER, 0)
        return stale, (os.sched_getscheduler(0), pthread_scheduling())

    (kernel, reported), (kernel_after, reported_after) = _in_thread(body)
    assert kernel == os.SCHED_OTHER and reported == (os.SCHED_FIFO, 10)
    assert kernel_after == os.SCHED_OTHER and reported_after == (os.SCHED_OTHER, 0)


@pytest.mark.parametrize("prio", [0, 99, -1])
def test_priority_out_of_range_is_rejected(prio):
    with pytest.raises(ValueError, match="1..98"):
        make_current_thread_fifo(prio)
