"""The ``real`` SpaceMouse backend: pyspacemouse's HID report decoding (hidapi/hidraw)."""
from __future__ import annotations

import logging
import time
from typing import Callable

import numpy as np

from robot_stack.devices.spacemouse.base import UDEV_HELP, SpaceMouse, SpaceMouseDisconnected, SpaceMouseError
from robot_stack.types.config import ConfigError
from robot_stack.types.teleop import SpaceMouseReading

log = logging.getLogger(__name__)


def device_spec(device_name: str):
    """pyspacemouse DeviceInfo (HID_Z_UP convention) for a device name."""
    import pyspacemouse

    specs = pyspacemouse.get_device_specs()
    if device_name not in specs:
        raise ConfigError(f"unknown SpaceMouse device '{device_name}'; known: {', '.join(specs)}")
    return pyspacemouse.apply_axis_convention(specs[device_name], pyspacemouse.AxisConvention.HID_Z_UP)


class PySpaceMouseBase(SpaceMouse):
    """Shared reading through pyspacemouse's SpaceMouseDevice (its own HID report decoding)."""

    # A device sends one report per channel (translation, rotation, buttons) each time
    # something changes; draining up to this many per read keeps the state current.
    MAX_REPORTS_PER_READ = 32

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._device = None  # pyspacemouse.SpaceMouseDevice once connected
        self._hid: _WaitingHid | None = None  # the HID device under it, wrapped

    @property
    def connected(self) -> bool:
        return self._device is not None

    def read(self, wait_s: float = 0.0) -> SpaceMouseReading:
        from easyhid import HIDException

        if self._device is None:
            raise SpaceMouseError("SpaceMouse read before connect(); call connect() first")
        state = self._device._state  # noqa: SLF001 (the decoded state; read() returns the same object)
        try:
            for i in range(self.MAX_REPORTS_PER_READ):
                before = state.t
                # Only the first HID read may block (hid_read_timeout: the kernel wakes it on a
                # report); the rest drain what is already queued without waiting.
                self._hid.wait_ms = max(0, int(round(wait_s * 1000.0))) if i == 0 else 0
                state = self._device.read()
                if state.t == before:  # no report was pending (non-blocking read returned nothing)
                    break
        except (HIDException, OSError) as e:
            self._drop_device()
            raise SpaceMouseDisconnected(
                f"SpaceMouse disconnected while reading ({e}); re-plug it and restart the node"
            ) from e
        axes = np.clip(
            np.array([state.x, state.y, state.z, state.pitch, state.roll, state.yaw], dtype=np.float64), -1.0, 1.0
        )
        return SpaceMouseReading(t=self._clock(), axes=axes, buttons=tuple(int(b) for b in state.buttons))

    def _use(self, device) -> None:
        """Adopt an opened pyspacemouse device, with its HID reads routed through _WaitingHid."""
        self._hid = _WaitingHid(device._device)  # noqa: SLF001 (pyspacemouse 2.1.0 reads its HID device there)
        device._device = self._hid  # noqa: SLF001
        self._device = device

    def _drop_device(self) -> None:
        dev, self._device = self._device, None
        if dev is not None:
            from easyhid import HIDException

            try:
                dev.close()
            except (HIDException, OSError) as e:  # the device may already be gone; nothing to undo
                log.debug("closing a gone SpaceMouse failed: %s", e)

    def close(self) -> None:
        self._drop_device()


class _WaitingHid:
    """An easyhid-like device whose plain ``read(size)`` (what pyspacemouse calls) waits up to
    ``wait_ms`` for a report (hidapi's ``hid_read_timeout``), or returns at once when 0."""

    def __init__(self, device) -> None:
        self.device = device
        self.wait_ms = 0

    def read(self, size: int = 64, timeout: int | None = None) -> bytes:
        if timeout is None and self.wait_ms > 0:
            timeout = self.wait_ms
        return self.device.read(size) if timeout is None else self.device.read(size, timeout=timeout)

    def __getattr__(self, name: str):
        return getattr(self.device, name)


class RealSpaceMouse(PySpaceMouseBase):
    """A physical SpaceMouse through pyspacemouse (needs libhidapi-hidraw0 and hidraw access)."""

    def __init__(self, device_name: str = "", device_index: int = 0, clock: Callable[[], float] = time.monotonic):
        super().__init__(clock)
        self.device_name = device_name
        self.device_index = device_index

    def connect(self) -> None:
        if self._device is not None:
            return
        try:
            import pyspacemouse
        except (ImportError, OSError) as e:
            raise SpaceMouseError(
                f"pyspacemouse cannot load ({e}); install Debian's libhidapi-hidraw0 and pyspacemouse==2.1.0"
            ) from e
        try:
            device = pyspacemouse.open(
                device=self.device_name or None,
                device_index=self.device_index,
                nonblocking=True,
                axis_convention=pyspacemouse.AxisConvention.HID_Z_UP,
            )
        except RuntimeError as e:
            what = f"'{self.device_name}'" if self.device_name else "any supported SpaceMouse"
            raise SpaceMouseError(f"cannot open {what}: {e}. Plug the device in. {UDEV_HELP}") from e
        except ValueError as e:
            raise SpaceMouseError(f"cannot open SpaceMouse: {e}") from e
        self._use(device)
        log.info("SpaceMouse connected: %s", device.describe_connection())
