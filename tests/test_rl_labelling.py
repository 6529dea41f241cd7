"""RLIF reward labelling on hand-built step sequences."""
import numpy as np
import pytest

from robot_stack.rl.labelling import LabellingConfig, StreamingLabeller, label_steps
from robot_stack.types.records import StepRecord


def episode(flags: str, ep: int = 0, terminal: bool = False, last_flag: str = "P") -> list[StepRecord]:
    """flags: one char per acting step, 'P' policy or 'I' intervention; plus a final is_last record."""
    steps = []
    for i, f in enumerate(flags):
        steps.append(StepRecord(episode_id=ep, step_index=i, obs={"proprio": np.array([i], np.float32)},
                          action=np.array([0.1 * i], np.float32), policy_action=np.zeros(1, np.float32),
                          intervention=f == "I", is_first=i == 0))
    steps.append(StepRecord(episode_id=ep, step_index=len(flags), obs={"proprio": np.array([len(flags)], np.float32)},
                      intervention=last_flag == "I", is_last=True, is_terminal=terminal, success=terminal))
    return steps


def rewards(steps, **kw):
    return [t.reward for t in label_steps(steps, LabellingConfig(**kw))]


def test_onset_penalizes_only_the_policy_step_before_takeover():
    assert rewards(episode("PPPIIP")) == [0, 0, -1, 0, 0, 0]


def test_back_to_back_interventions_each_penalize_their_onset():
    assert rewards(episode("PIPIIPI")) == [-1, 0, -1, 0, 0, -1, 0]


def test_intervention_at_first_step_has_no_policy_step_to_blame():
    assert rewards(episode("IIPP")) == [0, 0, 0, 0]


def test_intervention_on_last_record_penalizes_the_last_policy_step():
    assert rewards(episode("PPP", last_flag="I")) == [0, 0, -1]


def test_episode_ending_during_intervention_keeps_operator_steps_and_terminal_flag():
    ts = list(label_steps(episode("PPII", terminal=True, last_flag="I")))
    assert [t.reward for t in ts] == [0, -1, 0, 0]
    assert [t.intervention for t in ts] == [False, False, True, True]
    assert [t.terminal for t in ts] == [False, False, False, True]
    assert ts[-1].episode_end


def test_episode_is_not_cut_at_intervention_and_next_obs_chain_is_continuous():
    ts = list(label_steps(episode("PPIIP")))
    assert not any(t.terminal for t in ts)
    for a, b in zip(ts, ts[1:]):
        assert a.next_obs is b.obs


def test_time_limit_end_is_truncation_not_terminal():
    ts = list(label_steps(episode("PPP", terminal=False)))
    assert not ts[-1].terminal and ts[-1].episode_end


def test_penalty_value_and_dropping_operator_steps_are_options():
    assert rewards(episode("PIIP"), intervention_penalty=-5.0) == [-5, 0, 0, 0]
    ts = list(label_steps(episode("PIIP"), LabellingConfig(store_intervention_steps=False)))
    assert [t.step_index for t in ts] == [0, 3] and ts[0].reward == -1


def test_streaming_emits_transition_t_when_record_t_plus_1_arrives():
    lab = StreamingLabeller()
    steps = episode("PI") + episode("P", ep=1)
    emitted = [len(lab.push(s)) for s in steps]
    assert emitted == [0, 1, 1, 0, 1]


def test_streaming_drops_a_step_whose_episode_was_cut_without_is_last():
    lab = StreamingLabeller()
    a = episode("PPP")[:2]  # no is_last
    out = [t for s in a + episode("PP", ep=1) for t in lab.push(s)]
    assert [(t.episode_id, t.step_index) for t in out] == [(0, 0), (1, 0), (1, 1)]
    assert lab.dropped_steps == 1


def test_positive_penalty_is_rejected_with_a_clear_error():
    with pytest.raises(ValueError, match="intervention_penalty"):
        LabellingConfig(intervention_penalty=1.0).validate()
