"""The franka node, as shipped, against franka-sim with the FR3's motion limits enforced (the
strict second test robot; .venv-franka-sim from tools/bootstrap.sh). Communication constraints
are not enforced here: 20 lost 1 kHz cycles in a row depend on the machine's load, not on the
commands (benchmarks/fr3_limits.py measures them, with and without the real-time set-up).

Every command pattern of benchmarks/fr3_limits.py, briefly: no reflex in the normal patterns,
exactly one recovery per forced reflex, no limit violation at all, and the arm at rest at the
end. About 70 s."""
from __future__ import annotations

import os

import pytest

pytest.importorskip("rclpy")
pytestmark = [pytest.mark.ros, pytest.mark.slow, pytest.mark.timing,  # timing: lost 1 kHz cycles on a loaded machine turn into jerk
              # More and later re-runs than other timing tests: a starved machine (the simulator
              # counting 14-46% of the wall time's 1 kHz cycles, 51-91% when healthy; seen once in
              # CI, for about two minutes) fails attempts made close together alike.
              pytest.mark.flaky(reruns=4, reruns_delay=30)]

from benchmarks import fr3_limits  # noqa: E402

SECONDS_PER_PATTERN = 4.0
REAL_TIME = hasattr(os, "geteuid") and os.geteuid() == 0
"""Real-time scheduling permitted (the README's real-time set-up: docs/realtime.md)."""


@pytest.fixture
def franka_sim(tmp_path):
    if not fr3_limits.available():
        pytest.skip("no .venv-franka-sim: run tools/bootstrap.sh")
    # A loopback address of its own (libfranka connects to port 1337 only), per test session.
    host = f"127.0.0.{60 + os.getpid() % 60}"
    # The simulator stands for the robot's real-time controller: SCHED_FIFO where permitted (root,
    # as CI runs), or its 1 kHz cycles slip on a loaded 2-core machine, and the extrapolated
    # cycles turn into jerk the commands never had.
    with fr3_limits.FrankaSim(host, 18000 + os.getpid() % 1000, enforce_comm_constraints=False,
                              fifo_priority=30 if REAL_TIME else 0, log_path=tmp_path / "franka_sim.log") as sim:
        yield sim


def test_every_pattern_within_the_fr3_limits(franka_sim):
    from robot_stack.devices.realtime import current_thread_scheduling, make_current_thread_fifo, \
        set_current_thread_scheduling

    # The node as the real-time set-up runs it (`chrt -f 20` on its process): every thread it
    # starts, franky's 1 kHz control thread included, inherits SCHED_FIFO 20 from this one.
    saved = current_thread_scheduling()
    if REAL_TIME:
        make_current_thread_fifo(20)
    try:
        driver = fr3_limits.Driver(franka_sim.host, seed=1, control_thread_priority=20 if REAL_TIME else 0)
        try:
            results = fr3_limits.run_patterns(franka_sim, driver, SECONDS_PER_PATTERN)
            rest = fr3_limits.at_rest(franka_sim)
            events = driver.event_names()
        finally:
            driver.close()
    finally:
        if saved is not None:
            set_current_thread_scheduling(*saved)
    assert list(results) == list(fr3_limits.PATTERNS), f"the run stopped early: {events[-10:]}"
    for name, r in results.items():
        assert r["reflexes"] == 0, f"{name}: {r['reflex_errors']}"
        assert not r["violations"], f"{name}: {r['violations']} ({r['peak_detail']})"
        assert all(v < 1.0 for v in r["peak_fraction"].values()), f"{name}: {r['peak_detail']}"
    forced = results["forced_reflex"]
    assert forced["forced_reflexes"] >= 2
    assert forced["recoveries"] == forced["forced_reflexes"] == forced["node_recovering_events"]
    assert sum(r["recoveries"] for r in results.values()) == forced["forced_reflexes"]
    assert "recovery_gave_up" not in events
    assert results["homes"]["node_events"].get("home_done", 0) >= 2
    # At rest: no motion running and joints 1-6 still (joint 7: see at_rest, a hold artifact).
    assert rest["robot_mode"] == fr3_limits.ROBOT_MODE_IDLE and rest["dq_max_joints_1_6_rad_s"] < 0.01, rest


def test_stalls_of_the_node_turn_lossy_link_on_and_cause_no_reflex(tmp_path):
    """The node's whole process stopped for 2-8 ms at random (SIGSTOP: 2-8 lost 1 kHz cycles each,
    what a loaded machine does), first three 1 ms stalls: the node sees the robot losing
    command cycles, plans with the lossy-link acceleration, and the later, longer stalls cause no
    reflex. At the full acceleration such stalls gave a reflex every 15-30 s in the benchmark."""
    import json
    import subprocess
    import sys

    if not fr3_limits.available():
        pytest.skip("no .venv-franka-sim: run tools/bootstrap.sh")
    out = tmp_path / "stalls.json"
    cmd = [sys.executable, str(fr3_limits.ROOT / "benchmarks" / "fr3_limits.py"),
           "--setups", "rt" if REAL_TIME else "normal", "--patterns", "policy_noise", "--seconds-per-pattern", "12",
           "--stall-ms", "2,8", "--stall-every-s", "0.5", "--stall-first-ms", "1",
           "--host", f"127.0.1.{10 + os.getpid() % 200}", "--control-port", str(19000 + os.getpid() % 1000),
           "--out", str(out)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]
    setup = next(iter(json.loads(out.read_text())["setups"].values()))
    r = setup["patterns"]["policy_noise"]
    assert setup["stalls"]["count"] >= 8, setup["stalls"]
    assert r["lost_cycles"]["longest_run"] >= 2, r["lost_cycles"]
    # Over the set-up: the mode may start before the pattern's own window (a stall during the
    # simulator's reset) and then hold through it, announced once.
    assert setup["node_events"].get("lossy_link", 0) >= 1, setup["node_events"]
    assert r["reflexes"] == 0, r["reflex_errors"]
    assert all(v < 1.0 for v in r["peak_fraction"].values()), r["peak_detail"]
