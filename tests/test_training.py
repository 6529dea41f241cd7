"""The single-process training script: the actor and learner cores on a simulated clock."""
import pathlib

import numpy as np
import pytest

pytest.importorskip("mujoco")

from robot_stack.actor.core import ActorConfig, ActorCore  # noqa: E402
from robot_stack.rl.agent import SACConfig  # noqa: E402
from robot_stack.rl.baselines import BCConfig  # noqa: E402
from robot_stack.rl.learner import LearnerCore  # noqa: E402
from robot_stack.training.evaluate import evaluate_policy_file  # noqa: E402
from robot_stack.training.session import SimRobot, run_control_step  # noqa: E402
from robot_stack.types import config as cfgmod  # noqa: E402
from robot_stack.training.train import (TASK_IDS, TrainConfig, load_preset, main, make_operator,  # noqa: E402
                                        operator_success, train)


def cfg(tmp_path, **kw):
    base = dict(task="reach", obs="state", env_steps=120, eval_every=60, eval_episodes=1, min_transitions=40,
                run_dir=str(tmp_path / "run"), policies_dir=str(tmp_path / "pol"),
                progress=False, tensorboard=False, seed=3)
    base.update(kw)
    return TrainConfig(**base)


@pytest.mark.slow
@pytest.mark.parametrize("method", ["rlif", "hg_dagger", "bc"])
def test_each_method_runs_evaluates_and_exports(tmp_path, method):
    rows = train(cfg(tmp_path, method=method, final_eval_episodes=2))
    assert [r["env_steps"] for r in rows] == [60, 120]
    assert [r["eval_episodes"] for r in rows] == [1, 2]
    for r in rows:
        assert 0.0 <= r["success_rate"] <= 1.0 and 0.0 <= r["intervention_rate"] <= 1.0
    if method == "bc":
        assert all(r["intervention_rate"] == 1.0 for r in rows)  # the operator drives every step
        assert rows[-1]["operator_steps"] == 120
    assert ("critic_loss" if method == "rlif" else "bc_loss") in rows[-1]
    # one update call per transition after min_transitions, as the learner node counts (a step's
    # transition is complete when the next record arrives: 119 or 120 after 120 steps)
    import torch
    meta = torch.load(tmp_path / "run" / LearnerCore.CHECKPOINT, weights_only=False)["learner"]
    assert meta["env_steps"] == 120 and meta["transitions"] in (119, 120)
    assert rows[-1]["updates"] == meta["updates"] == meta["transitions"] - 40 + 1
    assert (tmp_path / "pol" / "latest.pt").is_file() and (tmp_path / "pol" / "best.pt").is_file()
    res = evaluate_policy_file(str(tmp_path / "pol" / "latest.pt"), "reach", episodes=1)
    assert 0.0 <= res["success_rate"] <= 1.0


def test_resume_continues_from_the_learner_checkpoint_with_restored_buffers(tmp_path):
    train(cfg(tmp_path, method="rlif", env_steps=60))
    run = tmp_path / "run"
    import torch

    first = torch.load(run / LearnerCore.CHECKPOINT, weights_only=False)["learner"]
    assert first["env_steps"] == 60 and first["updates"] == first["transitions"] - 40 + 1
    rows = train(cfg(tmp_path, method="rlif", env_steps=120, resume=True))
    assert [r["env_steps"] for r in rows] == [60, 120]  # history kept, continued to the budget
    again = torch.load(run / LearnerCore.CHECKPOINT, weights_only=False)["learner"]
    assert again["env_steps"] == 120 and again["updates"] == again["transitions"] - 40 + 1
    assert again["last_episode_id"] > first["last_episode_id"]  # new episodes, new ids
    assert (run / LearnerCore.ONLINE_LOG).stat().st_size > 0
    with pytest.raises(ValueError, match="another run"):
        train(cfg(tmp_path, method="hg_dagger", env_steps=180, resume=True))
    # A fresh run in the same folder starts from nothing: no watermark, counters or policy
    # version of the previous run carry over (its episode ids would look like duplicates).
    assert (run / "learner_state.bin").exists() and (run / LearnerCore.VERSION_FILE).exists()
    rows = train(cfg(tmp_path, method="rlif", env_steps=60))
    fresh = torch.load(run / LearnerCore.CHECKPOINT, weights_only=False)["learner"]
    assert [r["env_steps"] for r in rows] == [60] and fresh["env_steps"] == 60
    assert fresh["transitions"] in (59, 60) and fresh["version"] < again["version"]


def test_a_pixel_run_with_both_cameras_trains_exports_and_resumes_only_as_the_same_run(tmp_path):
    from robot_stack.rl.policy_io import load_policy_file

    pixels = dict(method="bc", obs="pixels", eval_every=30, min_transitions=20)
    rows = train(cfg(tmp_path, cameras="front wrist", env_steps=30, **pixels))
    assert [r["env_steps"] for r in rows] == [30]
    policy = tmp_path / "pol" / "latest.pt"
    assert [cam.name for cam in load_policy_file(str(policy)).spec.cameras] == ["front", "wrist"]
    assert 0.0 <= evaluate_policy_file(str(policy), "reach", episodes=1)["success_rate"] <= 1.0
    with pytest.raises(ValueError, match="another run.*cameras"):
        train(cfg(tmp_path, cameras="front", env_steps=60, resume=True, **pixels))


def test_a_run_saved_without_the_cameras_setting_resumes_as_the_task_camera(tmp_path):
    import json

    from robot_stack.training.train import _prepare_run_dir

    c = cfg(tmp_path, obs="pixels", resume=True).resolved()
    old = {k: v for k, v in cfgmod.to_dict(c).items() if k != "cameras"}  # saved before the setting existed
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "train_config.json").write_text(json.dumps(old))
    _prepare_run_dir(c, tmp_path / "run")  # the task's own camera: the same run
    (tmp_path / "run" / "train_config.json").write_text(json.dumps(old))
    with pytest.raises(ValueError, match="cameras"):
        _prepare_run_dir(cfg(tmp_path, obs="pixels", cameras="front wrist", resume=True).resolved(), tmp_path / "run")
    assert cfg(tmp_path, obs="pixels", cameras=" front  wrist ").resolved().cameras == "front wrist"
    with pytest.raises(ValueError, match="needs obs='pixels'"):
        cfg(tmp_path, obs="state", cameras="wrist").validate()


def test_the_operator_acts_through_the_detector_and_records_match_execution():
    """Each step record's action is what the env executed; its intervention flag is the actor's
    (>= half the step under operator control), which matches the operator's own takeovers."""
    c = TrainConfig(method="rlif", task="reach", obs="state", expert_level=20, seed=1)
    robot = SimRobot("reach", "state")
    op = make_operator(c, robot.task)
    rng = np.random.default_rng(0)

    class Random:
        def act(self, obs, deterministic):
            return rng.uniform(-1, 1, 3).astype(np.float32)

    actor = ActorCore(ActorConfig(max_episode_steps=robot.horizon_steps), robot.spec, Random(), first_episode_id=0)
    executed, records, operated = [], [], []

    def reset(ep, t):
        robot.reset(100 + ep)
        actor.on_operator_command(op.start_episode(200 + ep, t), t)

    real_execute = robot.execute

    def spy(cmd):
        executed.append(robot.spec.action.from_twist(cmd.lin_m_s, cmd.ang_rad_s, cmd.gripper))
        real_execute(cmd)

    robot.execute = spy
    real_react = op.react

    def react(robot_, policy_action, t):
        cmd = real_react(robot_, policy_action, t)
        operated.append(cmd is not None)
        return cmd

    op.react = react
    k = 0
    while len([r for r in records if r.is_last]) < 3:
        res = run_control_step(actor, robot, k * robot.period_s, op, reset)
        records += res.steps
        k += 1
    steps = [r for r in records if not r.is_last]
    assert len(steps) >= 30
    for i, r in enumerate(steps):
        np.testing.assert_allclose(r.action, executed[i], atol=1e-6)
        if not r.intervention:
            np.testing.assert_allclose(r.action, r.policy_action, atol=1e-6)
    flags = [r.intervention for r in steps]
    assert 0 < sum(flags) < len(steps)  # a random policy provokes takeovers, not all the time
    assert flags == operated[:len(steps)]  # the operator held exactly the steps marked as its own
    # the operator's deflection is the detector's command (deadzone applied), not the raw reading
    op_actions = [r.action for r in steps if r.intervention]
    assert all(np.max(np.abs(a)) >= (0.25 - 0.05) / 0.95 - 1e-6 for a in op_actions)
    # the actor's observation is the env's policy observation (proprio + task state)
    obs = steps[-1].obs["proprio"]
    assert obs.shape == (17,)
    robot.close()


def test_operator_min_axis_must_engage_the_detector():
    c = TrainConfig(operator_min_axis=0.1)
    robot = SimRobot("reach", "state")
    with pytest.raises(ValueError, match="engage_threshold"):
        make_operator(c, robot.task)
    robot.close()


def test_operator_alone_succeeds_about_as_calibrated():
    # 20 episodes of the 90% operator through detector and actor (calibration: 0.89 alone)
    assert operator_success("reach", 90, episodes=20) >= 0.6


def test_cli_rejects_unknown_method(tmp_path):
    with pytest.raises(Exception, match="method"):
        main(["--method", "dagger", "--run-dir", str(tmp_path)])


PRESETS = sorted((pathlib.Path(__file__).resolve().parents[1] / "policies").glob("*.yaml"))


@pytest.mark.parametrize("path", PRESETS, ids=[p.stem for p in PRESETS])
def test_every_policy_preset_loads_into_valid_configs(path):
    """policies/<task>_<obs>[_variant].yaml: known task and obs in the name, only known keys, valid values
    (a typo in a preset fails here instead of hours into a benchmark)."""
    assert any(path.stem == f"{t}_{o}" or path.stem.startswith(f"{t}_{o}_")
               for t in TASK_IDS for o in ("state", "pixels")), f"{path.name}: name is not <task>_<obs>[_variant].yaml"
    net, sac_kw, bc_kw = load_preset(str(path))
    cfgmod.from_dict(SACConfig, {**sac_kw, "network": net})  # raises on unknown keys and invalid values
    cfgmod.from_dict(BCConfig, {**bc_kw, "network": net})


def test_a_preset_with_an_unknown_key_is_an_error_naming_the_key(tmp_path):
    bad = tmp_path / "reach_state.yaml"
    bad.write_text("sac:\n  utd_ration: 4\n")
    _, sac_kw, _ = load_preset(str(bad))
    with pytest.raises(cfgmod.ConfigError, match="utd_ration"):
        cfgmod.from_dict(SACConfig, sac_kw, where=f"{bad}:sac")


def test_runs_and_their_exports_default_to_runs_not_policies():
    """policies/ is installed and tracked: training output belongs in runs/ (ignored by git)."""
    from robot_stack.training.train import REPO_ROOT

    c = TrainConfig(method="bc", task="reach", obs="state", seed=7).resolved()
    assert pathlib.Path(c.run_dir) == REPO_ROOT / "runs" / "bc_reach_state_e50_s7"
    assert pathlib.Path(c.policies_dir) == REPO_ROOT / "runs" / "bc_reach_state_e50_s7" / "policies"
    assert pathlib.Path(TrainConfig(run_dir="/tmp/x").resolved().policies_dir) == pathlib.Path("/tmp/x/policies")
    assert "runs/" in (REPO_ROOT / ".gitignore").read_text().split()
