"""How the actor resets episodes (``reset_mode``), without ROS.

* ``topic``: request ``/robot_stack/episode/reset`` with the next episode id; the reset is
  done when a responder (the sim world) echoes that id on ``reset_done``.
* ``franka_home``: request ``/robot_stack/franka/home``; done when the Franka node's status
  reports a ``home_done`` newer than the request (the status topic replays old events).
* ``none``: nothing is requested and the next episode starts at once.

With ``wait_for_reset_done`` false every request counts as done at once.
"""
from __future__ import annotations

import enum
import math
from dataclasses import dataclass

RESET_MODES = ("topic", "franka_home", "none")


class StatusVerdict(enum.Enum):
    IGNORE = "ignore"
    DONE = "done"
    FAILED = "failed"


@dataclass(frozen=True)
class ResetRequest:
    """What to send for one reset request."""

    publish_reset: bool
    """Send the episode id on the reset topic."""
    publish_home: bool
    """Send the Franka home request."""
    done_now: bool
    """Count the reset as done right away (no answer to wait for)."""


class ResetCoordinator:
    """The reset strategy of ``mode``; times are wall-clock seconds (the Franka status's clock)."""

    def __init__(self, mode: str, wait_for_reset_done: bool) -> None:
        if mode not in RESET_MODES:
            raise ValueError(f"reset_mode must be one of {RESET_MODES}, got '{mode}'")
        self.mode = mode
        self.wait_for_reset_done = wait_for_reset_done
        self.request_wall_s = math.inf

    def request(self, wall_s: float) -> ResetRequest:
        self.request_wall_s = wall_s
        return ResetRequest(publish_reset=self.mode == "topic", publish_home=self.mode == "franka_home",
                            done_now=self.mode == "none" or not self.wait_for_reset_done)

    def accepts_reset_done(self) -> bool:
        """Whether ``reset_done`` answers count (topic mode)."""
        return self.mode == "topic"

    def on_franka_status(self, event: dict) -> StatusVerdict:
        """A Franka status event: DONE for a home_done newer than the request, FAILED for home_failed."""
        if self.mode != "franka_home":
            return StatusVerdict.IGNORE
        if event.get("event") == "home_done" and float(event.get("t", 0.0)) >= self.request_wall_s:
            return StatusVerdict.DONE
        if event.get("event") == "home_failed":
            return StatusVerdict.FAILED
        return StatusVerdict.IGNORE
