"""robot_stack.nodes.convert: messages <-> core types, validation of what comes in."""
from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest

pytest.importorskip("rclpy")
from robot_stack.nodes import convert  # noqa: E402
from robot_stack.types.records import EpisodeSummary, PolicyWeights, StepRecord  # noqa: E402
from robot_stack.types.spec import ActionSpec, CameraSpec, PolicySpec  # noqa: E402
from robot_stack.types.teleop import MARK_SUCCESS, OperatorCommand  # noqa: E402

SPEC = PolicySpec(cameras=(CameraSpec("wrist", 8, 8),), proprio_names=("tcp_x_m",), action=ActionSpec())


def actor_step(**kw):
    rng = np.random.default_rng(0)
    base = dict(episode_id=3, step_index=1, stamp_s=12.5,
                obs={"wrist": rng.integers(0, 255, (8, 8, 3), dtype=np.uint8), "proprio": np.array([0.4], np.float32)},
                image_stamps_s=[12.25], proprio_names=("tcp_x_m",),
                action=np.array([0.1, -0.2, 0.3], np.float32), policy_action=np.array([0.5, 0, 0], np.float32),
                intervention=True, image_frame_ids=["wrist_cam_optical"], policy_version=7)
    base.update(kw)
    return StepRecord(**base)


def test_step_roundtrip_keeps_everything():
    s = actor_step()
    msg = convert.step_to_msg(s, "base")
    assert msg.images[0].header.frame_id == "wrist_cam_optical"
    assert convert.stamp_to_s(msg.images[0].header.stamp) == pytest.approx(12.25)
    out = convert.step_from_msg(msg, SPEC)
    np.testing.assert_array_equal(out.obs["wrist"], s.images[0])
    np.testing.assert_allclose(out.action, s.action)
    np.testing.assert_allclose(out.policy_action, s.policy_action)
    assert out.intervention and out.policy_version == 7 and out.step_index == 1 and out.action is not None


@pytest.mark.parametrize("mutate,match", [
    (lambda m: setattr(m, "action", [float("nan"), 0.0, 0.0]), "not finite"),
    (lambda m: setattr(m, "action", [2.0, 0.0, 0.0]), r"within \[-1, 1\]"),
    (lambda m: setattr(m, "proprio", [0.1, 0.2]), "proprio_names"),
    (lambda m: setattr(m.images[0], "encoding", "yuv422"), "encoding"),
    (lambda m: setattr(m.images[0], "data", bytes(10)), "bytes"),
    (lambda m: setattr(m, "camera_names", ["front"]), "cameras"),
])
def test_bad_step_records_are_rejected_with_reason(mutate, match):
    msg = convert.step_to_msg(actor_step())
    mutate(msg)
    with pytest.raises(ValueError, match=match):
        convert.step_from_msg(msg, SPEC)


def test_image_encodings_and_row_padding():
    rgb = np.arange(4 * 5 * 3, dtype=np.uint8).reshape(4, 5, 3)
    msg = convert.image_to_msg(rgb, 1.0)
    assert convert.image_from_msg(msg).base is not None  # a view, not a copy
    np.testing.assert_array_equal(convert.image_from_msg(msg), rgb)
    bgr = convert.image_to_msg(np.ascontiguousarray(rgb[:, :, ::-1]), 1.0, encoding="bgr8")
    np.testing.assert_array_equal(convert.image_from_msg(bgr), rgb)
    padded = convert.image_to_msg(rgb, 1.0)
    padded.step = 16
    padded.data = np.concatenate([rgb.reshape(4, 15), np.zeros((4, 1), np.uint8)], axis=1).tobytes()
    np.testing.assert_array_equal(convert.image_from_msg(padded), rgb)


def test_weights_sha_and_spec_json_are_checked():
    spec_json = json.dumps({"format": "torch_state_dict", "policy_spec": SPEC.to_dict(), "network": {}})
    w = PolicyWeights(version=2, learner_step=5, env_steps=9, spec_json=spec_json, data=b"\x01\x02")
    msg = convert.weights_to_msg(w)
    assert msg.sha256 == hashlib.sha256(b"\x01\x02").hexdigest()
    assert convert.weights_from_msg(msg).data == b"\x01\x02"
    msg.data = b"\x01\x03"
    with pytest.raises(ValueError, match="SHA-256 mismatch"):
        convert.weights_from_msg(msg)
    for bad in ("{}", "[", json.dumps({"format": "torch_state_dict", "policy_spec": [], "network": {}})):
        msg = convert.weights_to_msg(PolicyWeights(version=2, learner_step=5, env_steps=9, spec_json=bad, data=b"x"))
        with pytest.raises(ValueError, match="spec"):
            convert.weights_from_msg(msg)


def test_summary_and_operator_roundtrip():
    s = EpisodeSummary(stamp_s=3.0, episode_id=4, steps=10, intervention_steps=2, interventions=1,
                       intervention_rate=0.2, success=True, truncated=False, window=3, success_rate=0.5,
                       intervention_rate_window=0.1, policy_version=6, evaluation=False)
    back = convert.summary_from_msg(convert.summary_to_msg(s))
    assert back.episode_id == 4 and back.success and back.intervention_rate == pytest.approx(0.2)
    c = OperatorCommand(t=5.0, intervening=True, lin_m_s=np.array([0.01, 0.02, 0.03]), gripper=1,
                        episode_mark=MARK_SUCCESS)
    b = convert.operator_from_msg(convert.operator_to_msg(c))
    np.testing.assert_allclose(b.lin_m_s, c.lin_m_s)
    assert b.intervening and b.gripper == 1 and b.episode_mark == MARK_SUCCESS
    bad = convert.operator_to_msg(c)
    bad.twist.linear.x = float("inf")
    with pytest.raises(ValueError, match="not finite"):
        convert.operator_from_msg(bad)


# ----------------------------------------------------------------------------- status messages and services
def test_franka_status_round_trip_and_bad_counters():
    from robot_stack.types.status import FrankaStatus

    s = FrankaStatus("home_done", "target xyz=[0.5, 0.0, 0.35] reached", "streaming", {"box_clamp": 2, "watchdog_stop": 1}, 12.5)
    assert convert.franka_status_from_msg(convert.franka_status_to_msg(s)) == s
    msg = convert.franka_status_to_msg(s)
    msg.counter_values = [1]
    with pytest.raises(ValueError, match="counter"):
        convert.franka_status_from_msg(msg)


def test_learner_stats_from_the_core_dict_and_round_trip():
    from robot_stack.types.status import LearnerStats

    core_stats = {"env_steps": 40, "transitions": 38, "buffer": 38, "intervention_buffer": 5, "updates": 12,
                  "updates_per_s": 2.5, "update_backlog": 1, "policy_version": 3, "episodes": 2, "success_rate": 0.5,
                  "intervention_rate": 0.25, "dropped_steps": 0, "rejected_steps": 1, "checkpoints": 1,
                  "critic_loss": 0.75, "alpha": 0.1}
    st = LearnerStats.from_dict(core_stats, stamp_s=3.0)
    assert st.updates == 12 and st.updates_per_s == 2.5 and st.metrics == {"checkpoints": 1.0, "critic_loss": 0.75, "alpha": 0.1}
    back = convert.learner_stats_from_msg(convert.learner_stats_to_msg(st))
    assert back == st and back.as_dict() == {k: float(v) if isinstance(v, float) else v for k, v in core_stats.items()}


def test_fleet_learner_stats_keep_every_robot_row():
    from robot_stack.rl.fleet import Fleet
    from robot_stack.types.records import StepRecord
    from robot_stack.types.status import LearnerStats

    clock = [10.0]
    fleet = Fleet(clock=lambda: clock[0])
    for rid, n in (("arm2", 3), ("arm1", 5)):
        for i in range(n + 1):
            fleet.push(rid, StepRecord(episode_id=0, step_index=i, obs={"proprio": np.zeros(1, np.float32)},
                                       action=np.zeros(1, np.float32), intervention=i == 1, is_first=i == 0,
                                       is_last=i == n))
    fleet.robot("arm3")  # known, no record yet
    clock[0] = 11.5
    rows = fleet.stats(active_within_s=1.0)
    st = LearnerStats.from_dict({"env_steps": 8, "robots_active": 0, "robots": rows}, stamp_s=11.5)
    assert [r.robot_id for r in st.robots] == ["arm1", "arm2", "arm3"]
    back = convert.learner_stats_from_msg(convert.learner_stats_to_msg(st))
    assert back == st and back.metrics == {"robots_active": 0.0}
    assert back.robots_dict()["arm1"] == {k: v for k, v in rows["arm1"].items()}
    assert back.robots_dict()["arm3"]["last_record_age_s"] is None and not back.robots_dict()["arm3"]["active"]


def test_diagnostics_and_service_helpers():
    from robot_stack.srv import HomeTo
    from robot_stack.types.status import Health

    h = Health("/arm1/franka", Health.ERROR, "gave_up; last event recovery_gave_up", "franky:172.16.0.2", {"mode": "gave_up"})
    msg = convert.diagnostics_to_msg([h], 5.0)
    assert msg.status[0].level == b"\x02" and convert.diagnostics_from_msg(msg) == [h]
    req = convert.home_to_request((0.5, 0.1, 0.3), (1.0, 0.0, 0.0, 0.0), 1.0, "base")
    pose = convert.home_to_target(req)
    assert np.allclose(pose.xyz_m, [0.5, 0.1, 0.3]) and pose.frame_id == "base"
    assert convert.result_from_response(convert.fill_result(HomeTo.Response(), False, "outside the box")) == (False, "outside the box")
    assert convert.reset_episode_id(convert.reset_request(7)) == 7
