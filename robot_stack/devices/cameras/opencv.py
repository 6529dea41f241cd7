"""Any camera OpenCV can open (``opencv`` backend): an index, a /dev/video* path, a video file."""
from __future__ import annotations

import logging
import time
from typing import Any

from robot_stack.devices.cameras.base import Camera, CameraConfig, CameraError, RawFrame

log = logging.getLogger(__name__)


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

    def _grab(self, timeout_s: float) -> RawFrame:
        import cv2

        ok, bgr = self._cap.read()
        arrival = time.time()
        if not ok or bgr is None:
            raise CameraError(f"camera '{self.config.name}': OpenCV read failed (unplugged, or end of file)")
        self._seq += 1
        return RawFrame(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), arrival, arrival, self._seq)

    def _shutdown(self) -> None:
        if self._cap is not None:
            self._cap.release()
            self._cap = None
