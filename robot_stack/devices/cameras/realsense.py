"""RealSense cameras through pyrealsense2: a device (``realsense``) or a recording played
through the same pipeline (``file``, ``rs.config.enable_device_from_file``)."""
from __future__ import annotations

import logging
import time

import numpy as np

from robot_stack.devices.cameras.base import Camera, CameraConfig, CameraError, RawFrame
from robot_stack.types.intrinsics import intrinsics_from_realsense

log = logging.getLogger(__name__)


class RealSenseCamera(Camera):
    """Intel RealSense via pyrealsense2: colour (rgb8) and optional depth aligned to colour."""

    def __init__(self, config: CameraConfig) -> None:
        super().__init__(config)
        self._rs = None
        self._pipeline = None
        self._align = None
        self._depth_scale_m = 0.001
        self._offset_s: float | None = None  # host minus device clock (hardware_clock domain)
        self._last_seq = -1

    def _import_rs(self):
        try:
            import pyrealsense2 as rs
        except ImportError as e:
            raise CameraError(
                f"pyrealsense2 cannot load ({e}); pip install pyrealsense2==2.59.1.11053 and install Debian's libusb-1.0-0"
            ) from e
        return rs

    def _configure(self, rs, rs_config) -> None:
        cfg = self.config
        ctx = rs.context()
        serials = [d.get_info(rs.camera_info.serial_number) for d in ctx.query_devices()]
        if not serials:
            raise CameraError(
                f"camera '{cfg.name}': no RealSense found. Plug it into a USB 3 port; if it is plugged in, install "
                "librealsense's udev rules (99-realsense-libusb.rules) and re-plug"
            )
        if cfg.serial:
            if cfg.serial not in serials:
                raise CameraError(f"camera '{cfg.name}': no RealSense with serial {cfg.serial}; connected: {serials}")
            rs_config.enable_device(cfg.serial)
        rs_config.enable_stream(rs.stream.color, cfg.width, cfg.height, rs.format.rgb8, cfg.fps)
        if cfg.enable_depth:
            rs_config.enable_stream(rs.stream.depth, cfg.width, cfg.height, rs.format.z16, cfg.fps)

    def _open(self):
        rs = self._rs = self._import_rs()
        rs_config = rs.config()
        self._configure(rs, rs_config)
        pipeline = rs.pipeline()
        try:
            profile = pipeline.start(rs_config)
        except RuntimeError as e:
            raise CameraError(
                f"camera '{self.config.name}': cannot start the RealSense pipeline ({e}); check that "
                f"{self.config.width}x{self.config.height}@{self.config.fps} is a supported mode and the camera is free"
            ) from e
        self._pipeline = pipeline
        self._after_start(profile)
        color = profile.get_stream(rs.stream.color).as_video_stream_profile()
        if self.config.enable_depth:
            self._align = rs.align(rs.stream.color)
            depth_sensor = profile.get_device().first_depth_sensor()
            self._depth_scale_m = float(depth_sensor.get_depth_scale())
        intr = intrinsics_from_realsense(color.get_intrinsics(), self.config.name)
        return (color.width(), color.height()), intr

    def _after_start(self, profile) -> None:
        """Hook for the file backend."""

    def _stamp(self, frame, arrival_s: float) -> tuple[float, float | None]:
        rs = self._rs
        t_dev = frame.get_timestamp() / 1000.0
        domain = frame.get_frame_timestamp_domain()
        if domain in (rs.timestamp_domain.global_time, rs.timestamp_domain.system_time):
            return t_dev, t_dev
        if domain == rs.timestamp_domain.hardware_clock:
            off = arrival_s - t_dev
            if self._offset_s is None or off < self._offset_s:
                self._offset_s = off
            return t_dev + self._offset_s, t_dev
        return arrival_s, t_dev

    def _grab(self, timeout_s: float) -> RawFrame:
        rs = self._rs
        deadline = time.monotonic() + timeout_s
        while True:
            remaining_ms = int(max(0.0, deadline - time.monotonic()) * 1000)
            try:
                ok, frames = self._pipeline.try_wait_for_frames(max(1, remaining_ms))
            except RuntimeError as e:
                raise CameraError(f"camera '{self.config.name}': RealSense read failed ({e}); check the cable") from e
            if not ok:
                raise CameraError(self._timeout_message(timeout_s))
            arrival = time.time()
            if self._align is not None:
                frames = self._align.process(frames)
            color = frames.get_color_frame()
            if not color:
                continue
            seq = int(color.get_frame_number())
            if seq == self._last_seq:  # framesets can repeat a colour frame (depth-only update)
                if time.monotonic() >= deadline:
                    raise CameraError(self._timeout_message(timeout_s))
                continue
            self._last_seq = seq
            img = np.asanyarray(color.get_data())
            fmt = color.get_profile().format()
            if fmt == rs.format.bgr8:
                img = img[..., ::-1]
            elif fmt != rs.format.rgb8:
                raise CameraError(f"camera '{self.config.name}': colour format {fmt} is not supported (need rgb8/bgr8)")
            depth = None
            if self.config.enable_depth:
                d = frames.get_depth_frame()
                depth = np.asanyarray(d.get_data()).copy() if d else None
            t_s, t_dev = self._stamp(color, arrival)
            return RawFrame(img.copy(), t_s, arrival, seq, t_dev, depth, self._depth_scale_m)

    def _timeout_message(self, timeout_s: float) -> str:
        return f"camera '{self.config.name}': no frame within {timeout_s} s (camera unplugged or stalled?)"

    def _shutdown(self) -> None:
        if self._pipeline is not None:
            try:
                self._pipeline.stop()
            except RuntimeError as e:  # already stopped / device gone: nothing left to release
                log.debug("RealSense stop: %s", e)
            self._pipeline = None


class RealSenseFileCamera(RealSenseCamera):
    """Plays a RealSense recording through the normal pyrealsense2 pipeline."""

    def _configure(self, rs, rs_config) -> None:
        cfg = self.config
        rs_config.enable_device_from_file(cfg.file_path, repeat_playback=cfg.file_repeat)
        rs_config.enable_stream(rs.stream.color)
        if cfg.enable_depth:
            rs_config.enable_stream(rs.stream.depth)

    def _after_start(self, profile) -> None:
        playback = profile.get_device().as_playback()
        playback.set_real_time(self.config.file_real_time)

    def _timeout_message(self, timeout_s: float) -> str:
        end = "" if self.config.file_repeat else " (end of the recording; set file_repeat to loop)"
        return f"camera '{self.config.name}': no frame within {timeout_s} s{end}"
