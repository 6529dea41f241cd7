"""Where the agents train: device names are checked up front (a GPU asked for on a machine
without one is a clear error), checkpoints move between devices, exported policies are CPU
tensors. The CUDA tests run where torch sees a GPU (skipped on CI's CPU machines); learning on
the GPU is tested by test_rl_agent.py's device-parametrized tests."""
import logging

import numpy as np
import pytest
import torch

from robot_stack.rl.agent import SACAgent, SACConfig
from robot_stack.rl.baselines import BCAgent, BCConfig
from robot_stack.rl.networks import resolve_device
from robot_stack.rl.policy_io import export_policy_bytes, load_policy_from_bytes, policy_state_from_bytes
from robot_stack.types.config import ConfigError, from_dict
from test_rl_agent import PIX_SPEC, SMALL, STATE_SPEC, params, pixel_batch

cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
no_cuda = pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a CUDA GPU")


def test_device_names_are_checked():
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    for bad in ("tpu", "gpu0", ""):
        with pytest.raises(ValueError, match="device must be 'cpu', 'cuda', 'cuda:N' or 'auto'"):
            resolve_device(bad)


@no_cuda
def test_cuda_without_a_gpu_is_a_clear_config_error():
    with pytest.raises(ValueError, match="sees no CUDA GPU.*set device to 'cpu' or 'auto'"):
        SACAgent(STATE_SPEC, SACConfig(network=SMALL, device="cuda"))
    with pytest.raises(ConfigError, match="device"):
        from_dict(SACConfig, {"device": "cuda"}, where="learner.sac")
    with pytest.raises(ValueError, match="sees no CUDA GPU"):
        BCAgent(STATE_SPEC, BCConfig(network=SMALL, device="cuda:0"))


def test_checkpoint_rng_from_another_device_warns_and_keeps_training(tmp_path, caplog):
    a = SACAgent(PIX_SPEC, SACConfig(network=SMALL, num_critics=2, batch_size=8, seed=3))
    rng = np.random.default_rng(0)
    a.update(pixel_batch(rng, 8))
    state = a.state_dict()
    other = "cpu" if a.device.type == "cuda" else "cuda"
    state["rng"] = {k: v for k, v in state["rng"].items() if k == "device"} | {"device": other}
    b = SACAgent(PIX_SPEC, SACConfig(network=SMALL, num_critics=2, batch_size=8, seed=3))
    with caplog.at_level(logging.WARNING, logger="robot_stack.rl.agent"):
        b.load_state_dict(state)
    assert "not bit-identical" in caplog.text
    assert torch.equal(params(a), params(b)) and b.step == a.step
    b.update(pixel_batch(rng, 8))


@cuda
def test_pixels_on_the_gpu_resume_and_export_to_the_cpu(tmp_path):
    cfg = SACConfig(network=SMALL, num_critics=3, utd_ratio=2, batch_size=8, seed=3, device="cuda")
    a = SACAgent(PIX_SPEC, cfg)
    rng = np.random.default_rng(0)
    for _ in range(3):
        a.update(pixel_batch(rng, 16))
    a.save(tmp_path / "ckpt.pt")
    later = [pixel_batch(rng, 16) for _ in range(3)]
    ma = [a.update(b) for b in later]
    b = SACAgent.load(tmp_path / "ckpt.pt")
    assert b.device.type == "cuda"
    mb = [b.update(x) for x in later]
    # Same GPU, same ops: equal up to the nondeterminism of cuDNN's convolution backward.
    for x, y in zip(ma, mb):
        assert x.keys() == y.keys() and all(abs(x[k] - y[k]) <= 1e-4 * (1 + abs(x[k])) for k in x), (x, y)
    torch.testing.assert_close(params(a), params(b), rtol=1e-4, atol=1e-5)
    # The exported policy holds CPU tensors and acts on the robot PC's CPU like on the GPU.
    spec_json, data = export_policy_bytes(a)
    assert all(t.device.type == "cpu" for t in policy_state_from_bytes(data).values())
    policy = load_policy_from_bytes(spec_json, data)
    o = {k: v[0] for k, v in later[0]["obs"].items()}
    np.testing.assert_allclose(policy.act(o, deterministic=True), a.act(o, deterministic=True), atol=1e-4)
    # A GPU checkpoint resumes on a CPU-only machine (device override; RNG streams restart).
    c = SACAgent.load(tmp_path / "ckpt.pt", device="cpu")
    assert c.device.type == "cpu" and c.step == 6
    c.update(later[0])
