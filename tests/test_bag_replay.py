"""``robot-stack bag replay``: a recorded session's step records into a fresh learner.

Step records are serialised by rclpy (as the actor publishes them), written to a bag, replayed
by the command (decoded without ROS, by rosbags), and compared with a learner fed the same
records the way the learner node feeds its subscription's rclpy messages (``step_from_msg``
then ``LearnerCore.add_step``): the replay logs must be byte for byte the same. (The whole-graph version, against a live learner over DDS, is in
tests/test_sim_graph.py.)
"""
from __future__ import annotations

import pathlib

import numpy as np
import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
SPEC_FILE = ROOT / "policies" / "specs" / "reach_front_64.json"


def _spec():
    from robot_stack.types.spec import PolicySpec

    return PolicySpec.from_json(SPEC_FILE.read_text())


def _records(episodes: int = 3, steps: int = 12, seed: int = 0):
    """StepRecord messages of a few episodes with takeovers (and one record a learner rejects)."""
    from robot_stack.msg import StepRecord
    from robot_stack.nodes.convert import image_to_msg

    spec = _spec()
    rng = np.random.default_rng(seed)
    out = []
    for ep in range(episodes):
        for i in range(steps + 1):
            last = i == steps
            m = StepRecord(episode_id=ep + 7, step_index=i, camera_names=["front"], proprio_names=list(spec.proprio_names),
                           is_first=i == 0, is_last=last, success=last and ep % 2 == 0, is_terminal=last and ep % 2 == 0)
            m.images = [image_to_msg(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8), 1.0 + i, "front_optical_frame")]
            m.proprio = rng.normal(size=spec.proprio_dim).astype(np.float32)
            if not last:
                m.policy_action = rng.uniform(-1, 1, spec.action.dim).astype(np.float32)
                m.intervention = 4 <= i < 8
                m.action = (rng.uniform(-1, 1, spec.action.dim).astype(np.float32) if m.intervention else m.policy_action)
            out.append(m)
    bad = out[5]
    bad.action = np.array([3.0, 0.0, 0.0], np.float32)  # out of [-1, 1]: the learner node drops it
    return out


def _policy_message():
    from robot_stack.nodes.convert import weights_to_msg
    from robot_stack.types.records import PolicyWeights

    spec_json = '{"format": 1, "policy_spec": ' + SPEC_FILE.read_text().strip() + ', "network": {"encoder_channels": 8}}'
    return weights_to_msg(PolicyWeights(version=1, learner_step=0, env_steps=0, spec_json=spec_json, data=b"w"))


def _bag(path: pathlib.Path, records, with_policy: bool = True, namespaces=("/robot_stack",)) -> pathlib.Path:
    """A bag of ``records`` on ``<ns>/steps`` (and a policy version on ``<ns>/policy``) for each
    namespace."""
    from rclpy.serialization import serialize_message

    from robot_stack.recording.bag import SessionBag

    with SessionBag(path, custom_data={"namespace": namespaces[0]}) as bag:
        for ns in namespaces:
            bag.add_topic(f"{ns}/steps", "robot_stack/msg/StepRecord")
            bag.add_topic(f"{ns}/policy", "robot_stack/msg/PolicyWeights")
        t = 1_000
        if with_policy:
            bag.write(f"{namespaces[0]}/policy", serialize_message(_policy_message()), t)
        for m in records:
            for ns in namespaces:
                t += 100_000_000
                bag.write(f"{ns}/steps", serialize_message(m), t)
    return path


def _live_learner(run_dir: pathlib.Path, records, **overrides):
    """What the learner node does with its subscription's messages."""
    from robot_stack.types.config import from_dict
    from robot_stack.rl.learner import LearnerCore
    from robot_stack.nodes.convert import step_from_msg
    from robot_stack.nodes.learner_node import LearnerNodeConfig

    cfg = from_dict(LearnerNodeConfig, {"run_dir": str(run_dir), "spec_file": str(SPEC_FILE), "tensorboard": False,
                                        **overrides})
    core = LearnerCore(cfg).open()
    try:
        for m in records:
            try:
                step = step_from_msg(m, core.spec)
            except ValueError:
                core.skip_step((int(m.episode_id), int(m.step_index)))  # LearnerNode._on_step moves past it
                continue
            core.add_step(step)
    finally:
        core.close()


def _rewards(run_dir: pathlib.Path) -> list[float]:
    from robot_stack.rl.replay_buffer import VisionReplayBuffer

    buf = VisionReplayBuffer(_spec(), capacity=1000, path=run_dir / "replay_online.log").open()
    try:
        return [float(buf._reward[s]) for s in np.flatnonzero(buf._valid)]
    finally:
        buf.close()


def test_replayed_bag_gives_exactly_the_transitions_of_a_learner_fed_live(tmp_path, capsys):
    from robot_stack.cli import main

    records = _records()
    bag = _bag(tmp_path / "bags" / "session_x", records, namespaces=("/arm1",))  # any namespace: /arm1/steps
    _live_learner(tmp_path / "live", records)
    rc = main(["bag", "replay", str(tmp_path / "bags"), "--run-dir", str(tmp_path / "replayed"), "--no-train",
               "-p", "tensorboard=false"])
    out = capsys.readouterr()
    assert rc == 0, out.err
    assert "(/arm1/steps)" in out.out and "39 step records (1 rejected), 3 episodes" in out.out
    for log in ("replay_online.log", "replay_intervention.log"):
        live = (tmp_path / "live" / log).read_bytes()
        assert len(live) > 10_000 and (tmp_path / "replayed" / log).read_bytes() == live, log
    # the labelling did run: the policy step before each takeover got the penalty
    assert _rewards(tmp_path / "replayed").count(-1.0) == 3
    assert bag.is_dir()


def test_replay_trains_on_the_utd_schedule_with_other_parameters(tmp_path, capsys):
    from robot_stack.cli import main

    bag = _bag(tmp_path / "bag", _records())
    rc = main(["bag", "replay", str(bag), "--run-dir", str(tmp_path / "retrain"), "-p", "tensorboard=false",
               "-p", "labelling.intervention_penalty=-2.5", "-p", "min_transitions=30", "-p", "sac.batch_size=8",
               "-p", "sac.network.encoder_channels=8", "-p", "sac.network.hidden_dims=[16, 16]"])
    out = capsys.readouterr().out
    assert rc == 0
    # 36 transitions less 2 (the rejected record, and the step before it, whose successor is gone);
    # one update per transition from the 30th on
    assert "34 transitions, 5 updates" in out, out
    run = tmp_path / "retrain"
    assert (run / "checkpoint.pt").is_file() and (run / "policies" / "latest.pt").is_file()
    assert sorted(set(_rewards(run))) == [-2.5, 0.0]


def test_replay_refuses_a_used_run_dir_and_a_bag_without_spec(tmp_path, capsys):
    from robot_stack.cli import main

    records = _records(episodes=1)
    _live_learner(tmp_path / "used", records)
    bag = _bag(tmp_path / "bag", records)
    assert main(["bag", "replay", str(bag), "--run-dir", str(tmp_path / "used"), "--no-train"]) == 2
    assert "already holds a learner" in capsys.readouterr().err
    no_spec = _bag(tmp_path / "bag2", records, with_policy=False)
    assert main(["bag", "replay", str(no_spec), "--run-dir", str(tmp_path / "r"), "--no-train"]) == 2
    assert "--spec-file" in capsys.readouterr().err
    assert main(["bag", "replay", str(no_spec), "--run-dir", str(tmp_path / "r"), "--no-train",
                 "--spec-file", str(SPEC_FILE), "-p", "tensorboard=false"]) == 0
    with pytest.raises(SystemExit):
        main(["bag", "replay", str(no_spec)])  # --run-dir is required
    capsys.readouterr()
    # Two robots' step records in one bag: name the topic.
    two = _bag(tmp_path / "bag3", records, namespaces=("/arm1", "/arm2"))
    assert main(["bag", "replay", str(two), "--run-dir", str(tmp_path / "r2"), "--no-train"]) == 2
    assert "/arm1/steps, /arm2/steps" in capsys.readouterr().err
    assert main(["bag", "replay", str(two), "--run-dir", str(tmp_path / "r2"), "--no-train", "--steps-topic",
                 "/arm2/steps", "--spec-file", str(SPEC_FILE), "-p", "tensorboard=false"]) == 0
    assert "(/arm2/steps)" in capsys.readouterr().out
