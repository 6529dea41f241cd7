"""Actor-only policy export: encoders + actor head + a JSON description, no critic.

The learner publishes these bytes in ``PolicyWeights.msg`` (format ``torch_state_dict``,
``spec_json``, ``data``, ``sha256``) and writes them to ``<run_dir>/policies/latest.pt`` and
``best.pt``; an actor process (or :func:`evaluate_policy`) rebuilds the network from
``spec_json`` alone, without the learner's configuration or any weights file.
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import pathlib

import numpy as np
import torch

from robot_stack.rl.networks import ActorHead, NetworkConfig, ObsEncoder, PolicyNet, obs_to_torch
from robot_stack.types import config as cfgmod
from robot_stack.types.spec import PolicySpec

FORMAT = "torch_state_dict"


class Policy:
    """A loaded actor: ``act(obs, deterministic)`` on one unbatched observation dict."""

    def __init__(self, spec: PolicySpec, net: PolicyNet, seed: int = 0):
        self.spec = spec
        self.net = net.eval()
        self.gen = torch.Generator().manual_seed(seed)

    def act(self, obs: dict, deterministic: bool = True) -> np.ndarray:
        return self.net.act_batch(obs_to_torch(obs, self.spec, batched=False), deterministic, self.gen)[0]


def export_policy_bytes(agent) -> tuple[str, bytes]:
    """(spec_json, data) of an agent's encoders + actor head (SACAgent or BCAgent)."""
    spec_json = json.dumps({
        "format": FORMAT,
        "policy_spec": agent.spec.to_dict(),
        "network": cfgmod.to_dict(agent.cfg.network),
    }, sort_keys=True)
    buf = io.BytesIO()
    torch.save({k: v.detach().to("cpu", copy=True) for k, v in agent.policy.state_dict().items()}, buf)
    return spec_json, buf.getvalue()


def _parse(spec_json: str) -> tuple[PolicySpec, NetworkConfig]:
    """Spec and network config of an export's spec_json; ValueError names what is wrong."""
    try:
        meta = json.loads(spec_json)
    except (json.JSONDecodeError, TypeError, RecursionError) as e:
        raise ValueError(f"spec_json is not JSON: {e}") from None
    if not isinstance(meta, dict) or not isinstance(meta.get("network"), dict):
        raise ValueError("spec_json must be an object with format, policy_spec and network (an object)")
    if meta.get("format") != FORMAT:
        raise ValueError(f"unsupported policy format {meta.get('format')!r:.40}; expected {FORMAT!r}")
    net_cfg = cfgmod.from_dict(NetworkConfig, meta["network"], where="spec_json network")
    net_cfg.validate()
    return PolicySpec.from_dict(meta.get("policy_spec")), net_cfg


def policy_state_from_bytes(data: bytes) -> dict:
    """The state dict in exported policy bytes; ValueError when they are not one."""
    try:
        state = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 -- untrusted bytes: unpickling fails in many ways, all mean "not weights"
        raise ValueError(f"the policy data is not a torch state_dict ({type(e).__name__}: {str(e)[:120]})") from None
    if not isinstance(state, dict) or not all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state.items()):
        raise ValueError("the policy data is not a torch state_dict of named tensors")
    return state


def _policy_net(spec: PolicySpec, net_cfg: NetworkConfig) -> PolicyNet:
    # Frozen pretrained trunks travel inside data, so the weights file is not needed here.
    encoder = ObsEncoder(spec, net_cfg, load_weights=False)
    return PolicyNet(encoder, ActorHead(encoder.out_dim, spec.action.dim, net_cfg.hidden_dims))


def load_policy_from_bytes(spec_json: str, data: bytes, seed: int = 0) -> Policy:
    """Build the actor network from ``spec_json`` and load ``data`` into it; ValueError when
    either is unusable. The network is first laid out without memory (torch's meta device) and
    its tensor shapes compared with ``data``'s, so a spec_json describing a huge network can
    never allocate more than the data it came with."""
    spec, net_cfg = _parse(spec_json)
    state = policy_state_from_bytes(data)
    try:
        with torch.device("meta"):
            shapes = {k: tuple(v.shape) for k, v in _policy_net(spec, net_cfg).state_dict().items()}
    except (RuntimeError, ValueError) as e:
        raise ValueError(f"spec_json describes no buildable network: {e}") from None
    got = {k: tuple(v.shape) for k, v in state.items()}
    if got != shapes:
        diff = sorted(set(got.items()) ^ set(shapes.items()))[:3]
        raise ValueError(f"the policy data does not fit the network spec_json describes (e.g. {diff})")
    net = _policy_net(spec, net_cfg)
    net.load_state_dict(state)
    return Policy(spec, net, seed)


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def save_policy_file(agent, path: str | os.PathLike, meta: dict | None = None) -> None:
    """Write an exported policy (format, spec_json, data, sha256, meta) atomically."""
    spec_json, data = export_policy_bytes(agent)
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    torch.save({"format": FORMAT, "spec_json": spec_json, "data": data, "sha256": sha256_hex(data),
                "meta": dict(meta or {})}, tmp)
    os.replace(tmp, path)


def read_policy_file(path: str | os.PathLike) -> tuple[str, bytes, dict]:
    """(spec_json, data, meta) of a policy file; checks the digest."""
    blob = torch.load(path, map_location="cpu", weights_only=False)
    if sha256_hex(blob["data"]) != blob["sha256"]:
        raise ValueError(f"policy file {path} is corrupt: sha256 mismatch")
    return blob["spec_json"], blob["data"], blob.get("meta", {})


def load_policy_file(path: str | os.PathLike, seed: int = 0) -> Policy:
    spec_json, data, _ = read_policy_file(path)
    return load_policy_from_bytes(spec_json, data, seed)
