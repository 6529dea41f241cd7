"""FR3 limits, kinematics and the joint/orientation stages of the safety filter (pure Python)."""
from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from robot_stack.devices.franka import kinematics as kin
from robot_stack.devices.franka import limits as fr3_limits
from robot_stack.devices.franka.safety import EVENT_ORIENTATION_LIMIT, SafetyConfig, SafetyFilter, tilt_and_yaw
from robot_stack.types.geometry import T_from_xyz_quat


def test_ready_pose_forward_kinematics_matches_the_fr3():
    T = kin.forward(kin.FR3_READY_Q_RAD)
    assert np.allclose(T[:3, 3], (0.3069, 0.0, 0.4869), atol=1e-3)  # Franka Hand TCP at the ready pose
    assert np.allclose(T[:3, :3], np.diag([1.0, -1.0, -1.0]), atol=1e-6)  # pointing down: quat (1, 0, 0, 0)


def test_jacobian_matches_finite_differences():
    q = np.array([0.3, -0.5, 0.2, -2.0, 0.1, 1.8, 0.6])
    J = kin.jacobian(q)
    eps = 1e-6
    for i in range(7):
        dq = np.zeros(7)
        dq[i] = eps
        dp = (kin.forward(q + dq)[:3, 3] - kin.forward(q - dq)[:3, 3]) / (2 * eps)
        assert np.allclose(J[:3, i], dp, atol=1e-6)


def test_default_box_is_dexterous_and_the_old_one_is_not():
    cfg = SafetyConfig()
    assert kin.box_dexterity_problems(cfg.workspace_min_xyz_m, cfg.workspace_max_xyz_m, points_per_axis=4) == []
    # ...and reachable at every tilt the orientation limits allow (a tilted tool moves the wrist)
    assert kin.box_dexterity_problems(cfg.workspace_min_xyz_m, cfg.workspace_max_xyz_m,
                                      tilt_rad=cfg.max_tilt_rad) == []
    assert kin.box_dexterity_problems((0.40, -0.20, 0.10), (0.65, 0.20, 0.45), tilt_rad=0.4)
    old = kin.box_dexterity_problems((0.30, -0.30, 0.05), (0.70, 0.30, 0.55))
    assert any("not reachable" in p for p in old) and any("joint 4" in p for p in old)


def test_config_above_the_fr3_limits_is_refused_naming_the_field():
    with pytest.raises(ValueError, match="max_ang_accel_rad_s2"):
        SafetyConfig(max_ang_accel_rad_s2=8.0).validate()  # sqrt(3) x 8 = 13.9 > 0.8 x 17
    with pytest.raises(ValueError, match="max_joint_jerk_rad_s3"):
        SafetyConfig(max_joint_jerk_rad_s3=4500.0).validate()
    with pytest.raises(ValueError, match="lossy_link_joint_accel_rad_s2"):
        SafetyConfig(lossy_link_joint_accel_rad_s2=3.0).validate()  # above max_joint_accel_rad_s2
    SafetyConfig().validate()


def test_a_lost_command_cycle_lowers_franky_acceleration_for_the_hold_time(monkeypatch):
    """FrankyRobot reads the robot's control_command_success_rate: below 1 once it read 1 since its
    loop started means a lost cycle; then motions are planned with the lossy-link acceleration
    until none was lost for lossy_link_hold_s. No connection needed: only the bookkeeping runs."""
    from robot_stack.devices.franka import franky as franky_backend
    from robot_stack.devices.franka.base import FrankaConfig

    now = [100.0]
    monkeypatch.setattr(franky_backend.time, "monotonic", lambda: now[0])
    cfg = SafetyConfig()
    robot = franky_backend.FrankyRobot(FrankaConfig(backend="franky"), limits=cfg.cartesian_limits)
    lossy_factor = cfg.lossy_link_joint_accel_rad_s2 / cfg.max_joint_accel_rad_s2
    assert 0.0 < lossy_factor < 1.0
    # A loop starting: no loop (0), then a window still filling (hardware reads n/100): not lossy.
    for rate in (0.0, 0.01, 0.5, 0.99):
        assert not robot._note_success_rate(rate)
    assert robot._acceleration_factor() == 1.0
    assert not robot._note_success_rate(1.0)
    # One lost cycle in the last 100: lossy from now on, for the hold time after the last loss.
    assert robot._note_success_rate(0.99)
    assert robot._acceleration_factor() == pytest.approx(lossy_factor)
    now[0] += cfg.lossy_link_hold_s - 1.0
    assert robot._note_success_rate(1.0) and robot._acceleration_factor() == pytest.approx(lossy_factor)
    assert robot._note_success_rate(0.98)  # another loss restarts the hold
    now[0] += cfg.lossy_link_hold_s - 0.5
    assert robot._note_success_rate(1.0)
    now[0] += 1.0
    assert not robot._note_success_rate(1.0) and robot._acceleration_factor() == 1.0
    assert robot.lossy_link_count == 1  # one lossy stretch, its hold extended once
    # The loop stopped (0) and restarted: its filling window is not a loss again.
    assert not robot._note_success_rate(0.0) and not robot._note_success_rate(0.3)


def test_franky_limits_follow_the_safety_config():
    lim = fr3_limits.franky_limits(SafetyConfig(max_lin_accel_m_s2=0.7).cartesian_limits)
    assert lim["translation_acceleration_limit"] == 0.7
    assert lim["rotation_jerk_limit"] == SafetyConfig().max_ang_jerk_rad_s3


def test_joint_velocity_envelope_closes_at_the_limit():
    lo, hi = fr3_limits.FR3.joint_velocity_envelope(kin.FR3_READY_Q_RAD)
    assert np.all(hi > 1.0) and np.all(lo < -1.0)
    q = np.array(kin.FR3_READY_Q_RAD)
    q[3] = kin.FR3_Q_LIMITS_RAD[3][1] - 1e-4  # joint 4 at its upper limit
    lo, hi = fr3_limits.FR3.joint_velocity_envelope(q)
    assert hi[3] == 0.0 and lo[3] < -1.0


def test_joint_limiter_stops_motion_into_a_joint_limit_only():
    lim = fr3_limits.JointLimiter(SafetyConfig().cartesian_limits)
    q = np.array(kin.FR3_READY_Q_RAD)
    q[3] = kin.FR3_Q_LIMITS_RAD[3][1] - 0.002  # elbow nearly straight
    Jp = lim.pinv(q)
    # a twist whose joint-4 component drives towards the limit, and its opposite
    twist = kin.jacobian(q)[:, 3] * 0.05  # the EE motion joint 4 alone would make
    towards = lim.scale(q, twist[:3], twist[3:])
    away = lim.scale(q, -twist[:3], -twist[3:])
    assert towards.velocity < 0.2 and away.velocity == 1.0
    assert Jp.shape == (7, 6)


def test_joint_velocity_mapping_realises_the_twist_within_the_cap():
    lim = fr3_limits.JointLimiter(SafetyConfig().cartesian_limits)
    q = np.array(kin.FR3_READY_Q_RAD)
    dq = lim.joint_velocity(q, (0.1, 0.0, -0.05), (0.0, 0.0, 0.3))
    assert np.allclose(kin.jacobian(q) @ dq, (0.1, 0.0, -0.05, 0.0, 0.0, 0.3), atol=1e-3)
    fast = lim.joint_velocity(q, (0.0, 0.0, 0.0), (0.0, 0.0, 50.0))  # way beyond any joint
    assert np.all(np.abs(fast) <= fr3_limits.LIMIT_FRACTION * fr3_limits.FRANKY_JOINT_VELOCITY_MAX_RAD_S + 1e-9)


def _rot_x(a):
    c, s = math.cos(a), math.sin(a)
    return np.array([[1, 0, 0], [0, c, -s], [0, s, c]])


def _rot_z(a):
    c, s = math.cos(a), math.sin(a)
    return np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])


def test_orientation_limits_remove_rotation_beyond_tilt_and_yaw():
    cfg = SafetyConfig()
    R_ref = T_from_xyz_quat((0, 0, 0), cfg.reference_quat_xyzw)[:3, :3]
    f = SafetyFilter(dataclasses.replace(cfg, max_ang_accel_rad_s2=4.0))
    R_tilted = R_ref @ _rot_x(cfg.max_tilt_rad)  # at the tilt limit
    tilt, _ = tilt_and_yaw(R_ref, R_tilted)
    assert tilt == pytest.approx(cfg.max_tilt_rad)
    n = np.cross(R_ref[:, 2], R_tilted[:, 2])
    n /= np.linalg.norm(n)
    out = None
    for i in range(30):
        f.submit((0, 0, 0), 0.5 * n, i * 0.01)  # tilting further
        out = f.update(i * 0.01, None, None, R_tilted)
    assert abs(float(out.ang_rad_s @ n)) < 1e-6
    assert EVENT_ORIENTATION_LIMIT in f.counters
    f2 = SafetyFilter(cfg)
    for i in range(30):
        f2.submit((0, 0, 0), -0.5 * n, i * 0.01)  # tilting back is allowed
        out = f2.update(i * 0.01, None, None, R_tilted)
    assert float(out.ang_rad_s @ n) < -0.4
    f3 = SafetyFilter(cfg)
    R_yawed = R_ref @ _rot_z(cfg.max_yaw_rad + 0.05)  # beyond the yaw limit: pulled back
    _, yaw = tilt_and_yaw(R_ref, R_yawed)
    assert yaw == pytest.approx(cfg.max_yaw_rad + 0.05)
    for i in range(30):
        f3.submit((0, 0, 0), 0.5 * R_yawed[:, 2], i * 0.01)
        out = f3.update(i * 0.01, None, None, R_yawed)
    assert float(out.ang_rad_s @ R_yawed[:, 2]) < 0.0


def test_workspace_calibration_warns_when_a_box_leaves_the_dexterous_region(capsys):
    from robot_stack.calibration.cli import warn_if_not_dexterous
    from robot_stack.types.workspace import WorkspaceBox

    assert warn_if_not_dexterous(WorkspaceBox("base", (0.30, -0.30, 0.05), (0.70, 0.30, 0.55)))
    assert "WARNING" in capsys.readouterr().err
    cfg = SafetyConfig()
    assert warn_if_not_dexterous(WorkspaceBox("base", cfg.workspace_min_xyz_m, cfg.workspace_max_xyz_m)) == []
    assert capsys.readouterr().err == ""
