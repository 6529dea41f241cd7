"""Sim world node contract (real DDS on loopback, franky-sim in-process), the policy spec
files it and the learner share, the Joy source of the SpaceMouse sim backend, and the
progress log the monitor writes."""
from __future__ import annotations

import math
import os
import pathlib
import time

import numpy as np
import pytest

from robot_stack.rl.progress import EpisodeRow, ProgressLog
from robot_stack.sim import specs
from robot_stack.types.config import ConfigError
from robot_stack.types.spec import PolicySpec

ROOT = pathlib.Path(__file__).resolve().parents[1]
ADDRESS = f"127.0.0.{140 + os.getpid() % 10}"


def test_spec_files_match_what_the_tasks_produce():
    files = sorted((ROOT / "policies" / "specs").glob("*.json"))
    assert len(files) == 2 * len(specs.CAMERA_SETS) * len(specs.IMAGE_SIZES)
    for path in files:
        task, rest = path.stem.split("_", 1) if not path.stem.startswith("peg_insertion") else ("peg_insertion", path.stem[len("peg_insertion_"):])
        cams, size = rest.rsplit("_", 1)
        want = specs.task_policy_spec(task, tuple(cams.split("_")), int(size))
        assert PolicySpec.from_json(path.read_text()) == want, f"{path.name} is stale: run robot-stack spec --write-all policies/specs"


def test_task_policy_spec_rejects_unknown_camera():
    with pytest.raises(ValueError, match="no camera"):
        specs.task_policy_spec("reach", ("ceiling",), 64)


@pytest.mark.ros
@pytest.mark.parametrize("overrides, match", [
    ({"task": "stack_blocks"}, "task must be one of"),
    ({"cameras": ["ceiling"]}, "no camera"),
    ({"spec_file": "/nonexistent/spec.json"}, "spec_file"),
    ({"image_height": 4}, "image size"),
    ({"operator_min_axis": 0.0}, "operator_min_axis"),
])
def test_bad_parameters_fail_at_start_with_their_name(ros_context, overrides, match):
    from rclpy.parameter import Parameter

    from robot_stack.nodes.sim_world_node import SimWorldNode

    params = [Parameter(k, value=v) for k, v in {"hostname": ADDRESS, **overrides}.items()]
    with pytest.raises(ConfigError, match=match):
        SimWorldNode(context=ros_context, parameter_overrides=params)


@pytest.mark.ros
@pytest.mark.timing  # nodes over DDS on loopback and a stale-reading age in wall-clock time
def test_world_publishes_cameras_success_operator_and_answers_resets(ros_context, spin, collector):
    import threading

    import rclpy
    from rclpy.callback_groups import ReentrantCallbackGroup
    from rclpy.parameter import Parameter
    from rclpy.task import Future

    from robot_stack.nodes import convert, topics
    from robot_stack.nodes.sim_world_node import SimWorldNode

    spec_file = ROOT / "policies" / "specs" / "reach_front_wrist_64.json"
    world = SimWorldNode(context=ros_context, parameter_overrides=[
        Parameter("hostname", value=ADDRESS), Parameter("spec_file", value=str(spec_file)),
        Parameter("operator_strategy", value="always"), Parameter("seed", value=5)])
    probe = rclpy.create_node("world_probe", context=ros_context)
    images = collector(probe, topics.CAMERA_IMAGE, camera="wrist")
    infos = collector(probe, topics.CAMERA_INFO, camera="front")
    success = collector(probe, topics.SIM_SUCCESS)
    joy = collector(probe, topics.SIM_OPERATOR_JOY)
    # The probe stands in for the Franka node: it serves franka/home_to and answers when the
    # test opens the gate (a move that takes as long as the test wants).
    targets: list = []
    gate: list[Future] = []
    homed = threading.Event()

    async def on_home_to(request, response):
        targets.append(convert.home_to_target(request))
        homed.set()
        await gate[0]
        return convert.fill_result(response, True, "reached")

    probe.create_service(topics.FRANKA_HOME_TO.srv_type, topics.FRANKA_HOME_TO.resolve(), on_home_to,
                         callback_group=ReentrantCallbackGroup())
    reset = probe.create_client(topics.EPISODE_RESET.srv_type, topics.EPISODE_RESET.resolve())
    # The world renders with EGL contexts bound to one thread: it runs on a single-threaded
    # executor, as rclpy.spin does in its main().
    from rclpy.executors import SingleThreadedExecutor

    world_exec = SingleThreadedExecutor(context=ros_context)
    world_exec.add_node(world)
    threading.Thread(target=world_exec.spin, daemon=True).start()
    probe_exec = spin(probe)
    gate.append(Future(executor=probe_exec))
    gate[0].add_done_callback(lambda _f: None)  # set_result from the test thread wakes the executor
    try:
        img = images.wait_for(3, timeout_s=20)[-1]
        assert (img.height, img.width, img.encoding) == (64, 64, "rgb8")
        pixels = np.frombuffer(img.data, np.uint8)
        assert pixels.size == 64 * 64 * 3 and pixels.std() > 5, "blank wrist image"
        info = infos.wait_for(1, timeout_s=10)[-1]
        fy_expected = 32.0 / math.tan(math.radians(world._mounts["front"].fovy_deg) / 2)
        assert info.k[4] == pytest.approx(fy_expected) and info.k[2] == pytest.approx(31.5)
        assert success.wait_for(2, timeout_s=10)[-1].data is False
        # Before the first reset completes the operator keeps its hands off.
        assert all(a == 0.0 for a in joy.wait_for(2, timeout_s=10)[-1].axes)

        assert reset.wait_for_service(timeout_sec=10.0)
        answered = threading.Event()
        answer = reset.call_async(convert.reset_request(7))
        answer.add_done_callback(lambda _f: answered.set())
        assert homed.wait(10.0), "the world did not ask the Franka node to move to the start pose"
        p = targets[-1].xyz_m
        assert 0.3 < p[0] < 0.75 and -0.3 < p[1] < 0.3 and 0.05 < p[2] < 0.6, "start pose outside the workspace"
        assert targets[-1].frame_id == "base"
        time.sleep(0.3)
        assert not answer.done(), "reset answered before the arm was home"
        # the world keeps rendering while its reset callback waits for the move
        images.wait_for(2, timeout_s=5, start=len(images.messages))
        gate[0].set_result(True)  # the arm is home
        assert answered.wait(10.0), "reset not answered after the arm was home"
        assert answer.result().success, answer.result().message
        # Operator 'always' in control now: readings deflect past the deadzone.
        n = len(joy.messages)
        moving = joy.wait_for(1, timeout_s=10, start=n, where=lambda m: max(abs(a) for a in m.axes) > 0.2)
        assert len(moving[-1].axes) == 6
    finally:
        world_exec.shutdown(timeout_sec=2)
        world.close()


@pytest.mark.ros
@pytest.mark.timing  # nodes over DDS on loopback and a stale-reading age in wall-clock time
def test_joy_topic_source_gives_readings_and_lets_go_when_stale(ros_context):
    import rclpy
    from sensor_msgs.msg import Joy

    from robot_stack.nodes import qos
    from robot_stack.nodes.sim_operator_source import JoyTopicSource

    src = JoyTopicSource(topic="/test_joy_source", max_age_s=0.3)
    src.connect()
    node = rclpy.create_node("joy_pub", context=ros_context)
    pub = node.create_publisher(Joy, "/test_joy_source", qos.COMMAND)
    try:
        assert src.read() is None
        deadline = time.monotonic() + 10
        reading = None
        while reading is None and time.monotonic() < deadline:
            pub.publish(Joy(axes=[0.5, 0.0, -0.25, 0.0, 0.0, 0.0], buttons=[0, 1]))
            time.sleep(0.05)
            reading = src.read()
        assert reading is not None
        assert np.allclose(reading.axes, [0.5, 0.0, -0.25, 0.0, 0.0, 0.0]) and reading.buttons == (0, 1)
        pub.publish(Joy(axes=[float("nan")] * 6, buttons=[]))  # malformed: ignored
        time.sleep(0.5)
        assert src.read() is None, "a stale reading must count as hands off"
    finally:
        src.close()
        node.destroy_node()


def _row(i: int, success: bool, rate: float) -> EpisodeRow:
    return EpisodeRow(episode_id=i, wall_time_s=float(i), steps=50, success=success, truncated=not success,
                      interventions=2, intervention_steps=round(50 * rate), intervention_rate=rate,
                      success_rate_window=0.5, intervention_rate_window=rate, policy_version=i,
                      learner_updates=10 * i, evaluation=False)


def test_progress_log_writes_csv_plot_and_summary(tmp_path):
    log = ProgressLog(tmp_path, window=5)
    lines = [log.on_episode(_row(i, i >= 2, 0.6 - 0.1 * i)) for i in range(4)]
    assert "episode    3 | SUCCESS" in lines[3] and "takeovers" in lines[3]
    assert "timeout" in lines[0]
    rows = (tmp_path / "progress.csv").read_text().splitlines()
    assert len(rows) == 5 and rows[0].startswith("episode_id,")
    assert log.plot().stat().st_size > 1000
    # first half: 0% success, 55% intervention; second half: 100% success, 35% intervention
    assert log.summary() == ("4 episodes: first half success 0%, intervention 55%; "
                             "second half success 100%, intervention 35%")


@pytest.mark.ros
@pytest.mark.timing  # nodes over DDS on loopback and a stale-reading age in wall-clock time
def test_camera_frames_published_from_calibration_or_truth(ros_context, spin, collector, tmp_path):
    import rclpy
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.parameter import Parameter

    from robot_stack.calibration.handeye import Extrinsic, save_extrinsic_yaml
    from robot_stack.types.geometry import quat_xyzw_to_R
    from robot_stack.nodes import topics
    from robot_stack.nodes.sim_world_node import SimWorldNode, mount_T_parent_optical
    from robot_stack.sim.tasks import FRONT_CAMERA, WRIST_CAMERA

    T_cal = mount_T_parent_optical(FRONT_CAMERA)
    T_cal[:3, 3] += [0.01, -0.02, 0.005]  # a calibration that differs from the mount
    save_extrinsic_yaml(Extrinsic("base", "front_optical", T_cal), tmp_path / "front_extrinsic.yaml")
    world = SimWorldNode(context=ros_context, parameter_overrides=[
        Parameter("hostname", value=ADDRESS), Parameter("cameras", value=["front", "wrist"]),
        Parameter("calibration_dir", value=str(tmp_path)), Parameter("operator_enabled", value=False)])
    try:
        probe = rclpy.create_node("pose_probe", context=ros_context)
        # Transient local: a subscriber that joins later still gets the poses.
        front = collector(probe, topics.CAMERA_POSE, camera="front")
        wrist = collector(probe, topics.CAMERA_POSE, camera="wrist")
        ex = SingleThreadedExecutor(context=ros_context)
        ex.add_node(world)
        import threading
        threading.Thread(target=ex.spin, daemon=True).start()
        spin(probe)

        def as_T(msg):
            p, q = msg.pose.position, msg.pose.orientation
            T = np.eye(4)
            T[:3, :3] = quat_xyzw_to_R([q.x, q.y, q.z, q.w])
            T[:3, 3] = [p.x, p.y, p.z]
            return T

        f = front.wait_for(1, timeout_s=10)[-1]
        w = wrist.wait_for(1, timeout_s=10)[-1]
        assert f.header.frame_id == "base" and np.allclose(as_T(f), T_cal, atol=1e-6)
        assert w.header.frame_id == "hand" and np.allclose(as_T(w), mount_T_parent_optical(WRIST_CAMERA), atol=1e-6)
        ex.shutdown(timeout_sec=2)
    finally:
        world.close()


def test_sim_front_camera_calibrates_end_to_end_to_its_published_pose():
    """Calibrate the sim's front camera (its mount and field of view, rendered at 640x480) from
    MuJoCo images of a ChArUco board moved by a body, then hand-eye (eye-to-hand): the result
    matches the pose the sim world publishes for that camera."""
    from robot_stack.calibration.board import BoardConfig, BoardDetector, estimate_board_pose
    from robot_stack.types.geometry import transform_error
    from robot_stack.calibration.handeye import HandEyeConfig, solve_hand_eye
    from robot_stack.calibration.intrinsics import calibrate_intrinsics
    from robot_stack.calibration.sim_board_scene import BoardScene
    from robot_stack.calibration.synthetic import SyntheticCamera, sample_views
    from robot_stack.nodes.sim_world_node import mount_T_parent_optical
    from robot_stack.sim.tasks import FRONT_CAMERA

    board = BoardConfig()
    rng = np.random.default_rng(7)
    detector = BoardDetector(board)
    views, T_world_ee = [], []
    with BoardScene(board, width=640, height=480, fovy_deg=FRONT_CAMERA.fovy_deg, cam_pos=FRONT_CAMERA.pos,
                    cam_xyaxes=FRONT_CAMERA.xyaxes) as scene:
        K = scene.K
        planner = SyntheticCamera(640, 480, K[0, 0], K[1, 1], K[0, 2], K[1, 2])
        for T_cam_board in sample_views(board, planner, 16, rng, distance_m=(0.35, 0.65)):
            T = scene.ee_pose_for_view(T_cam_board)
            scene.set_ee_pose(T)
            det = detector.detect(scene.render())
            if det is not None:
                views.append(det)
                T_world_ee.append(T)
    assert len(views) >= 12, f"board found in only {len(views)} of 16 rendered views"
    intr = calibrate_intrinsics(views).intrinsics
    assert abs(intr.fy - K[1, 1]) / K[1, 1] < 0.005
    T_cam_board = [estimate_board_pose(v, intr.K, intr.dist)[0] for v in views]
    result = solve_hand_eye(T_world_ee, T_cam_board, HandEyeConfig(mode="eye_to_hand"))
    rot_deg, trans_m = transform_error(result.T, mount_T_parent_optical(FRONT_CAMERA))
    assert rot_deg < 0.5 and trans_m < 0.002, (rot_deg, trans_m)
