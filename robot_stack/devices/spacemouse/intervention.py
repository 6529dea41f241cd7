"""Intervention detection: SpaceMouse readings -> operator commands (pure, ROS-free).

:class:`InterventionDetector` applies a deadzone, engage/release hysteresis, a hold time after
release, a report-age timeout, gripper buttons while intervening and episode marks while not.
Time comes from the readings. The commanded twist is exactly zero unless the operator is
actively intervening (deflected beyond ``release_threshold``).

Device behaviour relied on: while its cap is deflected, a 3Dconnexion SpaceMouse sends
translation/rotation reports continuously (one pair every 8-16 ms, whether or not the
deflection changes) and, on release, a final all-zero report; buttons are reported only when
they change. So a deflected reading whose newest report is older than ``report_timeout_s`` means
the release report was lost or the device hung: the intervention ends at once with a zero
command, and it does not re-engage until fresh reports arrive.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from robot_stack.types.teleop import (
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
    report_timeout_s: float = 0.25
    """A deflected device whose newest report is older than this (s) has gone quiet: the
    intervention ends and the command is zero (a deflected SpaceMouse reports every 8-16 ms)."""
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
        if not self.report_timeout_s > 0:
            raise ValueError(f"report_timeout_s must be > 0 s, got {self.report_timeout_s}")


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
    * A deflected (beyond ``deadzone``) reading whose newest report is older than
      ``report_timeout_s`` is stale: it ends an intervention at once (``stale_timeouts``
      counts it) and cannot start one.
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
        self.stale_timeouts = 0
        """Interventions ended because the device went quiet while deflected."""

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
        stale = peak > c.deadzone and reading.report_age_s > c.report_timeout_s
        active = False

        if not self.intervening:
            if peak > c.engage_threshold and not stale:
                self.intervening = active = True
                self._last_active_t = reading.t
        elif stale:
            self.intervening = False
            self._last_active_t = None
            self.stale_timeouts += 1
        else:
            if peak > c.release_threshold or grip_held:
                self._last_active_t = reading.t
                active = True
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

        if self.intervening and active:
            lin, ang = self.device_twist(reading)
        else:  # not intervening, or holding after a release: exactly zero
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
