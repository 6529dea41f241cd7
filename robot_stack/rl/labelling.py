"""Reward labelling from interventions (RLIF, Luo et al. 2024), ROS-free.

The actor streams one :class:`~robot_stack.types.records.StepRecord` per control step.
Transitions ``(o_t, a_t, r_t, o_t+1)`` are formed from consecutive steps of one episode and
labelled here, so the robot side never computes rewards.

Labelling rule (the paper's)
----------------------------
* The **policy step whose outcome made the operator take over** gets ``r_t = penalty``
  (default -1): step ``t`` was run by the policy (``intervention=False``) and step ``t+1``
  is run by the operator (``intervention=True``), i.e. the transition *into* the onset of an
  intervention. Every other transition gets reward 0.
* The episode is **not** cut at an intervention: the transition into the onset keeps
  ``terminal=False`` and bootstrapping continues through the operator's steps.
* The operator's own steps are transitions too (reward 0, ``intervention=True``); the learner
  stores them in the main buffer and additionally in an intervention buffer.
* ``terminal`` is True only when the episode's last record says ``is_terminal`` (a true
  terminal state). An episode cut by the time limit is a truncation: ``terminal=False``, so
  the learner bootstraps from the final observation.

Edge cases (each covered by tests/test_rl_labelling.py)
-------------------------------------------------------
* Intervention at the very first step: no policy step provoked it, so nothing is penalized.
* Back-to-back interventions (operator, policy, operator): each onset penalizes the single
  policy step right before it.
* Intervention flagged on the ``is_last`` record: the final observation was reached by a
  policy step and the operator took over right there, so that last transition is penalized.
* Episode ends during an intervention: the operator's transitions get 0; ``terminal`` follows
  ``is_terminal`` as for any episode.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Iterable, Iterator

import numpy as np

from robot_stack.types.records import Obs, StepRecord

log = logging.getLogger(__name__)

@dataclass
class Transition:
    """A labelled transition, ready for the replay buffer."""

    obs: Obs
    action: np.ndarray
    reward: float
    next_obs: Obs
    terminal: bool
    """True only for a true terminal next state (no bootstrapping); False for truncations."""
    intervention: bool
    """The action came from the operator (also goes to the intervention buffer)."""
    episode_id: int
    step_index: int
    """Index of o_t in its episode; the buffer uses it to store each frame once."""
    episode_end: bool = False
    """next_obs is the episode's final observation (terminal or truncated)."""
    robot_id: str = ""
    """The robot whose step records this came from ('' for a single-robot learner)."""
    info: dict = field(default_factory=dict)


@dataclass(frozen=True)
class LabellingConfig:
    """How transitions are labelled from intervention flags."""

    intervention_penalty: float = -1.0
    """Reward of the policy step that provoked an intervention. Paper: -1 (all others 0)."""
    store_intervention_steps: bool = True
    """Emit the operator's own steps as transitions (reward 0). Paper: True (RLIF learns from
    the intervention data as well as from the penalty)."""

    def validate(self) -> None:
        if self.intervention_penalty > 0:
            raise ValueError(
                f"intervention_penalty must be <= 0 (got {self.intervention_penalty}); "
                "an intervention is a cost, use e.g. -1.0"
            )


def label_transition(step: StepRecord, next_step: StepRecord, cfg: LabellingConfig) -> Transition | None:
    """Label the transition from ``step`` to ``next_step`` (same episode, consecutive).

    Returns None when the transition is an operator step and ``store_intervention_steps`` is
    False.
    """
    if not step.has_action:
        raise ValueError(
            f"episode {step.episode_id} step {step.step_index} has no action but is not the "
            "episode's last record; only the is_last record may omit the action"
        )
    if step.intervention and not cfg.store_intervention_steps:
        return None
    onset = (not step.intervention) and next_step.intervention
    return Transition(
        obs=step.obs,
        action=np.asarray(step.action, dtype=np.float32),
        reward=float(cfg.intervention_penalty) if onset else 0.0,
        next_obs=next_step.obs,
        terminal=bool(next_step.is_last and next_step.is_terminal),
        intervention=bool(step.intervention),
        episode_id=int(step.episode_id),
        step_index=int(step.step_index),
        episode_end=bool(next_step.is_last),
        info={"onset": onset, "success": bool(next_step.success) if next_step.is_last else False},
    )


class StreamingLabeller:
    """Incremental labeller for a learner fed one step at a time.

    ``push(step)`` returns the transitions completed by that step: transition t is emitted as
    soon as record t+1 arrives (its intervention flag decides t's reward). Records of an
    episode must arrive in order; a gap or a new episode before the old one's ``is_last``
    drops the unfinished step (logged) instead of pairing observations from two episodes.
    """

    def __init__(self, cfg: LabellingConfig | None = None):
        self.cfg = cfg or LabellingConfig()
        self.cfg.validate()
        self._pending: StepRecord | None = None
        self.dropped_steps = 0
        """Steps that could not be paired (gaps, episodes cut without is_last)."""

    def push(self, step: StepRecord) -> list[Transition]:
        prev = self._pending
        self._pending = None
        out: list[Transition] = []
        if prev is not None:
            same_episode = step.episode_id == prev.episode_id and step.step_index == prev.step_index + 1
            if same_episode and not step.is_first:
                t = label_transition(prev, step, self.cfg)
                if t is not None:
                    out.append(t)
            else:
                self.dropped_steps += 1
                log.warning(
                    "dropping episode %d step %d: next record is episode %d step %d (gap or "
                    "episode cut without is_last)", prev.episode_id, prev.step_index,
                    step.episode_id, step.step_index,
                )
        elif not step.is_first and step.step_index != 0:
            # Joined mid-episode (e.g. learner restart): pair from here on.
            log.info("starting mid-episode at episode %d step %d", step.episode_id, step.step_index)
        if not step.is_last:
            self._pending = step
        return out

    @property
    def pending(self) -> StepRecord | None:
        """The record waiting for its successor (which decides its reward), if any."""
        return self._pending

    def restore_pending(self, step: StepRecord) -> None:
        """Continue from a pending record kept on disk (a restarted learner)."""
        self._pending = None if step.is_last else step

    def reset(self) -> None:
        """Forget a pending step (e.g. the actor restarted)."""
        self._pending = None


def label_steps(steps: Iterable[StepRecord], cfg: LabellingConfig | None = None) -> Iterator[Transition]:
    """Label a stream (or list) of steps; pure apart from the returned transitions' order."""
    labeller = StreamingLabeller(cfg)
    for s in steps:
        yield from labeller.push(s)
