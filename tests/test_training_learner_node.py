"""One run layout: a run of the training script continues in the learner node and back."""
from __future__ import annotations

import numpy as np
import pytest

pytestmark = pytest.mark.ros

rclpy = pytest.importorskip("rclpy")
torch = pytest.importorskip("torch")
pytest.importorskip("mujoco")

from robot_stack.nodes import convert  # noqa: E402
from robot_stack.nodes import learner_node as ln  # noqa: E402
from robot_stack.nodes.params import parameter_overrides  # noqa: E402
from robot_stack.rl.learner import LearnerCore  # noqa: E402
from robot_stack.training.session import SimRobot  # noqa: E402
from robot_stack.training.train import TrainConfig, train  # noqa: E402
from robot_stack.types.records import StepRecord  # noqa: E402


def script(run_dir, env_steps, resume, method="rlif"):
    return train(TrainConfig(method=method, task="reach", obs="state", env_steps=env_steps, eval_every=60,
                             eval_episodes=1, min_transitions=40, run_dir=str(run_dir),
                             policies_dir=str(run_dir / "policies"), progress=False, tensorboard=False,
                             seed=5, resume=resume))


def meta(run_dir) -> dict:
    return torch.load(run_dir / LearnerCore.CHECKPOINT, weights_only=False)["learner"]


def node_steps(spec, ep_id: int, n: int) -> list:
    rng = np.random.default_rng(ep_id)
    out = []
    for i in range(n + 1):
        last = i == n
        a = np.zeros(0, np.float32) if last else rng.uniform(-1, 1, 3).astype(np.float32)
        s = StepRecord(episode_id=ep_id, step_index=i, stamp_s=10.0 + i, proprio_names=spec.proprio_names,
                       obs={"proprio": rng.normal(size=len(spec.proprio_names)).astype(np.float32)}, action=a,
                       policy_action=a, intervention=i in (3, 4), is_first=i == 0, is_last=last)
        out.append(convert.step_to_msg(s, "base"))
    return out


def test_script_run_resumes_in_the_learner_node_and_back(ros_context, tmp_path):
    run = tmp_path / "run"
    script(run, 60, resume=False)
    m0 = meta(run)
    node = ln.LearnerNode(context=ros_context, parameter_overrides=parameter_overrides(
        {"run_dir": str(run), "tensorboard": False, "stats_every_s": 60.0}))
    try:
        core = node.core
        assert core.updates == m0["updates"] > 0 and core.env_steps == 60
        assert len(core.online) == m0["transitions"] and core.version == m0["version"] + 1  # republished
        spec = core.spec
        last_ep = core.last_episode_id
        for msg in node_steps(spec, last_ep + 1, 10):  # the robot's steps arrive over the topic
            node._on_step(msg)
        assert core.env_steps == 70 and node.rejected_steps == 0
    finally:
        node.close()
        node.destroy_node()
    m1 = meta(run)
    assert m1["env_steps"] == 70 and m1["transitions"] == m0["transitions"] + 10
    assert m1["last_episode_id"] == last_ep + 1
    rows = script(run, 120, resume=True)  # ... and the script continues the node's run
    m2 = meta(run)
    assert m2["env_steps"] == 120 and m2["last_episode_id"] > last_ep + 1
    assert [r["env_steps"] for r in rows] == [60, 120]


def test_learner_node_run_resumes_in_the_script(ros_context, tmp_path):
    run = tmp_path / "node_run"
    spec = SimRobot("reach", "state").spec
    node = ln.LearnerNode(context=ros_context, parameter_overrides=parameter_overrides(
        {"run_dir": str(run), "spec_json": spec.to_json(), "tensorboard": False, "stats_every_s": 60.0,
         "min_transitions": 8, "sac.network.hidden_dims": [32, 32]}))
    try:
        for ep in (0, 1):
            for msg in node_steps(spec, ep, 12):
                node._on_step(msg)
    finally:
        node.close()
        node.destroy_node()
    m0 = meta(run)
    assert m0["env_steps"] == 24 and m0["last_episode_id"] == 1
    rows = script(run, 60, resume=True)
    m1 = meta(run)
    assert m1["env_steps"] == 60 and m1["transitions"] > m0["transitions"] and m1["updates"] > m0["updates"]
    assert m1["last_episode_id"] >= 2 and [r["env_steps"] for r in rows] == [60]
    with pytest.raises(ValueError, match="another run"):
        script(run, 90, resume=True, method="hg_dagger")
