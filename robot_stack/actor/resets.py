"""How the actor resets episodes (``reset_mode``), without ROS.

* ``world``: call the ``episode/reset`` service (robot_stack/ResetEpisode, served by the sim
  world) with the next episode id; its answer comes once the scene is re-sampled and the arm
  is at the start pose, and completes the reset (also when the home move failed: the world
  then starts the episode where the arm is, as it reports).
* ``franka_home``: call the Franka node's ``franka/home`` service (std_srvs/Trigger); a
  successful answer completes the reset, a failed one does not (the actor asks again after
  ``reset_timeout_s``).
* ``none``: nothing is requested and the next episode starts at once.

The answer belongs to the request it answers (a service call), so no clocks are compared.
With ``wait_for_reset_done`` false every request counts as done at once (the call still goes
out).
"""
from __future__ import annotations

from dataclasses import dataclass

RESET_MODES = ("world", "franka_home", "none")


@dataclass(frozen=True)
class ResetRequest:
    """What to do for one reset request."""

    service: str | None
    """Which reset service to call: ``world``, ``franka_home`` or None (none)."""
    done_now: bool
    """Count the reset as done right away (no answer to wait for)."""


class ResetCoordinator:
    """The reset strategy of ``mode``."""

    def __init__(self, mode: str, wait_for_reset_done: bool) -> None:
        if mode not in RESET_MODES:
            raise ValueError(f"reset_mode must be one of {RESET_MODES}, got '{mode}'")
        self.mode = mode
        self.wait_for_reset_done = wait_for_reset_done

    def request(self) -> ResetRequest:
        return ResetRequest(service=None if self.mode == "none" else self.mode,
                            done_now=self.mode == "none" or not self.wait_for_reset_done)

    def completes(self, success: bool) -> bool:
        """Whether an answer with ``success`` completes the reset: every answer of the world
        (it starts the episode in any case), only a reached home pose for ``franka_home``."""
        return success or self.mode == "world"
