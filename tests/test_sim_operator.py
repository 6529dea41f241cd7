"""Simulated operator: skill presets' success rates, intervention rules, SpaceMouse output."""
from __future__ import annotations

import math

import numpy as np
import pytest

from robot_stack.sim.env import FrankaTaskEnv
from robot_stack.types.teleop import SpaceMouseReading
from robot_stack.sim.operator import (
    OperatorConfig,
    OperatorSkill,
    SimulatedOperator,
    rollout,
    skill_preset,
    value_rule_probability,
)

DEADZONE = 0.05


@pytest.fixture(scope="module")
def reach_env():
    env = FrankaTaskEnv("reach")
    yield env
    env.close()


@pytest.fixture(scope="module")
def peg_env():
    env = FrankaTaskEnv("peg_insertion")
    yield env
    env.close()


# Success-rate bands. Presets were calibrated on 200 episodes (benchmarks/operator_skill.py
# --alone-only: reach 0.89/0.48/0.20, peg 0.92/0.53/0.20).
# Here N = 40 episodes per preset: the binomial std is sqrt(p(1-p)/N) <= 0.079, so a band of
# +-0.2 around the target (2.5 sigma at p = 0.5, more at 0.9/0.2) plus the calibration's own
# +-0.05 would almost never fail for a correct preset, yet catches a preset off by a level
# (90/50/20 are 30-40 points apart); the ordering check makes the levels distinct.
N_EPISODES = 40
BANDS = {"expert_90": (0.72, 1.0), "expert_50": (0.28, 0.72), "expert_20": (0.03, 0.42)}


@pytest.mark.parametrize("task_env", ["reach_env", "peg_env"])
def test_preset_success_rates_in_bands(task_env, request):
    env = request.getfixturevalue(task_env)
    rates = {}
    for preset, (lo, hi) in BANDS.items():
        op = SimulatedOperator(env.task, OperatorConfig(skill=preset, strategy="always"))
        res = [rollout(env, op, None, seed=s) for s in range(N_EPISODES)]
        rates[preset] = float(np.mean([r.success for r in res]))
        assert lo <= rates[preset] <= hi, f"{env.task.name} {preset}: success {rates[preset]:.2f} not in [{lo}, {hi}]"
    assert rates["expert_90"] > rates["expert_50"] > rates["expert_20"]


def test_perfect_operator_always_succeeds(reach_env, peg_env):
    for env in (reach_env, peg_env):
        op = SimulatedOperator(env.task, OperatorConfig(skill="perfect", strategy="always"))
        assert all(rollout(env, op, None, seed=s).success for s in range(3)), env.task.name


def _manual_q(env, lin_m_s):
    """The documented TRUE reference value for reach: exp(-||p + v dt - g|| / L), g the real target."""
    t = env.task
    p = t.tool_pos(env.model, env.data) + np.asarray(lin_m_s) * t.control_period_s
    g = t.goal_position(env.model, env.data)
    return math.exp(-np.linalg.norm(p - g) / t.value_length_scale_m)


def test_value_rule_matches_formula_with_true_reference(reach_env):
    env = reach_env
    env.reset(seed=7)
    # A strongly biased operator: it acts on its belief but must judge with the true value.
    skill = OperatorSkill(belief_error_std_m=0.005, bias_m=(0.06, -0.04, 0.02))
    op = SimulatedOperator(env.task, OperatorConfig(custom_skill=skill, strategy="value", beta=0.9, hold_steps=1), seed=0)
    op.reset(seed=1)
    off = op.belief_offset_m
    assert np.linalg.norm(off) > 0.05
    t, m, d = env.task, env.model, env.data
    spec = t.action_spec
    a_exp = op.intended_action(m, d)
    np.testing.assert_allclose(a_exp, t.expert_action(m, d, off))  # acts on its (biased) belief
    a_true = t.expert_action(m, d)  # heads for the real target
    candidates = [a_exp, -a_exp, np.array([0.0, 0.0, 0.0]), np.array([1.0, -1.0, 0.5]), 0.9 * a_exp, a_true]
    for a_pi in candidates:
        out = op.step(m, d, a_pi)
        qp = _manual_q(env, spec.to_twist(a_pi)[0])
        qe = _manual_q(env, spec.to_twist(a_exp)[0])
        assert out.q_policy == pytest.approx(qp, rel=1e-9)
        assert out.q_expert == pytest.approx(qe, rel=1e-9)
        assert out.intervene_probability == (0.95 if qp < 0.9 * qe else 0.05)
        assert out.intervene_probability == value_rule_probability(qp, qe, 0.9, 0.95, 0.05)
    assert op.step(m, d, a_exp).intervene_probability == 0.05
    assert op.step(m, d, -a_exp).intervene_probability == 0.95


def test_policy_at_true_goal_is_left_alone_by_a_biased_operator(reach_env):
    """At the real target, holding still beats the operator's move towards its wrong belief."""
    env = reach_env
    env.reset(seed=8)
    t, m, d = env.task, env.model, env.data
    skill = OperatorSkill(bias_m=(0.04, 0.0, 0.0))
    op = SimulatedOperator(t, OperatorConfig(custom_skill=skill, strategy="value", hold_steps=1), seed=0)
    op.reset(seed=0)
    t.robot(m).set_tcp_pose(m, d, t.goal_position(m, d) + (t.robot(m).tcp_pos(d) - t.tool_pos(m, d)))
    env.controller.reset(d)
    a_exp = op.intended_action(m, d)
    assert np.linalg.norm(a_exp) > 0.1  # the operator itself would drive off the target
    out = op.step(m, d, np.zeros(3))
    assert out.q_policy > out.q_expert
    assert out.intervene_probability == 0.05


def test_bias_is_constant_across_episodes_and_noise_varies():
    from robot_stack.sim.tasks import make_task

    for task_name in ("reach", "peg_insertion"):
        task = make_task(task_name)
        skill = skill_preset(task_name, "expert_50")
        op = SimulatedOperator(task, OperatorConfig(skill="expert_50", strategy="always"), seed=0)
        offsets = []
        for s in range(400):
            op.reset(seed=s)
            offsets.append(op.belief_offset_m)
        offsets = np.array(offsets)
        axes = np.array([1.0, 1.0, 0.0]) if task_name == "peg_insertion" else np.ones(3)
        bias = np.asarray(skill.bias_m) * axes
        assert np.linalg.norm(bias) > 0
        # The mean offset is the bias (5 standard errors), the spread the per-episode noise.
        se = skill.belief_error_std_m / math.sqrt(len(offsets))
        np.testing.assert_allclose(offsets.mean(axis=0), bias, atol=5 * se)
        assert offsets[:, :2].std(axis=0) == pytest.approx([skill.belief_error_std_m] * 2, rel=0.2)
        if task_name == "peg_insertion":
            assert np.all(offsets[:, 2] == 0.0)
        # Noise is smaller than the bias: the systematic part dominates.
        assert skill.belief_error_std_m < np.linalg.norm(bias)


@pytest.mark.parametrize("which", ["worse", "fine"])
def test_value_rule_intervention_frequency(reach_env, which):
    env = reach_env
    env.reset(seed=11)
    op = SimulatedOperator(env.task, OperatorConfig(skill="perfect", strategy="value", hold_steps=1), seed=3)
    op.reset()
    a_exp = op.intended_action(env.model, env.data)
    a_pi = -a_exp if which == "worse" else a_exp
    n = 2000
    k = sum(op.step(env.model, env.data, a_pi).started for _ in range(n))
    p = 0.95 if which == "worse" else 0.05
    # 4.5 binomial standard deviations: fails for a wrong probability (0.05 vs 0.95 or 0.5).
    assert abs(k / n - p) < 4.5 * math.sqrt(p * (1 - p) / n)


def test_peg_value_rule_sees_board_blocking(peg_env):
    """Pushing down while misaligned is worth nothing more: the board stops the peg."""
    env = peg_env
    env.reset(seed=2)
    t, m, d = env.task, env.model, env.data
    r = t.robot(m)
    hole = t.hole_top_center(m, d)
    # Tip 2 cm beside the hole, resting on the board's top face.
    tcp = hole + np.array([0.02, 0.0, 0.0]) + (r.tcp_pos(d) - t.tool_pos(m, d))
    r.set_tcp_pose(m, d, tcp)
    q_down = t.reference_value(m, d, np.array([0.0, 0.0, -0.1]))
    q_stay = t.reference_value(m, d, np.zeros(3))
    q_align = t.reference_value(m, d, np.array([-0.1, 0.0, 0.0]))
    assert q_down == pytest.approx(q_stay, abs=1e-4)  # IK leaves the tip ~0.01 mm above the face
    assert q_align > q_stay


def test_action_distance_gate(reach_env):
    env = reach_env
    env.reset(seed=4)
    op = SimulatedOperator(env.task, OperatorConfig(skill="perfect", strategy="action_distance",
                                                    action_distance_threshold=0.5, hold_steps=1), seed=0)
    op.reset()
    a_exp = op.intended_action(env.model, env.data)
    assert not op.step(env.model, env.data, a_exp + np.array([0.3, 0.0, 0.0])).intervening
    assert op.step(env.model, env.data, a_exp + np.array([0.3, 0.3, 0.3])).intervening  # 0.52 > 0.5


def test_random_strategy_rate_and_hold_steps(reach_env):
    env = reach_env
    env.reset(seed=5)
    op = SimulatedOperator(env.task, OperatorConfig(skill="perfect", strategy="random", random_rate=0.3, hold_steps=4), seed=0)
    op.reset()
    flags, starts = [], []
    decisions = 0
    for _ in range(3000):
        holding_before = op.intervening
        out = op.step(env.model, env.data, np.zeros(3))
        decisions += int(not holding_before)
        flags.append(out.intervening)
        starts.append(out.started)
    # Every take-over lasts exactly hold_steps steps before the next decision.
    i = 0
    while i < len(flags):
        if starts[i]:
            assert flags[i:i + 4] == [True] * 4 and not any(starts[i + 1:i + 4])
            i += 4
        else:
            assert not flags[i]
            i += 1
    k = sum(starts)
    assert abs(k / decisions - 0.3) < 4.5 * math.sqrt(0.3 * 0.7 / decisions)


def test_readings_look_like_a_spacemouse(reach_env):
    env = reach_env
    env.reset(seed=6)
    t, m, d = env.task, env.model, env.data
    op = SimulatedOperator(t, OperatorConfig(skill="expert_50", strategy="random", random_rate=0.5), seed=0)
    op.reset(seed=0)
    # Put the TCP on the believed goal: the intended motion is ~0, yet control must show.
    r = t.robot(m)
    r.set_tcp_pose(m, d, t.goal_position(m, d) + op.belief_offset_m)
    env.controller.reset(d)
    seen_in, seen_out = 0, 0
    for _ in range(200):
        out = op.step(m, d, np.zeros(3))
        assert isinstance(out.reading, SpaceMouseReading)
        axes = np.asarray(out.reading.axes)
        assert axes.shape == (6,) and np.all(np.abs(axes) <= 1.0)
        if out.intervening:
            seen_in += 1
            assert np.max(np.abs(axes)) > DEADZONE
            a = op.env_action(out.reading)
            lin, _ = op.mapping.to_twist(out.reading)
            np.testing.assert_allclose(t.action_spec.to_twist(a)[0], lin, atol=1e-6)
        else:
            seen_out += 1
            assert np.all(axes == 0.0)
        env.step((op.env_action(out.reading) if out.intervening else np.zeros(3)).astype(np.float32))
    assert seen_in > 20 and seen_out > 20


def test_skill_presets_and_config_errors():
    for task_name in ("reach", "peg_insertion"):
        norms = [np.linalg.norm(skill_preset(task_name, p).bias_m) for p in ("expert_90", "expert_50", "expert_20")]
        assert norms[0] < norms[1] < norms[2]
    with pytest.raises(ValueError, match="unknown skill preset"):
        skill_preset("reach", "expert_75")
    with pytest.raises(ValueError, match="strategy"):
        OperatorConfig(strategy="sometimes")
    with pytest.raises(ValueError, match="hold_steps"):
        OperatorConfig(hold_steps=0)
