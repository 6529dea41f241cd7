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


# ----------------------------------------------------------------------------- restarts, duplicates, order
def _rewards(core) -> list[tuple[int, int, float]]:
    buf = core.online
    slots = np.flatnonzero(buf._valid)
    return [(int(buf._episode[s]), round(float(buf._reward[s]), 1)) for s in slots]


def test_a_duplicate_record_is_dropped_and_loses_no_transition(tmp_path):
    """Records 0, 1, 2, 1 (again), 3, last: every transition stored once, one episode counted,
    the rolling intervention rate untouched, and the duplicate counted as such (not as a gap)."""
    core = LearnerCore(config(tmp_path)).open()
    try:
        steps = episode(1, 4, intervene_at=(2,))
        for s in (steps[0], steps[1], steps[2], steps[1], steps[3], steps[4]):
            core.add_step(s)
        assert len(core.online) == 4 and _rewards(core) == [(1, 0.0), (1, -1.0), (1, 0.0), (1, 0.0)]
        st = core.stats()
        assert st["episodes"] == 1 and st["intervention_rate"] == pytest.approx(1 / 4)
        assert st["duplicate_steps"] == 1 and st["dropped_steps"] == 0
    finally:
        core.close()


def test_the_pending_step_survives_a_crash_so_its_penalty_does(tmp_path):
    """A policy step whose successor (the takeover) arrives after a learner crash still gets its
    -1: the pending record is on disk when add_step returns."""
    steps = episode(1, 4, intervene_at=(2,))
    core = LearnerCore(config(tmp_path)).open()
    for s in steps[:2]:  # step 1 (a policy step) now waits for its successor
        core.add_step(s)
    assert core.watermark() == (1, 1)
    # kill -9: no close(), no checkpoint; files stay as the OS has them
    again = LearnerCore(config(tmp_path)).open()
    try:
        assert again.watermark() == (1, 1)
        for s in steps[2:]:
            again.add_step(s)
        assert _rewards(again) == [(1, 0.0), (1, -1.0), (1, 0.0), (1, 0.0)]
    finally:
        again.close()


def test_policy_versions_and_counters_never_go_backwards_across_a_crash(tmp_path):
    published = []
    core = LearnerCore(config(tmp_path, checkpoint_every_s=3600.0), on_weights=published.append).open()
    core.checkpoint()  # an old checkpoint: version 0, no steps
    core._publish()
    for s in episode(1, 5) + episode(2, 3):
        core.add_step(s)
    for _ in range(15):
        core._publish()
    last = published[-1].version
    st = core.stats()
    assert last == 16 and st["env_steps"] == 8 and st["episodes"] == 2
    # kill -9 (no close): the checkpoint still says version 0
    again = LearnerCore(config(tmp_path), on_weights=published.append).open()
    try:
        again.start()
        assert published[-1].version == last + 1, "the restarted learner's first weights must be the newest"
        st = again.stats()
        assert st["env_steps"] == 8 and st["episodes"] == 2
    finally:
        again.close()


def test_records_are_taken_in_order_and_a_lasting_gap_is_accepted(tmp_path):
    clock = [100.0]
    core = LearnerCore(config(tmp_path, gap_timeout_s=5.0)).open()
    core.intake_clock = lambda: clock[0]
    try:
        steps = episode(1, 6)
        for s in steps[:3]:
            core.add_step(s)
        assert core.add_step(steps[4]) == 0 and core.watermark() == (1, 2)  # early: 3 is missing
        core.add_step(steps[3])  # the actor resends from the watermark on
        core.add_step(steps[4])
        assert core.watermark() == (1, 4) and len(core.online) == 4
        assert core.stats()["early_steps"] == 1
        assert core.add_step(steps[6]) == 0 and core.watermark() == (1, 4)  # step 5 is missing
        clock[0] += 6.0  # step 5 never comes: once the gap is gap_timeout_s old, the record is taken
        assert core.add_step(steps[6]) == 0 and core.watermark() == (1, 6)  # no transition across the gap
        assert core.stats()["gaps"] == 1 and core.stats()["early_steps"] == 2
        nxt = episode(2, 2)
        assert core.add_step(nxt[0]) == 0 and core.watermark() == (2, 0)  # step 0 of a later episode follows
    finally:
        core.close()


def test_a_damaged_checkpoint_is_named_in_a_one_line_error(tmp_path):
    core = LearnerCore(config(tmp_path)).open()
    core.close()
    ckpt = tmp_path / "checkpoint.pt"
    data = ckpt.read_bytes()
    ckpt.write_bytes(data[: len(data) // 2])  # cut short (a copy that stopped half-way)
    with pytest.raises(ValueError, match=f"checkpoint {ckpt} is unreadable.*move it away"):
        LearnerCore(config(tmp_path)).open()
    ckpt.write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match=f"checkpoint {ckpt} is unreadable"):
        LearnerCore(config(tmp_path)).open()
    torch.save({"agent": {"spec_json": SPEC.to_json()}, "learner": {}}, ckpt)  # readable, but not whole
    with pytest.raises(ValueError, match=f"checkpoint {ckpt} is damaged.*move it away"):
        LearnerCore(config(tmp_path)).open()


# ----------------------------------------------------------------------------- per robot (fleet)
def _robot_rewards(core, robot: str) -> list[tuple[int, float]]:
    buf = core.online
    slots = [s for s in np.flatnonzero(buf._valid) if buf.robots[buf._robot[s]] == robot]
    return [(int(buf._episode[s]), round(float(buf._reward[s]), 1)) for s in slots]


def test_each_robot_stream_has_its_own_order_duplicates_and_watermark(tmp_path):
    """Two robots whose episode ids coincide: a record of arm2 is never a duplicate of arm1's,
    a duplicate or an early record of one robot leaves the other's stream alone."""
    clock = [0.0]
    core = LearnerCore(config(tmp_path)).open()
    core.intake_clock = lambda: clock[0]
    try:
        a, b = episode(1, 4, intervene_at=(2,)), episode(1, 4, rng=np.random.default_rng(9))
        for i in range(3):
            core.add_step(a[i], "arm1")
            core.add_step(b[i], "arm2")
        assert core.watermark("arm1") == (1, 2) and core.watermark("arm2") == (1, 2) and core.watermark() is None
        assert core.add_step(a[1], "arm1") == 0  # arm1 resends: a duplicate for arm1 only
        assert core.add_step(b[4], "arm2") == 0  # arm2's step 3 is missing: early, arm1 unaffected
        core.add_step(a[3], "arm1")
        core.add_step(a[4], "arm1")
        core.add_step(b[3], "arm2")
        core.add_step(b[4], "arm2")
        assert core.watermark("arm1") == (1, 4) and core.watermark("arm2") == (1, 4)
        assert _robot_rewards(core, "arm1") == [(1, 0.0), (1, -1.0), (1, 0.0), (1, 0.0)]
        assert _robot_rewards(core, "arm2") == [(1, 0.0)] * 4
        c = core.intake("arm1").counters, core.intake("arm2").counters
        assert (c[0]["duplicate_steps"], c[0]["early_steps"], c[1]["duplicate_steps"], c[1]["early_steps"]) == (1, 0, 0, 1)
        st = core.stats()
        assert st["duplicate_steps"] == 1 and st["early_steps"] == 1 and st["episodes"] == 2
        assert {rid: r["transitions"] for rid, r in st["robots"].items()} == {"arm1": 4, "arm2": 4}
    finally:
        core.close()


def test_each_robots_pending_step_and_watermark_survive_a_crash(tmp_path):
    """kill -9 with both robots mid-episode: each robot's state file brings back its own
    watermark and pending step (so arm1's policy step still gets its -1 from the takeover that
    arrives after the restart), and each robot's counters."""
    a, b = episode(4, 4, intervene_at=(2,)), episode(1, 4, intervene_at=(3,), rng=np.random.default_rng(5))
    core = LearnerCore(config(tmp_path)).open()
    for s in a[:2]:
        core.add_step(s, "arm1")
    for s in b[:3]:
        core.add_step(s, "lab/arm2")
    assert (tmp_path / "learner_state" / "arm1.bin").exists() and (tmp_path / "learner_state" / "lab" / "arm2.bin").exists()
    # kill -9: no close(), no checkpoint
    again = LearnerCore(config(tmp_path)).open()
    try:
        assert again.watermark("arm1") == (4, 1) and again.watermark("lab/arm2") == (1, 2)
        assert again.add_step(a[1], "arm1") == 0 and again.add_step(b[2], "lab/arm2") == 0  # resent: duplicates
        for s in a[2:]:
            again.add_step(s, "arm1")
        for s in b[3:]:
            again.add_step(s, "lab/arm2")
        assert _robot_rewards(again, "arm1") == [(4, 0.0), (4, -1.0), (4, 0.0), (4, 0.0)]
        assert _robot_rewards(again, "lab/arm2") == [(1, 0.0), (1, 0.0), (1, -1.0), (1, 0.0)]
        rows = again.stats()["robots"]
        assert rows["arm1"]["records"] == 5 and rows["lab/arm2"]["records"] == 5
        assert rows["arm1"]["episodes"] == 1 and rows["lab/arm2"]["episodes"] == 1
    finally:
        again.close()


def test_a_damaged_robot_state_file_costs_only_its_pending_step(tmp_path):
    """One robot's state file damaged: that robot resumes from the replay log (its pending step
    is lost, counted), the other robot's pending step is kept."""
    a, b = episode(1, 3), episode(1, 3, rng=np.random.default_rng(2))
    core = LearnerCore(config(tmp_path)).open()
    for s in a[:3]:
        core.add_step(s, "arm1")
    for s in b[:3]:
        core.add_step(s, "arm2")
    bad = tmp_path / "learner_state" / "arm1.bin"
    bad.write_bytes(bad.read_bytes()[:-10])
    again = LearnerCore(config(tmp_path)).open()
    try:
        assert (tmp_path / "learner_state" / "arm1.bin.damaged").exists()
        assert again.watermark("arm1") == (1, 1)  # from the log: step 2 (pending) was not stored yet
        assert again.fleet.robot("arm1").labeller.pending is None
        assert again.fleet.robot("arm2").labeller.pending is not None
    finally:
        again.close()
