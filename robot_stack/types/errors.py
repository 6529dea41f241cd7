"""Errors raised by the calibration tools.

Every error says what went wrong and what the operator should do about it; the CLI prints
the message as is. All derive from :class:`CalibrationError` (a ``ValueError``).
"""
from __future__ import annotations


class CalibrationError(ValueError):
    """Base class: calibration input or result is unusable."""


class TooFewViewsError(CalibrationError):
    """Fewer usable views (images or robot poses) than the configured minimum."""


class BoardNotFoundError(CalibrationError):
    """The calibration board was not detected (or too few of its corners were)."""


class DegenerateMotionError(CalibrationError):
    """Robot poses do not excite the problem (too little rotation, parallel axes, ...)."""


class InvalidWorkspaceBoxError(CalibrationError):
    """A workspace box is empty, inverted, non-finite or outside the robot's reach."""


class CalibrationFileError(CalibrationError):
    """A calibration file is missing, unreadable or has the wrong content."""
