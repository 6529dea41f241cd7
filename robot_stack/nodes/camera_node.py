"""Camera node: one camera -> sensor_msgs/Image (rgb8) + sensor_msgs/CameraInfo.

Publishes (qos.SENSOR: offered reliable, transient local, last 30 kept, see robot_stack.nodes.qos;
names relative to the namespace, see robot_stack.nodes.topics)
  ``cameras/<name>/image_raw``          sensor_msgs/Image, rgb8, policy size
  ``cameras/<name>/camera_info``        sensor_msgs/CameraInfo of that image
  ``cameras/<name>/depth/image_raw``    sensor_msgs/Image, 16UC1 (mm), aligned to colour
                                        (only with enable_depth)

``header.stamp`` is the capture time (the device's hardware time stamp mapped to the host
clock when the camera has one; see robot_stack.devices.cameras.base). A capture thread reads the
camera and publishes each new frame, so a slow subscriber never blocks capture. When the
camera fails (unplugged, end of a recording without repeat) the node logs what to do and
tries to reconnect every ``reconnect_period_s``.

Parameters: every field of :class:`CameraNodeConfig` (see config/camera.yaml).
"""
from __future__ import annotations

import os
import sys
import threading
from dataclasses import dataclass
from typing import Any

import rclpy
from rclpy.node import Node
from rclpy.time import Time

from robot_stack.devices.cameras.base import CameraConfig, CameraError, Frame, make_camera
from robot_stack.devices.cameras.sim import FrameProvider
from robot_stack.nodes import convert, topics
from robot_stack.nodes.params import declare_config, run_node
from robot_stack.types.config import ConfigError


@dataclass(frozen=True)
class CameraNodeConfig(CameraConfig):
    """Camera node parameters: the camera config plus publishing."""

    frame_id: str = ""
    """Optical frame of the images; empty: <name>_color_optical_frame."""
    reconnect_period_s: float = 2.0
    """Seconds between attempts to reopen a failed camera."""

    def validate(self) -> None:
        super().validate()
        if self.reconnect_period_s <= 0:
            raise ValueError(f"reconnect_period_s must be > 0, got {self.reconnect_period_s}")


class CameraNode(Node):
    """Thin node over :mod:`robot_stack.devices.cameras.base`."""

    def __init__(self, *, provider: FrameProvider | None = None, process_exit_releases_playback: bool = False,
                 **node_kwargs: Any) -> None:
        """``provider`` feeds the sim backend (in-process graphs, tests).
        ``process_exit_releases_playback`` (main() only): with the file backend, close() leaves
        the playback pipeline running and the process ends right after without C++ teardown
        (see main()); stopping a playback pipeline crashed librealsense now and then."""
        node_kwargs.setdefault("namespace", topics.DEFAULT_NAMESPACE)
        super().__init__(node_kwargs.pop("node_name", "camera"), **node_kwargs)
        self._release_camera = True
        self.config = declare_config(self, CameraNodeConfig)
        self._release_camera = not (process_exit_releases_playback and self.config.backend == "file")
        self.frame_id = self.config.frame_id or f"{self.config.name}_color_optical_frame"
        self.camera = make_camera(self.config, provider=provider)
        name = self.config.name
        self.pub_image = topics.publisher(self, topics.CAMERA_IMAGE, camera=name)
        self.pub_info = topics.publisher(self, topics.CAMERA_INFO, camera=name)
        self.pub_depth = topics.publisher(self, topics.CAMERA_DEPTH, camera=name) if self.config.enable_depth else None
        self.frames_published = 0
        self.fatal_error: str | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._capture_loop, name=f"capture-{self.config.name}", daemon=True)
        self._thread.start()
        self.get_logger().info(f"camera '{self.config.name}' ({self.config.backend}) publishing on {self.pub_image.topic_name}")

    def _capture_loop(self) -> None:
        try:
            self._capture()
        finally:
            if self._release_camera:
                self.camera.close()  # from the thread that read it

    def _capture(self) -> None:
        last_error = ""
        while not self._stop.is_set():
            try:
                if not self.camera.connected:
                    self.camera.connect()
                    self.get_logger().info(
                        f"camera '{self.config.name}' connected, output {self.camera.output_size[0]}x{self.camera.output_size[1]}"
                    )
                    last_error = ""
                frame = self.camera.read()
            except ConfigError as e:
                # Not transient (e.g. crop larger than the capture): stop the node with the reason.
                self.fatal_error = str(e)
                self.get_logger().error(f"{e}; stopping")
                self.camera.close()
                rclpy.try_shutdown(context=self.context)
                return
            except CameraError as e:
                if str(e) != last_error:  # each distinct problem once
                    self.get_logger().error(f"{e}; retrying every {self.config.reconnect_period_s:g} s")
                    last_error = str(e)
                self.camera.close()
                self._stop.wait(self.config.reconnect_period_s)  # retry pacing; wakes at once on close()
                continue
            if not self.context.ok():
                return  # Ctrl-C/SIGTERM: the context is gone, nothing left to publish to
            self._publish(frame)

    def _publish(self, frame: Frame) -> None:
        stamp = Time(nanoseconds=int(frame.t_s * 1e9)).to_msg()
        self.pub_image.publish(convert.image_to_msg(frame.image, stamp, self.frame_id))
        self.pub_info.publish(convert.camera_info_to_msg(self.camera.intrinsics, stamp, self.frame_id))
        if self.pub_depth is not None and frame.depth is not None:
            self.pub_depth.publish(convert.depth_to_msg(frame.depth, frame.depth_scale_m, stamp, self.frame_id))
        self.frames_published += 1

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=self.config.read_timeout_s + 2.0)
        if self._thread.is_alive() and self._release_camera:  # stuck in the driver: release it from here
            self.camera.close()


def main(args: list[str] | None = None) -> int:
    """Entry point of the camera node process. It ends the process itself (``os._exit``) once
    the node is closed, skipping the C++ teardown at interpreter exit, and with the file backend
    it does not stop the playback pipeline first: stopping or tearing down librealsense's
    playback raced its reader threads ("pure virtual method called", heap corruption, SIGABRT)
    in 2 of 60 to 2 of 80 Ctrl-C stops under CPU load, also with the stop done from
    the reading thread. Live cameras are still stopped, from their reading thread."""
    rc = run_node(lambda: CameraNode(process_exit_releases_playback=True), args)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(rc)


if __name__ == "__main__":
    raise SystemExit(main())
