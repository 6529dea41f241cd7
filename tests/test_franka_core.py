"""Robot interface core (no ROS, no simulator): factory, config validation, fake backend,
pose helpers."""
from __future__ import annotations

import numpy as np
import pytest

from robot_stack.devices.franka.fake import FakeRobot
from robot_stack.types.config import ConfigError, from_dict
from robot_stack.devices.franka.base import (
    FrankaConfig,
    FrankaRobot,
    RobotConnectionError,
    RobotError,
    make_robot,
    sample_home_pose,
)
from robot_stack.devices.franka.franky import FrankyRobot
from robot_stack.types.geometry import R_to_quat_xyzw, T_from_xyz_quat, quat_xyzw_to_R


def test_factory_picks_backend_without_io():
    assert isinstance(make_robot(FrankaConfig(backend="fake")), FakeRobot)
    franky_robot = make_robot(FrankaConfig(backend="franky", robot_ip="127.0.0.59"))
    assert isinstance(franky_robot, FrankyRobot) and isinstance(franky_robot, FrankaRobot)
    with pytest.raises(RobotConnectionError, match="connect"):
        franky_robot.read_state()  # constructed, not connected: no socket was opened
    with pytest.raises(ConfigError, match="backend"):
        from_dict(FrankaConfig, {"backend": "libfranka"})
    with pytest.raises(ConfigError, match="relative_dynamics_factor"):
        from_dict(FrankaConfig, {"relative_dynamics_factor": 1.5})


def test_connect_to_nothing_names_the_address():
    pytest.importorskip("franky")
    robot = make_robot(FrankaConfig(backend="franky", robot_ip="127.0.0.58", gripper_enabled=False))
    with pytest.raises(RobotConnectionError, match="127.0.0.58"):
        robot.connect()


def test_quaternion_round_trip():
    rng = np.random.default_rng(0)
    for _ in range(50):
        q = rng.normal(size=4)
        q /= np.linalg.norm(q)
        q = q if q[3] >= 0 else -q
        R = quat_xyzw_to_R(q)
        assert np.allclose(R @ R.T, np.eye(3), atol=1e-12)
        assert np.allclose(R_to_quat_xyzw(R), q, atol=1e-9)
    # gripper down = 180 deg about x
    assert np.allclose(quat_xyzw_to_R((1, 0, 0, 0)), np.diag([1, -1, -1]))


def test_sample_home_pose_stays_within_range_and_keeps_orientation():
    T = T_from_xyz_quat((0.5, 0.0, 0.3), (1, 0, 0, 0))
    rng = np.random.default_rng(3)
    samples = np.array([sample_home_pose(T, (0.02, 0.03, 0.0), rng)[:3, 3] for _ in range(200)])
    d = samples - T[:3, 3]
    assert np.all(np.abs(d[:, 0]) <= 0.02) and np.all(np.abs(d[:, 1]) <= 0.03) and np.all(d[:, 2] == 0)
    assert d[:, 0].std() > 0.005  # actually randomized
    assert np.allclose(sample_home_pose(T, (0.02, 0.03, 0.0), rng)[:3, :3], T[:3, :3])


def test_fake_robot_integrates_and_holds_each_command_only_briefly():
    t = [0.0]
    robot = FakeRobot(FrankaConfig(segment_hold_s=0.1, fake_lag_s=0.01), clock=lambda: t[0])
    with pytest.raises(RobotConnectionError):
        robot.read_state()
    with robot:
        p0 = robot.read_state().p_base_ee
        for i in range(1, 51):  # 0.5 s of +z at 0.1 m/s, 100 Hz
            t[0] = i * 0.01
            robot.send_twist([0, 0, 0.1], [0, 0, 0])
        s = robot.read_state()
        assert s.ee_lin_m_s[2] == pytest.approx(0.1, rel=0.01)
        assert s.p_base_ee[2] - p0[2] == pytest.approx(0.05, abs=0.003)
        t[0] = 1.0  # no command for 0.5 s > segment_hold_s: the fake stops like the robot does
        s = robot.read_state()
        assert np.linalg.norm(s.ee_lin_m_s) < 1e-6
        robot.inject_error()
        with pytest.raises(RobotError):
            robot.send_twist([0, 0, 0.1], [0, 0, 0])
        assert robot.read_state().has_error
        assert robot.recover() and not robot.read_state().has_error
    assert not robot.connected


def test_servo_to_pose_reaches_target_within_limits():
    from robot_stack.types.geometry import rotation_error_rotvec
    from robot_stack.devices.franka.servo import servo_to_pose

    t = [0.0]
    cfg = FrankaConfig(fake_lag_s=0.02)
    robot = FakeRobot(cfg, clock=lambda: t[0], T_base_ee=T_from_xyz_quat((0.5, 0.0, 0.4), (1, 0, 0, 0)))
    target = T_from_xyz_quat((0.4, 0.1, 0.3), R_to_quat_xyzw(quat_xyzw_to_R((1, 0, 0, 0)) @ quat_xyzw_to_R((0, 0, np.sin(0.2), np.cos(0.2)))))

    def sleep(dt):
        t[0] += max(dt, 1e-4)

    with robot:
        assert servo_to_pose(robot, target, 30.0, cfg, clock=lambda: t[0], sleep=sleep)
        s = robot.read_state()
    assert np.linalg.norm(s.p_base_ee - target[:3, 3]) < cfg.home_tolerance_m
    assert np.linalg.norm(rotation_error_rotvec(target[:3, :3], s.T_base_ee[:3, :3])) < cfg.home_tolerance_rad
    speeds = np.array([np.linalg.norm(lin) for _, lin, _ in robot.sent])
    assert speeds.max() <= cfg.home_max_lin_speed_m_s + 1e-9
    assert np.abs(np.diff(speeds)).max() <= cfg.home_max_lin_accel_m_s2 / cfg.home_rate_hz + 1e-9
    # distance 0.173 m at 0.1 m/s: a few seconds, not instantaneous
    assert 1.5 < t[0] < 10.0
    # a target it cannot reach in time reports failure
    with robot:
        assert not servo_to_pose(robot, T_from_xyz_quat((0.5, 0.3, 0.3), (1, 0, 0, 0)), 0.5, cfg,
                                 clock=lambda: t[0], sleep=sleep)
