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
    meta = json.loads(spec_json)
    if meta.get("format") != FORMAT:
        raise ValueError(f"unsupported policy format {meta.get('format')!r}; expected {FORMAT!r}")
    return PolicySpec.from_dict(meta["policy_spec"]), cfgmod.from_dict(NetworkConfig, meta["network"])


def policy_state_from_bytes(data: bytes) -> dict:
    return torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)


def load_policy_from_bytes(spec_json: str, data: bytes, seed: int = 0) -> Policy:
    """Build the actor network from ``spec_json`` and load ``data`` into it."""
    spec, net_cfg = _parse(spec_json)
    # Frozen pretrained trunks travel inside data, so the weights file is not needed here.
    encoder = ObsEncoder(spec, net_cfg, load_weights=False)
    net = PolicyNet(encoder, ActorHead(encoder.out_dim, spec.action.dim, net_cfg.hidden_dims))
    net.load_state_dict(policy_state_from_bytes(data))
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
