"""LearnerCore (ROS-free): labelling into the buffers, training thread, weights, resume."""
from __future__ import annotations

import json
import threading

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from robot_stack.rl.learner import LearnerConfig, LearnerCore  # noqa: E402
from robot_stack.rl.policy_io import load_policy_from_bytes  # noqa: E402
from robot_stack.types.config import from_dict  # noqa: E402
from robot_stack.types.records import StepRecord  # noqa: E402
from robot_stack.types.spec import ActionSpec, CameraSpec, PolicySpec  # noqa: E402

SPEC = PolicySpec(
    cameras=(CameraSpec("wrist", 32, 32),),
    proprio_names=("tcp_x_m", "tcp_y_m", "tcp_z_m"),
    action=ActionSpec(names=("vx", "vy", "vz")),
)
SMALL_SAC = {"num_critics": 2, "batch_size": 8, "network": {"encoder_channels": 8, "latent_dim": 16,
                                                              "hidden_dims": [32, 32], "augment_pad_px": 0}}


def config(run_dir, **kw):
    base = {"run_dir": str(run_dir), "spec_json": SPEC.to_json(), "sac": SMALL_SAC, "min_transitions": 8,
            "publish_every_updates": 5, "tensorboard": False, "checkpoint_every_s": 3600.0}
    base.update(kw)
    return from_dict(LearnerConfig, base)


def episode(ep_id: int, n: int, intervene_at=(), success=False, terminal=False, rng=None):
    rng = rng or np.random.default_rng(ep_id)
    steps = []
    for i in range(n + 1):
        last = i == n
        obs = {"wrist": rng.integers(0, 255, (32, 32, 3), dtype=np.uint8),
               "proprio": rng.normal(size=3).astype(np.float32)}
        a = None if last else rng.uniform(-1, 1, 3).astype(np.float32)
        steps.append(StepRecord(episode_id=ep_id, step_index=i, obs=obs, action=a, policy_action=a,
                          intervention=i in intervene_at, is_first=i == 0, is_last=last,
                          is_terminal=last and terminal, success=last and success))
    return steps


def test_steps_are_labelled_into_online_and_intervention_buffers(tmp_path):
    core = LearnerCore(config(tmp_path)).open()
    try:
        for s in episode(1, 6, intervene_at=(3, 4), success=True, terminal=True):
            core.add_step(s)
        assert len(core.online) == 6 and len(core.intervention) == 2
        rewards = core.online._reward[core.online._valid]  # slots in insertion order
        assert rewards.tolist() == [0, 0, -1, 0, 0, 0]  # step 2 provoked the takeover at 3
        assert core.online._terminal[core.online._valid].tolist() == [False] * 5 + [True]
        st = core.stats()
        assert st["episodes"] == 1 and st["success_rate"] == 1.0
        assert st["intervention_rate"] == pytest.approx(2 / 6)
    finally:
        core.close()


def test_training_thread_follows_data_and_publishes_weights(tmp_path):
    published = []
    got_two = threading.Event()

    def on_weights(w):
        published.append(w)
        if len(published) >= 2:
            got_two.set()

    core = LearnerCore(config(tmp_path), on_weights=on_weights).open()
    core.start()
    try:
        assert published and published[0].version == 1  # initial weights at start
        assert core.updates == 0
        for ep in range(1, 4):
            for s in episode(ep, 6, intervene_at=(2,)):
                core.add_step(s)
        assert got_two.wait(120.0), f"no second weights (updates={core.updates})"
        # Update-to-data: never more update calls than transitions allow.
        assert core.updates <= core.transitions - core.config.min_transitions + 1
        w = published[-1]
        policy = load_policy_from_bytes(w.spec_json, w.data)
        obs = episode(9, 1)[0].obs
        a = policy.act(obs, deterministic=True)
        assert a.shape == (3,) and np.all(np.abs(a) <= 1.0)
        assert {"critic_loss", "actor_loss"} <= set(core.stats())
    finally:
        core.close()


def test_restart_resumes_from_checkpoint_and_buffer(tmp_path):
    published = []
    core = LearnerCore(config(tmp_path), on_weights=published.append).open()
    core.start()
    for ep in range(1, 4):
        for s in episode(ep, 6):
            core.add_step(s)
    # Wait until the training thread caught up with the data.
    for _ in range(600):
        if core.updates >= core._budget():
            break
        threading.Event().wait(0.1)
    core.close()  # writes the checkpoint
    version, updates, n_buf = core.version, core.updates, len(core.online)
    critic_w = core.agent.critic.state_dict()
    assert updates > 0

    again = LearnerCore(config(tmp_path), on_weights=published.append).open()
    try:
        assert again.version == version and again.updates == updates
        assert len(again.online) == n_buf == 18
        for k, v in critic_w.items():
            torch.testing.assert_close(again.agent.critic.state_dict()[k], v)
        again.start()
        assert published[-1].version == version + 1  # versions keep increasing across restarts
        assert (tmp_path / "policies" / "latest.pt").exists()
    finally:
        again.close()


def test_missing_spec_and_mismatched_checkpoint_are_rejected(tmp_path):
    with pytest.raises(ValueError, match="no policy spec"):
        LearnerCore(config(tmp_path, spec_json="")).open()
    core = LearnerCore(config(tmp_path)).open()
    core.close()
    other = PolicySpec(proprio_names=("tcp_x_m",), action=ActionSpec())
    with pytest.raises(ValueError, match="another policy spec"):
        LearnerCore(config(tmp_path, spec_json=json.dumps(other.to_dict()))).open()


def test_synchronous_mode_runs_the_threads_budget_inline_and_deterministically(tmp_path):
    def run(d):
        published = []
        core = LearnerCore(config(d), on_weights=published.append).open()
        core.start(thread=False)
        ran = []
        for ep in range(1, 4):
            for s in episode(ep, 6, intervene_at=(2, 3)):
                core.add_step(s)
                ran.append(core.train_available())
                # exactly one update call per transition once min_transitions are stored
                assert core.updates == core._budget()
        core.close()
        return core, ran, published

    a, ran, published = run(tmp_path / "a")
    assert a.transitions == 18 and a.updates == 18 - 8 + 1 and sum(ran) == a.updates
    assert [w.version for w in published] == [1, 2, 3]  # start + every 5 updates (11 updates)
    b, _, _ = run(tmp_path / "b")
    for k, v in a.agent.critic.state_dict().items():  # same data, same seed: same result
        torch.testing.assert_close(b.agent.critic.state_dict()[k], v)
    with pytest.raises(RuntimeError, match="synchronous"):
        threaded = LearnerCore(config(tmp_path / "c")).open()
        threaded.start()
        try:
            threaded.train_available()
        finally:
            threaded.close()


def test_bc_algorithm_learns_from_interventions_only_and_resumes_as_bc(tmp_path):
    core = LearnerCore(config(tmp_path, algorithm="bc", bc={"batch_size": 4})).open()
    core.start(thread=False)
    for s in episode(1, 10):  # no interventions: nothing to imitate, no update
        core.add_step(s)
        core.train_available()
    assert core.updates == 0 and len(core.online) == 10
    for s in episode(2, 6, intervene_at=(1, 2, 3)):
        core.add_step(s)
        core.train_available()
    assert core.updates == core._budget() > 0 and "bc_loss" in core.last_metrics
    assert core.intervention_steps == 3 and core.last_episode_id == 2
    core.close()
    again = LearnerCore(config(tmp_path, algorithm="bc")).open()
    assert type(again.agent).__name__ == "BCAgent" and again.updates == core.updates
    assert again.intervention_steps == 3 and again.last_episode_id == 2
    again.close()
    with pytest.raises(ValueError, match="'bc' run"):
        LearnerCore(config(tmp_path)).open()  # an rlif learner refuses a bc checkpoint
