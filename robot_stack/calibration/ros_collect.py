"""Optional live collection from ROS 2 topics (imported only when a CLI live mode is chosen).

Thin layer: subscriptions keep the newest message; everything else is core code. Spinning
runs in a background thread; waiting uses a Condition, never sleep.
"""
from __future__ import annotations

import logging
import threading
import time
from typing import Callable

import numpy as np
import rclpy
from geometry_msgs.msg import PoseStamped
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import Image

from robot_stack.types.errors import CalibrationError
from robot_stack.types.geometry import T_from_xyz_quat

log = logging.getLogger(__name__)

_CHANNELS = {"mono8": 1, "rgb8": 3, "bgr8": 3, "rgba8": 4, "bgra8": 4}


def image_from_msg(msg) -> np.ndarray:
    """numpy image (H, W[, C]) uint8 from a sensor_msgs/Image; colour order is kept as sent."""
    ch = _CHANNELS.get(msg.encoding)
    if ch is None:
        raise CalibrationError(f"unsupported image encoding '{msg.encoding}': publish mono8, rgb8, bgr8, rgba8 or bgra8")
    buf = np.frombuffer(msg.data, np.uint8).reshape(msg.height, msg.step)
    img = buf[:, : msg.width * ch].reshape(msg.height, msg.width, ch)
    return img[:, :, 0] if ch == 1 else img


def T_from_pose_msg(msg) -> np.ndarray:
    p, q = msg.pose.position, msg.pose.orientation
    return T_from_xyz_quat([p.x, p.y, p.z], [q.x, q.y, q.z, q.w])


class _Latest:
    """Newest message of one topic plus a counter, guarded by a Condition."""

    def __init__(self):
        self.cond = threading.Condition()
        self.msg = None
        self.count = 0
        self.t_wall = 0.0

    def put(self, msg) -> None:
        with self.cond:
            self.msg, self.count, self.t_wall = msg, self.count + 1, time.monotonic()
            self.cond.notify_all()

    def wait_newer(self, count: int, timeout_s: float):
        with self.cond:
            self.cond.wait_for(lambda: self.count > count, timeout=timeout_s)
            return self.msg, self.count


class TopicCollector:
    """Context manager: a node subscribed to an image topic and/or an EE pose topic."""

    def __init__(self, image_topic: str | None = None, pose_topic: str | None = None,
                 on_pose: Callable[[PoseStamped], None] | None = None, node_name: str = "calibration_collector"):
        self._image_topic, self._pose_topic, self._on_pose = image_topic, pose_topic, on_pose
        self._node_name = node_name
        self.image = _Latest()
        self.pose = _Latest()
        self._owns_rclpy = False

    def __enter__(self) -> "TopicCollector":
        if not rclpy.ok():
            rclpy.init()
            self._owns_rclpy = True
        self._node = Node(self._node_name)
        if self._image_topic:
            self._node.create_subscription(Image, self._image_topic, self.image.put, qos_profile_sensor_data)
        if self._pose_topic:
            self._node.create_subscription(PoseStamped, self._pose_topic, self._pose_cb, 50)
        self._executor = SingleThreadedExecutor()
        self._executor.add_node(self._node)
        self._thread = threading.Thread(target=self._executor.spin, daemon=True)
        self._thread.start()
        return self

    def _pose_cb(self, msg) -> None:
        self.pose.put(msg)
        if self._on_pose is not None:
            self._on_pose(msg)

    def __exit__(self, *exc) -> None:
        self._executor.shutdown()
        self._thread.join(timeout=5.0)
        self._node.destroy_node()
        if self._owns_rclpy:
            rclpy.shutdown()

    def next_image(self, timeout_s: float = 5.0, after: int = 0):
        """(image, count) of the first image newer than message number ``after``."""
        msg, n = self.image.wait_newer(after, timeout_s)
        if msg is None or n <= after:
            raise CalibrationError(
                f"no image on {self._image_topic} within {timeout_s:.0f} s: is the camera node running "
                "(and ROS_DOMAIN_ID the same)?"
            )
        return image_from_msg(msg), n

    def latest_pose(self, timeout_s: float = 5.0) -> np.ndarray:
        msg, _ = self.pose.wait_newer(0, timeout_s)
        if msg is None:
            raise CalibrationError(
                f"no EE pose on {self._pose_topic} within {timeout_s:.0f} s: is franka_node running?"
            )
        return T_from_pose_msg(msg)


def collect_images(topic: str, count: int, period_s: float = 1.0, timeout_s: float = 10.0,
                   on_image: Callable[[np.ndarray, int], bool] | None = None) -> list[np.ndarray]:
    """Take one image every ``period_s`` until ``count`` were accepted by ``on_image``.

    ``on_image(image, index)`` returns whether the view was kept (e.g. ViewSelector); without
    it every frame is kept.
    """
    images: list[np.ndarray] = []
    with TopicCollector(image_topic=topic) as col:
        seen = 0
        last_t = -float("inf")
        while len(images) < count:
            img, seen = col.next_image(timeout_s, after=seen)
            if col.image.t_wall - last_t < period_s:
                continue  # give the operator time to move the board between views
            last_t = col.image.t_wall
            if on_image is None or on_image(img, len(images)):
                images.append(img)
    return images


def collect_positions(topic: str, duration_s: float, stop: threading.Event | None = None,
                      on_progress: Callable[[int, np.ndarray], None] | None = None,
                      timeout_s: float = 10.0) -> list[np.ndarray]:
    """EE positions (m) from PoseStamped messages for ``duration_s`` or until ``stop`` is set."""
    positions: list[np.ndarray] = []
    stop = stop or threading.Event()

    def on_pose(msg) -> None:
        p = msg.pose.position
        positions.append(np.array([p.x, p.y, p.z]))
        if on_progress is not None and len(positions) % 50 == 0:
            on_progress(len(positions), np.asarray(positions))

    with TopicCollector(pose_topic=topic, on_pose=on_pose) as col:
        col.latest_pose(timeout_s)  # fail fast when nothing publishes
        stop.wait(duration_s)
    return positions
