"""Camera node over real DDS on loopback: RealSense recording -> Image + CameraInfo."""
from __future__ import annotations

import numpy as np
import pytest

pytestmark = pytest.mark.ros

rclpy = pytest.importorskip("rclpy")
pytest.importorskip("pyrealsense2")
from rclpy.node import Node  # noqa: E402
from rclpy.parameter import Parameter  # noqa: E402
from rclpy.qos import DurabilityPolicy, ReliabilityPolicy  # noqa: E402
from sensor_msgs.msg import CameraInfo, Image  # noqa: E402

from robot_stack.nodes import qos, topics  # noqa: E402
from robot_stack.nodes.camera_node import CameraNode  # noqa: E402
from robot_stack.testing.realsense_recording import write_software_recording  # noqa: E402
from robot_stack.types.config import ConfigError  # noqa: E402
from robot_stack.types.intrinsics import CameraIntrinsics, save_camera_info_yaml  # noqa: E402

W, H = 64, 48


@pytest.fixture(scope="module")
def recording(tmp_path_factory):
    imgs = []
    for i in range(10):
        img = np.zeros((H, W, 3), np.uint8)
        img[..., 2] = 20 + i  # blue carries the frame index
        imgs.append(img)
    return write_software_recording(tmp_path_factory.mktemp("rs") / "cam.db3", imgs, fps=30)


def _node(ctx, **params):
    return CameraNode(context=ctx, parameter_overrides=[Parameter(k, value=v) for k, v in params.items()])


def test_bad_parameters_fail_at_start_up_with_their_name(ros_context, recording):
    with pytest.raises(ConfigError, match="'fps' must be integer"):
        _node(ros_context, backend="file", file_path=str(recording), fps="thirty")
    with pytest.raises(ConfigError, match="unknown parameter 'resolution'"):
        _node(ros_context, backend="file", file_path=str(recording), resolution=[64, 48])
    with pytest.raises(ConfigError, match="crop needs 4 values"):
        _node(ros_context, backend="file", file_path=str(recording), crop=[0, 0, 10])
    with pytest.raises(ConfigError, match="does not exist"):
        _node(ros_context, backend="file", file_path="/nonexistent/rec.db3")


@pytest.mark.timing  # node over DDS on loopback, camera playback in real time
def test_file_backend_publishes_image_and_camera_info(ros_context, spin, collector, recording, tmp_path):
    cal = tmp_path / "wrist.yaml"
    save_camera_info_yaml(CameraIntrinsics(32, 24, np.array([[30.0, 0, 15.5], [0, 30.0, 11.5], [0, 0, 1]]),
                                           np.array([0.01, 0, 0, 0, 0]), "wrist"), cal)
    node = _node(ros_context, name="wrist", backend="file", file_path=str(recording), file_repeat=True,
                 output_width=32, output_height=24, calibration_file=str(cal))
    listener = Node("listener", context=ros_context)
    prefix = topics.CAMERA_IMAGE.resolve(camera="wrist").rsplit("/", 1)[0]
    images = collector(listener, Image, f"{prefix}/image_raw", qos.SENSOR)
    infos = collector(listener, CameraInfo, f"{prefix}/camera_info", qos.SENSOR)
    spin(node, listener)
    try:
        imgs = images.wait_for(5, timeout_s=15.0)
        (info,) = infos.wait_for(1)[:1]
        (pub_info,) = node.get_publishers_info_by_topic(f"{prefix}/image_raw")
        # Offered reliable and transient local (kept for a late-matching recorder); the
        # best-effort, volatile listener above matches it.
        offered = qos.offered("SENSOR")
        assert (pub_info.qos_profile.reliability, pub_info.qos_profile.durability) == (
            ReliabilityPolicy.RELIABLE, offered.durability)
        assert offered.durability == DurabilityPolicy.TRANSIENT_LOCAL
    finally:
        node.close()
        node.destroy_node()
        listener.destroy_node()
    m = imgs[-1]
    assert (m.width, m.height, m.encoding, m.step) == (32, 24, "rgb8", 96)
    arr = np.frombuffer(bytes(m.data), np.uint8).reshape(24, 32, 3)
    assert arr[..., 0].max() == 0 and 20 <= arr[0, 0, 2] < 30
    assert m.header.frame_id == "wrist_color_optical_frame"
    stamps = [x.header.stamp.sec + x.header.stamp.nanosec * 1e-9 for x in imgs]
    assert all(s > 1e9 for s in stamps)  # host wall-clock epoch, not the device's 1 s counter
    # CameraInfo comes from the calibration file (given at the output size) and matches the image.
    assert (info.width, info.height) == (32, 24)
    assert info.k[0] == pytest.approx(30.0) and info.d[0] == pytest.approx(0.01)
    assert any(i.header.stamp == m.header.stamp for i in infos.messages)
