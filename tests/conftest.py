"""Shared test fixtures: an isolated ROS 2 domain per test session, rclpy contexts, spinning.

* Each pytest session gets its own ``ROS_DOMAIN_ID`` (from ``ROBOT_STACK_TEST_DOMAIN_RANGE``,
  default ``10-29``, picked by process id) unless ``ROS_DOMAIN_ID`` is already set, and
  discovery stays on this host, so parallel test runs and other graphs do not cross-talk.
  Child processes (launch tests) inherit both.
* ``ros_context``: a fresh rclpy context per test (pass ``context=ros_context`` to nodes).
* ``spin``: ``spin(*nodes)`` spins nodes in a background executor until the test ends.
* ``collector``: ``collector(node, MsgType, topic, qos)`` or ``collector(node, topics.ENTRY)``
  subscribes and lets the test ``wait_for(n, timeout_s)`` messages (a condition variable, not
  sleeps).
* Tests marked ``timing`` are re-run up to twice after a failure; no other test is.
"""
from __future__ import annotations

import os
import threading

import pytest


def _pick_domain_id() -> int:
    spec = os.environ.get("ROBOT_STACK_TEST_DOMAIN_RANGE", "10-29")
    lo, _, hi = spec.partition("-")
    lo_i, hi_i = int(lo), int(hi or lo)
    return lo_i + os.getpid() % (hi_i - lo_i + 1)


def pytest_configure(config):
    os.environ.setdefault("ROS_DOMAIN_ID", str(_pick_domain_id()))
    # Keep discovery on this machine (tests must not see or disturb other hosts' graphs).
    os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")


def pytest_collection_modifyitems(config, items):
    """Re-runs (pytest-rerunfailures) only for tests marked ``timing``: whether they pass
    depends on wall-clock time, DDS discovery or scheduling on a loaded 2-core machine. Any
    other test that fails once fails the suite, so flakiness there is not hidden."""
    for item in items:
        if item.get_closest_marker("timing") is not None and item.get_closest_marker("flaky") is None:
            item.add_marker(pytest.mark.flaky(reruns=2, reruns_delay=2))


@pytest.fixture
def ros_context():
    """A fresh, initialised rclpy Context; shut down after the test."""
    rclpy = pytest.importorskip("rclpy")
    ctx = rclpy.context.Context()
    rclpy.init(context=ctx)
    try:
        yield ctx
    finally:
        rclpy.try_shutdown(context=ctx)


@pytest.fixture
def spin(ros_context):
    """``spin(*nodes)``: spin the nodes in a background single-threaded executor for the test,
    as the nodes run in their main(). (rclpy's MultiThreadedExecutor busy-waits on the ready
    entities of busy callback groups: it took a core and delayed callbacks by up to 0.5 s.)"""
    from rclpy.executors import SingleThreadedExecutor

    executor = SingleThreadedExecutor(context=ros_context)
    thread: list[threading.Thread] = []

    def _spin(*nodes):
        for n in nodes:
            executor.add_node(n)
        if not thread:
            t = threading.Thread(target=executor.spin, daemon=True)
            t.start()
            thread.append(t)
        return executor

    yield _spin
    executor.shutdown(timeout_sec=2.0)
    for t in thread:
        t.join(timeout=5.0)


class MessageCollector:
    """Collects messages of one subscription; wait_for() blocks until enough have arrived.

    ``MessageCollector(node, MsgType, "/abs/topic", qos)``, or with an entry of the topic table
    ``MessageCollector(node, topics.STEPS[, namespace="arm1"][, camera="front"])`` (type, QoS
    and the name resolved in the nodes' default namespace unless another is given)."""

    def __init__(self, node, msg_type, topic: str | None = None, qos=None, namespace: str | None = None, **fields):
        from robot_stack.nodes import topics

        if isinstance(msg_type, topics.Topic):
            entry = msg_type
            msg_type, qos = entry.msg_type, entry.profile
            topic = entry.resolve(topics.DEFAULT_NAMESPACE if namespace is None else namespace, **fields)
        self.messages: list = []
        self._cond = threading.Condition()
        self.subscription = node.create_subscription(msg_type, topic, self._on_msg, qos)

    def _on_msg(self, msg) -> None:
        with self._cond:
            self.messages.append(msg)
            self._cond.notify_all()

    def wait_for(self, n: int = 1, timeout_s: float = 10.0, where=None, start: int = 0) -> list:
        """Block until ``n`` messages from index ``start`` on (matching ``where`` if given)
        have arrived; return them. Raises AssertionError on timeout, saying how many arrived.
        """
        def matching():
            return [m for m in self.messages[start:] if where is None or where(m)]

        with self._cond:
            ok = self._cond.wait_for(lambda: len(matching()) >= n, timeout=timeout_s)
            got = matching()
        assert ok, f"expected {n} message(s) within {timeout_s} s, got {len(got)} (of {len(self.messages)} in total)"
        return got


@pytest.fixture
def collector():
    """``collector(node, MsgType, topic, qos)`` or ``collector(node, topics.ENTRY, **fields)`` -> MessageCollector."""
    return MessageCollector


@pytest.fixture(autouse=True)
def _no_real_time_leak():
    """franky.Robot() raises its calling thread to SCHED_FIFO 99 (as root). A test that leaves
    the pytest process there (in the kernel, or in the record pthreads keeps and Fast DDS copies
    into its threads) makes every thread and process started afterwards real-time, and one busy
    real-time thread starves the machine: fail that test, and put the process back."""
    import os

    from robot_stack.devices.realtime import pthread_scheduling, set_current_thread_scheduling

    yield
    try:
        kernel = os.sched_getscheduler(0)
    except OSError:
        return
    reported = pthread_scheduling()
    if kernel != os.SCHED_OTHER or (reported is not None and reported[0] != os.SCHED_OTHER):
        set_current_thread_scheduling(os.SCHED_OTHER, 0)
        pytest.fail(f"the test left the pytest process at real-time scheduling priority "
                    f"(kernel policy {kernel}, pthreads reports {reported})")
