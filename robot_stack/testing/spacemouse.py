"""A scripted SpaceMouse HID device for tests and benchmarks (never imported by production code).

* :class:`FakeHidDevice` behaves like an easyhid ``Device`` and returns byte-level HID
  reports, so pyspacemouse's own decoding runs as with a real device (the ``fake`` backend).
* :func:`encode_reports` makes the reports a device sends for given axes and buttons.
* :func:`load_report_script` reads a YAML replay script; :func:`scripted_hid_device` is the
  ``hid_provider`` that plays ``fake_reports_file``:
  ``hid_provider: robot_stack.testing.spacemouse:scripted_hid_device``.
"""
from __future__ import annotations

import pathlib
import threading
import time
from collections import deque
from typing import Callable

import numpy as np
import yaml

from robot_stack.devices.spacemouse.base import SpaceMouseConfig
from robot_stack.devices.spacemouse.real import device_spec
from robot_stack.types.config import ConfigError


class FakeHidDevice:
    """Stands in for an easyhid ``Device``: returns queued byte-level HID reports.

    ``push(report)`` queues a report; ``unplug()`` makes later reads fail like a device that
    was pulled out; ``fail_open`` makes ``open()`` fail like a device without permissions.
    With a ``script`` (list of ``(at_s, report bytes or None for unplug)``), reports become
    readable ``at_s`` seconds after ``open()``, by ``clock``; with ``start_unix_s`` > 0 they
    become readable at ``start_unix_s + at_s`` on the wall clock (``time.time()``) instead
    (reports already due at ``open()`` are readable at once).

    Like a real SpaceMouse, while the newest delivered report of an axis report id holds a
    non-zero deflection, the device sends it again every ``stream_period_s`` (by ``clock``;
    0: only what is pushed or scripted). ``hang()`` makes the device go quiet (no report, no
    error) until ``resume()``, as a device that lost its release report or stalled.
    """

    def __init__(
        self,
        product_string: str = "SpaceMouse Compact",
        script: list[tuple[float, bytes | None]] | None = None,
        clock: Callable[[], float] = time.monotonic,
        fail_open: bool = False,
        start_unix_s: float = 0.0,
        device_name: str = "",
        stream_period_s: float = 0.008,
    ) -> None:
        self.device_name = device_name
        """pyspacemouse device name whose report layout the script uses ('' = the backend's default)."""
        self.product_string = product_string
        self.manufacturer_string = "3Dconnexion"
        self.release_number = 0x0437
        self.serial_number = ""
        self._queue: deque[bytes] = deque()
        self._script = sorted(script or [], key=lambda e: e[0])
        self._clock = clock
        self._t_open: float | None = None
        self._unplugged = False
        self._fail_open = fail_open
        self._start_unix_s = float(start_unix_s)
        self._ready = threading.Condition()
        self.is_open = False
        self.nonblocking = False
        self.reads = 0
        self.stream_period_s = float(stream_period_s)
        self._streaming: dict[int, tuple[bytes, float]] = {}  # report id -> (report, next send time)
        self._axis_ids: set[int] | None = None
        self._hung = False

    def hang(self) -> None:
        """Go quiet: reads return nothing (no error) until resume()."""
        with self._ready:
            self._hung = True

    def resume(self) -> None:
        with self._ready:
            self._hung = False
            self._ready.notify_all()

    def _note_sent(self, report: bytes) -> None:
        """Remember a delivered axis report to send again while it is deflected."""
        if self.stream_period_s <= 0 or not report:
            return
        if self._axis_ids is None:
            spec = device_spec(self.device_name or "SpaceMouseCompact")
            self._axis_ids = {m.channel for m in spec.mappings.values()}
            self._axis_report_size = spec.bytes_to_read
        if report[0] not in self._axis_ids or len(report) < self._axis_report_size:
            return  # not an axis report a real device would repeat
        if any(report[1:]):
            self._streaming[report[0]] = (report, self._clock() + self.stream_period_s)
        else:
            self._streaming.pop(report[0], None)

    def _take_repeats(self) -> float | None:
        """Queue the repeats that are due; seconds until the next one (None: none)."""
        if not self._streaming or self._unplugged:
            return None
        now = self._clock()
        for rid, (report, due) in list(self._streaming.items()):
            if now >= due:
                self._queue.append(report)
                self._streaming[rid] = (report, now + self.stream_period_s)
        return min(due for _, due in self._streaming.values()) - now

    def open(self) -> None:
        from easyhid import HIDException

        if self._fail_open:
            raise HIDException("Failed to open device")
        self.is_open = True
        # The script's time origin on `clock`: open() itself, or the given wall-clock instant.
        self._t_open = self._clock() - (time.time() - self._start_unix_s if self._start_unix_s > 0 else 0.0)

    def close(self) -> None:
        self.is_open = False

    def set_nonblocking(self, enable_nonblocking: bool) -> None:
        self.nonblocking = bool(enable_nonblocking)

    def push(self, report: bytes | bytearray | list[int]) -> None:
        with self._ready:
            self._queue.append(bytes(report))
            self._ready.notify_all()

    def unplug(self) -> None:
        with self._ready:
            self._unplugged = True
            self._ready.notify_all()

    def read(self, size: int = 64, timeout: int | None = None) -> bytes:
        """Next queued or due report, else b"" (non-blocking); with ``timeout`` (ms, as
        hidapi's ``hid_read_timeout``) wait up to that long for one to be pushed or fall due."""
        from easyhid import HIDException

        self.reads += 1
        if not self.is_open:
            raise HIDException("HIDDevice not open")
        deadline = time.monotonic() + (timeout or 0) / 1000.0
        with self._ready:
            while True:
                next_due_s = None
                if not self._hung:
                    next_due_s = self._take_due_reports()
                    if not self._queue:
                        repeat_s = self._take_repeats()
                        if repeat_s is not None:
                            next_due_s = repeat_s if next_due_s is None else min(next_due_s, repeat_s)
                    if self._queue:
                        report = self._queue.popleft()
                        self._note_sent(report)
                        return report[:size]
                if self._unplugged:
                    # What easyhid raises when hid_read returns -1 (device gone).
                    raise HIDException("Failed to read from HID device: -1")
                left_s = deadline - time.monotonic()
                if left_s <= 0:
                    return b""
                # Woken by push()/unplug(), or when the next scripted or repeated report falls due.
                self._ready.wait(left_s if next_due_s is None else min(left_s, max(next_due_s, 1e-4)))

    def _take_due_reports(self) -> float | None:
        """Queue the scripted reports that are due; seconds until the next one (None: none left)."""
        if not self._script or self._t_open is None:
            return None
        elapsed = self._clock() - self._t_open
        while self._script and self._script[0][0] <= elapsed:
            _, report = self._script.pop(0)
            if report is None:
                self._unplugged = True
                return None
            self._queue.append(report)
        return self._script[0][0] - elapsed if self._script else None


def encode_reports(
    axes: np.ndarray | list[float] | None = None,
    buttons: tuple[int, ...] | list[int] | None = None,
    device_name: str = "SpaceMouseCompact",
) -> list[bytes]:
    """Byte-level HID reports that a device sends for the given state (teleop convention).

    ``axes`` (x, y, z, roll, pitch, yaw in [-1, 1]) and ``buttons`` as in
    :class:`SpaceMouseReading`; either may be None to leave those reports out.
    """
    spec = device_spec(device_name)
    reports: dict[int, bytearray] = {}
    size = spec.bytes_to_read

    def buf(channel: int) -> bytearray:
        if channel not in reports:
            reports[channel] = bytearray(size)
            reports[channel][0] = channel
        return reports[channel]

    if axes is not None:
        a = np.clip(np.asarray(axes, dtype=np.float64), -1.0, 1.0)
        # teleop order x, y, z, roll(about y), pitch(about x), yaw -> HID_Z_UP names
        values = {"x": a[0], "y": a[1], "z": a[2], "pitch": a[3], "roll": a[4], "yaw": a[5]}
        for name, value in values.items():
            s = spec.mappings[name]
            raw = int(round(value * spec.axis_scale / s.scale))
            raw = max(-32768, min(32767, raw)) & 0xFFFF
            b = buf(s.channel)
            b[s.byte1], b[s.byte2] = raw & 0xFF, raw >> 8
    if buttons is not None:
        for i, bs in enumerate(spec.button_specs):
            if bs.channel is None:
                continue
            b = buf(bs.channel)
            if i < len(buttons) and buttons[i]:
                b[bs.byte] |= 1 << bs.bit
    return [bytes(reports[c]) for c in sorted(reports)]


def load_report_script(path: str | pathlib.Path) -> tuple[str, list[tuple[float, bytes | None]]]:
    """Read a fake-device replay script: ``(device_name, [(at_s, report or None=unplug)])``.

    Format (YAML)::

        device: SpaceMouseCompact          # optional
        reports:
          - {at_s: 0.0, axes: [0.5, 0, 0, 0, 0, 0]}   # encoded with encode_reports
          - {at_s: 0.4, buttons: [1, 0]}
          - {at_s: 0.5, hex: "01 00 00 00 00 00 00"}  # a raw report
          - {at_s: 2.0, unplug: true}
    """
    path = pathlib.Path(path)
    if not path.is_file():
        raise ConfigError(f"fake SpaceMouse script not found: {path}")
    data = yaml.safe_load(path.read_text()) or {}
    device = str(data.get("device", "SpaceMouseCompact"))
    script: list[tuple[float, bytes | None]] = []
    for i, entry in enumerate(data.get("reports", [])):
        where = f"{path}: reports[{i}]"
        if not isinstance(entry, dict) or "at_s" not in entry:
            raise ConfigError(f"{where}: expected a mapping with 'at_s', got {entry!r}")
        at = float(entry["at_s"])
        keys = set(entry) - {"at_s"}
        if keys == {"unplug"}:
            script.append((at, None))
        elif keys == {"hex"}:
            script.append((at, bytes.fromhex(str(entry["hex"]))))
        elif keys and keys <= {"axes", "buttons"}:
            axes = entry.get("axes")
            if axes is not None and len(axes) != 6:
                raise ConfigError(f"{where}: 'axes' needs 6 values (x, y, z, roll, pitch, yaw), got {len(axes)}")
            for r in encode_reports(axes, entry.get("buttons"), device):
                script.append((at, r))
        else:
            raise ConfigError(f"{where}: expected one of axes/buttons, hex or unplug, got keys {sorted(keys)}")
    return device, script


def scripted_hid_device(config: SpaceMouseConfig, clock: Callable[[], float] = time.monotonic) -> FakeHidDevice:
    """``hid_provider`` for the fake backend: a FakeHidDevice playing ``config.fake_reports_file``
    (none: a silent device), anchored to ``config.fake_script_start_unix_s``. Its
    ``device_name`` is the script's ``device`` unless the config names one."""
    name = config.device_name or "SpaceMouseCompact"
    script: list[tuple[float, bytes | None]] = []
    if config.fake_reports_file:
        name_in_file, script = load_report_script(config.fake_reports_file)
        name = config.device_name or name_in_file
    return FakeHidDevice(script=script, clock=clock, start_unix_s=config.fake_script_start_unix_s, device_name=name)
