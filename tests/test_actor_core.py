"""ActorCore (ROS-free): observation assembly, arbitration, episodes, step records, stats."""
from __future__ import annotations

import numpy as np
import pytest

from robot_stack.actor.core import ActorConfig, ActorCore, Phase
from robot_stack.rl.progress import EpisodeStats
from robot_stack.types.spec import ActionSpec, CameraSpec, PolicySpec
from robot_stack.types.teleop import MARK_FAILURE, MARK_NONE, MARK_SUCCESS, OperatorCommand

PERIOD = 0.1
SPEC = PolicySpec(
    cameras=(CameraSpec("wrist", 16, 16),),
    proprio_names=("tcp_x_m", "tcp_y_m", "tcp_z_m", "tcp_qw", "tcp_vx_m_s", "gripper_width_m"),
    action=ActionSpec(names=("vx", "vy", "vz"), max_lin_speed_m_s=0.1),
)


class ConstPolicy:
    def __init__(self, action):
        self.action = np.asarray(action, np.float32)
        self.calls = []

    def act(self, obs, deterministic):
        self.calls.append((obs, deterministic))
        return self.action.copy()


def make(policy=None, **cfg):
    cfg.setdefault("max_episode_steps", 5)
    core = ActorCore(ActorConfig(**cfg), SPEC, policy or ConstPolicy([0.5, 0.0, -0.5]))
    return core


def feed(core, t, frame_t=None, state_t=None, value=0):
    frame_t = t if frame_t is None else frame_t
    state_t = t if state_t is None else state_t
    core.on_camera_frame("wrist", np.full((32, 32, 3), value, np.uint8), frame_t)
    core.on_ee_pose([0.4, 0.0, 0.3], [0, 0, 0, 1], state_t)
    core.on_ee_twist([0.01, 0, 0], [0, 0, 0], state_t)
    core.on_gripper_width(0.08, state_t)


def start(core, t=0.0):
    """Tick through the initial reset; returns the reset request id."""
    feed(core, t)
    r = core.tick(t)
    assert r.reset_request == core.episode_id and r.command is None
    core.on_reset_done(core.episode_id, t)
    return r.reset_request


def op(intervening, lin=(0.0, 0.0, 0.0), mark=MARK_NONE, t=0.0):
    return OperatorCommand(t=t, intervening=intervening, lin_m_s=np.asarray(lin, float), episode_mark=mark)


def test_first_episode_waits_for_reset_done_then_runs_policy():
    core = make()
    feed(core, 0.0)
    r = core.tick(0.0)
    assert r.reset_request == 1 and r.command is None and core.phase is Phase.RESETTING
    core.on_reset_done(99, 0.05)  # another episode's answer does not count
    feed(core, 0.1)
    assert core.tick(0.1).command is None
    core.on_reset_done(1, 0.15)
    feed(core, 0.2)
    r = core.tick(0.2)
    assert core.phase is Phase.RUNNING
    assert r.command.source == "policy"
    np.testing.assert_allclose(r.command.lin_m_s, [0.05, 0.0, -0.05])


def test_observation_layout_resized_and_proprio_named():
    pol = ConstPolicy([0, 0, 0])
    core = make(pol)
    start(core)
    feed(core, 0.1)
    core.tick(0.1)
    obs, det = pol.calls[-1]
    assert obs["wrist"].shape == (16, 16, 3) and obs["wrist"].dtype == np.uint8
    np.testing.assert_allclose(obs["proprio"], [0.4, 0.0, 0.3, 1.0, 0.01, 0.08], rtol=1e-6)
    assert det is False
    SPEC.check_observation(obs)


@pytest.mark.parametrize("stale", ["frame", "state"])
def test_stale_inputs_are_refused_and_robot_holds(stale):
    pol = ConstPolicy([1, 1, 1])
    core = make(pol, max_frame_age_s=0.2, max_state_age_s=0.2)
    start(core)
    t = 1.0
    feed(core, t, frame_t=t - 0.5 if stale == "frame" else t, state_t=t - 0.5 if stale == "state" else t)
    n_calls = len(pol.calls)
    r = core.tick(t)
    assert r.refused is not None and ("old" in r.refused)
    assert r.command.source == "hold" and not r.command.lin_m_s.any()
    assert r.steps == [] and len(pol.calls) == n_calls  # no step, no policy query
    feed(core, t + 0.1)
    assert core.tick(t + 0.1).refused is None


def test_missing_camera_is_refused():
    core = make()
    core.on_ee_pose([0, 0, 0], [0, 0, 0, 1], 0.0)
    core.on_ee_twist([0, 0, 0], [0, 0, 0], 0.0)
    core.tick(0.0)
    core.on_reset_done(1, 0.0)
    r = core.tick(0.05)
    assert "no frame from camera 'wrist'" in r.refused


def test_operator_command_passes_through_immediately_and_release_holds():
    core = make()
    start(core)
    feed(core, 0.1)
    assert core.tick(0.1).command.source == "policy"
    # Between ticks: the operator's command goes out at once, not at the next tick.
    cmd = core.on_operator_command(op(True, lin=(0.0, 0.05, 0.0)), 0.12)
    assert cmd is not None and cmd.source == "operator"
    np.testing.assert_allclose(cmd.lin_m_s, [0.0, 0.05, 0.0])
    cmd2 = core.on_operator_command(op(True, lin=(0.0, 0.0, 0.02)), 0.14)
    np.testing.assert_allclose(cmd2.lin_m_s, [0.0, 0.0, 0.02])
    # The next tick keeps the operator in control (policy still queried for policy_action).
    feed(core, 0.2)
    r = core.tick(0.2)
    assert r.command.source == "operator"
    np.testing.assert_allclose(r.command.lin_m_s, [0.0, 0.0, 0.02])
    release = core.on_operator_command(op(False), 0.25)
    assert release.source == "hold" and not release.lin_m_s.any()
    assert core.on_operator_command(op(False), 0.26) is None  # nothing more to send


def test_operator_command_is_projected_to_action_bounds():
    core = make()
    start(core)
    feed(core, 0.1)
    core.tick(0.1)
    cmd = core.on_operator_command(op(True, lin=(0.5, 0.0, 0.0)), 0.11)  # 5x the max speed
    np.testing.assert_allclose(cmd.lin_m_s, [0.1, 0.0, 0.0])


def test_step_records_carry_intervention_flags_and_executed_actions():
    core = make(ConstPolicy([0.5, 0.0, 0.0]))
    start(core)
    feed(core, 0.1)
    core.tick(0.1)  # step 0 starts: policy
    # Takeover late in step 0 (at 80 %): step 0 stays a policy step.
    core.on_operator_command(op(True, lin=(0.0, 0.1, 0.0)), 0.18)
    feed(core, 0.2)
    r1 = core.tick(0.2)  # finishes step 0, starts step 1 (operator in control)
    (s0,) = r1.steps
    assert s0.step_index == 0 and s0.is_first and not s0.intervention
    np.testing.assert_allclose(s0.policy_action, [0.5, 0.0, 0.0])
    np.testing.assert_allclose(s0.action, [0.4, 0.2, 0.0], atol=1e-5)  # time-weighted mean
    feed(core, 0.3)
    (s1,) = core.tick(0.3).steps
    assert s1.intervention and not s1.is_first
    np.testing.assert_allclose(s1.action, [0.0, 1.0, 0.0], atol=1e-6)
    np.testing.assert_allclose(s1.policy_action, [0.5, 0.0, 0.0])


def test_operator_timeout_returns_control_to_policy():
    core = make(operator_timeout_s=0.3)
    start(core)
    core.on_operator_command(op(True, lin=(0.0, 0.1, 0.0)), 0.05)
    feed(core, 0.1)
    assert core.tick(0.1).command.source == "operator"
    feed(core, 1.0)
    assert core.tick(1.0).command.source == "policy"


def test_time_limit_is_a_truncation_with_final_record_and_reset():
    core = make(max_episode_steps=3)
    start(core)
    steps = []
    summary = None
    reset = None
    for k in range(1, 6):
        t = 0.1 * k
        feed(core, t)
        r = core.tick(t)
        steps += r.steps
        if r.summary:
            summary, reset = r.summary, r.reset_request
            assert r.command.source == "hold"
            break
    assert [s.step_index for s in steps] == [0, 1, 2, 3]
    last = steps[-1]
    assert last.is_last and not last.is_terminal and not last.success and last.action.size == 0
    assert all(s.action.shape == (3,) for s in steps[:-1])
    assert summary.truncated and not summary.success and summary.steps == 3
    assert reset == 2 and core.episode_id == 2 and core.phase is Phase.RESETTING


@pytest.mark.parametrize("how", ["mark_success", "mark_failure", "sim_success"])
def test_success_and_failure_end_as_terminal(how):
    core = make(max_episode_steps=50)
    start(core)
    feed(core, 0.1)
    core.tick(0.1)
    if how == "sim_success":
        core.on_sim_success(True, 0.15)
    else:
        core.on_operator_command(op(False, mark=MARK_SUCCESS if how == "mark_success" else MARK_FAILURE), 0.15)
    feed(core, 0.2)
    r = core.tick(0.2)
    last = r.steps[-1]
    expect_success = how != "mark_failure"
    assert last.is_last and last.is_terminal and last.success is expect_success
    assert r.summary.success is expect_success and not r.summary.truncated


def test_sim_success_before_first_step_does_not_end_episode():
    core = make()
    start(core)
    core.on_sim_success(True, 0.05)
    feed(core, 0.1)
    r = core.tick(0.1)
    assert r.summary is None and r.command.source == "policy"


def test_held_mark_button_ends_only_one_episode():
    core = make(max_episode_steps=50)
    start(core)
    feed(core, 0.1)
    core.tick(0.1)
    core.on_operator_command(op(False, mark=MARK_SUCCESS), 0.15)
    feed(core, 0.2)
    assert core.tick(0.2).summary is not None
    core.on_reset_done(core.episode_id, 0.25)
    core.on_operator_command(op(False, mark=MARK_SUCCESS), 0.26)  # still held: no new edge
    for k in range(3, 6):
        feed(core, 0.1 * k)
        assert core.tick(0.1 * k).summary is None


def test_nan_policy_action_is_never_sent():
    core = make(ConstPolicy([np.nan, 0.0, 0.0]))
    start(core)
    feed(core, 0.1)
    r = core.tick(0.1)
    assert r.policy_error and "not finite" in r.policy_error
    assert r.command.source == "hold" and np.all(r.command.lin_m_s == 0)
    feed(core, 0.2)
    (s,) = core.tick(0.2).steps
    assert np.all(np.isfinite(s.action)) and np.all(np.isfinite(s.policy_action))


def test_wrong_shape_policy_action_is_rejected():
    core = make(ConstPolicy([0.1, 0.2]))
    start(core)
    feed(core, 0.1)
    r = core.tick(0.1)
    assert "shape" in r.policy_error and r.command.source == "hold"


def test_policy_swap_only_newer_versions_apply():
    a, b, c = ConstPolicy([0.1, 0, 0]), ConstPolicy([0.2, 0, 0]), ConstPolicy([0.3, 0, 0])
    core = make(a)
    assert core.set_policy(b, 2)
    assert not core.set_policy(c, 1)  # older than the running one
    assert not core.set_policy(c, 2)
    start(core)
    feed(core, 0.1)
    r = core.tick(0.1)
    np.testing.assert_allclose(r.command.lin_m_s[0], 0.02)
    feed(core, 0.2)
    assert core.tick(0.2).steps[0].policy_version == 2


def test_rolling_stats_over_window():
    stats = EpisodeStats(window=2)
    stats.add(True, 10, 5)
    stats.add(False, 10, 0)
    stats.add(True, 20, 2)  # pushes the first episode out
    assert stats.success_rate == pytest.approx(0.5)
    assert stats.intervention_rate == pytest.approx(2 / 30)
    assert stats.total_episodes == 3


def test_summary_counts_interventions():
    core = make(max_episode_steps=4)
    start(core)
    schedule = {1: True, 2: False, 3: True}  # operator in control for steps 1 and 3
    summary = None
    for k in range(0, 6):
        t = 0.1 * (k + 1)
        if k in schedule:
            core.on_operator_command(op(schedule[k], lin=(0.0, 0.05, 0.0)), t - 0.001)
        feed(core, t)
        r = core.tick(t)
        if r.summary:
            summary = r.summary
            break
    assert summary.steps == 4
    assert summary.intervention_steps == 2 and summary.interventions == 2
    assert summary.intervention_rate == pytest.approx(0.5)
    assert summary.window == 1 and summary.intervention_rate_window == pytest.approx(0.5)


def test_no_wait_for_reset_starts_at_once():
    core = make(wait_for_reset_done=False)
    feed(core, 0.0)
    r = core.tick(0.0)
    assert r.reset_request == 1 and r.command.source == "policy"


def test_reset_request_is_resent_after_timeout():
    core = make(reset_timeout_s=1.0)
    feed(core, 0.0)
    assert core.tick(0.0).reset_request == 1
    assert core.tick(0.5).reset_request is None
    assert core.tick(1.6).reset_request == 1


def test_bad_config_and_spec_are_rejected_with_names():
    with pytest.raises(ValueError, match="control_rate_hz"):
        ActorConfig(control_rate_hz=0.0).validate()
    bad = PolicySpec(proprio_names=("joint_angle_3",))
    with pytest.raises(ValueError, match="joint_angle_3"):
        ActorCore(ActorConfig(), bad, ConstPolicy([0, 0, 0]))


def test_sim_task_state_fills_its_proprio_entries_and_goes_stale_like_the_robot_state():
    spec = PolicySpec(cameras=(), proprio_names=("tcp_x_m", "goal_x_m", "goal_minus_tool_z_m"),
                      action=ActionSpec(names=("vx", "vy", "vz")))
    pol = ConstPolicy([0.1, 0.2, 0.3])
    core = ActorCore(ActorConfig(max_episode_steps=5), spec, pol)
    core.on_ee_pose([0.4, 0.0, 0.3], [0, 0, 0, 1], 0.0)
    core.on_ee_twist([0, 0, 0], [0, 0, 0], 0.0)
    r = core.tick(0.0)
    core.on_reset_done(r.reset_request, 0.0)
    r = core.tick(0.0)
    assert r.refused == "no task state received yet" and r.policy_action is None
    core.on_task_state([0.6, 0.1, 0.2, 0.2, 0.1, -0.05], 0.0)
    r = core.tick(0.0)
    np.testing.assert_allclose(pol.calls[-1][0]["proprio"], [0.4, 0.6, -0.05], rtol=1e-6)
    np.testing.assert_allclose(r.policy_action, [0.1, 0.2, 0.3])  # the proposal a sim operator judges
    core.on_ee_pose([0.4, 0.0, 0.3], [0, 0, 0, 1], 1.0)
    core.on_ee_twist([0, 0, 0], [0, 0, 0], 1.0)
    assert "task state is" in core.tick(1.0).refused  # 1 s old: refused
