"""One ROS-free type per robot_stack message: what the actor records, summarises and receives.

=====================  =============================  ===========================================
message                type here                      made by / read by
=====================  =============================  ===========================================
msg/StepRecord         :class:`StepRecord`            ActorCore, training script / labeller
msg/EpisodeSummary     :class:`EpisodeSummary`        ActorCore / monitor (progress log)
msg/PolicyWeights      :class:`PolicyWeights`         LearnerCore / actor (policy loading)
msg/StepAck            :class:`StepAck`               learner node / actor's step spool
msg/OperatorCommand    ``types.teleop.OperatorCommand``  intervention detector / actor, franka
=====================  =============================  ===========================================

The status messages (FrankaStatus, LearnerStats, OperatorDecision, CommandSent) have theirs in
``robot_stack.types.status``. ``robot_stack.nodes.convert`` is the only code that turns these into messages and back.
"""
from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field

import numpy as np

from robot_stack.types.spec import PolicySpec

WEIGHTS_FORMAT = "torch_state_dict"
"""The only PolicyWeights.format this version reads (see msg/PolicyWeights.msg)."""

MAX_ID = 2**63 - 1
"""Largest episode id, step index or version a record may carry (they are stored as signed
64-bit integers)."""

Obs = dict
"""An observation: ``{camera_name: uint8 (H, W, 3) RGB, ..., "proprio": float32 (P,)}``,
cameras in the PolicySpec's order."""


def _empty_action() -> np.ndarray:
    return np.zeros(0, np.float32)


@dataclass
class StepRecord:
    """One control step as the actor records it (``msg/StepRecord``; same field meanings).

    ``obs`` is the observation the actor acted on. The episode's ``is_last`` record carries
    only the final observation: its ``action`` and ``policy_action`` are empty.
    """

    episode_id: int
    """Episode this step belongs to (unique within a session)."""
    step_index: int
    """0-based index of this step within its episode."""
    obs: Obs
    """Observation o_t: camera images (uint8 HxWx3, keyed by camera name, spec order) and ``proprio``."""
    action: np.ndarray = field(default_factory=_empty_action)
    """Action executed over step t, normalized to [-1, 1] (float32); empty on the ``is_last`` record."""
    policy_action: np.ndarray = field(default_factory=_empty_action)
    """The policy's own proposal at step t; equals ``action`` when the policy was in control."""
    intervention: bool = False
    """True when the operator was in control for (at least half of) this step."""
    is_first: bool = False
    """First record of an episode."""
    is_last: bool = False
    """Last record of an episode: carries the final observation, no action."""
    is_terminal: bool = False
    """The episode ended in a true terminal state (False for a time-limit truncation)."""
    success: bool = False
    """On the last record: did the episode succeed."""
    policy_version: int = 0
    """Version of the policy weights that produced ``policy_action``."""
    stamp_s: float = 0.0
    """Time the observation was assembled (s, the recorder's clock; the message header stamp)."""
    image_stamps_s: list[float] = field(default_factory=list)
    """Capture stamp of each image (s), in camera order; empty: ``stamp_s``."""
    image_frame_ids: list[str] = field(default_factory=list)
    """Optical frame of each image, in camera order; empty: ``<camera>_optical_frame``."""
    proprio_names: tuple[str, ...] = ()
    """Names of the ``proprio`` entries (the PolicySpec's proprio layout)."""

    @property
    def camera_names(self) -> tuple[str, ...]:
        return tuple(k for k in self.obs if k != "proprio")

    @property
    def images(self) -> list[np.ndarray]:
        return [self.obs[n] for n in self.camera_names]

    @property
    def proprio(self) -> np.ndarray:
        return self.obs["proprio"]

    @property
    def has_action(self) -> bool:
        return self.action is not None and np.size(self.action) > 0

    @property
    def key(self) -> tuple[int, int]:
        """(episode_id, step_index): unique per record, increasing in the order the actor records."""
        return int(self.episode_id), int(self.step_index)


@dataclass
class EpisodeSummary:
    """One finished episode (``msg/EpisodeSummary``)."""

    stamp_s: float
    """When the episode ended (s, the actor's clock)."""
    episode_id: int
    steps: int
    """Control steps taken (records with an action)."""
    intervention_steps: int
    """Steps in which the operator was in control."""
    interventions: int
    """Separate takeovers (runs of intervention steps)."""
    intervention_rate: float
    """intervention_steps / steps."""
    success: bool
    truncated: bool
    """Ended by the time limit (not a terminal state)."""
    window: int
    """Episodes in the rolling rates below."""
    success_rate: float
    """Success rate over the last ``window`` episodes."""
    intervention_rate_window: float
    """Step-weighted intervention rate over the last ``window`` episodes."""
    policy_version: int
    evaluation: bool
    """Run with the deterministic policy, no learning from it (evaluation mode)."""

    def validate(self) -> None:
        """ValueError naming the first field that is out of range (counts >= 0, rates in [0, 1])."""
        for name in ("episode_id", "steps", "intervention_steps", "interventions", "window", "policy_version"):
            v = getattr(self, name)
            if not 0 <= v <= MAX_ID:
                raise ValueError(f"episode summary: {name}={v} is out of range")
        if self.intervention_steps > self.steps:
            raise ValueError(f"episode summary: intervention_steps={self.intervention_steps} > steps={self.steps}")
        for name in ("intervention_rate", "success_rate", "intervention_rate_window"):
            v = getattr(self, name)
            if not (math.isfinite(v) and 0.0 <= v <= 1.0):
                raise ValueError(f"episode summary: {name}={v} is not a rate in [0, 1]")
        if not math.isfinite(self.stamp_s):
            raise ValueError(f"episode summary: stamp {self.stamp_s} is not finite")


@dataclass
class PolicyWeights:
    """An exported actor policy (``msg/PolicyWeights``): ``data`` holds the serialized networks."""

    version: int
    """Monotonically increasing across learner restarts; the actor applies only newer ones."""
    learner_step: int
    """Agent updates when exported."""
    env_steps: int
    """Environment steps the learner had received when exported."""
    spec_json: str
    """PolicySpec and network config JSON (``{"format", "policy_spec", "network"}``)."""
    data: bytes
    """The serialized actor (``format``)."""
    format: str = WEIGHTS_FORMAT
    stamp_s: float = 0.0
    """When it was exported or published (s)."""

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()

    def parse_spec(self) -> tuple[PolicySpec, dict]:
        """(PolicySpec, network config dict) of ``spec_json``; ValueError names what is wrong."""
        try:
            meta = json.loads(self.spec_json)
        except (json.JSONDecodeError, TypeError, RecursionError) as e:
            raise ValueError(f"spec_json is not JSON: {e}") from None
        if not isinstance(meta, dict) or not {"format", "policy_spec", "network"} <= set(meta):
            raise ValueError(f"spec_json must be an object with format, policy_spec and network, got {self.spec_json[:80]!r}")
        if meta["format"] != self.format:
            raise ValueError(f"spec_json format {meta['format']!r:.40} differs from the message's {self.format!r}")
        if not isinstance(meta["network"], dict):
            raise ValueError(f"spec_json network must be an object, got {type(meta['network']).__name__}")
        return PolicySpec.from_dict(meta["policy_spec"]), meta["network"]


@dataclass
class StepAck:
    """The learner's acknowledgement of step records (``msg/StepAck``)."""

    learner_id: int
    """Random per learner process: a new id is a (re)started learner."""
    watermark: tuple[int, int] | None
    """(episode_id, step_index): every record up to it, in the actor's order, is on the
    learner's disk; None while it holds none."""
    stored: int = 0
    """Records this learner process stored."""
    duplicates: int = 0
    """Records it dropped as already stored."""
    early: int = 0
    """Records it dropped because records before them were missing (resent later)."""
    stamp_s: float = 0.0


__all__ = ["MAX_ID", "WEIGHTS_FORMAT", "EpisodeSummary", "Obs", "PolicyWeights", "StepAck", "StepRecord"]
