"""RLPD-style SAC and BC: learning a tiny task, bit-exact resume, policy export/load."""
import dataclasses

import numpy as np
import pytest
import torch

from robot_stack.rl.agent import SACAgent, SACConfig
from robot_stack.rl.baselines import BCAgent, BCConfig
from robot_stack.rl.networks import NetworkConfig, _shift_gather, augment, conv_trunk, random_shift
from robot_stack.types.spec import ActionSpec, CameraSpec, PolicySpec
from robot_stack.rl.policy_io import (export_policy_bytes, load_policy_file, load_policy_from_bytes,
                                      save_policy_file)

torch.set_num_threads(1)
STATE_SPEC = PolicySpec(proprio_names=("x", "y"), action=ActionSpec(names=("vx", "vy", "vz")))
PIX_SPEC = PolicySpec(cameras=(CameraSpec("front", 32, 32), CameraSpec("wrist", 32, 32)),
                      proprio_names=("g",), action=ActionSpec())
SMALL = NetworkConfig(hidden_dims=(64, 64), latent_dim=16, encoder_channels=8)


def bandit_batch(rng, n):
    """One-step task: reward -|a - target(s)|^2 with target = (x, -y, 0.5); every step terminal."""
    s = rng.uniform(-0.8, 0.8, (n, 2)).astype(np.float32)
    a = rng.uniform(-1, 1, (n, 3)).astype(np.float32)
    target = np.stack([s[:, 0], -s[:, 1], np.full(n, 0.5, np.float32)], 1)
    r = -((a - target) ** 2).sum(1).astype(np.float32)
    return {"obs": {"proprio": s}, "next_obs": {"proprio": s}, "action": a, "reward": r,
            "terminal": np.ones(n, np.float32)}, target


def policy_error(agent, rng):
    s = rng.uniform(-0.8, 0.8, (64, 2)).astype(np.float32)
    target = np.stack([s[:, 0], -s[:, 1], np.full(64, 0.5, np.float32)], 1)
    acts = np.stack([agent.act({"proprio": x}, deterministic=True) for x in s])
    return float(np.abs(acts - target).mean())


# The learning tests run on every device this machine has (CUDA where torch sees a GPU).
DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(not torch.cuda.is_available(),
                                                                 reason="needs a CUDA GPU"))]


def on(agent_params, device: str) -> None:
    """Assert the agent's networks really sit on ``device``."""
    assert next(agent_params).device.type == device


@pytest.mark.parametrize("device", DEVICES)
def test_sac_learns_a_contextual_bandit_in_seconds(device):
    agent = SACAgent(STATE_SPEC, SACConfig(network=SMALL, num_critics=4, utd_ratio=2, batch_size=128,
                                          actor_lr=1e-3, critic_lr=1e-3, init_temperature=0.05, seed=1,
                                          device=device))
    on(agent.critic.parameters(), device)
    assert agent.log_alpha.device.type == device
    rng = np.random.default_rng(0)
    before = policy_error(agent, np.random.default_rng(5))
    for _ in range(400):
        agent.update(bandit_batch(rng, 256)[0])
    after = policy_error(agent, np.random.default_rng(5))
    assert after < 0.15 and after < 0.5 * before, (before, after)


@pytest.mark.parametrize("device", DEVICES)
def test_bc_regresses_demonstrated_actions(device):
    agent = BCAgent(STATE_SPEC, BCConfig(network=SMALL, lr=1e-3, device=device))
    on(agent.policy.parameters(), device)
    rng = np.random.default_rng(0)
    for _ in range(300):
        b, target = bandit_batch(rng, 128)
        b["action"] = target
        m = agent.update(b)
    assert m["bc_loss"] < 0.01
    assert policy_error(agent, np.random.default_rng(5)) < 0.1


def pixel_batch(rng, n):
    obs = lambda: {"front": rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8),
                   "wrist": rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8),
                   "proprio": rng.normal(size=(n, 1)).astype(np.float32)}
    return {"obs": obs(), "next_obs": obs(), "action": rng.uniform(-1, 1, (n, 3)).astype(np.float32),
            "reward": -rng.integers(0, 2, n).astype(np.float32), "terminal": np.zeros(n, np.float32)}


def params(agent):
    return torch.cat([p.detach().flatten() for m in (agent.encoder, agent.critic, agent.actor)
                      for p in m.parameters()])


def test_checkpoint_resume_gives_bit_identical_next_updates(tmp_path):
    cfg = SACConfig(network=SMALL, num_critics=3, utd_ratio=2, batch_size=8, seed=3)
    a = SACAgent(PIX_SPEC, cfg)
    rng = np.random.default_rng(0)
    for _ in range(3):
        a.update(pixel_batch(rng, 16))
    a.save(tmp_path / "ckpt.pt")
    later = [pixel_batch(rng, 16) for _ in range(3)]
    obs = {k: v[0] for k, v in later[0]["obs"].items()}
    ma = [a.update(b) for b in later]
    act_a = a.act(obs)
    b = SACAgent.load(tmp_path / "ckpt.pt")
    mb = [b.update(x) for x in later]
    assert ma == mb
    assert torch.equal(params(a), params(b))
    np.testing.assert_array_equal(act_a, b.act(obs))
    # A fresh agent (different seed, untrained) does differ: the test can fail.
    c = SACAgent(PIX_SPEC, SACConfig(network=SMALL, num_critics=3, utd_ratio=2, batch_size=8, seed=4))
    assert not torch.equal(params(a), params(c))


@pytest.mark.parametrize("spec", [STATE_SPEC, PIX_SPEC], ids=["state", "pixels"])
def test_exported_policy_bytes_act_identically(spec, tmp_path):
    agent = SACAgent(spec, SACConfig(network=SMALL, num_critics=2, batch_size=8))
    rng = np.random.default_rng(1)
    if spec is PIX_SPEC:
        agent.update(pixel_batch(rng, 8))
    spec_json, data = export_policy_bytes(agent)
    policy = load_policy_from_bytes(spec_json, data)
    assert not hasattr(policy.net, "critic")
    for _ in range(5):
        b = pixel_batch(rng, 1) if spec is PIX_SPEC else bandit_batch(rng, 1)[0]
        o = {k: v[0] for k, v in b["obs"].items()}
        np.testing.assert_array_equal(agent.act(o, deterministic=True), policy.act(o, deterministic=True))
    save_policy_file(agent, tmp_path / "run" / "latest.pt", {"env_steps": 10})
    np.testing.assert_array_equal(load_policy_file(tmp_path / "run" / "latest.pt").act(o), agent.act(o, True))


def test_pretrained_encoder_is_loaded_from_file_and_stays_frozen(tmp_path):
    trunk = conv_trunk(8)
    for p in trunk.parameters():
        torch.nn.init.constant_(p, 0.01)
    torch.save(trunk.state_dict(), tmp_path / "trunk.pt")
    net = NetworkConfig(encoder="pretrained", encoder_weights=str(tmp_path / "trunk.pt"), encoder_channels=8,
                        latent_dim=16, hidden_dims=(32,))
    agent = SACAgent(PIX_SPEC, SACConfig(network=net, num_critics=2, batch_size=8))
    w0 = agent.encoder.cams["front"].trunk[0].weight.clone()
    assert torch.all(w0 == 0.01)
    proj0 = agent.encoder.cams["front"].proj[0].weight.clone()
    for _ in range(3):
        agent.update(pixel_batch(np.random.default_rng(0), 8))
    assert torch.equal(agent.encoder.cams["front"].trunk[0].weight, w0)
    assert not torch.equal(agent.encoder.cams["front"].proj[0].weight, proj0)
    # The export carries the frozen trunk: loading needs no weights file.
    spec_json, data = export_policy_bytes(agent)
    (tmp_path / "trunk.pt").unlink()
    o = {k: v[0] for k, v in pixel_batch(np.random.default_rng(2), 1)["obs"].items()}
    np.testing.assert_array_equal(load_policy_from_bytes(spec_json, data).act(o), agent.act(o, True))


def test_each_observation_is_encoded_once_per_critic_step():
    """obs by the online encoder (the actor reuses those features), next_obs by the target encoder."""
    agent = SACAgent(PIX_SPEC, SACConfig(network=SMALL, num_critics=3, utd_ratio=2, batch_size=8))
    calls = {"encoder": 0, "target_encoder": 0}
    for name in calls:
        getattr(agent, name).register_forward_hook(lambda *_, name=name: calls.__setitem__(name, calls[name] + 1))
    metrics = agent.update(pixel_batch(np.random.default_rng(0), 16))
    assert calls == {"encoder": 2, "target_encoder": 2}
    assert set(metrics) == {"critic_loss", "q_mean", "actor_loss", "temp_loss", "alpha", "entropy"}
    assert all(isinstance(v, float) and np.isfinite(v) for v in metrics.values())


def test_target_critic_subset_gives_the_rows_of_the_full_ensemble():
    agent = SACAgent(STATE_SPEC, SACConfig(network=SMALL, num_critics=5))
    feat, a = torch.randn(7, 2), torch.rand(7, 3)
    members = torch.tensor([3, 0])
    with torch.no_grad():
        torch.testing.assert_close(agent.target_critic(feat, a, members=members), agent.target_critic(feat, a)[members])


def test_bfloat16_encoder_is_used_when_asked_and_stays_close_to_float32():
    batch = pixel_batch(np.random.default_rng(0), 32)
    cfg = SACConfig(network=SMALL, num_critics=2, batch_size=32, seed=5)
    f32 = SACAgent(PIX_SPEC, dataclasses.replace(cfg, encoder_dtype="float32"))
    bf16 = SACAgent(PIX_SPEC, dataclasses.replace(cfg, encoder_dtype="bfloat16"))
    assert (f32.encoder_dtype, bf16.encoder_dtype) == (torch.float32, torch.bfloat16)
    assert SACAgent(PIX_SPEC, cfg).encoder_dtype == torch.float32  # 'auto' on the CPU
    m32, m16 = f32.update(batch), bf16.update(batch)
    assert m32["critic_loss"] != m16["critic_loss"]  # bf16 really ran (the test can fail)
    assert m16["critic_loss"] == pytest.approx(m32["critic_loss"], rel=0.05)
    # Only the update computes in bf16: acting and the exported weights stay float32.
    assert all(p.dtype == torch.float32 for p in bf16.policy.parameters())
    with pytest.raises(ValueError, match="encoder_dtype"):
        SACAgent(PIX_SPEC, dataclasses.replace(cfg, encoder_dtype="float16"))


def test_checkpoints_from_before_the_fused_optimizers_resume_fused():
    agent = SACAgent(PIX_SPEC, SACConfig(network=SMALL, num_critics=2, batch_size=8))
    agent.update(pixel_batch(np.random.default_rng(0), 8))
    state = agent.state_dict()
    for name in ("critic_opt", "actor_opt", "temp_opt"):
        for group in state[name]["param_groups"]:
            group.update(fused=None, foreach=None)  # what the for-loop Adam of older versions saved
    other = SACAgent(PIX_SPEC, SACConfig(network=SMALL, num_critics=2, batch_size=8))
    other.load_state_dict(state)
    assert all(g["fused"] for opt in (other.critic_opt, other.actor_opt, other.temp_opt) for g in opt.param_groups)
    other.update(pixel_batch(np.random.default_rng(1), 8))


@pytest.mark.parametrize("size,pad", [(8, 2), (16, 4), (3, 4)])
def test_random_shift_is_pad_replicate_then_crop(size, pad):
    """Both implementations (the CPU block copies and the index gather used on a GPU) give exactly
    the reference: pad by ``pad`` with edge replication, crop back at offsets in [0, 2 pad]."""
    x = torch.randint(0, 256, (40, size, size + 1, 3), dtype=torch.uint8)
    y = random_shift(x, pad, torch.Generator().manual_seed(0))
    off = torch.randint(0, 2 * pad + 1, (40, 2), generator=torch.Generator().manual_seed(0))
    padded = torch.nn.functional.pad(x.permute(0, 3, 1, 2).float(), (pad,) * 4, mode="replicate")
    ref = torch.stack([padded[i, :, dy:dy + size, dx:dx + size + 1] for i, (dy, dx) in enumerate(off.tolist())])
    assert torch.equal(y.permute(0, 3, 1, 2).float(), ref)
    assert torch.equal(_shift_gather(x, off, pad), y)
    assert len({tuple(o) for o in off.tolist()}) > 5  # the offsets do vary (the test can fail)


def test_augmentation_shifts_every_camera_and_leaves_proprio_alone():
    obs = {k: torch.from_numpy(v) for k, v in pixel_batch(np.random.default_rng(0), 8)["obs"].items()}
    out = augment(obs, PIX_SPEC, 4, torch.Generator().manual_seed(1))
    assert out["proprio"] is obs["proprio"]
    assert all(not torch.equal(out[c], obs[c]) and out[c].dtype == torch.uint8 for c in ("front", "wrist"))
    assert augment(obs, PIX_SPEC, 0, torch.Generator()) is obs


def test_bad_config_names_the_problem():
    with pytest.raises(ValueError, match="num_min_critics"):
        SACAgent(STATE_SPEC, SACConfig(num_critics=2, num_min_critics=3))
    with pytest.raises(ValueError, match="encoder_weights"):
        SACAgent(PIX_SPEC, SACConfig(network=NetworkConfig(encoder="pretrained")))


def test_exported_bc_policy_warm_starts_sac_with_the_same_actions():
    bc = BCAgent(STATE_SPEC, BCConfig(network=SMALL, seed=7))
    rng = np.random.default_rng(0)
    for _ in range(20):
        b, target = bandit_batch(rng, 64)
        b["action"] = target
        bc.update(b)
    from robot_stack.rl.policy_io import policy_state_from_bytes
    _, data = export_policy_bytes(bc)
    sac = SACAgent(STATE_SPEC, SACConfig(network=SMALL, num_critics=2, seed=1))
    o = {"proprio": np.array([0.3, -0.2], np.float32)}
    assert not np.array_equal(sac.act(o, True), bc.act(o, True))
    sac.load_policy_weights(policy_state_from_bytes(data))
    np.testing.assert_array_equal(sac.act(o, True), bc.act(o, True))
