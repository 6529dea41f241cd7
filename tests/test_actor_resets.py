"""The actor's reset strategies (robot_stack.actor.resets): which service a reset calls and which
answers complete it."""
from __future__ import annotations

import pytest

from robot_stack.actor.resets import ResetCoordinator


def test_world_reset_calls_the_world_and_any_answer_completes_it():
    r = ResetCoordinator("world", wait_for_reset_done=True)
    req = r.request()
    assert req.service == "world" and not req.done_now
    assert r.completes(True) and r.completes(False)  # the world starts the episode in any case


def test_franka_home_needs_a_reached_pose():
    r = ResetCoordinator("franka_home", wait_for_reset_done=True)
    assert r.request().service == "franka_home"
    assert r.completes(True) and not r.completes(False)  # a failed home move is asked for again


def test_none_and_not_waiting_are_done_at_once():
    assert ResetCoordinator("none", True).request().done_now and ResetCoordinator("none", True).request().service is None
    req = ResetCoordinator("world", wait_for_reset_done=False).request()
    assert req.service == "world" and req.done_now  # the call still goes out


def test_unknown_mode_names_the_choices():
    with pytest.raises(ValueError, match="world"):
        ResetCoordinator("topic", True)
