"""Safety layer (ROS-free): box, speed, acceleration, watchdog ramp, rejection, recovery limit,
and the filter in closed loop with the fake robot backend."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from robot_stack.devices.franka.base import FrankaConfig, RobotError
from robot_stack.devices.franka.fake import FakeRobot
from robot_stack.types.config import ConfigError, from_dict
from robot_stack.types.geometry import T_from_xyz_quat
from robot_stack.devices.franka.safety import (
    EVENT_BOX_CLAMP,
    EVENT_BOX_OUTSIDE,
    EVENT_REJECTED_NAN,
    EVENT_REJECTED_OUT_OF_RANGE,
    EVENT_REJECTED_SHAPE,
    EVENT_WATCHDOG_STOP,
    RecoveryPolicy,
    SafetyConfig,
    SafetyFilter,
    resolve_workspace,
)

CFG = SafetyConfig()
DT = 0.01
INSIDE = np.array([0.5, 0.0, 0.3])


def run(f: SafetyFilter, t0: float, seconds: float, p=INSIDE, cmd=None):
    """Tick the filter at 100 Hz, optionally re-submitting ``cmd`` every tick; returns outputs."""
    outs = []
    n = int(round(seconds / DT))
    for i in range(1, n + 1):
        t = t0 + i * DT
        if cmd is not None:
            f.submit(cmd[0], cmd[1], t)
        outs.append((t, f.update(t, p)))
    return outs


def test_config_validation_names_the_problem():
    with pytest.raises(ValueError, match="inverted on z"):
        SafetyConfig(workspace_min_xyz_m=(0.3, 0.0, 0.5), workspace_max_xyz_m=(0.6, 0.2, 0.4)).validate()
    with pytest.raises(ValueError, match="reach"):
        SafetyConfig(workspace_max_xyz_m=(1.5, 0.3, 0.6)).validate()
    with pytest.raises(ValueError, match="max_lin_speed_m_s"):
        SafetyConfig(max_lin_speed_m_s=0.0).validate()
    with pytest.raises(ValueError, match="could not brake"):
        SafetyConfig(box_approach_gain_1_s=20.0).validate()
    with pytest.raises(ValueError, match="reject_lin_speed_m_s"):
        SafetyConfig(reject_lin_speed_m_s=0.1).validate()
    with pytest.raises(ConfigError, match="watchdog_timeout"):
        from_dict(SafetyConfig, {"watchdog_timeout": 0.1})  # misspelled key
    SafetyConfig().validate()


def test_speed_is_scaled_not_redirected():
    f = SafetyFilter(CFG)
    cmd = (np.array([0.3, 0.4, 0.0]), np.array([0.0, 0.0, 2.0]))  # 0.5 m/s, 2 rad/s
    outs = run(f, 0.0, 1.0, cmd=cmd)
    lin, ang = outs[-1][1].lin_m_s, outs[-1][1].ang_rad_s
    assert np.linalg.norm(lin) == pytest.approx(CFG.max_lin_speed_m_s, rel=1e-6)
    assert lin / np.linalg.norm(lin) == pytest.approx(np.array([0.6, 0.8, 0.0]))
    assert np.linalg.norm(ang) == pytest.approx(CFG.max_ang_speed_rad_s, rel=1e-6)


def test_acceleration_limit_ramps_up_and_down():
    f = SafetyFilter(CFG)
    cmd = (np.array([0.1, 0.0, 0.0]), np.zeros(3))
    outs = run(f, 0.0, 0.5, cmd=cmd)
    speeds = np.array([np.linalg.norm(o.lin_m_s) for _, o in outs])
    steps = np.abs(np.diff(np.concatenate([[0.0], speeds])))
    assert steps.max() <= CFG.max_lin_accel_m_s2 * DT + 1e-9
    assert speeds[-1] == pytest.approx(0.1)
    # 0.1 m/s at 1 m/s^2 takes 0.1 s: not reached in the first ticks
    assert speeds[4] < 0.1 - 1e-6
    # now command zero explicitly: ramps down within the same limit
    outs = run(f, 0.5, 0.3, cmd=(np.zeros(3), np.zeros(3)))
    speeds2 = np.array([np.linalg.norm(o.lin_m_s) for _, o in outs])
    assert np.all(np.abs(np.diff(np.concatenate([[0.1], speeds2]))) <= CFG.max_lin_accel_m_s2 * DT + 1e-9)
    assert speeds2[-1] == 0.0


def test_a_lossy_link_slows_the_arm_and_keeps_its_stopping_distance():
    """While the robot loses command cycles: accelerations x r, speeds x sqrt(r) (r: the lossy-link
    over the full joint acceleration), so the distance to stop from full speed stays the same."""
    r = CFG.lossy_link_joint_accel_rad_s2 / CFG.max_joint_accel_rad_s2
    assert 0.0 < r < 1.0

    def stop_distance(f: SafetyFilter) -> tuple[float, float, float]:
        """(top speed, largest speed step per tick, distance travelled after the stop command)"""
        outs = run(f, 0.0, 2.0, cmd=(np.array([1.0, 0.0, 0.0]), np.zeros(3)))
        speeds = [np.linalg.norm(o.lin_m_s) for _, o in outs]
        stop = run(f, 2.0, 3.0, cmd=(np.zeros(3), np.zeros(3)))
        stop_speeds = [np.linalg.norm(o.lin_m_s) for _, o in stop]
        assert stop_speeds[-1] == 0.0
        steps = np.abs(np.diff(speeds + stop_speeds))
        return speeds[-1], float(steps.max()), float(sum(stop_speeds) * DT)

    top, step, dist = stop_distance(SafetyFilter(CFG))
    lossy = SafetyFilter(CFG)
    lossy.lossy_link = True
    top_l, step_l, dist_l = stop_distance(lossy)
    assert top == pytest.approx(CFG.max_lin_speed_m_s) and top_l == pytest.approx(np.sqrt(r) * top)
    assert step_l == pytest.approx(r * step, rel=1e-6)
    assert dist_l == pytest.approx(dist, rel=0.1)
    # ...and near a wall the approach gain shrinks with the speeds: sqrt(r) of the outward speed.
    near_wall = np.array([CFG.workspace_max_xyz_m[0] - 0.01, 0.0, 0.3])
    outward = []
    for f in (SafetyFilter(CFG), lossy):
        outs = run(f, 10.0, 2.0, p=near_wall, cmd=(np.array([1.0, 0.0, 0.0]), np.zeros(3)))
        outward.append(outs[-1][1].lin_m_s[0])
    assert outward[0] == pytest.approx(CFG.box_approach_gain_1_s * 0.01)
    assert outward[1] == pytest.approx(np.sqrt(r) * outward[0])
    lossy.lossy_link = False  # the link is good again: full speed
    assert run(lossy, 20.0, 2.0, cmd=(np.array([1.0, 0.0, 0.0]), np.zeros(3)))[-1][1].lin_m_s[0] == pytest.approx(top)


def test_watchdog_ramps_to_zero_once_commands_stop():
    f = SafetyFilter(CFG)
    cmd = (np.array([0.0, 0.1, 0.0]), np.zeros(3))
    run(f, 0.0, 0.5, cmd=cmd)  # last command at t = 0.5
    outs = run(f, 0.5, 1.0)    # no more commands
    events = [e for _, o in outs for e in o.events]
    assert events.count(EVENT_WATCHDOG_STOP) == 1
    t_trip = next(t for t, o in outs if EVENT_WATCHDOG_STOP in o.events)
    assert t_trip - 0.5 == pytest.approx(CFG.watchdog_timeout_s, abs=DT + 1e-9)
    # full speed until the trip, then a ramp (never a jump) to exactly zero
    before = [np.linalg.norm(o.lin_m_s) for t, o in outs if t < t_trip]
    assert min(before) == pytest.approx(0.1)
    after = [np.linalg.norm(o.lin_m_s) for t, o in outs if t >= t_trip]
    assert after[0] == pytest.approx(0.1 - CFG.max_lin_accel_m_s2 * DT)
    assert after[-1] == 0.0
    assert f.counters[EVENT_WATCHDOG_STOP] == 1


@pytest.mark.parametrize("lin,ang,reason", [
    ([np.nan, 0, 0], [0, 0, 0], EVENT_REJECTED_NAN),
    ([0, 0, 0], [0, np.inf, 0], EVENT_REJECTED_NAN),
    ([2.0, 0, 0], [0, 0, 0], EVENT_REJECTED_OUT_OF_RANGE),
    ([0, 0, 0], [0, 0, 10.0], EVENT_REJECTED_OUT_OF_RANGE),
    ([0.1, 0.0], [0, 0, 0], EVENT_REJECTED_SHAPE),
])
def test_bad_commands_are_rejected_counted_and_decelerate(lin, ang, reason):
    f = SafetyFilter(CFG)
    run(f, 0.0, 0.5, cmd=(np.array([0.1, 0.0, 0.0]), np.zeros(3)))
    verdict = f.submit(lin, ang, 0.5)
    assert not verdict.accepted and verdict.reason == reason and verdict.detail
    assert f.counters[reason] == 1
    outs = run(f, 0.5, 0.3)
    assert reason in outs[0][1].events
    speeds = [np.linalg.norm(o.lin_m_s) for _, o in outs]
    # decelerates at once (no waiting for the watchdog), within the acceleration limit
    assert speeds[0] == pytest.approx(0.1 - CFG.max_lin_accel_m_s2 * DT)
    assert speeds[-1] == 0.0
    assert all(np.all(np.isfinite(o.lin_m_s)) for _, o in outs)


def test_box_removes_only_the_outward_component():
    f = SafetyFilter(CFG)
    at_wall = np.array([CFG.workspace_max_xyz_m[0], 0.0, 0.3])  # on the +x wall
    outs = run(f, 0.0, 0.5, p=at_wall, cmd=(np.array([0.1, 0.05, 0.0]), np.zeros(3)))
    last = outs[-1][1]
    assert last.lin_m_s[0] == pytest.approx(0.0, abs=1e-12)   # outward removed
    assert last.lin_m_s[1] == pytest.approx(0.05)             # tangential kept
    assert any(EVENT_BOX_CLAMP in o.events for _, o in outs)
    # moving inward from the wall is untouched
    f2 = SafetyFilter(CFG)
    outs = run(f2, 0.0, 0.5, p=at_wall, cmd=(np.array([-0.1, 0.0, 0.0]), np.zeros(3)))
    assert outs[-1][1].lin_m_s[0] == pytest.approx(-0.1)
    assert not any(EVENT_BOX_CLAMP in o.events for _, o in outs)
    # far from the walls nothing is removed
    f3 = SafetyFilter(CFG)
    outs = run(f3, 0.0, 0.5, p=INSIDE, cmd=(np.array([0.1, 0.0, 0.0]), np.zeros(3)))
    assert outs[-1][1].lin_m_s[0] == pytest.approx(0.1)


def test_box_pulls_back_when_outside():
    f = SafetyFilter(CFG)
    outside = np.array([0.5, 0.0, CFG.workspace_min_xyz_m[2] - 0.05])  # 5 cm below the floor of the box
    outs = run(f, 0.0, 0.5, p=outside, cmd=(np.array([0.0, 0.0, -0.1]), np.zeros(3)))
    last = outs[-1][1]
    assert last.lin_m_s[2] == pytest.approx(CFG.max_pullback_speed_m_s)  # upward, capped
    assert EVENT_BOX_OUTSIDE in outs[0][1].events


def test_closed_loop_with_fake_robot_stays_in_box():
    """Drive the fake robot into the +y wall at full speed: it must stop at the wall."""
    t = [0.0]
    wall_y = CFG.workspace_max_xyz_m[1]
    robot = FakeRobot(FrankaConfig(fake_lag_s=0.03), clock=lambda: t[0],
                      T_base_ee=T_from_xyz_quat((0.5, wall_y - 0.1, 0.3), (1, 0, 0, 0)))
    f = SafetyFilter(CFG)
    with robot:
        for i in range(300):  # 3 s at 100 Hz
            t[0] = i * DT
            s = robot.read_state()
            f.submit([0.0, 0.15, 0.0], [0, 0, 0], t[0])
            out = f.update(t[0], s.p_base_ee)
            robot.send_twist(out.lin_m_s, out.ang_rad_s)
        y = robot.read_state().p_base_ee[1]
    assert y > wall_y - 0.02  # it got there
    assert y <= wall_y + 0.002  # and overshot the wall by at most 2 mm


def test_recovery_policy_gives_up_after_the_limit():
    pol = RecoveryPolicy(max_attempts=2, window_s=10.0)
    assert pol.allow(0.0) and pol.allow(1.0)
    assert not pol.allow(2.0) and pol.gave_up
    assert not pol.allow(100.0)  # stays given up until reset
    pol.reset()
    assert pol.allow(100.0)
    # attempts older than the window are forgotten
    pol2 = RecoveryPolicy(max_attempts=2, window_s=10.0)
    assert pol2.allow(0.0) and pol2.allow(1.0) and pol2.allow(12.0)


def test_recovery_retry_limit_with_fake_robot():
    """A robot that keeps raising reflex errors is recovered max_recovery_attempts times, then not."""
    cfg = dataclasses.replace(CFG, max_recovery_attempts=3)
    t = [0.0]
    robot = FakeRobot(clock=lambda: t[0])
    pol = RecoveryPolicy.from_config(cfg)
    robot.connect()
    robot.inject_error(10)
    outcomes = []
    for i in range(6):
        t[0] = i * 0.1
        try:
            robot.send_twist([0.01, 0, 0], [0, 0, 0])
            outcomes.append("ok")
        except RobotError:
            outcomes.append("recovered" if pol.allow(t[0]) and robot.recover() else "gave_up")
    assert outcomes == ["recovered"] * 3 + ["gave_up"] * 3
    assert robot.recover_calls == 3


def test_workspace_box_from_calibration_file(tmp_path):
    path = tmp_path / "workspace.yaml"
    path.write_text("frame: base\nmin_xyz_m: [0.35, -0.2, 0.1]\nmax_xyz_m: [0.6, 0.2, 0.4]\n")
    cfg = resolve_workspace(dataclasses.replace(CFG, workspace_file=str(path)))
    assert cfg.workspace_min_xyz_m == (0.35, -0.2, 0.1) and cfg.workspace_max_xyz_m == (0.6, 0.2, 0.4)
    f = SafetyFilter(cfg)
    outs = run(f, 0.0, 0.5, p=np.array([0.6, 0.0, 0.3]), cmd=(np.array([0.1, 0.0, 0.0]), np.zeros(3)))
    assert outs[-1][1].lin_m_s[0] == pytest.approx(0.0, abs=1e-12)  # the file's +x wall applies
    path.write_text("frame: base\nmin_xyz_m: [0.6, -0.2, 0.1]\nmax_xyz_m: [0.35, 0.2, 0.4]\n")
    with pytest.raises(ValueError, match="inverted on x"):
        resolve_workspace(dataclasses.replace(CFG, workspace_file=str(path)))
    with pytest.raises(ValueError, match="missing|not found|No such"):
        resolve_workspace(dataclasses.replace(CFG, workspace_file=str(tmp_path / "nope.yaml")))
