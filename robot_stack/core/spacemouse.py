"""SpaceMouse devices and intervention detection (ROS-free).

Three backends behind one small interface (:class:`SpaceMouse`: ``connect()``, ``read()``,
``close()``), chosen by ``SpaceMouseConfig.backend`` through :func:`make_spacemouse`:

``real``
    A 3Dconnexion device through pyspacemouse (hidapi/hidraw).
``fake``
    A :class:`FakeHidDevice` that behaves like an easyhid HID device and returns byte-level
    HID reports, so pyspacemouse's own report decoding runs exactly as with a real device.
    Reports come from :meth:`FakeHidDevice.push` (tests) or from a replay script
    (``fake_reports_file``, see :func:`load_report_script`).
``sim``
    Readings from a :class:`SimOperatorSource` (an object with ``read() -> SpaceMouseReading``,
    or a plain callable), e.g. the simulated operator of the sim graph.

:class:`InterventionDetector` turns readings into :class:`~robot_stack.core.teleop.OperatorCommand`
(deadzone, hysteresis, hold time after release, gripper buttons while intervening,
episode marks while not). It is a pure class: time comes from the readings.

Axis convention: readings follow :mod:`robot_stack.core.teleop` (x right, y away from the
operator, z up; ``roll`` about y, ``pitch`` about x, ``yaw`` about z, counter-clockwise
from above positive). pyspacemouse is opened with ``AxisConvention.HID_Z_UP``, whose
``roll`` is about x and ``pitch`` about y, so those two are swapped on the way in.

Device errors (absent, no permission, unplugged) raise :class:`SpaceMouseError` whose
message says what to do; the node then ends any intervention and publishes a zero command.
"""
from __future__ import annotations

import abc
import logging
import pathlib
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Callable, Protocol, Union, runtime_checkable

import numpy as np
import yaml

from robot_stack.core.config import ConfigError, make_from_spec
from robot_stack.core.teleop import (
    GRIPPER_CLOSE,
    GRIPPER_KEEP,
    GRIPPER_OPEN,
    MARK_FAILURE,
    MARK_NONE,
    MARK_SUCCESS,
    OperatorCommand,
    SpaceMouseReading,
    TeleopMapping,
)

log = logging.getLogger(__name__)

BACKENDS = ("real", "fake", "sim")

UDEV_HELP = (
    "If the SpaceMouse is plugged in, this is usually a permission problem: the user needs "
    "read/write access to its /dev/hidraw* node. Add a udev rule, e.g. "
    "/etc/udev/rules.d/99-spacemouse.rules containing\n"
    '  KERNEL=="hidraw*", ATTRS{idVendor}=="256f", MODE="0660", GROUP="plugdev"\n'
    '  KERNEL=="hidraw*", ATTRS{idVendor}=="046d", MODE="0660", GROUP="plugdev"\n'
    "(256f = 3Dconnexion, 046d = older Logitech-made models), run "
    "'sudo udevadm control --reload-rules && sudo udevadm trigger', make sure you are in the "
    "plugdev group, and re-plug the device. Check with 'ls -l /dev/hidraw*'. "
    "Debian's libhidapi-hidraw0 must be installed."
)


class SpaceMouseError(RuntimeError):
    """The device cannot be opened or read; the message says what to do."""


class SpaceMouseDisconnected(SpaceMouseError):
    """The device went away while in use (unplugged)."""


# --------------------------------------------------------------------------------------
# Configuration
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class InterventionConfig:
    """How device deflection and buttons become an intervention."""

    deadzone: float = 0.05
    """Axis magnitude (of 1) below which an axis counts as zero; larger values are rescaled
    so the command is continuous at the deadzone edge."""
    engage_threshold: float = 0.15
    """Largest axis magnitude (of 1) that starts an intervention (hysteresis upper edge)."""
    release_threshold: float = 0.08
    """Largest axis magnitude (of 1) below which the operator counts as having let go
    (hysteresis lower edge; between deadzone and engage_threshold)."""
    hold_s: float = 0.6
    """Seconds the intervention lasts after the operator lets go (robot holds still meanwhile)."""
    gripper_close_button: int = 0
    """Button index that closes the gripper while intervening (-1: none)."""
    gripper_open_button: int = 1
    """Button index that opens the gripper while intervening (-1: none)."""
    failure_button: int = 0
    """Button index that marks the episode a failure when pressed while not intervening (-1: none)."""
    success_button: int = 1
    """Button index that marks the episode a success when pressed while not intervening (-1: none)."""

    def validate(self) -> None:
        if not 0.0 <= self.deadzone < 1.0:
            raise ValueError(f"deadzone must be in [0, 1), got {self.deadzone}")
        if not self.deadzone <= self.release_threshold <= self.engage_threshold <= 1.0:
            raise ValueError(
                "need deadzone <= release_threshold <= engage_threshold <= 1, got "
                f"{self.deadzone}, {self.release_threshold}, {self.engage_threshold}"
            )
        if self.hold_s < 0:
            raise ValueError(f"hold_s must be >= 0, got {self.hold_s}")


@dataclass(frozen=True)
class SpaceMouseConfig:
    """SpaceMouse device, intervention detection and axis mapping."""

    backend: str = "real"
    """Device backend: real (pyspacemouse), fake (replayed HID reports) or sim (provider)."""
    device_name: str = ""
    """pyspacemouse device name (e.g. SpaceMouseCompact); empty: the first supported device
    found (real) or SpaceMouseCompact (fake)."""
    device_index: int = 0
    """Which of several identical devices to open (real backend)."""
    fake_reports_file: str = ""
    """YAML replay script of HID reports for the fake backend (see load_report_script)."""
    fake_script_start_unix_s: float = 0.0
    """Fake backend: Unix time (s, the host's wall clock) at which the script's at_s = 0 falls,
    so another process knows when each report arrives (latency benchmarks); 0: at connect()."""
    sim_provider: str = ""
    """'module:callable' returning a SimOperatorSource for the sim backend when the node runs
    as its own process (in-process graphs pass the source object instead)."""
    read_rate_hz: float = 200.0
    """The reader wakes at least this often (hold times, periodic publishing, reconnects), Hz;
    a device report wakes it at once."""
    intervention: InterventionConfig = field(default_factory=InterventionConfig)
    """Intervention detection."""
    mapping: TeleopMapping = field(default_factory=TeleopMapping)
    """Device axes to robot base-frame twist."""

    def validate(self) -> None:
        if self.backend not in BACKENDS:
            raise ValueError(f"backend must be one of {BACKENDS}, got '{self.backend}'")
        if self.read_rate_hz <= 0:
            raise ValueError(f"read_rate_hz must be > 0, got {self.read_rate_hz}")
        if not self.fake_script_start_unix_s >= 0:
            raise ValueError(f"fake_script_start_unix_s must be >= 0 (0: at connect), got {self.fake_script_start_unix_s}")
        if self.backend == "fake" and self.fake_reports_file and not pathlib.Path(self.fake_reports_file).is_file():
            raise ValueError(f"fake_reports_file '{self.fake_reports_file}' does not exist")
        self.intervention.validate()


# --------------------------------------------------------------------------------------
# Devices
# --------------------------------------------------------------------------------------


class SpaceMouse(abc.ABC):
    """A 6-axis device with buttons. Constructors do no I/O; use connect()/close() or `with`."""

    @abc.abstractmethod
    def connect(self) -> None:
        """Open the device; SpaceMouseError (with the fix) when that is impossible."""

    @abc.abstractmethod
    def read(self, wait_s: float = 0.0) -> SpaceMouseReading:
        """Newest reading; SpaceMouseDisconnected when the device went away.

        ``wait_s`` > 0: first wait up to that long for the device's next report (returning as
        soon as one arrives), so a reader thread wakes on each report instead of polling.
        """

    @abc.abstractmethod
    def close(self) -> None:
        """Release the device (idempotent)."""

    @property
    @abc.abstractmethod
    def connected(self) -> bool: ...

    def __enter__(self) -> "SpaceMouse":
        self.connect()
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _device_spec(device_name: str):
    """pyspacemouse DeviceInfo (HID_Z_UP convention) for a device name."""
    import pyspacemouse

    specs = pyspacemouse.get_device_specs()
    if device_name not in specs:
        raise ConfigError(f"unknown SpaceMouse device '{device_name}'; known: {', '.join(specs)}")
    return pyspacemouse.apply_axis_convention(specs[device_name], pyspacemouse.AxisConvention.HID_Z_UP)


class _PySpaceMouseBase(SpaceMouse):
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


class RealSpaceMouse(_PySpaceMouseBase):
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


class FakeHidDevice:
    """Stands in for an easyhid ``Device``: returns queued byte-level HID reports.

    ``push(report)`` queues a report; ``unplug()`` makes later reads fail like a device that
    was pulled out; ``fail_open`` makes ``open()`` fail like a device without permissions.
    With a ``script`` (list of ``(at_s, report bytes or None for unplug)``), reports become
    readable ``at_s`` seconds after ``open()``, by ``clock``; with ``start_unix_s`` > 0 they
    become readable at ``start_unix_s + at_s`` on the wall clock (``time.time()``) instead
    (reports already due at ``open()`` are readable at once).
    """

    def __init__(
        self,
        product_string: str = "SpaceMouse Compact",
        script: list[tuple[float, bytes | None]] | None = None,
        clock: Callable[[], float] = time.monotonic,
        fail_open: bool = False,
        start_unix_s: float = 0.0,
    ) -> None:
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
                next_due_s = self._take_due_reports()
                if self._queue:
                    return self._queue.popleft()[:size]
                if self._unplugged:
                    # What easyhid raises when hid_read returns -1 (device gone).
                    raise HIDException("Failed to read from HID device: -1")
                left_s = deadline - time.monotonic()
                if left_s <= 0:
                    return b""
                # Woken by push()/unplug(), or when the next scripted report falls due.
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


class FakeHidSpaceMouse(_PySpaceMouseBase):
    """A SpaceMouse whose HID device is a :class:`FakeHidDevice`; pyspacemouse decodes."""

    def __init__(self, hid_device: FakeHidDevice, device_name: str = "SpaceMouseCompact", clock: Callable[[], float] = time.monotonic):
        super().__init__(clock)
        self.hid_device = hid_device
        self.device_name = device_name or "SpaceMouseCompact"

    def connect(self) -> None:
        if self._device is not None:
            return
        import pyspacemouse

        spec = _device_spec(self.device_name)
        dev = pyspacemouse.SpaceMouseDevice(info=spec, device=self.hid_device)
        try:
            dev.open()  # pyspacemouse's own open: calls hid.open(), copies product strings
        except RuntimeError as e:
            raise SpaceMouseError(f"cannot open SpaceMouse '{self.device_name}': {e}. {UDEV_HELP}") from e
        self.hid_device.set_nonblocking(True)
        self._use(dev)


def encode_reports(
    axes: np.ndarray | list[float] | None = None,
    buttons: tuple[int, ...] | list[int] | None = None,
    device_name: str = "SpaceMouseCompact",
) -> list[bytes]:
    """Byte-level HID reports that a device sends for the given state (teleop convention).

    ``axes`` (x, y, z, roll, pitch, yaw in [-1, 1]) and ``buttons`` as in
    :class:`SpaceMouseReading`; either may be None to leave those reports out.
    """
    spec = _device_spec(device_name)
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


@runtime_checkable
class SimOperatorSource(Protocol):
    """What the sim backend reads: the simulated operator (or anything else)."""

    def read(self) -> SpaceMouseReading | None:
        """Newest reading, or None when the operator has nothing to say (hands off)."""


class SimSpaceMouse(SpaceMouse):
    """Readings from a provider; None from the provider means hands off (zero axes)."""

    def __init__(self, source: Union[SimOperatorSource, Callable[[], SpaceMouseReading | None]], n_buttons: int = 2, clock: Callable[[], float] = time.monotonic):
        self._source = source
        self._read = source.read if isinstance(source, SimOperatorSource) else source
        self._clock = clock
        self._n_buttons = n_buttons
        self._connected = False

    @property
    def connected(self) -> bool:
        return self._connected

    def connect(self) -> None:
        connect = getattr(self._source, "connect", None)
        if callable(connect):
            connect()
        self._connected = True

    def read(self, wait_s: float = 0.0) -> SpaceMouseReading:
        if not self._connected:
            raise SpaceMouseError("SpaceMouse read before connect(); call connect() first")
        if wait_s > 0:
            # A source that can say when it has something new (wait_for_new(timeout_s)) wakes the
            # reader; otherwise this paces the reader like a polled device.
            wait = getattr(self._source, "wait_for_new", None)
            if callable(wait):
                wait(wait_s)
            else:
                time.sleep(wait_s)
        r = self._read()
        if r is None:
            return SpaceMouseReading(t=self._clock(), axes=np.zeros(6), buttons=(0,) * self._n_buttons)
        axes = np.asarray(r.axes, dtype=np.float64)
        if axes.shape != (6,) or not np.all(np.isfinite(axes)):
            raise SpaceMouseError(f"sim operator source gave axes {axes!r}; expected 6 finite values in [-1, 1]")
        return r

    def close(self) -> None:
        if self._connected:
            close = getattr(self._source, "close", None)
            if callable(close):
                close()
        self._connected = False


def load_sim_provider(spec: str) -> Any:
    """Call 'module:callable' and return what it makes (the SimOperatorSource it makes)."""
    return make_from_spec(spec, "sim_provider")


def make_spacemouse(
    config: SpaceMouseConfig,
    *,
    source: Any = None,
    hid_device: FakeHidDevice | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> SpaceMouse:
    """The one factory: a device for ``config.backend`` (no I/O until connect()).

    ``source`` feeds the sim backend (else ``config.sim_provider`` is loaded);
    ``hid_device`` replaces the fake backend's scripted device.
    """
    if config.backend == "real":
        return RealSpaceMouse(config.device_name, config.device_index, clock=clock)
    if config.backend == "fake":
        name = config.device_name or "SpaceMouseCompact"
        if hid_device is None:
            script: list[tuple[float, bytes | None]] = []
            if config.fake_reports_file:
                name_in_file, script = load_report_script(config.fake_reports_file)
                name = config.device_name or name_in_file
            hid_device = FakeHidDevice(script=script, clock=clock, start_unix_s=config.fake_script_start_unix_s)
        return FakeHidSpaceMouse(hid_device, name, clock=clock)
    if config.backend == "sim":
        if source is None:
            if not config.sim_provider:
                raise ConfigError(
                    "SpaceMouse backend 'sim' needs a source: pass source=... (in-process graph) "
                    "or set sim_provider to 'module:callable'"
                )
            source = load_sim_provider(config.sim_provider)
        return SimSpaceMouse(source, clock=clock)
    raise ConfigError(f"unknown SpaceMouse backend '{config.backend}'; choose one of {BACKENDS}")


# --------------------------------------------------------------------------------------
# Intervention detection
# --------------------------------------------------------------------------------------


@dataclass
class InterventionUpdate:
    """Result of one detector step."""

    command: OperatorCommand
    changed: bool
    """Intervention state toggled or a button event happened: publish at once."""


class InterventionDetector:
    """Readings -> operator commands with deadzone, hysteresis and hold time (pure).

    * Engage when the largest axis magnitude exceeds ``engage_threshold``.
    * While engaged the operator is "active" while it stays above ``release_threshold``
      (or a gripper button is held); the intervention ends ``hold_s`` after the last active
      reading. During the hold the command is zero: the robot holds still under the operator.
    * While intervening, gripper buttons give ``gripper`` = close/open (held level).
      While not intervening, a press (rising edge) of the success/failure button gives a
      one-shot ``episode_mark``.
    * :meth:`disconnect` ends everything: intervening false, zero command.
    """

    def __init__(self, config: InterventionConfig = InterventionConfig(), mapping: TeleopMapping = TeleopMapping()):
        config.validate()
        self.config = config
        self.mapping = mapping
        self.intervening = False
        self._last_active_t: float | None = None
        self._prev_buttons: tuple[int, ...] = ()
        self._prev_gripper = GRIPPER_KEEP

    def reset(self) -> None:
        self.intervening = False
        self._last_active_t = None
        self._prev_buttons = ()
        self._prev_gripper = GRIPPER_KEEP

    def _apply_deadzone(self, axes: np.ndarray) -> np.ndarray:
        dz = self.config.deadzone
        mag = np.abs(axes)
        return np.where(mag < dz, 0.0, np.sign(axes) * (mag - dz) / (1.0 - dz))

    @staticmethod
    def _pressed(buttons: tuple[int, ...], index: int) -> bool:
        return 0 <= index < len(buttons) and bool(buttons[index])

    def update(self, reading: SpaceMouseReading) -> InterventionUpdate:
        c = self.config
        axes = np.clip(np.asarray(reading.axes, dtype=np.float64), -1.0, 1.0)
        peak = float(np.max(np.abs(axes))) if axes.size else 0.0
        buttons = tuple(int(b) for b in reading.buttons)
        was = self.intervening
        grip_held = self._pressed(buttons, c.gripper_close_button) or self._pressed(buttons, c.gripper_open_button)

        if not self.intervening:
            if peak > c.engage_threshold:
                self.intervening = True
                self._last_active_t = reading.t
        else:
            if peak > c.release_threshold or grip_held:
                self._last_active_t = reading.t
            elif self._last_active_t is not None and reading.t - self._last_active_t >= c.hold_s:
                self.intervening = False
                self._last_active_t = None

        gripper = GRIPPER_KEEP
        mark = MARK_NONE
        if self.intervening:
            if self._pressed(buttons, c.gripper_close_button):
                gripper = GRIPPER_CLOSE
            elif self._pressed(buttons, c.gripper_open_button):
                gripper = GRIPPER_OPEN
        elif was == self.intervening:  # marks only from a settled not-intervening state
            prev = self._prev_buttons
            if self._pressed(buttons, c.success_button) and not self._pressed(prev, c.success_button):
                mark = MARK_SUCCESS
            elif self._pressed(buttons, c.failure_button) and not self._pressed(prev, c.failure_button):
                mark = MARK_FAILURE
        self._prev_buttons = buttons

        if self.intervening:
            lin, ang = self.device_twist(reading)
        else:
            lin, ang = np.zeros(3), np.zeros(3)
        changed = was != self.intervening or mark != MARK_NONE or gripper != self._prev_gripper
        self._prev_gripper = gripper
        cmd = OperatorCommand(
            t=reading.t, intervening=self.intervening, lin_m_s=lin, ang_rad_s=ang, axes=axes,
            gripper=gripper, episode_mark=mark,
        )
        return InterventionUpdate(cmd, changed)

    def device_twist(self, reading: SpaceMouseReading) -> tuple[np.ndarray, np.ndarray]:
        """Base-frame twist for a reading with the deadzone applied, intervening or not."""
        axes = np.clip(np.asarray(reading.axes, dtype=np.float64), -1.0, 1.0)
        return self.mapping.to_twist(SpaceMouseReading(t=reading.t, axes=self._apply_deadzone(axes), buttons=reading.buttons))

    def disconnect(self, t: float) -> InterventionUpdate:
        """The device went away: end the intervention, zero command."""
        was = self.intervening
        self.reset()
        return InterventionUpdate(OperatorCommand(t=t, intervening=False), changed=was)


__all__ = [
    "BACKENDS", "FakeHidDevice", "FakeHidSpaceMouse", "InterventionConfig", "InterventionDetector",
    "InterventionUpdate", "RealSpaceMouse", "SimOperatorSource", "SimSpaceMouse", "SpaceMouse",
    "SpaceMouseConfig", "SpaceMouseDisconnected", "SpaceMouseError", "UDEV_HELP", "encode_reports",
    "load_report_script", "load_sim_provider", "make_spacemouse",
]
