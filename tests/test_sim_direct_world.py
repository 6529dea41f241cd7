"""The direct sim world (no libfranka) and the franka ``direct`` backend that drives it over UDP
on loopback: motion in the commanded direction, real-time pacing, scene reset and success,
cameras, the robot-side hold, stop, home moves, gripper, reflex and recovery, and the link's
errors (nobody listening, a silent peer, a protocol version mismatch)."""
from __future__ import annotations

import os
import socket
import threading
import time

import numpy as np
import pytest

pytest.importorskip("franky_sim")  # the scene is franky-sim's FR3 scene
import mujoco  # noqa: E402

from robot_stack.devices.franka import wire  # noqa: E402
from robot_stack.devices.franka.base import FrankaConfig, RobotConnectionError, RobotError, make_robot  # noqa: E402
from robot_stack.devices.franka.direct import DirectRobot  # noqa: E402
from robot_stack.sim.direct_world import DirectWorld, DirectWorldConfig  # noqa: E402
from robot_stack.sim.tasks import make_task  # noqa: E402
from robot_stack.types.geometry import T_from_xyz_quat

ADDRESS = f"127.0.0.{150 + os.getpid() % 10}"
PORT = 17337
DOWN = (1.0, 0.0, 0.0, 0.0)  # gripper pointing down, (x, y, z, w)


@pytest.fixture(scope="module")
def world():
    with DirectWorld(DirectWorldConfig(hostname=ADDRESS, port=PORT), make_task("reach")) as w:
        yield w
        w.check()


@pytest.fixture
def robot(world):
    r = make_robot(FrankaConfig(backend="direct", robot_ip=ADDRESS, direct_port=PORT))
    r.connect()
    try:
        r.recover()  # a test that left the world in its reflex state does not leak into the next
        yield r
    finally:
        r.close()


def stream(robot, lin, ang=(0.0, 0.0, 0.0), seconds=0.5, rate_hz=100.0):
    """Send a twist at rate_hz for a while (what the franka node does), then let it go."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        robot.send_twist(lin, ang)
        time.sleep(1.0 / rate_hz)  # command rate


def tcp_in_world(world) -> np.ndarray:
    return world.read(lambda m, d: make_task("reach").robot(m).tcp_pos(d).copy())


def test_factory_picks_the_direct_backend_without_io():
    r = make_robot(FrankaConfig(backend="direct", robot_ip="127.0.0.9", direct_port=1))
    assert isinstance(r, DirectRobot)
    with pytest.raises(RobotConnectionError, match="not connected"):
        r.read_state()  # no socket until connect()
    with pytest.raises(ValueError, match="direct_port"):
        FrankaConfig(backend="direct", direct_port=70000).validate()


@pytest.mark.timing  # the direct world runs in real time: motion, rest and pacing over wall time
def test_state_matches_the_world(world, robot):
    s = robot.read_state()
    assert s.q_rad.shape == (7,) and s.dq_rad_s.shape == (7,)
    assert np.allclose(s.p_base_ee, tcp_in_world(world), atol=2e-3)
    assert np.allclose(s.T_base_ee[:3, :3] @ s.T_base_ee[:3, :3].T, np.eye(3), atol=1e-6)
    assert s.gripper_width_m == pytest.approx(make_task("reach").gripper_width_m, abs=3e-3)
    assert not s.has_error
    t0 = s.t_s
    time.sleep(0.2)  # robot time advances with the world
    assert robot.read_state().t_s > t0 + 0.1


@pytest.mark.parametrize("axis, sign", [(0, 1.0), (1, -1.0), (2, -1.0)])
@pytest.mark.timing  # the direct world runs in real time: motion, rest and pacing over wall time
def test_arm_moves_in_the_commanded_direction(robot, axis, sign):
    lin = np.zeros(3)
    lin[axis] = 0.05 * sign
    p0 = robot.read_state().p_base_ee
    stream(robot, lin, seconds=0.6)
    robot.stop()
    d = robot.read_state().p_base_ee - p0
    along = d[axis] * sign
    across = np.linalg.norm(np.delete(d, axis))
    assert along > 0.02, f"moved only {along * 1000:.1f} mm along axis {axis}"
    assert across < 0.2 * along, f"moved {across * 1000:.1f} mm across while {along * 1000:.1f} mm along"


@pytest.mark.timing  # the direct world runs in real time: motion, rest and pacing over wall time
def test_rotation_about_z(robot):
    R0 = robot.read_state().T_base_ee[:3, :3]
    stream(robot, (0.0, 0.0, 0.0), (0.0, 0.0, 0.3), seconds=0.6)
    robot.stop()
    R1 = robot.read_state().T_base_ee[:3, :3]
    rotvec, quat = np.zeros(3), np.zeros(4)
    mujoco.mju_mat2Quat(quat, (R1 @ R0.T).reshape(9))
    mujoco.mju_quat2Vel(rotvec, quat, 1.0)
    assert rotvec[2] > 0.08 and np.linalg.norm(rotvec[:2]) < 0.3 * rotvec[2], rotvec


@pytest.mark.timing  # the direct world runs in real time: motion, rest and pacing over wall time
def test_the_world_stops_the_arm_when_commands_stop(robot):
    """Each twist is held for segment_hold_s only (robot-side watchdog)."""
    robot.send_twist((0.05, 0.0, 0.0), (0.0, 0.0, 0.0))
    time.sleep(0.6)  # no further command: the hold (0.1 s) expires and the world ramps to rest
    s = robot.read_state()
    assert np.linalg.norm(s.ee_lin_m_s) < 2e-3
    p = s.p_base_ee
    time.sleep(0.3)
    assert np.linalg.norm(robot.read_state().p_base_ee - p) < 1e-3


@pytest.mark.timing  # the direct world runs in real time: motion, rest and pacing over wall time
def test_stop_brings_the_arm_to_rest(robot):
    stream(robot, (0.0, 0.05, 0.0), seconds=0.3)
    assert np.linalg.norm(robot.read_state().ee_lin_m_s) > 0.02  # moving
    robot.stop()
    assert np.linalg.norm(robot.read_state().ee_lin_m_s) < 1e-3


@pytest.mark.timing  # the direct world runs in real time: motion, rest and pacing over wall time
def test_realtime_pacing(world):
    t_sim, t_wall = world.sim_time_s, time.perf_counter()
    time.sleep(1.5)  # a stretch of wall time to compare sim time with
    rtf = (world.sim_time_s - t_sim) / (time.perf_counter() - t_wall)
    # Never faster than real time; the lower bound is loose (2 shared cores). The figure under
    # load comes from benchmarks/sim_direct_realtime.py.
    assert 0.5 < rtf < 1.05, f"real-time factor {rtf:.2f}"
    assert 0.5 < world.realtime_factor_measured < 1.05


@pytest.mark.timing  # the direct world runs in real time: motion, rest and pacing over wall time
def test_reset_home_move_and_success(world, robot):
    def target(model, data):
        bid = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_BODY, "reach_target")
        return data.mocap_pos[model.body_mocapid[bid]].copy()

    q_before = robot.read_state().q_rad
    r1 = world.reset_scene(1)
    g1 = world.read(target)
    r2 = world.reset_scene(2)
    g2 = world.read(target)
    assert np.linalg.norm(g1 - g2) > 1e-3, "reset did not re-sample the target"
    assert not np.allclose(r1.start_tcp_xyz_m, r2.start_tcp_xyz_m)
    assert np.allclose(robot.read_state().q_rad, q_before, atol=2e-3), "reset must leave the arm where it is"

    assert robot.move_home(T_from_xyz_quat(r2.start_tcp_xyz_m, DOWN), timeout_s=15.0)
    s = robot.read_state()
    assert np.linalg.norm(s.p_base_ee - r2.start_tcp_xyz_m) < 0.004
    assert not world.is_success(), "success at the start pose (target >= 6 cm away)"
    assert robot.move_home(T_from_xyz_quat(g2, DOWN), timeout_s=15.0)
    assert world.is_success(), "TCP on the target at rest, yet no success"


@pytest.mark.timing  # the direct world runs in real time: motion, rest and pacing over wall time
def test_home_move_is_preempted_by_a_twist(robot):
    s = robot.read_state()
    far = T_from_xyz_quat(s.p_base_ee + np.array([0.0, 0.0, 0.1]), DOWN)
    robot._call(wire.Kind.MOVE_HOME, (*far.reshape(16), 0.1, 0.5, 0.5, 2.0, 0.003, 0.03, 0.01))
    time.sleep(0.1)  # the world's servo runs
    robot.send_twist((0.0, 0.0, 0.0), (0.0, 0.0, 0.0))
    assert robot._call(wire.Kind.STATE).flags & wire.FLAG_HOME_FAILED


@pytest.mark.timing  # the direct world runs in real time: motion, rest and pacing over wall time
def test_cameras_render_the_scene_and_see_the_arm_move(world, robot):
    assert set(world.camera_names()) == {"front", "wrist"}
    front0 = world.render("front", 64, 64)
    wrist = world.render("wrist", 48, 64)
    assert front0.shape == (64, 64, 3) and wrist.shape == (48, 64, 3) and front0.dtype == np.uint8
    assert front0.std() > 5 and wrist.std() > 5, "blank image"
    stream(robot, (0.0, 0.0, 0.08), seconds=0.8)
    robot.stop()
    front1 = world.render("front", 64, 64)
    changed = np.abs(front1.astype(int) - front0.astype(int)).max(axis=2) > 30
    assert changed.sum() > 20, f"only {changed.sum()} pixels changed after the arm moved 6 cm"


@pytest.mark.timing  # the direct world runs in real time: motion, rest and pacing over wall time
def test_gripper_moves_and_grasps(robot):
    robot.gripper_move(0.06)
    deadline = time.monotonic() + 3.0
    while abs(robot.read_state().gripper_width_m - 0.06) > 2e-3 and time.monotonic() < deadline:
        time.sleep(0.05)  # the fingers travel at gripper_speed_m_s
    assert robot.read_state().gripper_width_m == pytest.approx(0.06, abs=2e-3)
    robot.gripper_grasp()
    deadline = time.monotonic() + 3.0
    while robot.read_state().gripper_width_m > 2e-3 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert robot.read_state().gripper_width_m < 2e-3  # nothing between the fingers: fully closed
    robot.gripper_move(0.04)


def test_reflex_refuses_commands_until_recovered(robot):
    with pytest.raises(RobotError, match="reflex"):
        robot.send_twist((2.0, 0.0, 0.0), (0.0, 0.0, 0.0))  # above the FR3's Cartesian limit
    assert robot.read_state().has_error
    with pytest.raises(RobotError, match="recover"):
        robot.send_twist((0.01, 0.0, 0.0), (0.0, 0.0, 0.0))
    with pytest.raises(RobotError):
        robot.send_twist((float("nan"), 0.0, 0.0), (0.0, 0.0, 0.0))
    assert robot.recover()
    assert not robot.read_state().has_error
    robot.send_twist((0.01, 0.0, 0.0), (0.0, 0.0, 0.0))


def test_nobody_listening_is_a_clear_connection_error():
    r = DirectRobot(FrankaConfig(backend="direct", robot_ip=ADDRESS, direct_port=PORT + 1, direct_timeout_s=0.5))
    with pytest.raises(RobotConnectionError, match="physics: direct"):
        r.connect()


def test_silent_peer_times_out():
    silent = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    silent.bind((ADDRESS, 0))
    try:
        r = DirectRobot(FrankaConfig(backend="direct", robot_ip=ADDRESS, direct_port=silent.getsockname()[1],
                                     direct_timeout_s=0.3))
        with pytest.raises(RobotConnectionError, match="no reply .* within 0.3 s"):
            r.connect()
    finally:
        silent.close()


def test_world_refuses_another_protocol_version(world):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(2.0)
    try:
        s.sendto(wire.pack_request(wire.Kind.HELLO, 7, version=wire.PROTOCOL_VERSION + 1), (ADDRESS, PORT))
        reply = s.recv(wire.MAX_DATAGRAM)
        _, version, kind, status, seq = wire.HEADER.unpack_from(reply)
        assert (version, kind, status, seq) == (wire.PROTOCOL_VERSION, wire.Kind.HELLO, wire.Status.BAD_VERSION, 7)
        assert f"v{wire.PROTOCOL_VERSION + 1}" in reply[wire.HEADER.size + wire.STATE.size:].decode()
        s.sendto(b"hello?", (ADDRESS, PORT))  # not ours: ignored, no reply
        with pytest.raises(socket.timeout):
            s.settimeout(0.3)
            s.recv(wire.MAX_DATAGRAM)
    finally:
        s.close()


def test_client_refuses_a_world_with_another_protocol_version():
    """A peer that answers with another version (an older/newer sim world) is named as such."""
    peer = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    peer.bind((ADDRESS, 0))
    peer.settimeout(3.0)

    def answer_as_v2():
        data, addr = peer.recvfrom(wire.MAX_DATAGRAM)
        _, _, kind, _, seq = wire.HEADER.unpack_from(data)
        peer.sendto(wire.HEADER.pack(wire.MAGIC, wire.PROTOCOL_VERSION + 1, kind, 0, seq) + bytes(64), addr)

    t = threading.Thread(target=answer_as_v2, daemon=True)
    t.start()
    try:
        r = DirectRobot(FrankaConfig(backend="direct", robot_ip=ADDRESS, direct_port=peer.getsockname()[1]))
        with pytest.raises(RobotConnectionError, match=f"protocol v{wire.PROTOCOL_VERSION + 1}.*same robot_stack version"):
            r.connect()
    finally:
        t.join(timeout=5)
        peer.close()


def test_bad_world_settings_are_named(world):
    with pytest.raises(ValueError, match="whole number"):
        DirectWorldConfig(control_rate_hz=300.0, physics_timestep_s=0.002).validate()
    with pytest.raises(ValueError, match="port"):
        DirectWorldConfig(port=0).validate()
    with pytest.raises(OSError, match="another world"):
        with DirectWorld(DirectWorldConfig(hostname=ADDRESS, port=PORT), None):
            pass
