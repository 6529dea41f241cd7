"""The ``fake`` SpaceMouse backend: pyspacemouse's real report decoding over an injected HID
device (an object with easyhid's ``open``/``close``/``read``/``set_nonblocking`` and product
strings), so the whole decoding path runs without hardware. The device comes from the caller
(``hid_device=``) or from ``SpaceMouseConfig.hid_provider``; the scripted device that tests and
benchmarks use is :class:`robot_stack.testing.spacemouse.FakeHidDevice`.
"""
from __future__ import annotations

import time
from typing import Any, Callable

from robot_stack.devices.spacemouse.base import UDEV_HELP, SpaceMouseError
from robot_stack.devices.spacemouse.real import PySpaceMouseBase, device_spec


class FakeHidSpaceMouse(PySpaceMouseBase):
    """A SpaceMouse whose HID device is handed in (byte-level reports, e.g. scripted ones);
    pyspacemouse decodes them exactly as a physical device's."""

    def __init__(self, hid_device: Any, device_name: str = "SpaceMouseCompact", clock: Callable[[], float] = time.monotonic):
        super().__init__(clock)
        self.hid_device = hid_device
        self.device_name = device_name or "SpaceMouseCompact"

    def connect(self) -> None:
        if self._device is not None:
            return
        import pyspacemouse

        spec = device_spec(self.device_name)
        dev = pyspacemouse.SpaceMouseDevice(info=spec, device=self.hid_device)
        try:
            dev.open()  # pyspacemouse's own open: calls hid.open(), copies product strings
        except RuntimeError as e:
            raise SpaceMouseError(f"cannot open SpaceMouse '{self.device_name}': {e}. {UDEV_HELP}") from e
        self.hid_device.set_nonblocking(True)
        self._use(dev)
