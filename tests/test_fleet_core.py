"""Several robots, one learner (ROS-free): per-robot labelling, robot ids in the replay buffer
and its log, sampling across robots, per-robot stats and resume."""
from __future__ import annotations

import struct
import zlib

import numpy as np
import pytest

from robot_stack.rl.fleet import Fleet, check_robot_id, robot_id_from_topic, robot_topic
from robot_stack.rl.labelling import Transition
from robot_stack.rl.replay_buffer import VisionReplayBuffer, sample_mixed
from robot_stack.types.records import StepRecord
from robot_stack.types.spec import ActionSpec, CameraSpec, PolicySpec

SPEC = PolicySpec(cameras=(CameraSpec("front", 32, 32),), proprio_names=("robot", "ep", "i"), action=ActionSpec())
ROBOT_CODE = {"arm1": 1, "arm2": 2, "": 0, "lab/arm3": 3}


def obs(robot: str, ep: int, i: int) -> dict:
    """An observation whose content says (robot, episode, step)."""
    r = ROBOT_CODE[robot]
    return {"front": np.full((32, 32, 3), (r * 50 + ep * 7 + i) % 256, np.uint8),
            "proprio": np.array([r, ep, i], np.float32)}


def records(robot: str, ep: int, n: int, intervene_at=(), success=False):
    for i in range(n + 1):
        last = i == n
        a = None if last else np.array([ROBOT_CODE[robot] / 10, ep / 10, i / 100], np.float32)
        yield StepRecord(episode_id=ep, step_index=i, obs=obs(robot, ep, i), action=a, policy_action=a,
                         intervention=i in intervene_at, is_first=i == 0, is_last=last, success=last and success)


def interleave(*streams):
    streams = [iter(s) for s in streams]
    while streams:
        for s in list(streams):
            try:
                yield next(s)
            except StopIteration:
                streams.remove(s)


def transitions(robot: str, ep: int, n: int):
    for i in range(n):
        yield Transition(obs=obs(robot, ep, i), action=np.array([ROBOT_CODE[robot], ep, i], np.float32),
                         reward=0.0, next_obs=obs(robot, ep, i + 1), terminal=False, intervention=i % 2 == 0,
                         episode_id=ep, step_index=i, episode_end=i == n - 1, robot_id=robot)


def assert_aligned(b):
    """obs and next_obs of every sampled transition are consecutive steps of one robot's episode."""
    code = np.array([ROBOT_CODE[r] for r in b["robot"]], np.float32)
    np.testing.assert_array_equal(b["action"][:, 0], code)
    np.testing.assert_array_equal(b["obs"]["proprio"][:, 0], code)
    np.testing.assert_array_equal(b["next_obs"]["proprio"][:, 0], code)
    np.testing.assert_array_equal(b["obs"]["proprio"][:, 1], b["action"][:, 1])
    np.testing.assert_array_equal(b["obs"]["proprio"][:, 2], b["action"][:, 2])
    np.testing.assert_array_equal(b["next_obs"]["proprio"][:, 1], b["action"][:, 1])
    np.testing.assert_array_equal(b["next_obs"]["proprio"][:, 2], b["action"][:, 2] + 1)
    np.testing.assert_array_equal(b["next_obs"]["front"][:, 0, 0, 0],
                                  ((code * 50 + b["action"][:, 1] * 7 + b["action"][:, 2] + 1) % 256).astype(np.uint8))


# ----------------------------------------------------------------------------- ids
def test_robot_ids_are_ros_namespaces_and_come_from_topic_names():
    assert check_robot_id("/arm1/") == "arm1" and check_robot_id("lab/arm_2") == "lab/arm_2"
    assert check_robot_id("") == ""
    for bad in ("1arm", "arm-1", "arm 1", "a//b"):
        with pytest.raises(ValueError, match="not a ROS namespace"):
            check_robot_id(bad)
    assert robot_id_from_topic("/arm1/steps") == "arm1"
    assert robot_id_from_topic("/lab/arm2/steps") == "lab/arm2"
    assert robot_id_from_topic("/steps") == ""
    assert robot_id_from_topic("/arm1/episodes") is None
    assert robot_topic("arm1") == "/arm1/steps" and robot_topic("") == "/steps"


# ----------------------------------------------------------------------------- labelling
def test_interleaved_robots_with_the_same_episode_ids_are_labelled_separately():
    fleet = Fleet(stats_window=5)
    out: list[Transition] = []
    # Same episode id 7 on both robots, records alternate; each robot's operator takes over at
    # a different step, so a cross-robot pairing would misplace the penalty.
    for robot, step in interleave((("arm1", s) for s in records("arm1", 7, 6, intervene_at=(2,), success=True)),
                                  (("arm2", s) for s in records("arm2", 7, 4, intervene_at=(3,)))):
        out += fleet.push(robot, step)
    by_robot = {r: [t for t in out if t.robot_id == r] for r in ("arm1", "arm2")}
    assert len(by_robot["arm1"]) == 6 and len(by_robot["arm2"]) == 4 and len(out) == 10
    for r, ts in by_robot.items():
        code = ROBOT_CODE[r]
        assert all(t.obs["proprio"][0] == code and t.next_obs["proprio"][0] == code for t in ts)
        assert [int(t.next_obs["proprio"][2] - t.obs["proprio"][2]) for t in ts] == [1] * len(ts)
    assert [t.reward for t in by_robot["arm1"]] == [0, -1, 0, 0, 0, 0]  # step 1 provoked the takeover at 2
    assert [t.reward for t in by_robot["arm2"]] == [0, 0, -1, 0]
    assert fleet.dropped_steps == 0
    st = fleet.stats()
    assert st["arm1"]["env_steps"] == 6 and st["arm1"]["episodes"] == 1 and st["arm1"]["success_rate"] == 1.0
    assert st["arm2"]["records"] == 5 and st["arm2"]["success_rate"] == 0.0
    assert st["arm1"]["intervention_rate"] == pytest.approx(1 / 6)
    assert st["arm2"]["intervention_rate"] == pytest.approx(1 / 4)
    assert fleet.episode_stats.success_rate == 0.5 and fleet.episodes == 2


def test_a_gap_in_one_robots_stream_drops_only_that_robots_step():
    fleet = Fleet()
    a = list(records("arm1", 1, 5))
    b = list(records("arm2", 1, 5))
    got = []
    for k in range(6):
        if k != 3:  # arm1's record 3 is lost
            got += fleet.push("arm1", a[k])
        got += fleet.push("arm2", b[k])
    assert fleet.stats()["arm1"]["dropped_steps"] == 1 and fleet.stats()["arm2"]["dropped_steps"] == 0
    assert sum(t.robot_id == "arm2" for t in got) == 5
    assert sorted(t.step_index for t in got if t.robot_id == "arm1") == [0, 1, 4]  # 2 lost its successor


# ----------------------------------------------------------------------------- replay buffer
def test_interleaved_robots_share_frames_within_their_own_stream_and_sample_aligned():
    length = 20
    buf = VisionReplayBuffer(SPEC, capacity=3 * (length + 1) * 5 + 7)  # wraps mid-episode
    for ep in range(12):
        for t in interleave(transitions("arm1", ep, length), transitions("arm2", ep, length),
                            transitions("lab/arm3", ep, length - 5)):
            buf.add(t)
    # Each robot's next_obs is the next transition's obs: (T+1)/T slots per transition, not 2.
    assert buf._writes <= 12 * (2 * (length + 1) + (length - 4))
    b = buf.sample(3000, np.random.default_rng(0))
    assert set(b["robot"]) == {"arm1", "arm2", "lab/arm3"}
    assert_aligned(b)
    assert buf.robot_counts().keys() == {"arm1", "arm2", "lab/arm3"}


def test_episode_ids_that_coincide_across_robots_never_share_a_frame():
    buf = VisionReplayBuffer(SPEC, capacity=64)
    a, b = list(transitions("arm1", 3, 4)), list(transitions("arm2", 3, 4))
    buf.add(a[0])
    buf.add(b[1])  # arm2's step 1 of episode 3 follows arm1's step 0 of episode 3: not a continuation
    buf.add(a[1])
    batch = buf.sample(200, np.random.default_rng(1))
    assert_aligned(batch)


def test_a_tiny_ring_never_continues_from_an_overwritten_frame():
    buf = VisionReplayBuffer(SPEC, capacity=5)
    streams = [transitions(r, 0, 30) for r in ("arm1", "arm2", "lab/arm3")]
    for t in interleave(*streams):
        buf.add(t)
        if len(buf):
            assert_aligned(buf.sample(50, np.random.default_rng(0)))
    # One robot's frame overwritten by a burst of another's while the cursor is elsewhere.
    a, b = transitions("arm1", 1, 3), transitions("arm2", 1, 30)
    for burst in (6, 7, 8):
        buf.add(next(a))
        assert_aligned(buf.sample(50, np.random.default_rng(burst)))
        for _ in range(burst):
            buf.add(next(b))
        assert_aligned(buf.sample(50, np.random.default_rng(burst)))


def test_balanced_sampling_gives_each_robot_an_equal_share():
    buf = VisionReplayBuffer(SPEC, capacity=2000)
    for ep in range(9):
        for t in transitions("arm1", ep, 20):
            buf.add(t)
    for t in transitions("arm2", 0, 20):
        buf.add(t)
    rng = np.random.default_rng(0)
    uniform = buf.sample(4000, rng)
    balanced = buf.sample(4000, rng, balance_robots=True)
    assert 0.05 < np.mean(uniform["robot"] == "arm2") < 0.15  # 10% of the data
    assert 0.45 < np.mean(balanced["robot"] == "arm2") < 0.55
    assert_aligned(balanced)
    offline = VisionReplayBuffer(SPEC, capacity=100)
    for t in transitions("arm2", 5, 10):
        offline.add(t)
    mixed = sample_mixed(buf, offline, 64, rng, 0.5, balance_robots=True)
    assert len(mixed["robot"]) == 64
    assert_aligned(mixed)


def test_robot_ids_survive_the_log_and_old_logs_restore_as_the_single_robot(tmp_path):
    path = tmp_path / "log.bin"
    with VisionReplayBuffer(SPEC, 500, path, sync="flush") as buf:
        for t in interleave(transitions("arm1", 0, 8), transitions("arm2", 0, 8), transitions("", 1, 4)):
            buf.add(t)
    with VisionReplayBuffer(SPEC, 500, path) as back:
        assert back.robot_counts() == {"arm1": 8, "arm2": 8, "": 4}
        a, b = buf.sample(300, np.random.default_rng(3)), back.sample(300, np.random.default_rng(3))
        np.testing.assert_array_equal(a["robot"], b["robot"])
        np.testing.assert_array_equal(a["next_obs"]["front"], b["next_obs"]["front"])
        assert_aligned(b)

    # A log as written before robot ids existed: spec record, then type-1 step records
    # (head <BBqqf>, action, obs, next_obs), each framed b"RSRB" | len | crc32.
    old = tmp_path / "old.bin"

    def frame(payload: bytes) -> bytes:
        return b"RSRB" + struct.pack("<II", len(payload), zlib.crc32(payload)) + payload

    def obs_bytes(o):
        return o["front"].tobytes() + o["proprio"].astype(np.float32).tobytes()

    data = frame(bytes([0]) + SPEC.to_json().encode())
    for t in transitions("", 2, 3):
        has_obs = t.step_index == 0
        head = struct.pack("<BBqqf", 1, (1 if has_obs else 0) | (4 if t.intervention else 0) | (8 if t.episode_end else 0),
                           t.episode_id, t.step_index, t.reward)
        data += frame(head + t.action.tobytes() + (obs_bytes(t.obs) if has_obs else b"") + obs_bytes(t.next_obs))
    old.write_bytes(data)
    with VisionReplayBuffer(SPEC, 50, old) as legacy:
        assert legacy.robot_counts() == {"": 3}
        assert_aligned(legacy.sample(50, np.random.default_rng(0)))


# ----------------------------------------------------------------------------- learner core
def test_learner_core_keeps_books_per_robot_and_resumes_them(tmp_path):
    pytest.importorskip("torch")
    from robot_stack.rl.learner import LearnerConfig, LearnerCore
    from robot_stack.types.config import from_dict

    cfg = from_dict(LearnerConfig, {
        "run_dir": str(tmp_path), "spec_json": SPEC.to_json(), "tensorboard": False, "min_transitions": 1000,
        "robot_sampling": "balanced", "checkpoint_every_s": 3600.0,
        "sac": {"num_critics": 2, "batch_size": 8, "network": {"encoder_channels": 4, "latent_dim": 8,
                                                              "hidden_dims": [16], "augment_pad_px": 0}}})
    core = LearnerCore(cfg).open()
    try:
        for robot, step in interleave((("arm1", s) for s in records("arm1", 0, 5, intervene_at=(1, 2), success=True)),
                                      (("arm2", s) for s in records("arm2", 0, 3))):
            core.add_step(step, robot)
        st = core.stats()
        assert st["env_steps"] == 8 and st["transitions"] == 8 and st["episodes"] == 2
        assert st["robots"]["arm1"]["transitions"] == 5 and st["robots"]["arm2"]["transitions"] == 3
        assert st["robots"]["arm1"]["intervention_transitions"] == 2
        assert st["robots_active"] == 2
        assert core.online.robot_counts() == {"arm1": 5, "arm2": 3}
        assert core.intervention.robot_counts() == {"arm1": 2}
    finally:
        core.close()
    again = LearnerCore(cfg).open()
    try:
        assert again.online.robot_counts() == {"arm1": 5, "arm2": 3}
        assert again.stats()["robots"]["arm2"]["env_steps"] == 3
        with pytest.raises(ValueError, match="robot_sampling"):
            from_dict(LearnerConfig, {"robot_sampling": "fair"}).validate()
    finally:
        again.close()
