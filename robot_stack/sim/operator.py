"""Simulated SpaceMouse operator: an imperfect expert plus an intervention strategy (RLIF).

The operator stands in for the human in the loop. Each control step it looks at the sim
state (``model``/``data``) and the action the policy is about to take, decides whether to
take over, and outputs what a SpaceMouse would: a :class:`~robot_stack.types.teleop.SpaceMouseReading`
(6 axes in [-1, 1]; all zero when not intervening, at least ``min_axis`` on some axis while in
control, so deadzone-based intervention detection downstream sees it). The conversion axes
<-> base-frame twist goes through :class:`~robot_stack.types.teleop.TeleopMapping`, so the graph
cannot tell it from a person; :meth:`SimulatedOperator.env_action` gives the equivalent
normalized env action.

Design: a person judges outcomes better than they can demonstrate them. Someone steering
a SpaceMouse misjudges where the hole is by a few millimetres, the same way every time, and
their hand trembles and hesitates; yet they clearly see whether the robot is heading for the
real hole and whether the peg went in. So the simulated operator ACTS with a suboptimal,
partly systematic belief of the goal, but JUDGES the policy (value rule) with the task's true
reference value, as in RLIF's experiments (a reference Q-function judges, a suboptimal
policy intervenes). Imitation (BC, HG-DAgger) copies the systematic error; RLIF, which only
learns which actions provoke interventions, need not, and can exceed its operator.

Skill (:class:`OperatorSkill`, presets ``expert_90``, ``expert_50``, ``expert_20`` per task,
named after their calibrated success rate when acting alone, see ``benchmarks/operator_skill.py``):

* goal bias: a constant offset ``bias_m`` of the believed goal (reach target, hole), the
  same every episode (the operator's systematic error, which imitation learns);
* belief error: at each episode start a further Gaussian offset (std ``belief_error_std_m``
  per axis, 0.3x the bias norm in the presets). Bias and belief error act in xy only for the
  peg, whose height is found by touch. An offset larger than the task tolerance (reach
  radius 3 cm, peg clearance 5 mm) makes the operator fail;
* hand tremor: AR(1)-smoothed Gaussian noise added to the deflection;
* hesitation: with ``hesitation_prob`` per step it pauses (creeps at 10 % speed) for
  ``hesitation_steps`` steps, which costs time against the horizon.

The presets differ only by the bias norm (same tremor and hesitation). Measured success
alone (``benchmarks/operator_skill.py --alone-only --episodes 200``, seeds 0-199): reach
0.89 / 0.48 / 0.20, peg_insertion 0.92 / 0.53 / 0.20 for expert_90 / 50 / 20.

Intervention strategies (:class:`OperatorConfig.strategy`):

* ``value``: RLIF's rule. With ``Q(s, a)`` the task's TRUE reference value
  (``TaskDefinition.reference_value`` without a goal offset: ``exp(-D / L)`` of the one-step
  look-ahead, in (0, 1]), intervene with probability ``p_when_worse`` (0.95) if
  ``Q(s, a_policy) < beta * Q(s, a_expert)``, else with ``p_otherwise`` (0.05).
  ``a_expert`` is the operator's own intended (belief-based, noise-free) action, so a policy
  at least about as good as the operator is left alone, and one better than it too.
* ``action_distance``: HG-DAgger-style gate, intervene when
  ``||a_policy - a_expert||_2 > action_distance_threshold`` (normalized action units).
* ``random``: intervene with probability ``random_rate`` per decision.
* ``always`` / ``never``: the expert acting alone / a passive operator.

Once in control the operator keeps it for ``hold_steps`` control steps (paper: 4), then
decides again.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field

import mujoco
import numpy as np

from robot_stack.sim.tasks import TaskDefinition
from robot_stack.types.spec import ActionSpec
from robot_stack.types.teleop import SpaceMouseReading, TeleopMapping

logger = logging.getLogger(__name__)

STRATEGIES = ("value", "action_distance", "random", "always", "never")


@dataclass(frozen=True)
class OperatorSkill:
    """How the simulated operator falls short of a perfect expert."""

    belief_error_std_m: float = 0.0
    """Std of the per-episode goal misjudgement per axis (m), on top of ``bias_m``."""
    bias_m: tuple[float, float, float] = (0.0, 0.0, 0.0)
    """Constant misjudgement of the goal (m, base frame), the same in every episode: the
    operator's systematic error, which imitation copies (the peg's z component is ignored)."""
    tremor_std: float = 0.0
    """Std of the hand tremor added to each deflection (normalized action units)."""
    tremor_smoothing: float = 0.7
    """AR(1) coefficient of the tremor (0 = white noise, close to 1 = slow drift)."""
    hesitation_prob: float = 0.0
    """Probability per control step of starting a pause."""
    hesitation_steps: int = 0
    """Length of a pause (control steps); the operator creeps at 10 % speed meanwhile."""


def _biased_skill(bias_norm_m: float, direction: tuple[float, float, float]) -> OperatorSkill:
    """Preset shape: constant bias ``bias_norm_m`` along ``direction``, per-episode noise 0.3x it
    per axis, plus the same tremor and hesitation at every level (the levels differ by the bias)."""
    d = np.asarray(direction, dtype=np.float64)
    d = d / np.linalg.norm(d)
    return OperatorSkill(belief_error_std_m=0.3 * bias_norm_m, bias_m=tuple(float(x) for x in bias_norm_m * d),
                         tremor_std=0.05, tremor_smoothing=0.7, hesitation_prob=0.03, hesitation_steps=4)


# Fixed (arbitrary) directions of each task's systematic error; the peg's is horizontal
# (the operator finds the board's height by touch).
_REACH_BIAS_DIR = (2.0, -2.0, 1.0)
_PEG_BIAS_DIR = (0.8, -0.6, 0.0)

# Calibrated with benchmarks/operator_skill.py --alone-only (200 episodes each, seeds 0-199);
# the measured success alone is in the module docstring and checked with a tolerance by
# tests/test_sim_operator.py. Re-calibrate after changing the controller, the tasks'
# tolerances (reach radius 3 cm, peg clearance 5 mm) or the expert.
SKILL_PRESETS: dict[str, dict[str, OperatorSkill]] = {
    "reach": {
        "perfect": OperatorSkill(),
        "expert_90": _biased_skill(0.022, _REACH_BIAS_DIR),
        "expert_50": _biased_skill(0.033, _REACH_BIAS_DIR),
        "expert_20": _biased_skill(0.044, _REACH_BIAS_DIR),
    },
    "peg_insertion": {
        "perfect": OperatorSkill(),
        "expert_90": _biased_skill(0.0048, _PEG_BIAS_DIR),
        "expert_50": _biased_skill(0.0073, _PEG_BIAS_DIR),
        "expert_20": _biased_skill(0.0095, _PEG_BIAS_DIR),
    },
}
"""Skill presets per task name; the number is the target success rate acting alone (%)."""


def skill_preset(task_name: str, preset: str) -> OperatorSkill:
    """The preset ``preset`` (``perfect``, ``expert_90``, ``expert_50``, ``expert_20``) for a task."""
    try:
        presets = SKILL_PRESETS[task_name]
    except KeyError:
        raise ValueError(f"no skill presets for task '{task_name}'; have {sorted(SKILL_PRESETS)}") from None
    try:
        return presets[preset]
    except KeyError:
        raise ValueError(f"unknown skill preset '{preset}'; choose one of {sorted(presets)}") from None


@dataclass
class OperatorConfig:
    """Simulated operator: skill and intervention strategy."""

    skill: str = "expert_90"
    """Skill preset name (see SKILL_PRESETS); ignored when ``custom_skill`` is set."""
    custom_skill: OperatorSkill | None = None
    """Explicit skill parameters instead of a preset."""
    strategy: str = "value"
    """One of value, action_distance, random, always, never."""
    beta: float = 0.9
    """Value rule: intervene (likely) when Q(a_policy) < beta * Q(a_expert)."""
    p_when_worse: float = 0.95
    """Value rule: intervention probability when the policy's action is worse."""
    p_otherwise: float = 0.05
    """Value rule: intervention probability otherwise."""
    action_distance_threshold: float = 0.8
    """Action-distance gate: intervene when ||a_policy - a_expert||_2 exceeds this."""
    random_rate: float = 0.1
    """Random strategy: intervention probability per decision."""
    hold_steps: int = 4
    """Control steps the operator keeps control once it took over (RLIF: 4)."""
    min_axis: float = 0.06
    """Smallest largest-axis deflection while in control (above the 0.05 deadzone)."""

    def __post_init__(self) -> None:
        if self.strategy not in STRATEGIES:
            raise ValueError(f"strategy must be one of {STRATEGIES}, got '{self.strategy}'")
        if self.hold_steps < 1:
            raise ValueError(f"hold_steps must be >= 1, got {self.hold_steps}")


def value_rule_probability(q_policy: float, q_expert: float, beta: float, p_when_worse: float, p_otherwise: float) -> float:
    """RLIF's value-based intervention probability."""
    return p_when_worse if q_policy < beta * q_expert else p_otherwise


@dataclass
class OperatorOutput:
    """What the operator did in one control step."""

    reading: SpaceMouseReading
    """SpaceMouse reading (zero axes when not intervening)."""
    intervening: bool
    """Operator in control this step."""
    started: bool
    """Operator took over at this step (the policy step that provoked it gets reward -1)."""
    expert_action: np.ndarray
    """Operator's intended normalized action (noise free), for logging."""
    intervene_probability: float = 0.0
    """Probability used for the decision this step (1/0 for deterministic rules; NaN when held)."""
    q_policy: float = float("nan")
    """Reference value of the policy's action (value rule only)."""
    q_expert: float = float("nan")
    """Reference value of the expert's action (value rule only)."""


@dataclass
class _EpisodeState:
    belief_offset_m: np.ndarray = field(default_factory=lambda: np.zeros(3))
    tremor: np.ndarray = field(default_factory=lambda: np.zeros(3))
    hesitate_left: int = 0
    hold_left: int = 0


class SimulatedOperator:
    """An imperfect expert that intervenes like an RLIF operator; see the module docstring."""

    def __init__(
        self,
        task: TaskDefinition,
        config: OperatorConfig | None = None,
        mapping: TeleopMapping | None = None,
        seed: int | None = None,
    ) -> None:
        self.task = task
        self.config = config or OperatorConfig()
        self.skill = self.config.custom_skill or skill_preset(task.name, self.config.skill)
        self.action_spec: ActionSpec = task.action_spec
        if self.action_spec.has_rotation or self.action_spec.has_gripper:
            logger.info("simulated operator commands translation only; rotation/gripper stay 0")
        self.mapping = mapping or TeleopMapping(max_lin_speed_m_s=self.action_spec.max_lin_speed_m_s)
        self.rng = np.random.default_rng(seed)
        self._ep = _EpisodeState()

    # -- episode -----------------------------------------------------------------------------
    def reset(self, seed: int | None = None) -> None:
        """Start an episode: constant bias plus a fresh belief error; drop control."""
        if seed is not None:
            self.rng = np.random.default_rng(seed)
        axes = np.array([1.0, 1.0, 0.0]) if self.task.name == "peg_insertion" else np.ones(3)
        noise = self.rng.normal(0.0, self.skill.belief_error_std_m, 3)
        self._ep = _EpisodeState(belief_offset_m=(np.asarray(self.skill.bias_m, dtype=np.float64) + noise) * axes)

    @property
    def belief_offset_m(self) -> np.ndarray:
        """Where the operator believes the goal is, relative to the true goal (m)."""
        return self._ep.belief_offset_m.copy()

    @property
    def intervening(self) -> bool:
        return self._ep.hold_left > 0

    # -- expert ------------------------------------------------------------------------------
    def intended_action(self, model: mujoco.MjModel, data: mujoco.MjData) -> np.ndarray:
        """Noise-free normalized action the operator means to take (belief-based expert)."""
        return self.task.expert_action(model, data, self._ep.belief_offset_m)

    def _executed_lin(self, model: mujoco.MjModel, data: mujoco.MjData) -> np.ndarray:
        """Deflection-equivalent linear velocity with tremor and hesitation (m/s); advances them."""
        sk = self.skill
        v = self.task.expert_velocity(model, data, self._ep.belief_offset_m)
        vmax = self.action_spec.max_lin_speed_m_s
        if self._ep.hesitate_left > 0:
            self._ep.hesitate_left -= 1
            v = 0.1 * v
        elif sk.hesitation_steps > 0 and self.rng.random() < sk.hesitation_prob:
            self._ep.hesitate_left = sk.hesitation_steps - 1
            v = 0.1 * v
        a = sk.tremor_smoothing
        self._ep.tremor = a * self._ep.tremor + np.sqrt(1 - a * a) * self.rng.normal(0.0, sk.tremor_std, 3)
        return v + self._ep.tremor * vmax

    def _reading_for(self, model: mujoco.MjModel, data: mujoco.MjData, lin_m_s: np.ndarray, t: float) -> SpaceMouseReading:
        axes = self.mapping.to_axes(lin_m_s)
        peak = np.max(np.abs(axes[:3]))
        if peak < self.config.min_axis:
            # A hand on the puck in control always deflects it past the deadzone.
            d = axes[:3] if peak > 1e-9 else self.mapping.R.T @ (
                self.task.goal_position(model, data) + self._ep.belief_offset_m - self.task.tool_pos(model, data)
            )
            m = np.max(np.abs(d))
            d = d / m if m > 1e-12 else np.array([0.0, 0.0, -1.0])
            axes[:3] = d * self.config.min_axis
        return SpaceMouseReading(t=t, axes=axes, buttons=(0, 0))

    # -- decisions ---------------------------------------------------------------------------
    def _decide(self, model, data, policy_action: np.ndarray, a_exp: np.ndarray) -> tuple[bool, float, float, float]:
        cfg = self.config
        qp = qe = float("nan")
        if cfg.strategy == "always":
            p = 1.0
        elif cfg.strategy == "never":
            p = 0.0
        elif cfg.strategy == "random":
            p = cfg.random_rate
        elif cfg.strategy == "action_distance":
            p = 1.0 if float(np.linalg.norm(policy_action - a_exp)) > cfg.action_distance_threshold else 0.0
        else:
            # Judged against the TRUE goal (the reference value), not the operator's belief:
            # a person sees where the peg/tool actually ends up better than they can steer it.
            lin_p, _, _ = self.action_spec.to_twist(policy_action)
            lin_e, _, _ = self.action_spec.to_twist(a_exp)
            qp = self.task.reference_value(model, data, lin_p)
            qe = self.task.reference_value(model, data, lin_e)
            p = value_rule_probability(qp, qe, cfg.beta, cfg.p_when_worse, cfg.p_otherwise)
        return bool(self.rng.random() < p), p, qp, qe

    def step(
        self, model: mujoco.MjModel, data: mujoco.MjData, policy_action: np.ndarray, t: float | None = None
    ) -> OperatorOutput:
        """One control step: decide, then produce the SpaceMouse reading. Call once per step."""
        policy_action = np.asarray(policy_action, dtype=np.float64).reshape(-1)
        if policy_action.shape != (self.action_spec.dim,):
            raise ValueError(f"policy_action must have shape ({self.action_spec.dim},), got {policy_action.shape}")
        t = float(data.time) if t is None else float(t)
        a_exp = self.intended_action(model, data)
        started = False
        p, qp, qe = float("nan"), float("nan"), float("nan")
        if self._ep.hold_left == 0:
            take, p, qp, qe = self._decide(model, data, policy_action, a_exp)
            if take:
                self._ep.hold_left = self.config.hold_steps
                started = True
        if self._ep.hold_left > 0:
            self._ep.hold_left -= 1
            reading = self._reading_for(model, data, self._executed_lin(model, data), t)
            return OperatorOutput(reading, True, started, a_exp, p, qp, qe)
        return OperatorOutput(SpaceMouseReading(t=t, axes=np.zeros(6), buttons=(0, 0)), False, False, a_exp, p, qp, qe)

    # -- conversions -------------------------------------------------------------------------
    def env_action(self, reading: SpaceMouseReading) -> np.ndarray:
        """Normalized env action equivalent to a reading (through the TeleopMapping)."""
        lin, ang = self.mapping.to_twist(reading)
        return self.action_spec.from_twist(lin, ang if self.mapping.rotation_enabled else None)

    def act_alone(self, model: mujoco.MjModel, data: mujoco.MjData) -> np.ndarray:
        """The operator driving by itself (no policy): normalized env action for this step."""
        lin = self._executed_lin(model, data)
        return self.env_action(self._reading_for(model, data, lin, float(data.time)))


@dataclass
class EpisodeStats:
    """Outcome of one episode run with :func:`rollout`."""

    success: bool
    steps: int
    intervention_steps: int
    interventions: int
    """Number of take-overs (each may last several steps)."""


def rollout(env, operator: SimulatedOperator, policy=None, seed: int | None = None) -> EpisodeStats:
    """Run one episode of a :class:`~robot_stack.sim.env.FrankaTaskEnv` (or gym.make'd one).

    ``policy(obs) -> action`` acts unless the operator intervenes; with ``policy=None`` the
    operator drives alone. The executed action is the env action of the operator's reading
    while it is in control, as in the real graph.
    """
    u = env.unwrapped
    obs, info = env.reset(seed=seed)
    operator.reset(seed=None if seed is None else seed + 1_000_003)
    steps = inter_steps = inter = 0
    done = False
    while not done:
        if policy is None:
            action = operator.act_alone(u.model, u.data)
        else:
            a_pi = np.asarray(policy(obs), dtype=np.float64)
            out = operator.step(u.model, u.data, a_pi)
            action = operator.env_action(out.reading) if out.intervening else a_pi
            inter_steps += int(out.intervening)
            inter += int(out.started)
        obs, _, term, trunc, info = env.step(action.astype(np.float32))
        steps += 1
        done = term or trunc
    return EpisodeStats(bool(info["is_success"]), steps, inter_steps, inter)
