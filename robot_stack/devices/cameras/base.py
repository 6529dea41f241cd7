# Over 400 lines: four camera backends share this frame handling (crop, resize, stale frames, reconnect); about 40 lines are its specification.
"""Cameras behind one small interface (ROS-free).

:class:`Camera` has ``connect()``/``close()`` (or ``with``), ``read(timeout_s)`` (the next
new frame, blocking), ``read_latest(max_age_s)`` (the newest frame from a background reader,
:class:`StaleFrameError` when it is older than ``max_age_s``) and ``intrinsics`` (of the
*output* image, after crop and resize). Backends, chosen by ``CameraConfig.backend`` through
:func:`make_camera`:

``realsense``  (:mod:`.realsense`) an Intel RealSense through pyrealsense2 (serial selection, colour + optional
               depth aligned to colour, hardware timestamps, factory intrinsics);
``file``       (:mod:`.realsense`) a RealSense recording (``.db3``/``.bag``) played through the same pyrealsense2
               pipeline (``rs.config.enable_device_from_file``): the real code path, no camera;
``opencv``     (:mod:`.opencv`) any USB/V4L2 camera (or video file) through ``cv2.VideoCapture``;
``sim``        (:mod:`.sim`) frames from a provider callable (e.g. the MuJoCo renderer).

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

from robot_stack.types.config import ConfigError
from robot_stack.types.intrinsics import CameraIntrinsics, load_camera_info_yaml

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
    """Camera name: topics cameras/<name>/... (in the node's namespace), observation key."""
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
class RawFrame:
    """What a backend grabs: a capture-size frame before crop and resize (fields as in Frame)."""

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
    def _grab(self, timeout_s: float) -> RawFrame:
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

    def _process(self, raw: RawFrame) -> Frame:
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


def make_camera(config: CameraConfig, *, provider: Callable[[], Any] | None = None) -> Camera:
    """The one factory: a camera for ``config.backend`` (no I/O until connect())."""
    if config.backend in ("realsense", "file"):
        from robot_stack.devices.cameras.realsense import RealSenseCamera, RealSenseFileCamera

        return RealSenseCamera(config) if config.backend == "realsense" else RealSenseFileCamera(config)
    if config.backend == "opencv":
        from robot_stack.devices.cameras.opencv import OpenCVCamera

        return OpenCVCamera(config)
    if config.backend == "sim":
        from robot_stack.devices.cameras.sim import SimCamera, load_provider

        if provider is None:
            if not config.sim_provider:
                raise ConfigError(
                    f"camera '{config.name}': backend 'sim' needs a frame provider: pass provider=... or set "
                    "sim_provider to 'module:callable'"
                )
            provider = load_provider(config.sim_provider)
        return SimCamera(config, provider)
    raise ConfigError(f"unknown camera backend '{config.backend}'; choose one of {BACKENDS}")
