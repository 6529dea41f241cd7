"""The single-process training script end to end on the sim (tiny budgets)."""
import pathlib

import pytest

pytest.importorskip("mujoco")

from robot_stack.rl.agent import SACAgent, SACConfig
from robot_stack.rl.baselines import BCConfig
from robot_stack.training.evaluate import evaluate_policy_file
from robot_stack.training.train import TASK_IDS, TrainConfig, load_preset, main, train
from robot_stack.types import config as cfgmod


def cfg(tmp_path, **kw):
    base = dict(task="reach", obs="state", env_steps=120, eval_every=60, eval_episodes=1, warmup_steps=40,
                checkpoint_every=60, run_dir=str(tmp_path / "run"), policies_dir=str(tmp_path / "pol"),
                progress=False, tensorboard=False, seed=3)
    base.update(kw)
    return TrainConfig(**base)


@pytest.mark.slow
@pytest.mark.parametrize("method", ["rlif", "hg_dagger", "bc"])
def test_each_method_runs_evaluates_and_exports(tmp_path, method):
    rows = train(cfg(tmp_path, method=method))
    assert [r["env_steps"] for r in rows] == [60, 120]
    for r in rows:
        assert 0.0 <= r["success_rate"] <= 1.0 and 0.0 <= r["intervention_rate"] <= 1.0
    if method == "bc":
        assert all(r["intervention_rate"] == 1.0 for r in rows)  # the operator drives every step
    else:
        assert "critic_loss" in rows[-1] if method == "rlif" else "bc_loss" in rows[-1]
    assert (tmp_path / "pol" / "latest.pt").is_file() and (tmp_path / "pol" / "best.pt").is_file()
    res = evaluate_policy_file(str(tmp_path / "pol" / "latest.pt"), "reach", episodes=1)
    assert 0.0 <= res["success_rate"] <= 1.0


def test_resume_continues_from_the_checkpoint_with_restored_buffers(tmp_path):
    train(cfg(tmp_path, method="rlif", env_steps=60))
    agent = SACAgent.load(tmp_path / "run" / "checkpoint" / "agent.pt")
    assert agent.step > 0
    rows = train(cfg(tmp_path, method="rlif", env_steps=120, resume=True))
    assert [r["env_steps"] for r in rows] == [60, 120]  # history kept, continued to the budget
    resumed = SACAgent.load(tmp_path / "run" / "checkpoint" / "agent.pt")
    assert resumed.step > agent.step
    assert (tmp_path / "run" / "checkpoint" / "main.log").stat().st_size > 0


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
