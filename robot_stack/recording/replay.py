"""A recorded session's step records fed into a fresh learner (ROS-free).

:func:`replay_steps` builds a :class:`~robot_stack.core.learner.LearnerCore` on a new run
directory and hands it the steps in the order they were recorded, as the learner node does with
the step records it receives: the same labelling (RLIF rewards from the intervention flags,
``labelling.*``), the same replay buffers and logs. With ``train`` it also runs the
update-to-data schedule synchronously after each step (``sac.utd_ratio`` critic updates per
transition once ``min_transitions`` are stored), exporting policies and a checkpoint like a
live learner. So a session can be relearnt with another penalty, network or UTD ratio; fed the
same records, the replay logs hold exactly the transitions the live learner stored.

``robot-stack bag replay <bag> --run-dir DIR`` is the command line around it (it reads and
decodes the records).
"""
from __future__ import annotations

import logging
import pathlib
import time
from dataclasses import dataclass
from typing import Callable, Iterable

from robot_stack.core.learner import LearnerConfig, LearnerCore

log = logging.getLogger(__name__)


@dataclass
class ReplayResult:
    """What a replay did."""

    run_dir: pathlib.Path
    steps: int = 0
    transitions: int = 0
    updates: int = 0
    episodes: int = 0
    seconds: float = 0.0


def fresh_run_dir(path: str | pathlib.Path) -> pathlib.Path:
    """``path`` if it holds no learner state yet (ValueError otherwise: a replay starts fresh)."""
    p = pathlib.Path(path).expanduser()
    taken = [n for n in (LearnerCore.CHECKPOINT, LearnerCore.ONLINE_LOG, LearnerCore.INTERVENTION_LOG)
             if (p / n).exists()]
    if taken:
        raise ValueError(f"{p} already holds a learner ({', '.join(taken)}); replay into a new run dir")
    return p


def replay_steps(steps: Iterable, config: LearnerConfig, *, train: bool = True,
                 progress: Callable[[ReplayResult, LearnerCore], None] | None = None,
                 progress_every: int = 500) -> ReplayResult:
    """Feed ``steps`` (:class:`robot_stack.rl.labelling.Step`, recorded order) to a fresh
    learner on ``config.run_dir``; see the module docstring."""
    run_dir = fresh_run_dir(config.run_dir)
    result = ReplayResult(run_dir)
    t0 = time.monotonic()
    core = LearnerCore(config).open()
    try:
        for step in steps:
            result.transitions += core.add_step(step)
            result.steps += 1
            if train:
                core.train_pending()
            if progress is not None and result.steps % progress_every == 0:
                result.updates, result.seconds = core.updates, time.monotonic() - t0
                progress(result, core)
    finally:
        core.close()
    result.updates = core.updates
    result.episodes = int(core.counters["episodes"])
    result.seconds = time.monotonic() - t0
    return result


__all__ = ["ReplayResult", "fresh_run_dir", "replay_steps"]
