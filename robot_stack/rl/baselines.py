"""Imitation baselines on the same networks as SAC: plain BC and HG-DAgger.

* **BC** regresses the actor's deterministic action (tanh of the Gaussian mean) onto
  demonstration actions (mean squared error), training encoders and actor head together.
* **HG-DAgger** (Kelly et al. 2019) is BC on the aggregated intervention data: every operator
  step lands in the intervention buffer, and the policy keeps training on all of it as data
  arrives (the training script calls :meth:`BCAgent.update` on batches drawn from that
  buffer, and can re-initialise with :meth:`BCAgent.reset` between rounds).
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from robot_stack.rl.agent import make_generators, restore_generators, save_atomic
from robot_stack.rl.networks import (ActorHead, NetworkConfig, ObsEncoder, PolicyNet, augment, obs_to_torch,
                                     resolve_device)
from robot_stack.types import config as cfgmod
from robot_stack.types.spec import PolicySpec


@dataclass(frozen=True)
class BCConfig:
    """Behaviour cloning hyperparameters."""

    network: NetworkConfig = field(default_factory=NetworkConfig)
    """Encoder and MLP sizes (same as SAC's for a fair comparison)."""
    lr: float = 3e-4
    """Adam learning rate."""
    batch_size: int = 256
    """Minibatch size."""
    seed: int = 0
    """Seed of initialization and augmentation."""
    device: str = "cpu"
    """Where the networks train: 'cpu', 'cuda', 'cuda:N' or 'auto' (as SACConfig.device)."""

    def validate(self) -> None:
        resolve_device(self.device)
        self.network.validate()


class BCAgent:
    def __init__(self, spec: PolicySpec, cfg: BCConfig | None = None):
        self.spec = spec
        self.cfg = cfg or BCConfig()
        self.cfg.validate()
        self.device = resolve_device(self.cfg.device)
        self.gen, self.act_gen = make_generators(self.device, self.cfg.seed)
        torch.manual_seed(self.cfg.seed)
        self._build()
        self.step = 0

    def _build(self) -> None:
        self.encoder = ObsEncoder(self.spec, self.cfg.network)
        self.actor = ActorHead(self.encoder.out_dim, self.spec.action.dim, self.cfg.network.hidden_dims)
        self.policy = PolicyNet(self.encoder, self.actor).to(self.device)
        self.opt = torch.optim.Adam([p for p in self.policy.parameters() if p.requires_grad], lr=self.cfg.lr)

    def reset(self) -> None:
        """Re-initialise the networks (HG-DAgger retraining from scratch)."""
        self._build()

    def act(self, obs: dict, deterministic: bool = True) -> np.ndarray:
        return self.policy.act_batch(obs_to_torch(obs, self.spec, batched=False), deterministic, self.act_gen)[0]

    def update(self, batch: dict) -> dict[str, float]:
        obs = obs_to_torch(batch["obs"], self.spec, batched=True, device=self.device)
        target = torch.as_tensor(batch["action"], dtype=torch.float32, device=self.device).clamp(-1.0, 1.0)
        pred = self.actor.mode(self.encoder(augment(obs, self.spec, self.cfg.network.augment_pad_px, self.gen)))
        loss = F.mse_loss(pred, target)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        self.step += 1
        return {"bc_loss": loss.item()}

    def state_dict(self) -> dict:
        return {"config": cfgmod.to_dict(self.cfg), "spec_json": self.spec.to_json(), "step": self.step,
                "policy": self.policy.state_dict(), "opt": self.opt.state_dict(),
                "rng": {"update": self.gen.get_state(), "act": self.act_gen.get_state(), "device": self.device.type}}

    def load_state_dict(self, state: dict) -> None:
        self.policy.load_state_dict(state["policy"])
        self.opt.load_state_dict(state["opt"])
        restore_generators((self.gen, self.act_gen), state["rng"], self.device)
        self.step = int(state["step"])

    def save(self, path: str | os.PathLike) -> None:
        save_atomic(self.state_dict(), path)

    @classmethod
    def load(cls, path: str | os.PathLike, **overrides) -> "BCAgent":
        state = torch.load(path, map_location="cpu", weights_only=False)
        agent = cls(PolicySpec.from_json(state["spec_json"]), cfgmod.from_dict(BCConfig, {**state["config"], **overrides}))
        agent.load_state_dict(state)
        return agent

    def load_policy_weights(self, policy_state: dict) -> None:
        self.policy.load_state_dict(policy_state)
