"""The actor's policy at start-up and from the learner's weights (ROS-free).

First match wins: ``policy_file`` (an exported policy: the warm start, and what evaluation
runs), ``spec_json``/``spec_file`` (a random-init policy of that spec, with the export's
network config when given), else none (the actor waits for the learner's first weights).
"""
from __future__ import annotations

import pathlib

from robot_stack.types.config import ConfigError
from robot_stack.types.records import PolicyWeights
from robot_stack.types.spec import PolicySpec, parse_spec_json


def random_policy(spec: PolicySpec, network: dict | None, seed: int):
    """An untrained actor network for ``spec`` (the learner's network layout when given)."""
    import torch

    from robot_stack.rl.networks import ActorHead, NetworkConfig, ObsEncoder, PolicyNet
    from robot_stack.rl.policy_io import Policy
    from robot_stack.types.config import from_dict

    net_cfg = from_dict(NetworkConfig, network or {}, where="network")
    torch.manual_seed(seed)  # parameter init uses the global generator
    encoder = ObsEncoder(spec, net_cfg, load_weights=bool(net_cfg.encoder_weights))
    return Policy(spec, PolicyNet(encoder, ActorHead(encoder.out_dim, spec.action.dim, net_cfg.hidden_dims)), seed)


def same_layout(a: PolicySpec, b: PolicySpec) -> bool:
    """Whether two specs take the same observations and give the same actions."""
    return a.cameras == b.cameras and a.proprio_names == b.proprio_names and a.action == b.action


def initial_policy(policy_file: str, spec_json: str, spec_file: str, seed: int, evaluation: bool):
    """(spec, policy, version) to start with, or (None, None, 0) to wait for the learner.
    ConfigError names the parameter when a file or spec is unusable."""
    if policy_file:
        from robot_stack.rl.policy_io import load_policy_from_bytes, read_policy_file

        path = pathlib.Path(policy_file).expanduser()
        if not path.is_file():
            raise ConfigError(f"parameter 'policy_file': {path} does not exist (export one with the learner or give '')")
        try:
            text, data, meta = read_policy_file(path)
            policy = load_policy_from_bytes(text, data, seed)
        except (ValueError, RuntimeError, KeyError, OSError) as e:
            raise ConfigError(f"parameter 'policy_file': cannot load {path}: {e}") from None
        # While learning, a warm start counts as version 0 so that any learner weights (a
        # fresh learner starts again at 1) replace it; evaluation reports the file's version.
        return policy.spec, policy, int(meta.get("version", 0)) if evaluation else 0
    text = spec_json
    if spec_file:
        try:
            text = pathlib.Path(spec_file).expanduser().read_text()
        except OSError as e:
            raise ConfigError(f"parameter 'spec_file': {e}") from None
    if text:
        try:
            spec, network = parse_spec_json(text)
        except ValueError as e:
            raise ConfigError(f"parameter 'spec_json'/'spec_file': {e}") from None
        return spec, random_policy(spec, network, seed), 0
    return None, None, 0


def policy_from_weights(w: PolicyWeights, seed: int):
    """The policy in a PolicyWeights export; ValueError when unusable (whatever the bytes)."""
    from robot_stack.rl.policy_io import load_policy_from_bytes

    try:
        return load_policy_from_bytes(w.spec_json, w.data, seed)
    except (RuntimeError, KeyError, TypeError) as e:  # load_state_dict and friends on odd content
        raise ValueError(f"cannot load the policy: {e}") from None
