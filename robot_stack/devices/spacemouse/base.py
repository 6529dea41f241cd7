"""The SpaceMouse interface, its config and the one factory (ROS-free).

Three backends behind one small interface (:class:`SpaceMouse`: ``connect()``, ``read()``,
``close()``), chosen by ``SpaceMouseConfig.backend`` through :func:`make_spacemouse`:

``real`` (:mod:`.real`)
    A 3Dconnexion device through pyspacemouse (hidapi/hidraw).
``fake`` (:mod:`.fake`)
    pyspacemouse's own report decoding over an injected HID device (an object that behaves
    like an easyhid device and returns byte-level reports): ``hid_device=`` in-process, or the
    device that ``hid_provider`` makes (scripted reports: :mod:`robot_stack.testing.spacemouse`).
``sim`` (:mod:`.sim`)
    Readings from a :class:`~robot_stack.devices.spacemouse.sim.SimOperatorSource`, e.g. the
    simulated operator of the sim graph.

:mod:`.intervention` turns readings into :class:`~robot_stack.types.teleop.OperatorCommand`.

Axis convention: readings follow :mod:`robot_stack.types.teleop` (x right, y away from the
operator, z up; ``roll`` about y, ``pitch`` about x, ``yaw`` about z, counter-clockwise
from above positive). pyspacemouse is opened with ``AxisConvention.HID_Z_UP``, whose
``roll`` is about x and ``pitch`` about y, so those two are swapped on the way in.

Device errors (absent, no permission, unplugged) raise :class:`SpaceMouseError` whose
message says what to do; the node then ends any intervention and publishes a zero command.
"""
from __future__ import annotations

import abc
import pathlib
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from robot_stack.devices.spacemouse.intervention import InterventionConfig
from robot_stack.types.config import ConfigError, make_from_spec
from robot_stack.types.teleop import SpaceMouseReading, TeleopMapping

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


@dataclass(frozen=True)
class SpaceMouseConfig:
    """SpaceMouse device, intervention detection and axis mapping."""

    backend: str = "real"
    """Device backend: real (pyspacemouse), fake (pyspacemouse on a provided HID device) or sim (provider)."""
    device_name: str = ""
    """pyspacemouse device name (e.g. SpaceMouseCompact); empty: the first supported device
    found (real) or SpaceMouseCompact (fake)."""
    device_index: int = 0
    """Which of several identical devices to open (real backend)."""
    fake_reports_file: str = ""
    """YAML replay script of HID reports for the fake backend, read by its hid_provider
    (robot_stack.testing.spacemouse.load_report_script gives the format)."""
    fake_script_start_unix_s: float = 0.0
    """Fake backend: Unix time (s, the host's wall clock) at which the script's at_s = 0 falls,
    so another process knows when each report arrives (latency benchmarks); 0: at connect()."""
    hid_provider: str = ""
    """Fake backend: 'module:callable' called with (this config, clock) that returns the
    easyhid-like HID device pyspacemouse reads (scripted reports from fake_reports_file:
    robot_stack.testing.spacemouse:scripted_hid_device); in-process use passes hid_device."""
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


def make_spacemouse(
    config: SpaceMouseConfig,
    *,
    source: Any = None,
    hid_device: Any = None,
    clock: Callable[[], float] = time.monotonic,
) -> SpaceMouse:
    """The one factory: a device for ``config.backend`` (no I/O until connect()).

    ``source`` feeds the sim backend (else ``config.sim_provider`` is loaded); ``hid_device``
    feeds the fake backend (else ``config.hid_provider`` makes one).
    """
    if config.backend == "real":
        from robot_stack.devices.spacemouse.real import RealSpaceMouse

        return RealSpaceMouse(config.device_name, config.device_index, clock=clock)
    if config.backend == "fake":
        from robot_stack.devices.spacemouse.fake import FakeHidSpaceMouse

        if hid_device is None:
            if not config.hid_provider:
                raise ConfigError(
                    "SpaceMouse backend 'fake' needs a HID device: pass hid_device=... (in-process) or set "
                    "hid_provider to 'module:callable' (scripted reports: robot_stack.testing.spacemouse:scripted_hid_device)"
                )
            hid_device = make_from_spec(config.hid_provider, "hid_provider", config, clock)
        name = config.device_name or getattr(hid_device, "device_name", "") or "SpaceMouseCompact"
        return FakeHidSpaceMouse(hid_device, name, clock=clock)
    if config.backend == "sim":
        from robot_stack.devices.spacemouse.sim import SimSpaceMouse, load_sim_provider

        if source is None:
            if not config.sim_provider:
                raise ConfigError(
                    "SpaceMouse backend 'sim' needs a source: pass source=... (in-process graph) "
                    "or set sim_provider to 'module:callable'"
                )
            source = load_sim_provider(config.sim_provider)
        return SimSpaceMouse(source, clock=clock)
    raise ConfigError(f"unknown SpaceMouse backend '{config.backend}'; choose one of {BACKENDS}")
