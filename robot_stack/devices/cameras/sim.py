"""The ``sim`` camera backend: frames from a provider callable (e.g. the MuJoCo renderer)."""
from __future__ import annotations

import threading
import time
from typing import Any, Callable

import numpy as np

from robot_stack.devices.cameras.base import Camera, CameraConfig, CameraError, RawFrame
from robot_stack.types.config import make_from_spec


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

    def _grab(self, timeout_s: float) -> RawFrame:
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
        return RawFrame(img, float(t_s), arrival, self._seq)

    def _shutdown(self) -> None:
        self._wake.set()


def load_provider(spec: str) -> Any:
    """Call 'module:callable' and return what it makes (a frame provider)."""
    return make_from_spec(spec, "sim_provider")
