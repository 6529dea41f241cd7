"""The optional ROS 2 collector over real DDS on loopback (EE poses and images)."""
from __future__ import annotations

import threading

import numpy as np
import pytest

pytestmark = pytest.mark.ros

rclpy = pytest.importorskip("rclpy")

from geometry_msgs.msg import PoseStamped  # noqa: E402
from rclpy.executors import SingleThreadedExecutor  # noqa: E402
from sensor_msgs.msg import Image  # noqa: E402

from robot_stack.calibration import ros_collect  # noqa: E402
from robot_stack.types.errors import CalibrationError  # noqa: E402

DOMAIN_ID = 63  # calibration's range is 60-69


@pytest.fixture
def publisher():
    """A node publishing a moving EE pose and a 64x48 rgb8 image at 50 Hz on domain 63."""
    rclpy.init(domain_id=DOMAIN_ID)
    node = rclpy.create_node("fake_franka_and_camera")
    pose_pub = node.create_publisher(PoseStamped, "/test_calib/ee_pose", 50)
    img_pub = node.create_publisher(Image, "/test_calib/image", ros_collect.qos_profile_sensor_data)
    state = {"k": 0}

    def tick() -> None:
        k = state["k"] = state["k"] + 1
        msg = PoseStamped()
        msg.header.frame_id = "fr3_link0"
        msg.pose.position.x = 0.3 + 0.3 * ((k % 50) / 49)
        msg.pose.position.y = -0.2 + 0.4 * (((k * 7) % 50) / 49)
        msg.pose.position.z = 0.1 + 0.3 * (((k * 13) % 50) / 49)
        msg.pose.orientation.w = 1.0
        pose_pub.publish(msg)
        img = Image(height=48, width=64, encoding="rgb8", step=64 * 3)
        arr = np.zeros((48, 64, 3), np.uint8)
        arr[:, :, 0] = k % 256
        img.data = arr.tobytes()
        img_pub.publish(img)

    node.create_timer(0.02, tick)
    ex = SingleThreadedExecutor()
    ex.add_node(node)
    th = threading.Thread(target=ex.spin, daemon=True)
    th.start()
    yield
    ex.shutdown()
    th.join(timeout=5)
    node.destroy_node()
    rclpy.shutdown()


@pytest.mark.timing  # a publisher and a collector over DDS on loopback, within the waits
def test_collect_positions_from_pose_topic(publisher):
    positions = ros_collect.collect_positions("/test_calib/ee_pose", duration_s=1.5, timeout_s=10.0)
    assert len(positions) >= 20
    pts = np.asarray(positions)
    assert pts.min(axis=0)[0] >= 0.3 - 1e-9 and pts.max(axis=0)[0] <= 0.6 + 1e-9


@pytest.mark.timing  # a publisher and a collector over DDS on loopback, within the waits
def test_workspace_cli_records_from_topic(publisher, tmp_path, capsys):
    from robot_stack.calibration.cli import main
    from robot_stack.types.workspace import load_workspace_box

    out = tmp_path / "workspace_box.yaml"
    assert main(["workspace", "--topic", "/test_calib/ee_pose", "--duration-s", "1.5", "--margin-m", "0.01",
                 "--out", str(out)]) == 0
    box = load_workspace_box(out)
    assert box.frame == "fr3_link0"
    assert 0.3 <= box.min_xyz_m[0] < box.max_xyz_m[0] <= 0.6
    assert "wrote" in capsys.readouterr().out


@pytest.mark.timing  # a publisher and a collector over DDS on loopback, within the waits
def test_topic_collector_images_and_pose(publisher):
    with ros_collect.TopicCollector(image_topic="/test_calib/image", pose_topic="/test_calib/ee_pose") as col:
        img, n = col.next_image(timeout_s=10.0)
        assert img.shape == (48, 64, 3) and img.dtype == np.uint8
        img2, n2 = col.next_image(timeout_s=10.0, after=n)
        assert n2 > n
        T = col.latest_pose(timeout_s=10.0)
        assert T.shape == (4, 4) and 0.3 <= T[0, 3] <= 0.6


def test_missing_topic_gives_clear_error(publisher):
    with ros_collect.TopicCollector(image_topic="/test_calib/nothing_here") as col:
        with pytest.raises(CalibrationError, match="is the camera node running"):
            col.next_image(timeout_s=0.5)


def test_image_from_msg_handles_row_padding_and_rejects_unknown_encoding():
    msg = Image(height=2, width=3, encoding="mono8", step=4)
    msg.data = bytes([1, 2, 3, 0, 4, 5, 6, 0])
    np.testing.assert_array_equal(ros_collect.image_from_msg(msg), [[1, 2, 3], [4, 5, 6]])
    with pytest.raises(CalibrationError, match="unsupported image encoding"):
        ros_collect.image_from_msg(Image(height=1, width=1, encoding="16UC1", step=2))


@pytest.fixture
def board_camera():
    """A node publishing rendered ChArUco views (320x240 mono8, 10 distinct poses) at 20 Hz."""
    from robot_stack.calibration.board import BoardConfig
    from robot_stack.calibration.synthetic import BoardRenderer, SyntheticCamera, sample_views

    board, cam = BoardConfig(), SyntheticCamera(320, 240, 300.0, 301.0, 161.0, 119.0)
    rng = np.random.default_rng(2)
    renderer = BoardRenderer(board, cam)
    frames = [renderer.render(T, rng) for T in sample_views(board, cam, 14, rng)]
    rclpy.init(domain_id=DOMAIN_ID)
    node = rclpy.create_node("fake_camera")
    pub = node.create_publisher(Image, "/test_calib/board_image", ros_collect.qos_profile_sensor_data)
    state = {"k": 0}

    def tick() -> None:
        state["k"] += 1
        img = frames[(state["k"] // 2) % len(frames)]
        pub.publish(Image(height=240, width=320, encoding="mono8", step=320, data=img.tobytes()))

    node.create_timer(0.05, tick)
    ex = SingleThreadedExecutor()
    ex.add_node(node)
    th = threading.Thread(target=ex.spin, daemon=True)
    th.start()
    yield cam
    ex.shutdown()
    th.join(timeout=5)
    node.destroy_node()
    rclpy.shutdown()


@pytest.mark.timing  # a publisher and a collector over DDS on loopback, within the waits
def test_intrinsics_cli_from_live_topic(board_camera, tmp_path, capsys):
    from robot_stack.calibration.cli import main
    from robot_stack.types.intrinsics import load_camera_info_yaml

    out = tmp_path / "live_camera_info.yaml"
    saved = tmp_path / "views"
    assert main(["intrinsics", "--topic", "/test_calib/board_image", "--count", "10", "--period-s", "0.05",
                 "--min-views", "10", "--save-images", str(saved), "--out", str(out)]) == 0
    err = capsys.readouterr().err
    assert "[10/10]" in err
    intr = load_camera_info_yaml(out)
    assert (intr.width, intr.height) == (320, 240)
    assert abs(intr.fx - board_camera.fx) / board_camera.fx < 0.01
    assert len(list(saved.glob("*.png"))) == 10
