"""Writing RealSense recordings without a camera (tests, demos): they play back through the
``file`` camera backend, the real pyrealsense2 pipeline."""
from __future__ import annotations

import pathlib
import threading
import time

import numpy as np

from robot_stack.devices.cameras.base import pinhole_guess


def write_software_recording(
    path: str | pathlib.Path,
    images: list[np.ndarray],
    *,
    fps: int = 30,
    K: np.ndarray | None = None,
    depths: list[np.ndarray] | None = None,
    serial: str = "000000000000",
    t0_ms: float = 1000.0,
    real_time: bool = False,
) -> pathlib.Path:
    """Record RGB images (and optional z16 depths) as a RealSense recording, no camera needed.

    Uses pyrealsense2's software device and recorder; the file plays back through
    ``backend: file``. pyrealsense2 2.59 requires a ``.db3`` name. Frames carry
    hardware-clock stamps ``t0_ms + i * 1000 / fps``. ``K`` defaults to a 69 deg pinhole.
    The recorder stores frames at the wall time they are pushed, and real-time playback
    follows that: with ``real_time`` frames are pushed at ``fps`` (the call takes
    len(images)/fps seconds), otherwise all at once (fine for ``file_real_time: false``).
    """
    import pyrealsense2 as rs

    path = pathlib.Path(path)
    if path.suffix != ".db3":
        raise ValueError(f"pyrealsense2 2.59 records only to .db3 files, got '{path.name}'")
    h, w = images[0].shape[:2]
    if K is None:
        K = pinhole_guess(w, h, 69.0, "rec").K

    def stream(kind, uid, fmt, bpp, model, coeffs):
        intr = rs.intrinsics()
        intr.width, intr.height = w, h
        intr.fx, intr.fy, intr.ppx, intr.ppy = float(K[0, 0]), float(K[1, 1]), float(K[0, 2]), float(K[1, 2])
        intr.model, intr.coeffs = model, coeffs
        vs = rs.video_stream()
        vs.type, vs.index, vs.uid, vs.width, vs.height, vs.fps, vs.bpp, vs.fmt = kind, 0, uid, w, h, fps, bpp, fmt
        vs.intrinsics = intr
        return vs

    dev = rs.software_device()
    dev.register_info(rs.camera_info.serial_number, serial)
    dev.register_info(rs.camera_info.name, "robot_stack software recording")
    color_sensor = dev.add_sensor("Color")
    color = color_sensor.add_video_stream(stream(rs.stream.color, 0, rs.format.rgb8, 3, rs.distortion.brown_conrady, [0.0] * 5))
    sensors = [(color_sensor, color)]
    if depths is not None:
        depth_sensor = dev.add_sensor("Depth")
        depth_sensor.add_read_only_option(rs.option.depth_units, 0.001)
        depth = depth_sensor.add_video_stream(stream(rs.stream.depth, 1, rs.format.z16, 2, rs.distortion.none, [0.0] * 5))
        # Depth and colour share the optical centre here: identity extrinsics (align needs them).
        identity = rs.extrinsics()
        identity.rotation, identity.translation = [1, 0, 0, 0, 1, 0, 0, 0, 1], [0, 0, 0]
        depth.register_extrinsics_to(color, identity)
        sensors.append((depth_sensor, depth))
    if path.exists():
        path.unlink()
    recorder = rs.recorder(str(path), dev)
    queues = []
    for sensor, prof in sensors:
        sensor.open(prof)
        q = rs.frame_queue(len(images) + 1)
        sensor.start(q)
        queues.append(q)

    def push(sensor, prof, pixels, bpp, i):
        f = rs.software_video_frame()
        f.pixels, f.bpp, f.stride = np.ascontiguousarray(pixels), bpp, w * bpp
        f.timestamp, f.domain, f.frame_number = t0_ms + i * 1000.0 / fps, rs.timestamp_domain.hardware_clock, i
        f.profile = prof.as_video_stream_profile()
        sensor.on_video_frame(f)

    pace = threading.Event()  # never set: waiting on it paces the pushes
    t_start = time.monotonic()
    for i, img in enumerate(images):
        if real_time:
            pace.wait(max(0.0, t_start + i / fps - time.monotonic()))
        push(color_sensor, color, img, 3, i)
        if depths is not None:
            push(depth_sensor, depth, depths[i].astype(np.uint16), 2, i)
    for sensor, _ in sensors:
        sensor.stop()
        sensor.close()
    del recorder  # the recording is finalised when the recorder is released
    return path
