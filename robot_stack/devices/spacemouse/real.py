"""The ``real`` SpaceMouse backend: pyspacemouse's HID report decoding (hidapi/hidraw).

Every HID report is checked before pyspacemouse decodes it (:class:`ReportCheck`): a report
shorter than its report id's layout needs (pyspacemouse would index past its end) is dropped
and counted (``counters["malformed_reports"]``), and one with a report id the device's layout
does not use is dropped as ``ignored_reports``; neither ends an intervention. The reading
carries the time of the newest decoded report (``SpaceMouseReading.report_t``), from which the
intervention detector notices a device that went quiet.
"""
from __future__ import annotations

import collections
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
        self.counters: collections.Counter = collections.Counter()
        """``reports`` decoded, ``malformed_reports`` and ``ignored_reports`` dropped, ``decode_errors``."""
        self.last_problem = ""
        """What was wrong with the last dropped report."""
        self._report_t: float | None = None

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
                try:
                    state = self._device.read()
                except (HIDException, OSError):
                    raise
                except Exception as e:  # noqa: BLE001 -- a report ReportCheck let through still must not end the read
                    self.counters["decode_errors"] += 1
                    self.last_problem = f"pyspacemouse could not decode a report: {e!r}"
                    state = self._device._state  # noqa: SLF001
                    continue
                if state.t == before:  # no report was pending (non-blocking read returned nothing)
                    break
                self._report_t = self._clock()
                self.counters["reports"] += 1
        except (HIDException, OSError) as e:
            self._drop_device()
            raise SpaceMouseDisconnected(
                f"SpaceMouse disconnected while reading ({e}); re-plug it and restart the node"
            ) from e
        finally:
            if self._hid is not None:
                self.counters.update(self._hid.check.take_counts())
                self.last_problem = self._hid.check.last_problem or self.last_problem
        axes = np.array([state.x, state.y, state.z, state.pitch, state.roll, state.yaw], dtype=np.float64)
        axes = np.clip(np.nan_to_num(axes, nan=0.0), -1.0, 1.0)
        return SpaceMouseReading(t=self._clock(), axes=axes, buttons=tuple(int(b) for b in state.buttons),
                                 report_t=self._report_t)

    def _use(self, device) -> None:
        """Adopt an opened pyspacemouse device, with its HID reads routed through _WaitingHid."""
        # pyspacemouse 2.1.0 reads its HID device from _device and its layout from _info.
        self._hid = _WaitingHid(device._device, ReportCheck(device._info))  # noqa: SLF001
        device._device = self._hid  # noqa: SLF001
        self._device = device
        self._report_t = None

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


class ReportCheck:
    """Which HID reports a device layout (pyspacemouse ``DeviceInfo``) can decode: for each
    report id it uses, the shortest report that holds every byte it reads."""

    def __init__(self, info) -> None:
        need: dict[int, int] = {}
        for spec in info.mappings.values():
            need[spec.channel] = max(need.get(spec.channel, 0), spec.byte1 + 1, spec.byte2 + 1)
        for spec in info.button_specs:
            if spec.channel is not None:
                need[spec.channel] = max(need.get(spec.channel, 0), spec.byte + 1)
        self.min_length = need
        """Report id -> shortest decodable length, in bytes (report id byte included)."""
        self._counts: collections.Counter = collections.Counter()
        self.last_problem = ""

    def problem(self, report: bytes) -> str | None:
        """None when pyspacemouse can decode ``report``; else why not (and count it)."""
        need = self.min_length.get(report[0])
        if need is None:
            self._counts["ignored_reports"] += 1
            self.last_problem = f"report id {report[0]} is not in this device's layout"
        elif len(report) < need:
            self._counts["malformed_reports"] += 1
            self.last_problem = f"report id {report[0]} has {len(report)} byte(s), its layout needs {need}"
        else:
            return None
        return self.last_problem

    def take_counts(self) -> collections.Counter:
        counts, self._counts = self._counts, collections.Counter()
        return counts


class _WaitingHid:
    """An easyhid-like device whose plain ``read(size)`` (what pyspacemouse calls) waits up to
    ``wait_ms`` for a report (hidapi's ``hid_read_timeout``), or returns at once when 0, and
    returns only reports that ``check`` passes (others are dropped and counted; the read goes on
    to the next queued report without waiting)."""

    MAX_DROPPED_PER_READ = 64

    def __init__(self, device, check: ReportCheck) -> None:
        self.device = device
        self.check = check
        self.wait_ms = 0

    def read(self, size: int = 64, timeout: int | None = None) -> bytes:
        if timeout is None and self.wait_ms > 0:
            timeout = self.wait_ms
        for _ in range(self.MAX_DROPPED_PER_READ):
            data = self.device.read(size) if timeout is None else self.device.read(size, timeout=timeout)
            if not data or self.check.problem(bytes(data)) is None:
                return data
            timeout = None  # drain what is queued; do not wait again
        return b""

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
