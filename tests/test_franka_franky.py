"""franky backend against franky-sim on loopback (a child process), with the safety filter in
the loop exactly as the Franka node runs it: commanded direction, watchdog stop, robot-side
hold, NaN rejection, workspace box, home move, gripper, recovery call."""
from __future__ import annotations

import dataclasses
import time

import numpy as np
import pytest

from robot_stack.devices.franka.base import FrankaConfig, RobotState, make_robot
from robot_stack.devices.franka.safety import EVENT_REJECTED_NAN, EVENT_WATCHDOG_STOP, SafetyConfig, SafetyFilter
from robot_stack.sim.franky_world import WorldProcess
from robot_stack.types.geometry import T_from_xyz_quat

HOST = "127.0.0.42"  # this file's own loopback address (franky-sim ports are fixed per address)
RATE_HZ = 100.0
SAFETY = SafetyConfig(workspace_min_xyz_m=(0.25, -0.35, 0.1), workspace_max_xyz_m=(0.7, 0.35, 0.65))


@pytest.fixture(scope="module")
def robot():
    pytest.importorskip("franky")
    pytest.importorskip("franky_sim")
    with WorldProcess(HOST, task="none"):
        r = make_robot(FrankaConfig(backend="franky", robot_ip=HOST, relative_dynamics_factor=0.3),
                       SAFETY.collision_torque_threshold_nm, SAFETY.collision_force_threshold_n)
        with r:
            yield r


def control_loop(robot, f: SafetyFilter, seconds: float, cmd=None, until=None) -> list[tuple[float, RobotState, np.ndarray]]:
    """Run the node's tick (read state, filter, send) at RATE_HZ for ``seconds`` of robot time;
    ``cmd(t)`` -> (lin, ang) or None. Robot time (not wall time) drives the filter and the
    schedule, so a slowed-down simulation on a loaded machine changes nothing but the duration."""
    log = []
    s = robot.read_state()
    t0 = s.t_s
    wall_end = time.monotonic() + 20 * seconds + 5.0
    next_wall = time.monotonic()
    while time.monotonic() < wall_end:
        s = robot.read_state()
        t = s.t_s - t0
        if t >= seconds:
            break
        if cmd is not None:
            c = cmd(t)
            if c is not None:
                f.submit(c[0], c[1], s.t_s)
        out = f.update(s.t_s, s.p_base_ee)
        robot.send_twist(out.lin_m_s, out.ang_rad_s)
        log.append((t, s, out))
        if until is not None and until(s, out):
            break
        next_wall += 1.0 / RATE_HZ
        time.sleep(max(0.0, next_wall - time.monotonic()))  # pacing the loop, not synchronization
    return log


def wait_robot_time(robot, seconds: float) -> None:
    """Let ``seconds`` of robot (sim) time pass without sending anything."""
    t0 = robot.read_state().t_s
    wall_end = time.monotonic() + 20 * seconds + 5.0
    while robot.read_state().t_s - t0 < seconds and time.monotonic() < wall_end:
        time.sleep(0.02)  # polling the simulator clock


def settle(robot, f):
    """Bring the arm to rest and reset the filter."""
    control_loop(robot, f, 0.5, cmd=lambda t: (np.zeros(3), np.zeros(3)))
    f.reset()


def test_state_is_sane(robot):
    s = robot.read_state()
    assert SAFETY.box.contains(s.p_base_ee), "the sim's start pose must lie inside the test box"
    assert s.T_base_ee.shape == (4, 4) and np.allclose(s.T_base_ee[3], [0, 0, 0, 1])
    assert np.allclose(s.T_base_ee[:3, :3] @ s.T_base_ee[:3, :3].T, np.eye(3), atol=1e-6)
    assert s.q_rad.shape == (7,) and s.dq_rad_s.shape == (7,)
    assert 0.0 <= s.gripper_width_m <= 0.081
    assert not s.has_error
    s2 = robot.read_state()
    assert s2.t_s >= s.t_s


@pytest.mark.timing  # franky against franky-sim in real time (trip times, motion over wall time)
def test_moves_in_commanded_direction_then_watchdog_stops_it(robot):
    f = SafetyFilter(SAFETY)
    settle(robot, f)
    p0 = robot.read_state().p_base_ee
    # 0.6 s of +y commands, then the stream is cut while the loop keeps running
    log = control_loop(robot, f, 1.6, cmd=lambda t: (np.array([0.0, 0.06, 0.0]), np.zeros(3)) if t < 0.6 else None)
    p1 = robot.read_state().p_base_ee
    d = p1 - p0
    assert d[1] > 0.02, f"moved only {d} under a +y command"
    assert abs(d[0]) < 0.3 * d[1] and abs(d[2]) < 0.3 * d[1]
    events = [e for _, _, o in log for e in o.events]
    assert events.count(EVENT_WATCHDOG_STOP) == 1
    t_trip = next(t for t, _, o in log if EVENT_WATCHDOG_STOP in o.events)
    assert 0.6 + SAFETY.watchdog_timeout_s - 0.05 < t_trip < 0.6 + SAFETY.watchdog_timeout_s + 0.1
    # after the trip the arm comes to rest
    speed_end = np.linalg.norm(log[-1][1].ee_lin_m_s)
    assert speed_end < 0.005, f"still moving at {speed_end:.4f} m/s after the watchdog stop"
    p2 = robot.read_state().p_base_ee
    assert np.linalg.norm(p2 - p1) < 0.002


@pytest.mark.timing  # franky against franky-sim in real time (trip times, motion over wall time)
def test_robot_side_hold_stops_arm_when_process_stalls(robot):
    """No more send_twist calls at all (a hung node): the robot stops by itself."""
    f = SafetyFilter(SAFETY)
    settle(robot, f)
    control_loop(robot, f, 0.5, cmd=lambda t: (np.array([0.0, -0.05, 0.0]), np.zeros(3)))
    assert np.linalg.norm(robot.read_state().ee_lin_m_s) > 0.03
    p0 = robot.read_state().p_base_ee
    wait_robot_time(robot, 1.0)  # no commands for 1 s
    s = robot.read_state()
    assert np.linalg.norm(s.ee_lin_m_s) < 0.005
    # It travelled at most hold time x speed plus the stopping distance.
    assert np.linalg.norm(s.p_base_ee - p0) < 0.05 * robot.config.segment_hold_s + 0.02


@pytest.mark.timing  # franky against franky-sim in real time (trip times, motion over wall time)
def test_nan_command_is_rejected_and_arm_decelerates(robot):
    f = SafetyFilter(SAFETY)
    settle(robot, f)

    def cmd(t):
        if t < 0.4:
            return np.array([0.05, 0.0, 0.0]), np.zeros(3)
        return np.array([np.nan, 0.0, 0.0]), np.zeros(3)

    log = control_loop(robot, f, 1.0, cmd=cmd)
    assert f.counters[EVENT_REJECTED_NAN] > 0
    assert all(np.all(np.isfinite(o.lin_m_s)) for _, _, o in log)
    # Output ramps down right after the first NaN (no waiting for the watchdog)
    after = [np.linalg.norm(o.lin_m_s) for t, _, o in log if t >= 0.6]
    assert max(after) == 0.0
    assert np.linalg.norm(log[-1][1].ee_lin_m_s) < 0.01
    assert not robot.read_state().has_error


@pytest.mark.timing  # franky against franky-sim in real time (trip times, motion over wall time)
def test_box_keeps_ee_inside(robot):
    f0 = SafetyFilter(SAFETY)
    settle(robot, f0)
    y_wall = float(robot.read_state().p_base_ee[1]) + 0.03
    box = dataclasses.replace(SAFETY, workspace_max_xyz_m=(0.7, y_wall, 0.65))
    f = SafetyFilter(box)
    log = control_loop(robot, f, 1.5, cmd=lambda t: (np.array([0.0, 0.1, 0.0]), np.zeros(3)))
    ys = np.array([s.p_base_ee[1] for _, s, _ in log])
    assert ys.max() <= y_wall + 0.003, f"overshot the wall by {1000 * (ys.max() - y_wall):.1f} mm"
    assert ys[-1] > y_wall - 0.01  # it did get to the wall
    assert f.counters["box_clamp"] >= 1


@pytest.mark.timing  # franky against franky-sim in real time (trip times, motion over wall time)
def test_move_home_reaches_pose(robot):
    f = SafetyFilter(SAFETY)
    settle(robot, f)
    target = T_from_xyz_quat((0.45, 0.05, 0.4), (1.0, 0.0, 0.0, 0.0))
    assert robot.move_home(target, timeout_s=20.0)
    s = robot.read_state()
    assert np.linalg.norm(s.p_base_ee - target[:3, 3]) < 0.01
    assert np.allclose(np.abs(s.quat_base_ee_xyzw), [1, 0, 0, 0], atol=0.02)
    # velocity streaming works again after a pose motion
    log = control_loop(robot, f, 0.5, cmd=lambda t: (np.array([0.0, 0.0, -0.04]), np.zeros(3)))
    assert robot.read_state().p_base_ee[2] < s.p_base_ee[2] - 0.005


@pytest.mark.timing  # franky against franky-sim in real time (trip times, motion over wall time)
def test_gripper_and_recover(robot):
    w0 = robot.read_state().gripper_width_m
    target = 0.02 if w0 > 0.05 else 0.07
    robot.gripper_move(target)
    deadline = time.monotonic() + 5.0
    w = w0
    while time.monotonic() < deadline and abs(w - target) > 0.005:
        time.sleep(0.1)  # polling the simulated fingers' width
        w = robot.read_state().gripper_width_m
    assert abs(w - target) <= 0.005, f"gripper at {w:.4f} m, wanted {target}"
    assert robot.recover()  # no error pending: recovery is a no-op that succeeds


def test_connect_leaves_the_calling_thread_at_normal_priority(robot):
    """franky.Robot() raises its caller to SCHED_FIFO 99 where permitted (root); connect() puts
    the caller back, so a ROS executor thread (and the threads it starts) never runs real time."""
    import os

    robot.send_twist(np.zeros(3), np.zeros(3))  # a motion running too
    assert os.sched_getscheduler(0) not in (os.SCHED_FIFO, os.SCHED_RR)


def test_threads_started_after_connect_are_not_real_time(robot):
    """The caller looking restored is not enough: glibc keeps its own record of a policy set
    through pthreads (as franky does), and Fast DDS started its threads with that record.
    Before the fix every DDS thread made after a connect was SCHED_FIFO 99 and starved the
    2-core machine."""
    import os

    from robot_stack.devices.realtime import pthread_scheduling

    robot.send_twist(np.zeros(3), np.zeros(3))
    assert pthread_scheduling() == (os.SCHED_OTHER, 0)
