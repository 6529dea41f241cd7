"""Cameras behind one small interface (ROS-free).

:class:`Camera` has ``connect()``/``close()`` (or ``with``), ``read(timeout_s)`` (the next
new frame, blocking), ``read_latest(max_age_s)`` (the newest frame from a background reader,
:class:`StaleFrameError` when it is older than ``max_age_s``) and ``intrinsics`` (of the
*output* image, after crop and resize). Backends, chosen by ``CameraConfig.backend`` through
:func:`make_camera`:

``realsense``  an Intel RealSense through pyrealsense2 (serial selection, colour + optional
               depth aligned to colour, hardware timestamps, factory intrinsics);
``file``       a RealSense recording (``.db3``/``.bag``) played through the same pyrealsense2
               pipeline (``rs.config.enable_device_from_file``): the real code path, no camera;
``opencv``     any USB/V4L2 camera (or video file) through ``cv2.VideoCapture``;
``sim``        frames from a provider callable (e.g. the MuJoCo renderer).

Every frame is cropped (``crop`` = x, y, w, h in capture pixels) and resized to
``output_width`` x ``output_height`` (the policy's image size) before it is returned.

Time stamps (:class:`Frame`): ``t_s`` is the capture time on the host's wall clock (what a
ROS header carries). RealSense frames in the ``global_time``/``system_time`` domains carry a
hardware time stamp already mapped to the host clock and it is used as is; ``hardware_clock``
stamps are mapped with the smallest host-minus-device offset seen so far (arrival is always
after capture, so the minimum tracks the transport delay's lower bound), which keeps the
device's jitter-free frame spacing. Without device stamps ``t_s`` is the arrival time.
"""
from __future__ import annotations

import abc
import logging
import math
import pathlib
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from robot_stack.calibration.intrinsics import CameraIntrinsics, intrinsics_from_realsense, load_camera_info_yaml
from robot_stack.core.config import ConfigError, make_from_spec

log = logging.getLogger(__name__)

BACKENDS = ("realsense", "file", "opencv", "sim")


class CameraError(RuntimeError):
    """A camera cannot be opened or read; the message says what to do."""


class StaleFrameError(CameraError):
    """read_latest found no frame, or only one older than max_age_s."""


@dataclass(frozen=True)
class CameraConfig:
    """One camera: backend, capture mode, crop/resize to the policy size, calibration."""

    name: str = "front"
    """Camera name: topic /robot_stack/cameras/<name>/..., observation key."""
    backend: str = "realsense"
    """realsense, file (RealSense recording), opencv (USB/V4L2) or sim (frame provider)."""
    serial: str = ""
    """RealSense serial number to open; empty: the first one found."""
    device: str = "0"
    """OpenCV device: index (e.g. 0) or path (/dev/video2, or a video file)."""
    file_path: str = ""
    """RealSense recording (.db3 or .bag) for the file backend."""
    file_repeat: bool = True
    """Loop the recording (file backend)."""
    file_real_time: bool = True
    """Play the recording at its recorded pace (false: as fast as frames are read)."""
    sim_provider: str = ""
    """'module:callable' returning the frame provider for the sim backend when the node runs
    as its own process (in-process graphs pass the provider instead)."""
    width: int = 640
    """Capture width in pixels (realsense/opencv/sim)."""
    height: int = 480
    """Capture height in pixels (realsense/opencv/sim)."""
    fps: int = 30
    """Capture rate in frames per second."""
    enable_depth: bool = False
    """Also capture depth, aligned to the colour image (realsense/file)."""
    crop: tuple[int, ...] = ()
    """Crop x, y, w, h in capture pixels before resizing; empty: no crop."""
    output_width: int = 0
    """Output (policy) image width in pixels; 0: the cropped width."""
    output_height: int = 0
    """Output (policy) image height in pixels; 0: the cropped height."""
    calibration_file: str = ""
    """CameraInfo YAML (camera_calibration_parsers format) for the capture or output size;
    empty: factory intrinsics (RealSense) or a pinhole guess from fallback_hfov_deg."""
    fallback_hfov_deg: float = 69.0
    """Horizontal field of view for the intrinsics guess when nothing better is known (deg)."""
    read_timeout_s: float = 2.0
    """How long read() waits for a frame before CameraError."""

    def validate(self) -> None:
        if self.backend not in BACKENDS:
            raise ValueError(f"backend must be one of {BACKENDS}, got '{self.backend}'")
        if not self.name or not self.name.replace("_", "a").isalnum():
            raise ValueError(f"name must be letters, digits and _, got '{self.name}'")
        if self.width <= 0 or self.height <= 0 or self.fps <= 0:
            raise ValueError(f"width, height and fps must be > 0, got {self.width}x{self.height}@{self.fps}")
        if self.crop:
            if len(self.crop) != 4:
                raise ValueError(f"crop needs 4 values (x, y, w, h), got {list(self.crop)}")
            x, y, w, h = self.crop
            if x < 0 or y < 0 or w <= 0 or h <= 0:
                raise ValueError(f"crop (x, y, w, h) must have x, y >= 0 and w, h > 0, got {list(self.crop)}")
        if self.output_width < 0 or self.output_height < 0:
            raise ValueError("output_width/output_height must be >= 0")
        if self.backend == "file" and not self.file_path:
            raise ValueError("backend 'file' needs file_path (a RealSense .db3/.bag recording)")
        if self.backend == "file" and not pathlib.Path(self.file_path).is_file():
            raise ValueError(f"file_path '{self.file_path}' does not exist")
        if self.calibration_file and not pathlib.Path(self.calibration_file).is_file():
            raise ValueError(f"calibration_file '{self.calibration_file}' does not exist")
        if self.read_timeout_s <= 0:
            raise ValueError("read_timeout_s must be > 0")


@dataclass
class Frame:
    """One output frame."""

    image: np.ndarray
    """RGB uint8, shape (H, W, 3), after crop and resize."""
    t_s: float
    """Capture time on the host wall clock (s since the epoch); see module docstring."""
    t_arrival_s: float
    """When the frame reached the host (s since the epoch)."""
    seq: int
    """Frame number (device counter when the device has one)."""
    t_device_s: float | None = None
    """Raw device time stamp in s (its own clock/domain), if any."""
    depth: np.ndarray | None = None
    """Depth aligned to ``image`` (uint16, shape (H, W)), in units of ``depth_scale_m``."""
    depth_scale_m: float = 0.001
    """Metres per depth unit."""


@dataclass
class _Raw:
    image: np.ndarray
    t_s: float
    t_arrival_s: float
    seq: int
    t_device_s: float | None = None
    depth: np.ndarray | None = None
    depth_scale_m: float = 0.001


@dataclass
class _Geometry:
    """Crop and resize from the capture size to the output size."""

    capture_wh: tuple[int, int]
    crop: tuple[int, int, int, int]
    output_wh: tuple[int, int]

    @classmethod
    def from_config(cls, cfg: CameraConfig, capture_wh: tuple[int, int]) -> "_Geometry":
        w, h = capture_wh
        x, y, cw, ch = cfg.crop if cfg.crop else (0, 0, w, h)
        if x + cw > w or y + ch > h:
            raise ConfigError(f"camera '{cfg.name}': crop {[x, y, cw, ch]} exceeds the capture size {w}x{h}")
        out = (cfg.output_width or cw, cfg.output_height or ch)
        return cls((w, h), (x, y, cw, ch), out)

    def apply(self, img: np.ndarray, interpolation: str = "area") -> np.ndarray:
        import cv2

        x, y, w, h = self.crop
        img = img[y:y + h, x:x + w]
        if (w, h) != self.output_wh:
            interp = cv2.INTER_AREA if interpolation == "area" else cv2.INTER_NEAREST
            img = cv2.resize(img, self.output_wh, interpolation=interp)
        return np.ascontiguousarray(img)

    def intrinsics(self, intr: CameraIntrinsics) -> CameraIntrinsics:
        """Intrinsics of the output image given those of the capture image."""
        x, y, w, h = self.crop
        sx, sy = self.output_wh[0] / w, self.output_wh[1] / h
        K = intr.K.copy()
        P = intr.P.copy()
        for M in (K, P):
            M[0, 2] -= x
            M[1, 2] -= y
            # Scale about pixel centres: u' + 0.5 = (u + 0.5) * s
            M[0, :3] *= sx
            M[1, :3] *= sy
            M[0, 2] += 0.5 * sx - 0.5
            M[1, 2] += 0.5 * sy - 0.5
        return CameraIntrinsics(self.output_wh[0], self.output_wh[1], K, intr.dist.copy(), intr.camera_name,
                                intr.distortion_model, intr.R.copy(), P)


def pinhole_guess(width: int, height: int, hfov_deg: float, name: str) -> CameraIntrinsics:
    """Square-pixel pinhole intrinsics from a horizontal field of view (no distortion)."""
    f = 0.5 * width / math.tan(math.radians(hfov_deg) / 2)
    K = np.array([[f, 0, (width - 1) / 2], [0, f, (height - 1) / 2], [0, 0, 1.0]])
    return CameraIntrinsics(width, height, K, np.zeros(5), name)


class Camera(abc.ABC):
    """Base class: geometry, intrinsics, read()/read_latest() and the background reader."""

    def __init__(self, config: CameraConfig) -> None:
        config.validate()
        self.config = config
        self._geometry: _Geometry | None = None
        self._intrinsics: CameraIntrinsics | None = None
        self._lock = threading.Condition()
        self._latest: Frame | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._bg_error: Exception | None = None
        self._last_seq_returned = -1
        self._connected = False

    # -- backend hooks ----------------------------------------------------------------
    @abc.abstractmethod
    def _open(self) -> tuple[tuple[int, int], CameraIntrinsics | None]:
        """Open the device; return the capture size and factory intrinsics (or None)."""

    @abc.abstractmethod
    def _grab(self, timeout_s: float) -> _Raw:
        """Next new raw frame (capture size); CameraError on timeout/failure."""

    @abc.abstractmethod
    def _shutdown(self) -> None:
        """Release the device."""

    # -- public -------------------------------------------------------------------------
    @property
    def connected(self) -> bool:
        return self._connected

    @property
    def name(self) -> str:
        return self.config.name

    @property
    def intrinsics(self) -> CameraIntrinsics:
        """Intrinsics of the output image (after crop/resize); valid after connect()."""
        if self._intrinsics is None:
            raise CameraError(f"camera '{self.name}': intrinsics are known after connect()")
        return self._intrinsics

    @property
    def output_size(self) -> tuple[int, int]:
        """(width, height) of returned images; valid after connect()."""
        if self._geometry is None:
            raise CameraError(f"camera '{self.name}': output size is known after connect()")
        return self._geometry.output_wh

    def connect(self) -> None:
        if self._connected:
            return
        capture_wh, factory = self._open()
        try:
            self._geometry = _Geometry.from_config(self.config, capture_wh)
            self._intrinsics = self._resolve_intrinsics(capture_wh, factory)
        except (ConfigError, CameraError):
            self._shutdown()
            raise
        self._connected = True
        log.info("camera '%s' (%s) connected: capture %dx%d, output %dx%d", self.name, self.config.backend,
                 *capture_wh, *self._geometry.output_wh)

    def _resolve_intrinsics(self, capture_wh: tuple[int, int], factory: CameraIntrinsics | None) -> CameraIntrinsics:
        geo = self._geometry
        assert geo is not None
        cfg = self.config
        if cfg.calibration_file:
            cal = load_camera_info_yaml(cfg.calibration_file)
            if (cal.width, cal.height) == capture_wh:
                return geo.intrinsics(cal)
            if (cal.width, cal.height) == geo.output_wh:
                return cal
            raise ConfigError(
                f"camera '{self.name}': calibration {cfg.calibration_file} is for {cal.width}x{cal.height}, but the "
                f"capture is {capture_wh[0]}x{capture_wh[1]} and the output {geo.output_wh[0]}x{geo.output_wh[1]}; "
                "calibrate at one of those sizes"
            )
        if factory is None:
            log.warning("camera '%s': no calibration_file and no factory intrinsics; guessing a pinhole with %.0f deg "
                        "horizontal field of view", self.name, cfg.fallback_hfov_deg)
            factory = pinhole_guess(capture_wh[0], capture_wh[1], cfg.fallback_hfov_deg, self.name)
        return geo.intrinsics(factory)

    def _process(self, raw: _Raw) -> Frame:
        geo = self._geometry
        assert geo is not None
        depth = geo.apply(raw.depth, "nearest") if raw.depth is not None else None
        return Frame(geo.apply(raw.image), raw.t_s, raw.t_arrival_s, raw.seq, raw.t_device_s, depth, raw.depth_scale_m)

    def read(self, timeout_s: float | None = None) -> Frame:
        """The next frame not returned before (blocks up to timeout_s, default read_timeout_s)."""
        if not self._connected:
            raise CameraError(f"camera '{self.name}': read before connect(); call connect() first")
        timeout_s = self.config.read_timeout_s if timeout_s is None else timeout_s
        if self._thread is not None:
            with self._lock:
                ok = self._lock.wait_for(
                    lambda: self._bg_error is not None or (self._latest is not None and self._latest.seq != self._last_seq_returned),
                    timeout=timeout_s,
                )
                if self._bg_error is not None:
                    raise CameraError(f"camera '{self.name}': {self._bg_error}") from self._bg_error
                if not ok:
                    raise CameraError(f"camera '{self.name}': no frame within {timeout_s} s")
                frame = self._latest
                assert frame is not None
        else:
            frame = self._process(self._grab(timeout_s))
            with self._lock:
                self._latest = frame
        self._last_seq_returned = frame.seq
        return frame

    def start_background(self) -> None:
        """Read frames continuously in a thread so read_latest() answers at once."""
        if self._thread is not None:
            return
        if not self._connected:
            raise CameraError(f"camera '{self.name}': start_background before connect()")
        self._stop.clear()
        self._thread = threading.Thread(target=self._bg_loop, name=f"camera-{self.name}", daemon=True)
        self._thread.start()

    def _bg_loop(self) -> None:
        while not self._stop.is_set():
            try:
                frame = self._process(self._grab(self.config.read_timeout_s))
            except CameraError as e:
                with self._lock:
                    self._bg_error = e
                    self._lock.notify_all()
                log.error("camera '%s' background reader stopped: %s", self.name, e)
                return
            with self._lock:
                self._latest = frame
                self._lock.notify_all()

    def read_latest(self, max_age_s: float) -> Frame:
        """The newest frame (starting the background reader if needed); StaleFrameError if
        there is none yet or it was captured more than ``max_age_s`` ago."""
        self.start_background()
        with self._lock:
            frame, err = self._latest, self._bg_error
        if err is not None:
            raise CameraError(f"camera '{self.name}': {err}") from err
        if frame is None:
            raise StaleFrameError(f"camera '{self.name}': no frame yet")
        age = time.time() - frame.t_s
        if age > max_age_s:
            raise StaleFrameError(f"camera '{self.name}': newest frame is {age * 1000:.0f} ms old (max {max_age_s * 1000:.0f} ms)")
        return frame

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.config.read_timeout_s + 1.0)
            self._thread = None
        if self._connected:
            self._shutdown()
        self._connected = False

    def __enter__(self) -> "Camera":
        self.connect()
        return self

    def __exit__(self, *exc) -> None:
        self.close()


# --------------------------------------------------------------------------------------
# RealSense (device and recording)
# --------------------------------------------------------------------------------------


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

    def _grab(self, timeout_s: float) -> _Raw:
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
            return _Raw(img.copy(), t_s, arrival, seq, t_dev, depth, self._depth_scale_m)

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


# --------------------------------------------------------------------------------------
# OpenCV (USB/V4L2)
# --------------------------------------------------------------------------------------


class OpenCVCamera(Camera):
    """Any camera OpenCV can open: an index, a /dev/video* path, or a video file."""

    def __init__(self, config: CameraConfig) -> None:
        super().__init__(config)
        self._cap = None
        self._seq = 0

    def _open(self):
        import cv2

        dev: Any = self.config.device
        source = int(dev) if str(dev).isdigit() else str(dev)
        cap = cv2.VideoCapture(source, cv2.CAP_V4L2) if isinstance(source, int) else cv2.VideoCapture(source)
        if not cap.isOpened():
            raise CameraError(
                f"camera '{self.config.name}': OpenCV cannot open device '{dev}'. Check 'ls -l /dev/video*', that the "
                "user is in the 'video' group, and that no other program holds the camera"
            )
        cap.set(cv2.CAP_PROP_FRAME_WIDTH, self.config.width)
        cap.set(cv2.CAP_PROP_FRAME_HEIGHT, self.config.height)
        cap.set(cv2.CAP_PROP_FPS, self.config.fps)
        self._cap = cap
        w, h = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
        if (w, h) != (self.config.width, self.config.height):
            log.warning("camera '%s': asked for %dx%d, device gives %dx%d", self.name, self.config.width, self.config.height, w, h)
        return (w, h), None

    def _grab(self, timeout_s: float) -> _Raw:
        import cv2

        ok, bgr = self._cap.read()
        arrival = time.time()
        if not ok or bgr is None:
            raise CameraError(f"camera '{self.config.name}': OpenCV read failed (unplugged, or end of file)")
        self._seq += 1
        return _Raw(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), arrival, arrival, self._seq)

    def _shutdown(self) -> None:
        if self._cap is not None:
            self._cap.release()
            self._cap = None


# --------------------------------------------------------------------------------------
# Sim
# --------------------------------------------------------------------------------------

FrameProvider = Callable[[], Any]
"""Returns an RGB uint8 (H, W, 3) image, or (image, t_s), or None when no frame is ready."""


class SimCamera(Camera):
    """Frames from a provider callable at ``fps`` (e.g. a MuJoCo renderer)."""

    def __init__(self, config: CameraConfig, provider: FrameProvider) -> None:
        super().__init__(config)
        self._provider = provider
        self._seq = 0
        self._next_t = 0.0
        self._wake = threading.Event()  # never set: waiting on it paces frames and stays interruptible

    def _open(self):
        self._next_t = time.monotonic()
        return (self.config.width, self.config.height), None

    def _grab(self, timeout_s: float) -> _Raw:
        deadline = time.monotonic() + timeout_s
        while True:
            delay = self._next_t - time.monotonic()
            if delay > 0:
                self._wake.wait(delay)  # pacing to fps, not synchronisation
            self._next_t = max(self._next_t + 1.0 / self.config.fps, time.monotonic() - 1.0 / self.config.fps)
            out = self._provider()
            arrival = time.time()
            if out is not None:
                break
            if time.monotonic() >= deadline:
                raise CameraError(f"camera '{self.config.name}': sim provider gave no frame within {timeout_s} s")
        img, t_s = (out if isinstance(out, tuple) else (out, arrival))
        img = np.asarray(img)
        expected = (self.config.height, self.config.width, 3)
        if img.dtype != np.uint8 or img.shape != expected:
            raise CameraError(f"camera '{self.config.name}': sim provider gave {img.dtype} {img.shape}, expected uint8 {expected}")
        self._seq += 1
        return _Raw(img, float(t_s), arrival, self._seq)

    def _shutdown(self) -> None:
        self._wake.set()


def load_provider(spec: str) -> Any:
    """Call 'module:callable' and return what it makes (a frame provider)."""
    return make_from_spec(spec, "sim_provider")


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


def make_camera(config: CameraConfig, *, provider: FrameProvider | None = None) -> Camera:
    """The one factory: a camera for ``config.backend`` (no I/O until connect())."""
    if config.backend == "realsense":
        return RealSenseCamera(config)
    if config.backend == "file":
        return RealSenseFileCamera(config)
    if config.backend == "opencv":
        return OpenCVCamera(config)
    if config.backend == "sim":
        if provider is None:
            if not config.sim_provider:
                raise ConfigError(
                    f"camera '{config.name}': backend 'sim' needs a frame provider: pass provider=... or set "
                    "sim_provider to 'module:callable'"
                )
            provider = load_provider(config.sim_provider)
        return SimCamera(config, provider)
    raise ConfigError(f"unknown camera backend '{config.backend}'; choose one of {BACKENDS}")


__all__ = [
    "BACKENDS", "Camera", "CameraConfig", "CameraError", "Frame", "FrameProvider", "OpenCVCamera",
    "RealSenseCamera", "RealSenseFileCamera", "SimCamera", "StaleFrameError", "load_provider",
    "make_camera", "pinhole_guess", "write_software_recording",
]
